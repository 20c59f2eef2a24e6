//! `shoal-bench overlay`: overlay networks across the hosts of the lab (`scripts/netlab.sh`):
//! how fast a new task's address and a new service's VIP reach every host's name server, the
//! latency of a DNS query from inside a task, new TCP connections per second through a VIP
//! against a task's own address, bulk throughput over the overlay against the underlay, and
//! one network with many tasks (until every host's data plane has them, the daemons' memory,
//! and one more task at that scale).
//!
//! It runs one `shoal daemon` inside each of the lab's three hosts (a manager on h1, workers on
//! h2 and h3) and measures from inside the tasks: a probe, this same binary
//! (`shoal-bench probe …`), runs in a container's network namespace through `nsenter`, so it
//! takes the path the task's own processes take (127.0.0.11:53 redirected to the network's
//! name server, the VIP's DNAT in the network's namespace, the VXLAN port).
//!
//! It holds the lab's test lock (`/run/lock/shoal-lab.tests.lock`, which the integration tests
//! take too) for the whole run and leaves the lab up but as it found it: its services,
//! network, containers, engine networks, daemons, overlay namespaces and plugin sockets go,
//! also when a step fails or the run is interrupted (Ctrl-C/SIGTERM). It never touches a
//! process it did not start: when a foreign shoal daemon runs in a lab host, it refuses.

use crate::client::Conn;
use crate::cluster::Launch;
use crate::{ms, pct, say, Row};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// The lab's script, found from this crate (the harness runs from a checkout).
const NETLAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/netlab.sh");
/// Where the lab keeps each host's engine socket and plugin folder.
const LAB_STATE: &str = "/run/shoal-lab";
/// The lock every user of the lab (the integration tests too) holds while using it.
const TEST_LOCK: &str = "/run/lock/shoal-lab.tests.lock";
/// The underlay's first three octets; host i is `198.51.100.i`.
const UNDERLAY: &str = "198.51.100";
const HOSTS: usize = 3;
/// The network plugin name the benchmark's daemons serve, so nothing else's is touched.
/// Neither it nor any path the benchmark makes says `shoal`: other users of the machine
/// clean up after themselves by name, and must not take the benchmark's processes along.
const PLUGIN: &str = "q7net";
const NETWORK: &str = "bench-overlay";
const SUBNET: &str = "10.231.0.0/24";
/// The many-tasks step's network: internal, because every task on a network with egress
/// also gets an address on its host's `docker_gwbridge`, which the lab's engines make a /24
/// (253 tasks per host); a /20 holds 4,093 tasks.
const MANY_NETWORK: &str = "bench-many";
const MANY_SUBNET: &str = "10.232.0.0/20";
const SWARM_PORT: u16 = 2377;
const BULK_PORT: u16 = 5201;
const SECOND_NS: u64 = 1_000_000_000;
/// How long a single step may take before the run fails (the many-tasks step has its own).
const LIMIT: Duration = Duration::from_secs(60);

/// A container that only waits (the per-host clients the probes run in).
const IDLE: [&str; 3] = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"];
/// busybox httpd, a process per connection, serving the container's hostname.
const WEB: [&str; 3] = [
    "sh",
    "-c",
    "mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www",
];
/// The cheapest task there is: one process that sleeps.
const SLEEPER: [&str; 2] = ["sleep", "10000000"];

/// What `overlay` is run with.
pub struct Options {
    /// Scale-ups of `web` timed for the name-propagation figure.
    pub runs: usize,
    /// DNS queries per host for the query-latency figure.
    pub queries: usize,
    /// Seconds of each connection-rate and bulk round.
    pub seconds: f64,
    /// Concurrent connections of the connection-rate probe.
    pub workers: usize,
    /// Tasks of the many-tasks service (0 skips that step).
    pub tasks: usize,
    pub image: String,
}

// ----- probes: run inside a namespace, print JSON on stdout -----

/// What the harness runs inside a container's (or a lab host's) network namespace.
#[derive(clap::Subcommand, Debug, Clone, PartialEq)]
pub enum Probe {
    /// COUNT sequential A queries of NAME over UDP; prints their latencies (µs) as JSON.
    DnsQuery {
        #[arg(long, default_value = "127.0.0.11:53")]
        server: SocketAddr,
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
    /// Queries NAME every INTERVAL_MS (TCP when the UDP answer is truncated); prints
    /// `{"t": unix ns, "ips": [...]}` at the start and whenever the answer changes.
    DnsWatch {
        #[arg(long, default_value = "127.0.0.11:53")]
        server: SocketAddr,
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 10)]
        interval_ms: u64,
    },
    /// WORKERS threads that each connect, send `GET /`, read the answer to its end and close,
    /// for SECONDS; prints the completed count.
    Connrate {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        seconds: f64,
        #[arg(long, default_value_t = 16)]
        workers: usize,
    },
    /// Accepts one connection and reads it to its end; prints bytes and seconds (first byte
    /// to end). Prints `{"ready": true}` once listening.
    BulkRecv {
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Writes 1 MiB buffers to ADDR for SECONDS, then waits for the receiver to close.
    BulkSend {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        seconds: f64,
    },
    /// In a lab host: the permanent neighbours of an overlay network's namespace and the
    /// backends of VIP in its nft table, every INTERVAL_MS; prints a line whenever they change
    /// (with `--ip`: whether that address is among them).
    Dataplane {
        #[arg(long)]
        netns: String,
        #[arg(long)]
        vip: Ipv4Addr,
        #[arg(long)]
        ip: Option<Ipv4Addr>,
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
    },
}

/// Runs a probe to its end (blocking; the probe is the whole process).
pub fn run_probe(p: &Probe) -> Result<()> {
    match p {
        Probe::DnsQuery {
            server,
            name,
            count,
        } => dns_query(*server, name, *count),
        Probe::DnsWatch {
            server,
            name,
            interval_ms,
        } => dns_watch(*server, name, Duration::from_millis(*interval_ms)),
        Probe::Connrate {
            addr,
            seconds,
            workers,
        } => connrate(*addr, *seconds, *workers),
        Probe::BulkRecv { listen } => bulk_recv(*listen),
        Probe::BulkSend { addr, seconds } => bulk_send(*addr, *seconds),
        Probe::Dataplane {
            netns,
            vip,
            ip,
            interval_ms,
        } => dataplane(netns, *vip, *ip, Duration::from_millis(*interval_ms)),
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// One line of JSON on stdout; an error once the reader is gone.
fn emit(v: &Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}")?;
    out.flush()?;
    Ok(())
}

struct Answer {
    ips: Vec<Ipv4Addr>,
    truncated: bool,
    rcode: String,
}

fn query_packet(name: &str, id: u16) -> Result<Vec<u8>> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
    Ok(m.to_vec()?)
}

/// The answer in `buf`, or None when it is not the answer to query `id`.
fn parse_answer(buf: &[u8], id: u16) -> Result<Option<Answer>> {
    use hickory_proto::op::Message;
    use hickory_proto::rr::{rdata::A, RData};
    let m = Message::from_vec(buf)?;
    if m.metadata.id != id {
        return Ok(None);
    }
    let mut ips: Vec<Ipv4Addr> = m
        .answers
        .iter()
        .filter_map(|r| match r.data {
            RData::A(A(ip)) => Some(ip),
            _ => None,
        })
        .collect();
    ips.sort();
    Ok(Some(Answer {
        ips,
        truncated: m.metadata.truncation,
        rcode: format!("{:?}", m.metadata.response_code),
    }))
}

/// One query on a connected UDP socket (with a read timeout); skips stale answers.
fn udp_query(sock: &UdpSocket, name: &str, id: u16) -> Result<Answer> {
    sock.send(&query_packet(name, id)?)?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).context("no answer")?;
        if let Some(a) = parse_answer(&buf[..n], id)? {
            return Ok(a);
        }
    }
}

fn tcp_query(server: SocketAddr, name: &str, id: u16) -> Result<Answer> {
    let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let q = query_packet(name, id)?;
    s.write_all(&(q.len() as u16).to_be_bytes())?;
    s.write_all(&q)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf)?;
    parse_answer(&buf, id)?.context("the TCP answer is for another query")
}

/// A UDP socket connected to `server`; a query unanswered within `timeout` fails.
fn udp_socket(server: SocketAddr, timeout: Duration) -> Result<UdpSocket> {
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.connect(server)?;
    sock.set_read_timeout(Some(timeout))?;
    Ok(sock)
}

fn dns_query(server: SocketAddr, name: &str, count: usize) -> Result<()> {
    let sock = udp_socket(server, Duration::from_secs(2))?;
    let mut id: u16 = (std::process::id() & 0xffff) as u16;
    let mut answer = Vec::new();
    for _ in 0..50 {
        id = id.wrapping_add(1);
        answer = udp_query(&sock, name, id)?.ips;
    }
    let mut lat = Vec::with_capacity(count);
    let mut errors = 0u64;
    for _ in 0..count {
        id = id.wrapping_add(1);
        let t = Instant::now();
        match udp_query(&sock, name, id) {
            Ok(a) if !a.ips.is_empty() => lat.push(t.elapsed().as_secs_f64() * 1e6),
            _ => errors += 1,
        }
    }
    lat.sort_by(f64::total_cmp);
    emit(&json!({"lat_us": lat, "errors": errors, "answer": answer}))
}

fn dns_watch(server: SocketAddr, name: &str, interval: Duration) -> Result<()> {
    // A name the cluster does not know goes upstream, which may not answer for seconds: a
    // short timeout keeps the poll going (a late answer is skipped by its ID).
    let sock = udp_socket(server, Duration::from_millis(250))?;
    let mut id: u16 = (std::process::id() & 0xffff) as u16;
    let mut last: Option<String> = None;
    loop {
        id = id.wrapping_add(1);
        let state = match udp_query(&sock, name, id) {
            Ok(a) if a.truncated => match tcp_query(server, name, id) {
                Ok(a) => json!({"ips": a.ips, "rcode": a.rcode}),
                Err(e) => json!({"ips": [], "error": format!("tcp: {e:#}")}),
            },
            Ok(a) => json!({"ips": a.ips, "rcode": a.rcode}),
            Err(e) => json!({"ips": [], "error": format!("{e:#}")}),
        };
        let t = now_ns();
        let key = state.to_string();
        if last.as_ref() != Some(&key) {
            let mut line = state;
            line["t"] = json!(t);
            emit(&line)?;
            last = Some(key);
        }
        std::thread::sleep(interval);
    }
}

/// One connection: connect, `GET /`, read the answer to its end, then close with a reset
/// (SO_LINGER 0). A normal close would leave a TIME_WAIT socket (and conntrack entry) per
/// connection for a minute: past ~28,000 connections to one address the client's ephemeral
/// ports come round again while those still exist, SYNs get lost, and whichever target is
/// measured later looks slower.
fn one_request(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_nodelay(true)?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut buf = [0u8; 4096];
    let mut head = Vec::new();
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 8 {
            head.extend_from_slice(&buf[..n.min(8)]);
        }
    }
    if !head.starts_with(b"HTTP/1.") {
        return Err(std::io::Error::other("not an HTTP answer"));
    }
    let reset = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Linger, &reset)
        .map_err(std::io::Error::from)?;
    Ok(())
}

fn connrate(addr: SocketAddr, seconds: f64, workers: usize) -> Result<()> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..workers.max(1))
        .map(|_| {
            std::thread::spawn(move || {
                let (mut ok, mut errors, mut first) = (0u64, 0u64, None::<String>);
                while Instant::now() < deadline {
                    match one_request(addr) {
                        Ok(()) if Instant::now() <= deadline => ok += 1,
                        Ok(()) => {}
                        Err(e) => {
                            errors += 1;
                            first.get_or_insert_with(|| e.to_string());
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                }
                (ok, errors, first)
            })
        })
        .collect();
    let (mut ok, mut errors, mut first) = (0u64, 0u64, None);
    for t in threads {
        let (o, e, f) = t.join().map_err(|_| anyhow::anyhow!("a worker panicked"))?;
        ok += o;
        errors += e;
        if first.is_none() {
            first = f;
        }
    }
    let secs = deadline.duration_since(start).as_secs_f64();
    emit(&json!({"ok": ok, "errors": errors, "secs": secs, "first_error": first}))
}

fn bulk_recv(listen: SocketAddr) -> Result<()> {
    let l = TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    emit(&json!({"ready": true}))?;
    let (mut s, _) = l.accept()?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut bytes, mut first) = (0u64, None::<Instant>);
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        first.get_or_insert_with(Instant::now);
        bytes += n as u64;
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    emit(&json!({"bytes": bytes, "secs": secs}))
}

fn bulk_send(addr: SocketAddr, seconds: f64) -> Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to {addr}"))?;
    let buf = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut bytes = 0u64;
    while Instant::now() < deadline {
        s.write_all(&buf)?;
        bytes += buf.len() as u64;
    }
    s.shutdown(std::net::Shutdown::Write)?;
    let _ = s.read(&mut [0u8; 16]); // the receiver closes once it has read everything
    emit(&json!({"bytes": bytes, "secs": start.elapsed().as_secs_f64()}))
}

/// The IPv4 addresses in a text, as whole tokens.
fn ipv4_tokens(text: &str) -> Vec<Ipv4Addr> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|t| t.parse().ok())
        .collect()
}

fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dataplane(netns: &str, vip: Ipv4Addr, ip: Option<Ipv4Addr>, interval: Duration) -> Result<()> {
    let ns_file = format!("--net=/run/netns/{netns}");
    let chain = format!("vip-{vip}");
    let mut last = None;
    loop {
        let neigh: Vec<Ipv4Addr> =
            output_of("ip", &["-n", netns, "neigh", "show", "nud", "permanent"])
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split_whitespace().next()?.parse().ok())
                .collect();
        let backends: Vec<Ipv4Addr> = output_of(
            "nsenter",
            &[
                &ns_file, "--", "nft", "list", "chain", "ip", "shoal", &chain,
            ],
        )
        .map(|t| ipv4_tokens(&t))
        .unwrap_or_default()
        .into_iter()
        .filter(|a| *a != vip)
        .collect();
        let state = json!({
            "neigh": neigh.len(),
            "backends": backends.len(),
            "has_neigh": ip.map(|i| neigh.contains(&i)),
            "has_backend": ip.map(|i| backends.contains(&i)),
        });
        let t = now_ns();
        if last.as_ref() != Some(&state) {
            let mut line = state.clone();
            line["t"] = json!(t);
            emit(&line)?;
            last = Some(state);
        }
        std::thread::sleep(interval);
    }
}

// ----- the lab -----

/// The lab's test lock: a `flock` process that holds it until its stdin closes, so the lock
/// goes with this process however it ends (as the integration tests' support does). It runs
/// under a shell of its own rather than as this process's child: a process that kills the
/// lock's holder and its parent then takes the lock only, and the benchmark notices
/// ([`lock_held`]) and stops, cleaning up, instead of dying with the lab half-used.
struct LabLock {
    child: std::process::Child,
}

/// Set once the lock's holder is gone: from then on the lab is not the benchmark's.
static LOCK_LOST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Fails once the lab's lock was taken from the benchmark: its figures would be mixed with
/// someone else's use of the lab.
fn lock_held() -> Result<()> {
    if LOCK_LOST.load(std::sync::atomic::Ordering::SeqCst) {
        bail!("the lab's test lock was taken from the benchmark (its flock process was killed): stopping, the figures would not be the benchmark's alone");
    }
    Ok(())
}

impl LabLock {
    /// Takes the lock through `link`, a symlink to it (see [`PLUGIN`] for why).
    fn take(link: &Path) -> Result<LabLock> {
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(TEST_LOCK, link)
            .with_context(|| format!("cannot link {} to {TEST_LOCK}", link.display()))?;
        // fd 3: an asynchronous list's stdin would otherwise be /dev/null.
        let script =
            r#"exec 3<&0; flock "$0" sh -c 'echo locked; exec cat >/dev/null' <&3 3<&- & wait"#;
        let mut child = std::process::Command::new("sh")
            .args(["-c", script])
            .arg(link)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot run flock (util-linux)")?;
        let mut stdout = std::io::BufReader::new(child.stdout.take().context("flock's stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        if line.trim() != "locked" {
            bail!("flock {TEST_LOCK} failed");
        }
        LOCK_LOST.store(false, std::sync::atomic::Ordering::SeqCst);
        // The pipe ends once the holder is gone.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
            LOCK_LOST.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Ok(LabLock { child })
    }
}

impl Drop for LabLock {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn host_name(h: usize) -> String {
    format!("h{h}")
}

fn host_addr(h: usize) -> String {
    format!("{UNDERLAY}.{h}")
}

fn engine_socket(h: usize) -> PathBuf {
    PathBuf::from(format!("{LAB_STATE}/h{h}/docker.sock"))
}

/// `docker -H unix://SOCKET ARGS…` (blocking: also used while cleaning up in `Drop`); stdout.
fn docker(socket: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .env("DOCKER_CLI_HINTS", "false")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null())
        .output()
        .context("cannot run the docker CLI")?;
    if !out.status.success() {
        bail!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `scripts/netlab.sh ARGS…` (blocking); stdout.
fn netlab(args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(NETLAB)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {NETLAB}"))?;
    if !out.status.success() {
        bail!(
            "scripts/netlab.sh {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// PIDs of the processes in host h's network namespace that are not its engine's.
fn foreign_processes(h: usize) -> Vec<(String, String)> {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", &format!("shoallab-h{h}")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.split_whitespace()
        .filter_map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let comm = comm.trim().to_string();
            let engine = ["dockerd", "containerd", "docker-proxy"].contains(&comm.as_str())
                || comm.starts_with("containerd-shim");
            (!engine).then(|| (pid.to_string(), comm))
        })
        .collect()
}

/// The `shoal-*` network namespaces mounted in host h's mount namespace.
fn overlay_namespaces(h: usize) -> BTreeSet<String> {
    let script = r#"for f in /run/netns/shoal-*; do
  [ -e "$f" ] || continue
  n=${f##*/}
  ip -n "$n" link show >/dev/null 2>&1 && echo "$n"
done
exit 0"#;
    netlab(&["exec", &host_name(h), "sh", "-c", script])
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Removes network namespaces of host h: their VXLAN ports first (whose sockets live in the
/// host's namespace), then the namespace.
fn remove_namespaces(h: usize, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let script = r#"for n in "$@"; do
  ip -n "$n" link show >/dev/null 2>&1 || continue
  for l in $(ip -n "$n" -o link show type vxlan | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
    ip -n "$n" link del "$l" 2>/dev/null
  done
  ip netns del "$n" 2>/dev/null
done
exit 0"#;
    let host = host_name(h);
    let mut args = vec!["exec", host.as_str(), "sh", "-c", script, "sh"];
    args.extend(names.iter().map(String::as_str));
    if let Err(e) = netlab(&args) {
        say(format!("overlay: {e:#}"));
    }
}

/// One `shoal daemon` inside a lab host.
struct Node {
    host: usize,
    /// The daemon's executable, to tell it from `netlab.sh exec` (which execs it).
    exe: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    node_id: String,
}

impl Node {
    async fn start(launch: &Launch, base: &Path, host: usize) -> Result<Node> {
        let dir = base.join(host_name(host));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("daemon.log"))?;
        // The daemon reaches its engine through a link: see `PLUGIN` for why.
        let engine_link = dir.join("engine.sock");
        let _ = std::fs::remove_file(&engine_link);
        std::os::unix::fs::symlink(engine_socket(host), &engine_link)?;
        let mut node = Node {
            exe: launch.shoal.clone(),
            host,
            dir,
            child: None,
            node_id: String::new(),
        };
        let child = Command::new(NETLAB)
            .args(["exec", &host_name(host)])
            .arg(&launch.shoal)
            .arg("daemon")
            .arg("--data-dir")
            .arg(node.dir.join("data"))
            .arg("-H")
            .arg(format!("unix://{}", node.socket().display()))
            .arg("--listen-addr")
            .arg(format!("{}:{SWARM_PORT}", host_addr(host)))
            .arg("--engine-socket")
            .arg(&engine_link)
            .arg("--mesh-listen-ip")
            .arg(host_addr(host))
            .arg("--network-plugin")
            .arg(PLUGIN)
            .arg("--timing")
            .arg(&launch.timing)
            .env("SHOAL_LOG", &launch.log)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run {NETLAB} exec"))?;
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut conn = Conn::new(&node.socket());
        loop {
            if let Ok(r) = conn.get_within(Duration::from_secs(2), "/_ping").await {
                if r.status == 200 {
                    return Ok(node);
                }
            }
            if let Some(Ok(Some(st))) = node.child.as_mut().map(|c| c.try_wait()) {
                bail!(
                    "h{host}: the daemon exited ({st}) before answering:\n{}",
                    node.log_tail()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "h{host}: no answer on {} within 30 s:\n{}",
                    node.socket().display(),
                    node.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("api.sock")
    }

    fn conn(&self) -> Conn {
        Conn::new(&self.socket())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// VmRSS and VmHWM of the daemon, in KiB (`netlab.sh exec` execs it: same PID).
    fn rss_kib(&self) -> Result<(u64, u64)> {
        let pid = self
            .child
            .as_ref()
            .and_then(|c| c.id())
            .context("the daemon is not running")?;
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
        if exe != self.exe {
            bail!("process {pid} is {}, not the daemon", exe.display());
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("no {name} in /proc/{pid}/status"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// SIGTERM, then SIGKILL when it has not exited within 5 s.
    fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        if let Some(pid) = c.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = c.start_kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !matches!(c.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The benchmark's cluster in the lab. Dropping it removes everything the benchmark made,
/// in an order that lets each piece go cleanly, then releases the lab's lock.
struct LabCluster {
    nodes: Vec<Node>,
    base: PathBuf,
    keep: bool,
    /// Per host: the overlay namespaces that were there before (not the benchmark's).
    netns_before: Vec<BTreeSet<String>>,
    /// Declared last: released after the clean-up.
    _lock: LabLock,
}

impl LabCluster {
    fn manager(&self) -> &Node {
        &self.nodes[0]
    }

    fn host_of(&self, node_id: &str) -> Option<usize> {
        self.nodes
            .iter()
            .find(|n| n.node_id == node_id)
            .map(|n| n.host)
    }

    /// Containers of this cluster's nodes on host h's engine.
    fn containers_on(&self, h: usize) -> Vec<String> {
        let Some(node) = self.nodes.iter().find(|n| n.host == h) else {
            return Vec::new();
        };
        if node.node_id.is_empty() {
            return Vec::new();
        }
        let label = format!("label=com.docker.swarm.node.id={}", node.node_id);
        docker(&engine_socket(h), &["ps", "-aq", "--filter", &label])
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn clean_up(&mut self) {
        say("overlay: cleaning up (services, containers, network, daemons, namespaces)");
        let api = self.manager().socket();
        let manager_up = self.manager().child.is_some();
        if manager_up {
            if let Ok(ids) = docker(&api, &["service", "ls", "-q"]) {
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut args = vec!["service", "rm"];
                    args.extend(ids);
                    if let Err(e) = docker(&api, &args) {
                        say(format!("overlay: {e:#}"));
                    }
                }
            }
        }
        // Up to 10 minutes: a thousand containers take a while to stop and go.
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut last_say = Instant::now();
        loop {
            let left: usize = (1..=HOSTS).map(|h| self.containers_on(h).len()).sum();
            if left == 0 || !manager_up || Instant::now() > deadline {
                break;
            }
            if last_say.elapsed() > Duration::from_secs(15) {
                say(format!("overlay: {left} containers still going"));
                last_say = Instant::now();
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        for h in 1..=HOSTS {
            let ids = self.containers_on(h);
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids.iter().map(String::as_str));
                if let Err(e) = docker(&engine_socket(h), &args) {
                    say(format!("overlay: h{h}: {e:#}"));
                }
            }
        }
        if manager_up {
            let _ = docker(&api, &["network", "rm", NETWORK, MANY_NETWORK]);
        }
        // The engines' networks of the benchmark's plugin, while the daemons still answer
        // the engines' plugin calls.
        let driver = format!("driver={PLUGIN}");
        for h in 1..=HOSTS {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let nets = docker(
                    &engine_socket(h),
                    &["network", "ls", "-q", "--filter", &driver],
                )
                .unwrap_or_default();
                if nets.is_empty() || Instant::now() > deadline {
                    break;
                }
                for n in nets.split_whitespace() {
                    let _ = docker(&engine_socket(h), &["network", "rm", n]);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        for n in &mut self.nodes {
            n.stop();
        }
        for h in 1..=HOSTS {
            let before = self.netns_before.get(h - 1).cloned().unwrap_or_default();
            let mine: Vec<String> = overlay_namespaces(h)
                .into_iter()
                .filter(|n| !before.contains(n))
                .collect();
            remove_namespaces(h, &mine);
            let _ = std::fs::remove_file(format!("{LAB_STATE}/h{h}/plugins/{PLUGIN}.sock"));
        }
        if self.keep {
            say(format!(
                "overlay: daemons' data and logs kept in {}",
                self.base.display()
            ));
        } else {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

impl Drop for LabCluster {
    fn drop(&mut self) {
        self.clean_up();
    }
}

/// Takes the lock, brings the lab up (or reuses it) and starts one daemon per host; the
/// manager on h1 inits the swarm, h2 and h3 join it as workers.
async fn start_cluster(launch: &Launch, image: &str) -> Result<LabCluster> {
    say(format!(
        "overlay: waiting for the lab's test lock ({TEST_LOCK})"
    ));
    let base = launch.tmp_dir.join(format!("q7run-{}", std::process::id()));
    std::fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    let link = base.join("lab.lock");
    let lock = tokio::task::spawn_blocking(move || LabLock::take(&link)).await??;
    say(format!(
        "overlay: scripts/netlab.sh up {HOSTS} (load average {})",
        crate::loadavg()
    ));
    tokio::task::spawn_blocking(|| netlab(&["up", &HOSTS.to_string()])).await??;
    for h in 1..=HOSTS {
        let foreign = foreign_processes(h);
        if !foreign.is_empty() {
            bail!(
                "h{h} runs processes that are not its engine's ({foreign:?}): someone uses the \
                 lab without its test lock, or a test left them; the benchmark does not kill \
                 what it did not start"
            );
        }
        let left = docker(&engine_socket(h), &["ps", "-aq"])?;
        if !left.is_empty() {
            say(format!(
                "overlay: WARNING: h{h}'s engine has {} containers the benchmark did not make",
                left.lines().count()
            ));
        }
        docker(
            &engine_socket(h),
            &["image", "inspect", "-f", "{{.Id}}", image],
        )
        .with_context(|| format!("h{h}: image {image} is not on the host's engine"))?;
    }
    // What a killed earlier run (of anything) left: its namespaces keep their VXLAN ports.
    // The integration tests remove them in the same way when no daemon runs in the host.
    let mut netns_before = Vec::new();
    for h in 1..=HOSTS {
        let stale: Vec<String> = overlay_namespaces(h).into_iter().collect();
        if !stale.is_empty() {
            say(format!(
                "overlay: h{h}: removing stale overlay namespaces {stale:?}"
            ));
            remove_namespaces(h, &stale);
        }
        netns_before.push(overlay_namespaces(h));
    }
    let mut cl = LabCluster {
        nodes: Vec::new(),
        base: base.clone(),
        keep: launch.keep,
        netns_before,
        _lock: lock,
    };
    for h in 1..=HOSTS {
        say(format!("overlay: starting shoal daemon in h{h}"));
        cl.nodes.push(Node::start(launch, &base, h).await?);
    }
    let mut m = cl.manager().conn();
    let addr = format!("{}:{SWARM_PORT}", host_addr(1));
    post(
        &mut m,
        "/v1.41/swarm/init",
        &json!({"ListenAddr": addr, "AdvertiseAddr": addr}),
    )
    .await
    .context("swarm init")?;
    let token = get(&mut m, "/v1.41/swarm").await?["JoinTokens"]["Worker"]
        .as_str()
        .context("no JoinTokens.Worker")?
        .to_string();
    for i in 1..HOSTS {
        let a = format!("{}:{SWARM_PORT}", host_addr(i + 1));
        post(
            &mut cl.nodes[i].conn(),
            "/v1.41/swarm/join",
            &json!({"ListenAddr": a, "AdvertiseAddr": a, "RemoteAddrs": [addr], "JoinToken": token}),
        )
        .await
        .with_context(|| format!("h{}: swarm join", i + 1))?;
    }
    for n in cl.nodes.iter_mut() {
        n.node_id = get(&mut n.conn(), "/v1.41/info").await?["Swarm"]["NodeID"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    let t0 = Instant::now();
    loop {
        let nodes = get(&mut m, "/v1.41/nodes").await?;
        let ready = nodes.as_array().map_or(0, |a| {
            a.iter().filter(|n| n["Status"]["State"] == "ready").count()
        });
        if ready == HOSTS {
            break;
        }
        if t0.elapsed() > LIMIT {
            bail!("only {ready} of {HOSTS} nodes ready after {LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(cl)
}

// ----- the API -----

async fn get(c: &mut Conn, path: &str) -> Result<Value> {
    let r = c.get_within(Duration::from_secs(30), path).await?;
    if !r.ok() {
        bail!("GET {path}: HTTP {}: {}", r.status, r.text());
    }
    r.json()
}

async fn post(c: &mut Conn, path: &str, body: &Value) -> Result<Value> {
    let r = c.post_within(Duration::from_secs(30), path, body).await?;
    if !r.ok() {
        bail!("POST {path}: HTTP {}: {}", r.status, r.text());
    }
    if r.body.is_empty() {
        return Ok(Value::Null);
    }
    r.json()
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn tasks_of(c: &mut Conn, service_id: &str) -> Result<Vec<Value>> {
    let f = json!({"service": [service_id], "desired-state": ["running"]});
    let v = get(
        c,
        &format!("/v1.41/tasks?filters={}", encode(&f.to_string())),
    )
    .await?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

fn state(t: &Value) -> &str {
    t["Status"]["State"].as_str().unwrap_or_default()
}

/// A task's address on network `net`.
fn task_addr(t: &Value, net: &str) -> Option<Ipv4Addr> {
    t["NetworksAttachments"]
        .as_array()?
        .iter()
        .filter(|a| a["Network"]["ID"] == net)
        .flat_map(|a| a["Addresses"].as_array().cloned().unwrap_or_default())
        .find_map(|a| a.as_str()?.split('/').next()?.parse().ok())
}

fn unix_ns(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()?
        .timestamp_nanos_opt()
}

fn service_spec(name: &str, image: &str, cmd: &[&str], net: &str, mode: Value) -> Value {
    json!({
        "Name": name,
        "Labels": {"shoal-bench": "overlay"},
        "TaskTemplate": {
            "ContainerSpec": {"Image": image, "Command": cmd, "StopGracePeriod": SECOND_NS},
            "Networks": [{"Target": net}],
            "RestartPolicy": {"Condition": "any", "Delay": 0, "MaxAttempts": 0},
        },
        "Mode": mode,
        "EndpointSpec": {"Mode": "vip"},
    })
}

async fn create_service(c: &mut Conn, spec: &Value) -> Result<String> {
    let r = post(c, "/v1.41/services/create", spec).await?;
    Ok(r["ID"]
        .as_str()
        .context("services/create: no ID")?
        .to_string())
}

async fn scale(c: &mut Conn, id: &str, replicas: usize) -> Result<()> {
    let svc = get(c, &format!("/v1.41/services/{id}")).await?;
    let version = svc["Version"]["Index"]
        .as_u64()
        .context("no Version.Index")?;
    let mut spec = svc["Spec"].clone();
    spec["Mode"] = json!({"Replicated": {"Replicas": replicas}});
    post(
        c,
        &format!("/v1.41/services/{id}/update?version={version}"),
        &spec,
    )
    .await?;
    Ok(())
}

async fn vip_of(c: &mut Conn, id: &str, net: &str) -> Result<Ipv4Addr> {
    let t0 = Instant::now();
    loop {
        let svc = get(c, &format!("/v1.41/services/{id}")).await?;
        let vip = svc["Endpoint"]["VirtualIPs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["NetworkID"] == net)
            .and_then(|v| v["Addr"].as_str()?.split('/').next()?.parse().ok());
        if let Some(vip) = vip {
            return Ok(vip);
        }
        if t0.elapsed() > LIMIT {
            bail!("service {id} has no VIP on {net}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `n` tasks of the service run; returns them.
async fn running_tasks(c: &mut Conn, id: &str, n: usize, limit: Duration) -> Result<Vec<Value>> {
    let t0 = Instant::now();
    loop {
        let ts: Vec<Value> = tasks_of(c, id)
            .await?
            .into_iter()
            .filter(|t| state(t) == "running")
            .collect();
        if ts.len() >= n {
            return Ok(ts);
        }
        if t0.elapsed() > limit {
            // What the others are doing, and why, for the report.
            let f = json!({"service": [id]});
            let all = get(
                c,
                &format!("/v1.41/tasks?filters={}", encode(&f.to_string())),
            )
            .await?;
            let others: Vec<String> = all
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| state(t) != "running")
                .map(|t| {
                    format!(
                        "{} on node {}: {} {}",
                        t["ID"].as_str().unwrap_or_default(),
                        t["NodeID"].as_str().unwrap_or_default(),
                        state(t),
                        t["Status"]["Err"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            bail!(
                "{} of {n} tasks of service {id} running after {limit:?}; the others: {}",
                ts.len(),
                others.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A container's `State` on host h's engine.
async fn container_state(h: usize, id: &str) -> Result<Value> {
    let v = get(
        &mut Conn::new(&engine_socket(h)),
        &format!("/v1.41/containers/{id}/json"),
    )
    .await?;
    Ok(v["State"].clone())
}

// ----- probes, from the harness's side -----

/// A long-running probe whose JSON lines are collected as they come.
struct Watcher {
    what: String,
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    /// Ends once the probe's stdout closes and every line is in `lines`.
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl Watcher {
    fn spawn(mut cmd: Command, what: String) -> Result<Watcher> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("{what}: cannot start the probe"))?;
        let out = child.stdout.take().context("the probe's stdout")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = tokio::spawn(async move {
            let mut r = tokio::io::BufReader::new(out).lines();
            while let Ok(Some(line)) = r.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap_or_else(|e| e.into_inner()).push(v);
                }
            }
        });
        Ok(Watcher {
            what,
            child,
            lines,
            reader: Some(reader),
        })
    }

    /// The first line (so far or to come within `limit`) for which `f` holds.
    async fn first(&mut self, limit: Duration, f: impl Fn(&Value) -> bool) -> Result<Value> {
        let t0 = Instant::now();
        loop {
            let found = self
                .lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|v| f(v))
                .cloned();
            if let Some(v) = found {
                return Ok(v);
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                // Its last lines may still be on their way to `lines`.
                match self.reader.take() {
                    Some(r) => {
                        let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
                        continue;
                    }
                    None => bail!("{}: the probe exited ({st})", self.what),
                }
            }
            if t0.elapsed() > limit {
                let last = self
                    .lines
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .last()
                    .cloned();
                bail!(
                    "{}: not seen within {limit:?} (last line: {})",
                    self.what,
                    last.map_or("none".to_string(), |v| v.to_string())
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn ips_of(v: &Value) -> Vec<Ipv4Addr> {
    v["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str()?.parse().ok())
        .collect()
}

/// Runs a probe to its end; its last line of output.
async fn probe_json(mut cmd: Command, what: &str) -> Result<Value> {
    let out = cmd
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("{what}: cannot run the probe"))?;
    if !out.status.success() {
        bail!(
            "{what}: the probe failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .with_context(|| format!("{what}: the probe printed nothing"))?;
    serde_json::from_str(line).with_context(|| format!("{what}: not JSON: {line}"))
}

/// A task's container in one host, where the probes run.
struct Client {
    host: usize,
    pid: u32,
    ip: Ipv4Addr,
}

struct Ctx {
    exe: PathBuf,
    net: String,
    clients: Vec<Client>,
}

impl Ctx {
    /// `shoal-bench probe ARGS` in the network namespace of process `pid` (a container's).
    fn in_netns_of(&self, pid: u32, args: &[String]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/proc/{pid}/ns/net"))
            .arg("--")
            .arg(&self.exe)
            .arg("probe")
            .args(args);
        c
    }

    /// `shoal-bench probe ARGS` in host h's own network namespace (the underlay side).
    fn in_host_netns(&self, h: usize, args: &[String]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/shoallab-h{h}"))
            .arg("--")
            .arg(&self.exe)
            .arg("probe")
            .args(args);
        c
    }

    /// `shoal-bench probe ARGS` inside host h: its network and mount namespaces, where its
    /// overlay networks' namespaces are mounted.
    fn in_host(&self, h: usize, args: &[String]) -> Command {
        let mut c = Command::new(NETLAB);
        c.args(["exec", &host_name(h)])
            .arg(&self.exe)
            .arg("probe")
            .args(args);
        c
    }

    fn client(&self, h: usize) -> &Client {
        &self.clients[h - 1]
    }

    fn dns_watchers(&self, name: &str, interval_ms: u64) -> Result<Vec<Watcher>> {
        self.clients
            .iter()
            .map(|c| {
                let args = strings(&[
                    "dns-watch",
                    "--name",
                    name,
                    "--interval-ms",
                    &interval_ms.to_string(),
                ]);
                Watcher::spawn(
                    self.in_netns_of(c.pid, &args),
                    format!("h{}: dns-watch {name}", c.host),
                )
            })
            .collect()
    }
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The overlay network's namespace in host h (named after the first 12 characters of its ID).
fn network_namespace(h: usize, net: &str) -> Result<String> {
    let suffix = &net[..net.len().min(12)];
    overlay_namespaces(h)
        .into_iter()
        .find(|n| n.ends_with(suffix))
        .with_context(|| format!("h{h}: no namespace of network {suffix}"))
}

fn ms_i(ns: i64) -> f64 {
    ns as f64 / 1e6
}

fn to_duration(ns: i64) -> Duration {
    Duration::from_nanos(ns.max(0) as u64)
}

fn spread(sorted: &[Duration]) -> String {
    format!(
        "p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        ms(pct(sorted, 50.0)),
        ms(pct(sorted, 90.0)),
        ms(*sorted.last().unwrap_or(&Duration::ZERO)),
    )
}

// ----- 1. names: a new service's VIP, a new task's address -----

async fn bench_names(cl: &LabCluster, ctx: &Ctx, o: &Options, rows: &mut Vec<Row>) -> Result<()> {
    let mut m = cl.manager().conn();
    say("overlay: service create → `web` answers its VIP from every host");
    let mut watchers = ctx.dns_watchers("web", 10)?;
    for w in watchers.iter_mut() {
        w.first(LIMIT, |_| true).await?;
    }
    let t0 = now_ns();
    let web = create_service(
        &mut m,
        &service_spec(
            "web",
            &o.image,
            &WEB,
            &ctx.net,
            json!({"Replicated": {"Replicas": 1}}),
        ),
    )
    .await?;
    let vip = vip_of(&mut m, &web, &ctx.net).await?;
    let mut per_host = Vec::new();
    for (i, w) in watchers.iter_mut().enumerate() {
        let v = w.first(LIMIT, |v| ips_of(v) == [vip]).await?;
        let t = v["t"].as_i64().unwrap_or_default() - t0;
        per_host.push(format!("h{} {:.0}", i + 1, ms_i(t)));
        say(format!(
            "overlay: h{}: `web` → {vip} after {:.0} ms",
            i + 1,
            ms_i(t)
        ));
    }
    drop(watchers);
    rows.push(Row::new(
        "Service create → `web` answers its VIP from every host's client",
        format!("{} ms", per_host.join(", ")),
        "-",
        None,
    ));

    running_tasks(&mut m, &web, 1, LIMIT).await?;
    say(format!(
        "overlay: {} × scale `web` by one task → `tasks.web` answers it from every host",
        o.runs
    ));
    let mut watchers = ctx.dns_watchers("tasks.web", 10)?;
    for w in watchers.iter_mut() {
        w.first(LIMIT, |v| !ips_of(v).is_empty()).await?;
    }
    let mut known: BTreeSet<String> = tasks_of(&mut m, &web)
        .await?
        .iter()
        .filter_map(|t| t["ID"].as_str().map(str::to_string))
        .collect();
    let (mut from_start, mut from_running) = (Vec::new(), Vec::new());
    for run in 0..o.runs {
        lock_held()?;
        let replicas = known.len() + 1;
        scale(&mut m, &web, replicas).await?;
        let t0 = Instant::now();
        let task = loop {
            let fresh = tasks_of(&mut m, &web).await?.into_iter().find(|t| {
                state(t) == "running"
                    && !known.contains(t["ID"].as_str().unwrap_or_default())
                    && task_addr(t, &ctx.net).is_some()
            });
            if let Some(t) = fresh {
                break t;
            }
            if t0.elapsed() > LIMIT {
                bail!("run {}: no new running task of web", run + 1);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        known.insert(task["ID"].as_str().unwrap_or_default().to_string());
        let ip = task_addr(&task, &ctx.net).context("no address")?;
        let node = task["NodeID"].as_str().unwrap_or_default();
        let host = cl.host_of(node).context("a task on an unknown node")?;
        let cid = task["Status"]["ContainerStatus"]["ContainerID"]
            .as_str()
            .unwrap_or_default();
        let st = container_state(host, cid).await?;
        let started = st["StartedAt"]
            .as_str()
            .and_then(unix_ns)
            .context("no StartedAt")?;
        let running = task["Status"]["Timestamp"]
            .as_str()
            .and_then(unix_ns)
            .context("no Status.Timestamp")?;
        let mut line = Vec::new();
        for (i, w) in watchers.iter_mut().enumerate() {
            let v = w.first(LIMIT, |v| ips_of(v).contains(&ip)).await?;
            let t = v["t"].as_i64().unwrap_or_default();
            from_start.push(to_duration(t - started));
            from_running.push(to_duration(t - running));
            line.push(format!("h{} {:.0}", i + 1, ms_i(t - started)));
        }
        say(format!(
            "overlay: run {}/{}: task {ip} on h{host} (RUNNING {:+.0} ms after start): answered {} ms after start",
            run + 1,
            o.runs,
            ms_i(running - started),
            line.join(", ")
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    from_start.sort();
    from_running.sort();
    let p50 = pct(&from_start, 50.0);
    let max = *from_start.last().unwrap_or(&Duration::ZERO);
    rows.push(Row::new(
        format!(
            "Task started → `tasks.web` answers it from every host ({} scale-ups × {HOSTS} hosts)",
            o.runs
        ),
        format!(
            "from the container's start: {} (n={}); from RUNNING in `GET /tasks`: {}",
            spread(&from_start),
            from_start.len(),
            spread(&from_running)
        ),
        "p50 ≤ 200 ms, max ≤ 1 s",
        Some(
            !from_start.is_empty()
                && p50 <= Duration::from_millis(200)
                && max <= Duration::from_secs(1),
        ),
    ));
    Ok(())
}

// ----- 2. DNS query latency from a task -----

async fn bench_dns(ctx: &Ctx, o: &Options, rows: &mut Vec<Row>) -> Result<()> {
    say(format!(
        "overlay: {} sequential queries of `web` from each host's client",
        o.queries
    ));
    let mut parts = Vec::new();
    let mut all = Vec::new();
    for c in &ctx.clients {
        let args = strings(&[
            "dns-query",
            "--name",
            "web",
            "--count",
            &o.queries.to_string(),
        ]);
        let v = probe_json(
            ctx.in_netns_of(c.pid, &args),
            &format!("h{}: dns-query", c.host),
        )
        .await?;
        let lat: Vec<Duration> = v["lat_us"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .map(|us| Duration::from_secs_f64(us / 1e6))
            .collect();
        let errors = v["errors"].as_u64().unwrap_or_default();
        parts.push(format!(
            "h{} p50 {:.3} / p99 {:.3} ms{}",
            c.host,
            ms(pct(&lat, 50.0)),
            ms(pct(&lat, 99.0)),
            if errors > 0 {
                format!(" ({errors} failed)")
            } else {
                String::new()
            }
        ));
        all.extend(lat);
    }
    all.sort();
    let p50 = pct(&all, 50.0);
    rows.push(Row::new(
        format!(
            "DNS query from a task: A `web` via 127.0.0.11, {} sequential UDP queries per host",
            o.queries
        ),
        format!(
            "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({})",
            ms(p50),
            ms(pct(&all, 99.0)),
            ms(*all.last().unwrap_or(&Duration::ZERO)),
            parts.join("; ")
        ),
        "p50 ≤ 1 ms",
        Some(!all.is_empty() && p50 <= Duration::from_millis(1)),
    ));
    Ok(())
}

// ----- 3. new connections per second: VIP against a task's address -----

async fn bench_connrate(
    cl: &LabCluster,
    ctx: &Ctx,
    o: &Options,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let mut m = cl.manager().conn();
    let h2 = &cl.nodes[1].node_id;
    let mut spec = service_spec(
        "srv",
        &o.image,
        &WEB,
        &ctx.net,
        json!({"Replicated": {"Replicas": 2}}),
    );
    spec["TaskTemplate"]["Placement"] = json!({"Constraints": [format!("node.id=={h2}")]});
    let srv = create_service(&mut m, &spec).await?;
    let tasks = running_tasks(&mut m, &srv, 2, LIMIT).await?;
    let vip = vip_of(&mut m, &srv, &ctx.net).await?;
    let direct = tasks
        .iter()
        .filter_map(|t| task_addr(t, &ctx.net))
        .min()
        .context("no task address")?;
    let client = ctx.client(1);
    let rate = |addr: Ipv4Addr, secs: f64| {
        let args = strings(&[
            "connrate",
            "--addr",
            &format!("{addr}:80"),
            "--seconds",
            &secs.to_string(),
            "--workers",
            &o.workers.to_string(),
        ]);
        ctx.in_netns_of(client.pid, &args)
    };
    // Both answer before the clock starts (the VIP once h1's nft table has its backends).
    let t0 = Instant::now();
    for addr in [direct, vip] {
        loop {
            let v = probe_json(rate(addr, 0.3), "connrate warm-up").await?;
            if v["ok"].as_u64().unwrap_or(0) > 0 && v["errors"].as_u64() == Some(0) {
                break;
            }
            if t0.elapsed() > LIMIT {
                bail!("{addr}:80 does not answer from h1's client: {v}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    say(format!(
        "overlay: connections/s from h1's client, {} workers: VIP {vip} vs task {direct} (2 tasks on h2)",
        o.workers
    ));
    let mut sums: BTreeMap<&str, (u64, u64, f64)> = BTreeMap::new();
    for (label, addr) in [
        ("direct", direct),
        ("vip", vip),
        ("vip", vip),
        ("direct", direct),
    ] {
        let v = probe_json(rate(addr, o.seconds), "connrate").await?;
        let (ok, errors, secs) = (
            v["ok"].as_u64().unwrap_or(0),
            v["errors"].as_u64().unwrap_or(0),
            v["secs"].as_f64().unwrap_or(o.seconds),
        );
        say(format!(
            "overlay: {label} {addr}:80: {:.0}/s ({ok} in {secs:.1} s, {errors} errors{})",
            ok as f64 / secs,
            v["first_error"]
                .as_str()
                .map(|e| format!(", first: {e}"))
                .unwrap_or_default()
        ));
        let s = sums.entry(label).or_default();
        s.0 += ok;
        s.1 += errors;
        s.2 += secs;
    }
    let r = |l: &str| sums.get(l).map_or(0.0, |s| s.0 as f64 / s.2.max(1e-9));
    let e = |l: &str| sums.get(l).map_or(0, |s| s.1);
    let (vr, dr) = (r("vip"), r("direct"));
    let ratio = if dr > 0.0 { vr / dr } else { 0.0 };
    rows.push(Row::new(
        format!(
            "New TCP connections/s, h1's client → 2 httpd tasks on h2, {} workers, 2 × {} s each",
            o.workers, o.seconds
        ),
        format!(
            "VIP {vr:.0}/s ({} errors), task IP {dr:.0}/s ({} errors): {ratio:.2}×",
            e("vip"),
            e("direct")
        ),
        "VIP ≥ 0.9× direct",
        Some(ratio >= 0.9),
    ));
    Ok(())
}

// ----- 4. bulk throughput: overlay against underlay -----

async fn bulk_once(ctx: &Ctx, o: &Options, overlay: bool) -> Result<(f64, u64)> {
    let (listen, target) = if overlay {
        let ip = ctx.client(2).ip;
        (format!("0.0.0.0:{BULK_PORT}"), format!("{ip}:{BULK_PORT}"))
    } else {
        let a = format!("{}:{BULK_PORT}", host_addr(2));
        (a.clone(), a)
    };
    let recv_args = strings(&["bulk-recv", "--listen", &listen]);
    let send_args = strings(&[
        "bulk-send",
        "--addr",
        &target,
        "--seconds",
        &o.seconds.to_string(),
    ]);
    let (recv, send) = if overlay {
        (
            ctx.in_netns_of(ctx.client(2).pid, &recv_args),
            ctx.in_netns_of(ctx.client(1).pid, &send_args),
        )
    } else {
        (
            ctx.in_host_netns(2, &recv_args),
            ctx.in_host_netns(1, &send_args),
        )
    };
    let mut r = Watcher::spawn(recv, "bulk-recv".into())?;
    r.first(LIMIT, |v| v["ready"] == true).await?;
    probe_json(send, "bulk-send").await?;
    let v = r.first(LIMIT, |v| v["bytes"].is_u64()).await?;
    let bytes = v["bytes"].as_u64().unwrap_or(0);
    let secs = v["secs"].as_f64().unwrap_or(0.0);
    Ok((bytes as f64 * 8.0 / secs.max(1e-9) / 1e9, bytes))
}

async fn bench_bulk(ctx: &Ctx, o: &Options, rows: &mut Vec<Row>) -> Result<()> {
    say(format!(
        "overlay: bulk TCP h1 → h2, {} s rounds: underlay (hosts' namespaces) vs overlay (clients' namespaces)",
        o.seconds
    ));
    let (mut under, mut over) = (Vec::new(), Vec::new());
    for overlay in [false, true, true, false] {
        let (gbps, bytes) = bulk_once(ctx, o, overlay).await?;
        say(format!(
            "overlay: {}: {gbps:.2} Gbit/s ({:.0} MiB)",
            if overlay { "overlay" } else { "underlay" },
            bytes as f64 / (1 << 20) as f64
        ));
        if overlay {
            over.push(gbps);
        } else {
            under.push(gbps);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (u, v) = (mean(&under), mean(&over));
    let ratio = if u > 0.0 { v / u } else { 0.0 };
    rows.push(Row::new(
        format!(
            "Bulk TCP h1 → h2 (1 MiB writes, 2 × {} s each): overlay vs underlay",
            o.seconds
        ),
        format!(
            "overlay {v:.2} Gbit/s ({}), underlay {u:.2} Gbit/s ({}): {ratio:.2}×",
            over.iter()
                .map(|g| format!("{g:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            under
                .iter()
                .map(|g| format!("{g:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        "overlay ≥ 0.8× underlay",
        Some(ratio >= 0.8),
    ));
    Ok(())
}

// ----- 5. many tasks on one network -----

fn rss_line(cl: &LabCluster) -> Vec<(u64, u64)> {
    cl.nodes
        .iter()
        .map(|n| n.rss_kib().unwrap_or((0, 0)))
        .collect()
}

async fn bench_scale(cl: &LabCluster, ctx: &Ctx, o: &Options, rows: &mut Vec<Row>) -> Result<()> {
    let n = o.tasks;
    let mut m = cl.manager().conn();
    let before = rss_line(cl);
    let namespaces: Vec<String> = (1..=HOSTS)
        .map(|h| network_namespace(h, &ctx.net))
        .collect::<Result<_>>()?;
    say(format!(
        "overlay: service `big`, {n} replicas of `sleep` on {MANY_NETWORK} (load average {})",
        crate::loadavg()
    ));
    let t0 = Instant::now();
    let t0_ns = now_ns();
    let big = create_service(
        &mut m,
        &service_spec(
            "big",
            &o.image,
            &SLEEPER,
            &ctx.net,
            json!({"Replicated": {"Replicas": n}}),
        ),
    )
    .await?;
    let vip = vip_of(&mut m, &big, &ctx.net).await?;
    let mut planes = Vec::new();
    for h in 1..=HOSTS {
        let args = strings(&[
            "dataplane",
            "--netns",
            &namespaces[h - 1],
            "--vip",
            &vip.to_string(),
            "--interval-ms",
            "250",
        ]);
        planes.push(Watcher::spawn(
            ctx.in_host(h, &args),
            format!("h{h}: dataplane"),
        )?);
    }
    let limit = Duration::from_secs(60 + n as u64 * 3);
    let mut last_say = Instant::now();
    let mut rejected = 0;
    let all_running = loop {
        let ts = tasks_of(&mut m, &big).await?;
        let running = ts.iter().filter(|t| state(t) == "running").count();
        if running >= n {
            break t0.elapsed();
        }
        lock_held()?;
        if t0.elapsed() > limit {
            bail!("{running} of {n} tasks of `big` running after {limit:?}");
        }
        // Tasks the engines failed to start (an engine too loaded to answer in time) are
        // replaced, as in Swarm, and the replacements load the engines further: past a
        // quarter, the machine cannot run this many, and going on only piles up containers.
        let f = json!({"service": [big]});
        let every = get(
            &mut m,
            &format!("/v1.41/tasks?filters={}", encode(&f.to_string())),
        )
        .await?;
        let failed: Vec<&Value> = every
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| ["rejected", "failed"].contains(&state(t)))
            .collect();
        rejected = failed.len();
        if failed.len() > (n / 4).max(10) {
            bail!(
                "{} tasks of `big` rejected or failed with {running} of {n} running after {:.0} s: \
                 this machine's engines cannot run {n} (use a smaller --tasks); first error: {}",
                failed.len(),
                t0.elapsed().as_secs_f64(),
                failed[0]["Status"]["Err"]
            );
        }
        if last_say.elapsed() > Duration::from_secs(15) {
            say(format!(
                "overlay: {running}/{n} running after {:.0} s, {rejected} rejected and replaced (load average {})",
                t0.elapsed().as_secs_f64(),
                crate::loadavg()
            ));
            last_say = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    say(format!(
        "overlay: {n} tasks running after {:.1} s",
        all_running.as_secs_f64()
    ));
    // Every running task on the network, by node: a host's namespace should hold a permanent
    // neighbour entry for every one on the other hosts.
    let f = json!({"desired-state": ["running"]});
    let all = get(
        &mut m,
        &format!("/v1.41/tasks?filters={}", encode(&f.to_string())),
    )
    .await?;
    let mut on_host = [0usize; HOSTS];
    let mut total = 0;
    for t in all.as_array().into_iter().flatten() {
        if state(t) == "running" && task_addr(t, &ctx.net).is_some() {
            if let Some(h) = cl.host_of(t["NodeID"].as_str().unwrap_or_default()) {
                on_host[h - 1] += 1;
                total += 1;
            }
        }
    }
    let mut complete = Vec::new();
    for (i, p) in planes.iter_mut().enumerate() {
        let remote = total - on_host[i];
        let v = p
            .first(limit, |v| {
                v["neigh"].as_u64().unwrap_or(0) as usize >= remote
                    && v["backends"].as_u64().unwrap_or(0) as usize >= n
            })
            .await?;
        let t = v["t"].as_i64().unwrap_or_default() - t0_ns;
        say(format!(
            "overlay: h{}: {} neighbours (≥ {remote} remote endpoints), {} VIP backends after {:.1} s",
            i + 1,
            v["neigh"],
            v["backends"],
            t as f64 / 1e9
        ));
        complete.push(t);
    }
    drop(planes);
    let done = complete.iter().copied().max().unwrap_or_default();
    rows.push(Row::new(
        format!("{n} tasks on one (internal) network: service create → every host's data plane has every endpoint"),
        format!(
            "{:.1} s (all {n} running per `GET /tasks` at {:.1} s, {rejected} tasks rejected by a loaded engine and replaced on the way; per host {} s; {} tasks on the network: {})",
            done as f64 / 1e9,
            all_running.as_secs_f64(),
            complete
                .iter()
                .map(|t| format!("{:.1}", *t as f64 / 1e9))
                .collect::<Vec<_>>()
                .join(" / "),
            total,
            on_host
                .iter()
                .enumerate()
                .map(|(i, c)| format!("h{} {c}", i + 1))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "-",
        None,
    ));

    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = rss_line(cl);
    let mib = |k: u64| k as f64 / 1024.0;
    rows.push(Row::new(
        format!("RSS of the shoal daemons, before → 10 s after {n} tasks are everywhere"),
        (0..HOSTS)
            .map(|i| {
                format!(
                    "h{}{} {:.1} → {:.1} MiB (peak {:.1})",
                    i + 1,
                    if i == 0 { " (manager)" } else { "" },
                    mib(before[i].0),
                    mib(after[i].0),
                    mib(after[i].1)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        "-",
        None,
    ));

    // One more task at that scale, a few times.
    let reps = 5;
    say(format!(
        "overlay: {reps} × one more task of `big`: started → VIP backend, neighbour and `tasks.big` on every host"
    ));
    let mut dns = ctx.dns_watchers("tasks.big", 20)?;
    for w in dns.iter_mut() {
        w.first(LIMIT, |v| ips_of(v).len() >= n).await?;
    }
    let mut known: BTreeSet<String> = tasks_of(&mut m, &big)
        .await?
        .iter()
        .filter_map(|t| t["ID"].as_str().map(str::to_string))
        .collect();
    let (mut backend_s, mut neigh_s, mut dns_s) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..reps {
        scale(&mut m, &big, known.len() + 1).await?;
        let t0 = Instant::now();
        // The new task has its address once it is allocated, before it starts.
        let (id, ip, host) = loop {
            let fresh = tasks_of(&mut m, &big).await?.into_iter().find_map(|t| {
                let id = t["ID"].as_str()?.to_string();
                if known.contains(&id) {
                    return None;
                }
                let ip = task_addr(&t, &ctx.net)?;
                let host = cl.host_of(t["NodeID"].as_str()?)?;
                Some((id, ip, host))
            });
            if let Some(f) = fresh {
                break f;
            }
            if t0.elapsed() > LIMIT {
                bail!("one more task of `big`: none assigned");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        known.insert(id.clone());
        let mut planes = Vec::new();
        for h in 1..=HOSTS {
            let args = strings(&[
                "dataplane",
                "--netns",
                &namespaces[h - 1],
                "--vip",
                &vip.to_string(),
                "--ip",
                &ip.to_string(),
                "--interval-ms",
                "50",
            ]);
            planes.push(Watcher::spawn(
                ctx.in_host(h, &args),
                format!("h{h}: dataplane"),
            )?);
        }
        let task = loop {
            let t = tasks_of(&mut m, &big)
                .await?
                .into_iter()
                .find(|t| t["ID"] == id.as_str() && state(t) == "running");
            if let Some(t) = t {
                break t;
            }
            if t0.elapsed() > LIMIT {
                bail!("one more task of `big`: {id} not running");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let cid = task["Status"]["ContainerStatus"]["ContainerID"]
            .as_str()
            .unwrap_or_default();
        let started = container_state(host, cid).await?["StartedAt"]
            .as_str()
            .and_then(unix_ns)
            .context("no StartedAt")?;
        let (mut b_max, mut n_max, mut d_max) = (i64::MIN, i64::MIN, i64::MIN);
        for (i, p) in planes.iter_mut().enumerate() {
            let v = p.first(LIMIT, |v| v["has_backend"] == true).await?;
            b_max = b_max.max(v["t"].as_i64().unwrap_or_default() - started);
            if i + 1 != host {
                let v = p.first(LIMIT, |v| v["has_neigh"] == true).await?;
                n_max = n_max.max(v["t"].as_i64().unwrap_or_default() - started);
            }
        }
        for w in dns.iter_mut() {
            let v = w.first(LIMIT, |v| ips_of(v).contains(&ip)).await?;
            d_max = d_max.max(v["t"].as_i64().unwrap_or_default() - started);
        }
        drop(planes);
        say(format!(
            "overlay: +1 run {}/{reps}: {ip} on h{host}: on every host after its start: VIP backend {:.0} ms, neighbour {:+.0} ms, `tasks.big` {:.0} ms",
            rep + 1,
            ms_i(b_max),
            ms_i(n_max),
            ms_i(d_max)
        ));
        backend_s.push(b_max);
        neigh_s.push(n_max);
        dns_s.push(d_max);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(dns);
    let show = |v: &mut Vec<i64>| {
        v.sort();
        v.iter()
            .map(|t| format!("{:.0}", ms_i(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    rows.push(Row::new(
        format!("One more task at {n}: container started → on every host (max over hosts), {reps} runs"),
        format!(
            "VIP backend in nft: {} ms; `tasks.big` answers it: {} ms; neighbour entry (before the start when negative): {} ms",
            show(&mut backend_s),
            show(&mut dns_s),
            show(&mut neigh_s)
        ),
        "-",
        None,
    ));
    Ok(())
}

// ----- driver -----

/// The clients: one per host (global service), with their container's PID and address.
async fn start_clients(cl: &LabCluster, name: &str, net: &str, image: &str) -> Result<Vec<Client>> {
    let mut m = cl.manager().conn();
    let id = create_service(
        &mut m,
        &service_spec(name, image, &IDLE, net, json!({"Global": {}})),
    )
    .await?;
    let tasks = running_tasks(&mut m, &id, HOSTS, LIMIT).await?;
    let mut clients = Vec::new();
    for h in 1..=HOSTS {
        let t = tasks
            .iter()
            .find(|t| cl.host_of(t["NodeID"].as_str().unwrap_or_default()) == Some(h))
            .with_context(|| format!("no client task on h{h}"))?;
        let cid = t["Status"]["ContainerStatus"]["ContainerID"]
            .as_str()
            .unwrap_or_default();
        let pid = container_state(h, cid).await?["Pid"]
            .as_u64()
            .filter(|p| *p > 0)
            .with_context(|| format!("h{h}: the client container has no PID"))?;
        let ip = task_addr(t, net).with_context(|| format!("h{h}: the client has no address"))?;
        clients.push(Client {
            host: h,
            pid: pid as u32,
            ip,
        });
    }
    Ok(clients)
}

pub async fn bench_overlay(o: &Options, launch: &Launch) -> Result<Vec<Row>> {
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let cl = start_cluster(launch, &o.image).await?;
    let res = measure(&cl, exe, o).await;
    if res.is_err() {
        for n in &cl.nodes {
            say(format!(
                "--- h{} daemon log (tail) ---\n{}",
                n.host,
                n.log_tail()
            ));
        }
    }
    drop(cl);
    res
}

async fn measure(cl: &LabCluster, exe: PathBuf, o: &Options) -> Result<Vec<Row>> {
    let net = create_network(cl, NETWORK, SUBNET, false).await?;
    say(format!(
        "overlay: network {NETWORK} ({SUBNET}), a `client` task on every host"
    ));
    let clients = start_clients(cl, "client", &net, &o.image).await?;
    let ctx = Ctx {
        exe: exe.clone(),
        net,
        clients,
    };
    let mut rows = Vec::new();
    lock_held()?;
    bench_names(cl, &ctx, o, &mut rows).await?;
    lock_held()?;
    bench_dns(&ctx, o, &mut rows).await?;
    lock_held()?;
    bench_connrate(cl, &ctx, o, &mut rows).await?;
    lock_held()?;
    bench_bulk(&ctx, o, &mut rows).await?;
    lock_held()?;
    if o.tasks > 0 {
        let net = create_network(cl, MANY_NETWORK, MANY_SUBNET, true).await?;
        say(format!(
            "overlay: network {MANY_NETWORK} ({MANY_SUBNET}, internal), a `client-many` task on every host"
        ));
        let clients = start_clients(cl, "client-many", &net, &o.image).await?;
        let many = Ctx { exe, net, clients };
        bench_scale(cl, &many, o, &mut rows).await?;
        lock_held()?;
    }
    Ok(rows)
}

async fn create_network(
    cl: &LabCluster,
    name: &str,
    subnet: &str,
    internal: bool,
) -> Result<String> {
    let r = post(
        &mut cl.manager().conn(),
        "/v1.41/networks/create",
        &json!({
            "Name": name,
            "Driver": "overlay",
            "CheckDuplicate": true,
            "Internal": internal,
            "IPAM": {"Driver": "default", "Config": [{"Subnet": subnet}]},
        }),
    )
    .await?;
    Ok(r["Id"]
        .as_str()
        .context("networks/create: no Id")?
        .to_string())
}
