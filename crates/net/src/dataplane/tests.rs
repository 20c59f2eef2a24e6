//! The data plane on this kernel, as root. Two simulated hosts are two network namespaces
//! joined by a veth on an underlay (203.0.113.0/24), each with its own [`Linux`] data plane;
//! a "container" is one more namespace holding the endpoint's container end as `eth0`.
//! Servers and clients are threads that entered a namespace. Every test has its own names
//! (pid and a counter), and a [`Bed`] removes all it made when dropped, also on failure.
//!
//! The hosts are joined by a plain veth rather than a bridge in the root namespace, so the
//! tests need no iptables change there (the root namespace's FORWARD policy is Docker's DROP).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

use super::*;

const PORT: u16 = 8080;
const SUBNET_PREFIX: u8 = 24;

/// Runs a setup command; panics with its stderr if it fails.
fn sh(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a cleanup command, whatever it says.
fn sh_quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).output();
}

/// Whether this machine can run these tests; prints why not.
fn can_run() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if euid != Some("0") {
        eprintln!("skipped: the data plane tests make network namespaces and need root");
        return false;
    }
    for (tool, flag) in [
        ("ip", "-V"),
        ("bridge", "-V"),
        ("nft", "-v"),
        ("nsenter", "-V"),
    ] {
        if !Command::new(tool)
            .arg(flag)
            .output()
            .is_ok_and(|o| o.status.success())
        {
            eprintln!(
                "skipped: `{tool}` is missing (apt-get install iproute2 nftables util-linux)"
            );
            return false;
        }
    }
    true
}

fn netns(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Runs `f` on a thread inside the namespace at `path`, as a process there would.
fn in_netns<T: Send + 'static>(path: PathBuf, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        setns(File::open(&path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// A server thread in a namespace, stopped and joined on drop.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn spawn(
        path: PathBuf,
        serve: impl FnOnce(&AtomicBool, mpsc::Sender<()>) + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, is_ready) = mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            setns(File::open(&path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
            serve(&flag, ready);
        });
        is_ready
            .recv_timeout(Duration::from_secs(5))
            .expect("the server thread started");
        Server {
            stop,
            thread: Some(thread),
        }
    }

    /// Answers every TCP connection on `PORT` with "`label` `client address`".
    fn tcp(path: PathBuf, label: String) -> Self {
        Server::spawn(path, move |stop, ready| {
            let listener = TcpListener::bind(("0.0.0.0", PORT)).unwrap();
            listener.set_nonblocking(true).unwrap();
            ready.send(()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, peer)) => {
                        let _ = conn.write_all(format!("{label} {}", peer.ip()).as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        })
    }

    /// Answers every UDP datagram at `addr` with the address it came from.
    fn udp_echo(path: PathBuf, addr: SocketAddr) -> Self {
        Server::spawn(path, move |stop, ready| {
            let socket = UdpSocket::bind(addr).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            ready.send(()).unwrap();
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(from.to_string().as_bytes(), from);
                }
            }
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One TCP exchange with a [`Server::tcp`]: its answer, or why there was none.
fn fetch(addr: Ipv4Addr) -> Result<String, String> {
    let target = SocketAddr::from((addr, PORT));
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_millis(700))
        .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    Ok(answer)
}

struct Host {
    netns: String,
    underlay: Ipv4Addr,
    dp: Linux,
}

/// An endpoint plugged into a network and moved into its own "container" namespace.
struct Task {
    netns: String,
    ip: Ipv4Addr,
    host: usize,
    endpoint: String,
}

impl Task {
    fn path(&self) -> PathBuf {
        netns(&self.netns)
    }

    fn peer(&self, bed: &Bed) -> Peer {
        Peer {
            addr: self.ip,
            mac: mac_for(self.ip),
            node: bed.hosts[self.host].underlay,
        }
    }

    /// `n` exchanges with `addr`, made from inside this task's namespace.
    fn fetch(&self, addr: Ipv4Addr, n: usize) -> Vec<Result<String, String>> {
        in_netns(self.path(), move || (0..n).map(|_| fetch(addr)).collect())
    }

    fn fetch_one(&self, addr: Ipv4Addr) -> Result<String, String> {
        self.fetch(addr, 1).remove(0)
    }
}

/// Two simulated hosts and everything the test makes on them; all of it goes on drop.
struct Bed {
    tag: String,
    hosts: Vec<Host>,
    containers: Vec<String>,
    servers: Vec<Server>,
}

impl Bed {
    fn new() -> Option<Bed> {
        if !can_run() {
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let tag = format!(
            "dpt{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut bed = Bed {
            tag,
            hosts: Vec::new(),
            containers: Vec::new(),
            servers: Vec::new(),
        };
        for i in 0..2u8 {
            let name = format!("{}-h{i}", bed.tag);
            sh("ip", &["netns", "add", &name]);
            bed.hosts.push(Host {
                dp: Linux::new(format!("{}-h{i}n-", bed.tag), Some(name.clone())).unwrap(),
                netns: name,
                underlay: Ipv4Addr::new(203, 0, 113, i + 1),
            });
        }
        let (h0, h1) = (&bed.hosts[0].netns, &bed.hosts[1].netns);
        sh(
            "ip",
            &[
                "-n", h0, "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", h1,
            ],
        );
        for host in &bed.hosts {
            let addr = format!("{}/24", host.underlay);
            sh(
                "ip",
                &["-n", &host.netns, "addr", "add", &addr, "dev", "ul0"],
            );
            sh("ip", &["-n", &host.netns, "link", "set", "ul0", "up"]);
            sh("ip", &["-n", &host.netns, "link", "set", "lo", "up"]);
        }
        Some(bed)
    }

    /// Network `id` as host `host` sees it: the same on every host but for the underlay.
    fn net(&self, host: usize, id: &str, vni: u32) -> NetSpec {
        NetSpec {
            id: id.into(),
            vni,
            gateway: Ipv4Addr::new(10, 0, 1, 1),
            prefix_len: SUBNET_PREFIX,
            mtu: 1450,
            underlay: self.hosts[host].underlay,
            port: crate::dataplane::VXLAN_PORT,
        }
    }

    fn dp(&self, host: usize) -> &Linux {
        &self.hosts[host].dp
    }

    /// Makes `id` on every host and returns it as each host sees it.
    fn network(&self, id: &str, vni: u32) -> Vec<NetSpec> {
        (0..self.hosts.len())
            .map(|h| {
                let net = self.net(h, id, vni);
                self.dp(h).ensure_network(&net).unwrap();
                net
            })
            .collect()
    }

    /// Plugs a task with address `ip` into `net` on host `host`, as the engine would: the
    /// container end is moved into a namespace of its own and becomes `eth0` there.
    fn task(&mut self, host: usize, net: &NetSpec, ip: Ipv4Addr) -> Task {
        let endpoint = format!("ep{:08}", self.containers.len());
        let container = format!("{}-c{}", self.tag, self.containers.len());
        sh("ip", &["netns", "add", &container]);
        self.containers.push(container.clone());
        let ifname = self
            .dp(host)
            .add_endpoint(net, &endpoint, &mac_for(ip))
            .unwrap();
        let host_ns = &self.hosts[host].netns;
        sh(
            "ip",
            &["-n", host_ns, "link", "set", &ifname, "netns", &container],
        );
        let addr = format!("{ip}/{SUBNET_PREFIX}");
        sh(
            "ip",
            &["-n", &container, "link", "set", &ifname, "name", "eth0"],
        );
        sh(
            "ip",
            &["-n", &container, "addr", "add", &addr, "dev", "eth0"],
        );
        sh("ip", &["-n", &container, "link", "set", "eth0", "up"]);
        sh("ip", &["-n", &container, "link", "set", "lo", "up"]);
        Task {
            netns: container,
            ip,
            host,
            endpoint,
        }
    }

    fn serve(&mut self, task: &Task) {
        self.servers
            .push(Server::tcp(task.path(), task.ip.to_string()));
    }

    /// Tells every host about the tasks on the others, as the daemon would.
    fn set_peers(&self, nets: &[NetSpec], tasks: &[&Task]) {
        for (h, net) in nets.iter().enumerate() {
            let peers: Vec<Peer> = tasks
                .iter()
                .filter(|t| t.host != h)
                .map(|t| t.peer(self))
                .collect();
            self.dp(h).set_peers(net, &peers).unwrap();
        }
    }

    fn set_vips(&self, nets: &[NetSpec], vips: &[Vip]) {
        for (h, net) in nets.iter().enumerate() {
            self.dp(h).set_vips(net, vips).unwrap();
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.servers.clear();
        for container in &self.containers {
            sh_quiet("ip", &["netns", "del", container]);
        }
        for host in &self.hosts {
            for id in host.dp.networks().unwrap_or_default() {
                if let Err(e) = host.dp.remove_network(&id) {
                    eprintln!("cleanup: {e}");
                }
            }
            sh_quiet("ip", &["netns", "del", &host.netns]);
        }
        // Whatever else carries this test's tag (made before it was recorded).
        let prefix = format!("{}-", self.tag);
        for entry in std::fs::read_dir(NETNS_DIR).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                sh_quiet("ip", &["netns", "del", &name]);
            }
        }
    }
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 1, last)
}

fn answered_by(results: &[Result<String, String>]) -> BTreeSet<String> {
    results
        .iter()
        .map(|r| r.as_ref().expect("every connection is answered"))
        .map(|answer| answer.split(' ').next().unwrap().to_owned())
        .collect()
}

use std::collections::BTreeSet;

const NET1: &str = "n1aaaaaaaaaaaaaaaaaaaaaaa";
const NET2: &str = "n2bbbbbbbbbbbbbbbbbbbbbbb";

#[test]
fn tasks_on_two_hosts_reach_each_other_until_the_peer_is_removed() {
    let Some(mut bed) = Bed::new() else { return };
    let nets = bed.network(NET1, 4097);
    let a = bed.task(0, &nets[0], ip(2));
    let b = bed.task(1, &nets[1], ip(3));
    bed.serve(&a);
    bed.serve(&b);
    bed.set_peers(&nets, &[&a, &b]);

    assert_eq!(a.fetch_one(b.ip), Ok("10.0.1.3 10.0.1.2".into()));
    assert_eq!(b.fetch_one(a.ip), Ok("10.0.1.2 10.0.1.3".into()));

    bed.dp(0).set_peers(&nets[0], &[]).unwrap();
    assert!(a.fetch_one(b.ip).is_err(), "a peer removed is unreachable");

    bed.dp(0).set_peers(&nets[0], &[b.peer(&bed)]).unwrap();
    assert_eq!(a.fetch_one(b.ip), Ok("10.0.1.3 10.0.1.2".into()));

    bed.dp(1).remove_endpoint(NET1, &b.endpoint).unwrap();
    let container = sh("ip", &["-n", &b.netns, "link", "show"]);
    assert!(!container.contains("eth0"), "both ends went: {container}");
}

#[test]
fn a_vip_spreads_connections_over_backends_on_both_hosts_and_follows_changes() {
    let Some(mut bed) = Bed::new() else { return };
    let nets = bed.network(NET1, 4097);
    let backend0 = bed.task(0, &nets[0], ip(2));
    let backend1 = bed.task(1, &nets[1], ip(3));
    let client = bed.task(0, &nets[0], ip(4));
    bed.serve(&backend0);
    bed.serve(&backend1);
    bed.set_peers(&nets, &[&backend0, &backend1, &client]);
    let vip = ip(100);
    let both = Vip {
        addr: vip,
        backends: vec![backend0.ip, backend1.ip],
    };
    bed.set_vips(&nets, std::slice::from_ref(&both));

    let results = client.fetch(vip, 20);
    assert_eq!(
        answered_by(&results),
        BTreeSet::from(["10.0.1.2".to_owned(), "10.0.1.3".to_owned()]),
        "{results:?}"
    );
    for answer in results.iter().flatten() {
        assert!(
            answer.ends_with(" 10.0.1.4"),
            "the backend sees the client's own address: {answer}"
        );
    }

    // A backend balanced onto itself is answered too (hairpin, masqueraded to the gateway).
    let results = backend0.fetch(vip, 20);
    assert_eq!(answered_by(&results).len(), 2, "{results:?}");
    assert!(
        results.iter().flatten().any(|a| a == "10.0.1.2 10.0.1.1"),
        "{results:?}"
    );

    for only in [&backend1, &backend0] {
        let one = Vip {
            addr: vip,
            backends: vec![only.ip],
        };
        bed.set_vips(&nets, &[one]);
        let results = client.fetch(vip, 6);
        assert_eq!(answered_by(&results), BTreeSet::from([only.ip.to_string()]));
    }

    let none = Vip {
        addr: vip,
        backends: vec![],
    };
    bed.set_vips(&nets, &[none]);
    let started = Instant::now();
    let refused = client.fetch_one(vip).unwrap_err();
    assert!(refused.contains("refused"), "{refused}");
    assert!(started.elapsed() < Duration::from_millis(500));

    bed.set_vips(&nets, &[]);
    let bridge = sh(
        "ip",
        &[
            "-n",
            &bed.dp(0)
                .netns_path(NET1)
                .file_name()
                .unwrap()
                .to_string_lossy(),
            "addr",
            "show",
            "dev",
            "br0",
        ],
    );
    assert!(!bridge.contains("10.0.1.100"), "{bridge}");
}

#[test]
fn networks_with_different_vnis_do_not_reach_each_other() {
    let Some(mut bed) = Bed::new() else { return };
    let red = bed.network(NET1, 4097);
    // The same subnet on purpose: only the VNI keeps them apart.
    let blue = bed.network(NET2, 4098);
    let red_b = bed.task(1, &red[1], ip(3));
    let blue_a = bed.task(0, &blue[0], ip(5));
    let blue_b = bed.task(1, &blue[1], ip(6));
    bed.serve(&red_b);
    bed.serve(&blue_b);
    bed.set_peers(&red, &[&red_b]);
    bed.set_peers(&blue, &[&blue_a, &blue_b]);
    // As if blue believed red's task were its own: its frames go out with blue's VNI and land
    // in blue's bridge on the other host, where that task is not.
    bed.dp(0)
        .set_peers(&blue[0], &[blue_b.peer(&bed), red_b.peer(&bed)])
        .unwrap();

    assert_eq!(blue_a.fetch_one(blue_b.ip), Ok("10.0.1.6 10.0.1.5".into()));
    assert!(blue_a.fetch_one(red_b.ip).is_err());
}

#[test]
fn dns_queries_for_127_0_0_11_reach_the_network_s_name_server() {
    let Some(mut bed) = Bed::new() else { return };
    let nets = bed.network(NET1, 4097);
    let task = bed.task(0, &nets[0], ip(2));
    let gateway = nets[0].gateway;
    bed.servers.push(Server::udp_echo(
        bed.dp(0).netns_path(NET1),
        SocketAddr::from((gateway, 53)),
    ));

    bed.dp(0).redirect_dns(&task.path(), gateway).unwrap();
    bed.dp(0)
        .redirect_dns(&task.path(), gateway)
        .expect("a second redirection leaves the first");

    let (answer, from) = in_netns(task.path(), || {
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        socket.send_to(b"query", "127.0.0.11:53").unwrap();
        let mut buf = [0u8; 512];
        let (n, from) = socket.recv_from(&mut buf).unwrap();
        (String::from_utf8_lossy(&buf[..n]).into_owned(), from)
    });
    assert_eq!(
        from,
        "127.0.0.11:53".parse().unwrap(),
        "the answer seems to come from 127.0.0.11"
    );
    assert!(
        answer.starts_with("10.0.1.2:"),
        "the name server sees the container's own address: {answer}"
    );
}

#[test]
fn ensure_network_repairs_what_is_missing_and_remove_network_leaves_nothing() {
    let Some(mut bed) = Bed::new() else { return };
    let net = bed.net(0, NET1, 4097);
    let dp = bed.dp(0).clone();
    let ns = dp
        .netns_path(NET1)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    dp.ensure_network(&net).unwrap();
    let task = bed.task(0, &net, ip(2));

    // As after a reboot-like event: the port gone, the bridge down without its address.
    sh("ip", &["-n", &ns, "link", "del", "vx-n1aaaaaaaaaa"]);
    sh("ip", &["-n", &ns, "addr", "flush", "dev", "br0"]);
    sh("ip", &["-n", &ns, "link", "set", "br0", "down"]);
    dp.ensure_network(&net).unwrap();
    let links = sh("ip", &["-n", &ns, "-d", "addr", "show"]);
    assert!(links.contains("vxlan id 4097 local 203.0.113.1"), "{links}");
    assert!(links.contains("inet 10.0.1.1/24"), "{links}");
    let vxlan = sh("ip", &["-n", &ns, "link", "show", "vx-n1aaaaaaaaaa"]);
    assert!(
        vxlan.contains("master br0") && vxlan.contains(",UP"),
        "{vxlan}"
    );
    let bridge = sh("ip", &["-n", &ns, "link", "show", "br0"]);
    assert!(bridge.contains(",UP"), "{bridge}");
    let sysctl = in_netns(dp.netns_path(NET1), || {
        std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables").unwrap()
    });
    assert_eq!(sysctl.trim(), "1");

    // A second add of the same endpoint (a retried request) starts it over.
    let again = dp
        .add_endpoint(&net, "ep99999999", &mac_for(ip(9)))
        .unwrap();
    assert_eq!(
        dp.add_endpoint(&net, "ep99999999", &mac_for(ip(9)))
            .unwrap(),
        again
    );
    dp.remove_endpoint(NET1, "ep99999999").unwrap();
    dp.remove_endpoint(NET1, "ep99999999").unwrap();
    let host_links = sh("ip", &["-n", &bed.hosts[0].netns, "link", "show"]);
    assert!(!host_links.contains(&again), "{host_links}");

    assert_eq!(dp.networks().unwrap(), ["n1aaaaaaaaaa"]);
    dp.remove_network(NET1).unwrap();
    dp.remove_network(NET1).unwrap();
    assert!(dp.networks().unwrap().is_empty());
    assert!(!dp.netns_path(NET1).exists());
    let host_links = sh("ip", &["-n", &bed.hosts[0].netns, "-d", "link", "show"]);
    assert!(
        !host_links.contains("vxlan") && !host_links.contains("vcep"),
        "{host_links}"
    );
    let container = sh("ip", &["-n", &task.netns, "link", "show"]);
    assert!(
        !container.contains("eth0"),
        "the task's end went with the network: {container}"
    );
    // The VNI's socket went with the port: the network can be made again.
    dp.ensure_network(&net).unwrap();

    // A file under the namespace's name with nothing mounted on it (left by a reboot or a
    // crash) is replaced by a working namespace.
    dp.remove_network(NET1).unwrap();
    std::fs::write(dp.netns_path(NET1), b"").unwrap();
    dp.ensure_network(&net).unwrap();
    let links = sh("ip", &["-n", &ns, "-d", "addr", "show"]);
    assert!(links.contains("inet 10.0.1.1/24"), "{links}");
    dp.remove_network(NET1).unwrap();
}

/// Also the figures in the report: run with `--nocapture` to see them.
#[test]
fn a_hundred_peers_and_a_hundred_vips_each_apply_in_one_batch() {
    let Some(bed) = Bed::new() else { return };
    let net = bed.net(0, NET1, 4097);
    let dp = bed.dp(0).clone();
    let timed = |what: &str, f: &mut dyn FnMut()| {
        let started = Instant::now();
        f();
        eprintln!("timing: {what}: {:?}", started.elapsed());
    };
    timed("ensure_network from scratch", &mut || {
        dp.ensure_network(&net).unwrap();
    });
    timed("ensure_network, nothing to do", &mut || {
        dp.ensure_network(&net).unwrap();
    });
    timed("add_endpoint", &mut || {
        dp.add_endpoint(&net, "ep1", &mac_for(ip(2))).unwrap();
    });
    timed("remove_endpoint", &mut || {
        dp.remove_endpoint(NET1, "ep1").unwrap();
    });

    let peer = |i: u32| {
        let addr = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 2, 0)) + i);
        Peer {
            addr,
            mac: mac_for(addr),
            node: Ipv4Addr::new(203, 0, 113, 2 + (i % 3) as u8),
        }
    };
    let mut peers: Vec<Peer> = (1..=100).map(peer).collect();
    timed("set_peers, 100 new", &mut || {
        dp.set_peers(&net, &peers).unwrap()
    });
    timed("set_peers, 100 unchanged", &mut || {
        dp.set_peers(&net, &peers).unwrap()
    });
    peers[0] = peer(200);
    timed("set_peers, 1 of 100 changed", &mut || {
        dp.set_peers(&net, &peers).unwrap()
    });
    let ns = dp
        .netns_path(NET1)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let neigh = sh(
        "ip",
        &["-n", &ns, "neigh", "show", "dev", "vx-n1aaaaaaaaaa"],
    );
    assert_eq!(
        neigh.lines().filter(|l| l.contains("PERMANENT")).count(),
        100
    );
    assert!(
        neigh.contains("10.0.2.200 ") && !neigh.contains("10.0.2.1 "),
        "{neigh}"
    );
    let fdb = sh(
        "bridge",
        &["-n", &ns, "fdb", "show", "dev", "vx-n1aaaaaaaaaa"],
    );
    assert_eq!(fdb.lines().filter(|l| l.contains(" dst ")).count(), 100);

    let vips: Vec<Vip> = (1..=100)
        .map(|i| Vip {
            addr: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 3, 0)) + i),
            backends: vec![peer(i).addr, peer(i + 1).addr],
        })
        .collect();
    timed("set_vips, 100 new", &mut || {
        dp.set_vips(&net, &vips).unwrap()
    });
    timed("set_vips, 100 unchanged", &mut || {
        dp.set_vips(&net, &vips).unwrap()
    });
    let rules = sh(
        "nsenter",
        &[
            &format!("--net={}", dp.netns_path(NET1).display()),
            "nft",
            "list",
            "table",
            "ip",
            "shoal",
        ],
    );
    assert_eq!(rules.matches("numgen random mod 2").count(), 100);
    let bridge = sh("ip", &["-n", &ns, "addr", "show", "dev", "br0"]);
    assert_eq!(bridge.matches("/32").count(), 100);

    timed("set_peers, 100 removed", &mut || {
        dp.set_peers(&net, &[]).unwrap()
    });
    let neigh = sh(
        "ip",
        &["-n", &ns, "neigh", "show", "dev", "vx-n1aaaaaaaaaa"],
    );
    assert!(neigh.trim().is_empty(), "{neigh}");
    timed("remove_network", &mut || dp.remove_network(NET1).unwrap());
}

#[test]
fn a_failing_command_is_named_with_its_stderr_and_input_line() {
    let Some(bed) = Bed::new() else { return };
    let net = bed.net(0, NET1, 4097);
    let error = bed.dp(0).set_peers(&net, &[]).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("neigh show dev vx-n1aaaaaaaaaa"),
        "{message}"
    );
    assert!(
        message.contains("Cannot open network namespace"),
        "{message}"
    );

    bed.dp(0).ensure_network(&net).unwrap();
    let ns = bed.dp(0).netns_path(NET1);
    let ns = ns.file_name().unwrap().to_string_lossy();
    sh("ip", &["-n", &ns, "link", "del", "br0"]);
    let error = bed
        .dp(0)
        .add_endpoint(&net, "ep1", &mac_for(ip(2)))
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("-batch -"), "{message}");
    assert!(message.contains("link set vhep1 master br0"), "{message}");
    let links = sh("ip", &["-n", &ns, "link", "show"]);
    assert!(
        !links.contains("vhep1"),
        "a half-made endpoint is removed: {links}"
    );
}

#[test]
fn a_node_in_the_daemon_s_own_namespace_gets_the_container_end_there() {
    let Some(bed) = Bed::new() else { return };
    let net = bed.net(0, NET1, 4097);
    bed.dp(0).ensure_network(&net).unwrap();
    // The same node's data plane as if the daemon ran in host 0's place: only the endpoint
    // is made, so all this test leaves in the test's own namespace is one veth, for a moment
    // (and removing the network on drop takes it along).
    let own = Linux::new(format!("{}-h0n-", bed.tag), None).unwrap();
    let ifname = own.add_endpoint(&net, "epown", &mac_for(ip(7))).unwrap();
    let here = sh("ip", &["link", "show", &ifname]);
    assert!(here.contains("02:42:0a:00:01:07"), "{here}");
    own.remove_endpoint(NET1, "epown").unwrap();
    assert!(!Command::new("ip")
        .args(["link", "show", &ifname])
        .output()
        .unwrap()
        .status
        .success());
}
