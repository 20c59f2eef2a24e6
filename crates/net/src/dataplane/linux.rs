//! [`Dataplane`] on Linux, by running `ip`, `bridge`, `nft` and `nsenter`. Each change is one
//! process reading a batch on stdin (`ip -batch -`, `bridge -batch -`, `nft -f -`), so a
//! hundred peers cost what one does, and every nft change is a single transaction. Sysctls are
//! read and written from a short-lived thread that entered the namespace, which costs no
//! process at all.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use nix::sched::{setns, CloneFlags};

use super::plan::{self, Fdb, Link, Neigh};
use super::{
    check_prefix, normalize_mac, veth_names, Dataplane, Error, Names, NetSpec, Peer, Result, Vip,
    BRIDGE, NETNS_DIR,
};

/// The data plane of one node. Several can share a machine (tests, a lab): each gets its own
/// namespace prefix, and `host_netns` says which namespace is its host's.
/// Clones share their locks, so they can be handed to several tasks.
#[derive(Debug, Clone)]
pub struct Linux {
    prefix: String,
    host_netns: Option<String>,
    /// One lock per network namespace. `ensure_network`, `set_peers`, `set_vips` and
    /// `remove_network` read the kernel's state and then change it; two of them at once on
    /// one network would both act on the same reading. Endpoints need no lock: each is one
    /// batch touching only its own veth, and the engine plugs many in at once.
    locks: Arc<Mutex<BTreeMap<String, Arc<Mutex<()>>>>>,
}

impl Linux {
    /// `prefix` starts every network namespace's name (`shoal-<node id[..6]>-`, say), so
    /// several nodes on one machine do not collide in /run/netns. `host_netns` is the named
    /// namespace that plays the host's part (its underlay address, where VXLAN sockets and the
    /// container ends of veths live); `None` is the daemon's own namespace.
    pub fn new(prefix: impl Into<String>, host_netns: Option<String>) -> Result<Self> {
        let prefix = prefix.into();
        check_prefix(&prefix)?;
        if let Some(host) = &host_netns {
            check_prefix(host)?;
        }
        Ok(Linux {
            prefix,
            host_netns,
            locks: Arc::default(),
        })
    }

    /// The lock of network namespace `netns`, to hold while reading and changing it.
    fn lock(&self, netns: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.entry(netns.to_owned()).or_default().clone()
    }

    fn names(&self, net_id: &str) -> Result<Names> {
        Names::new(&self.prefix, net_id)
    }

    /// `ip` arguments that run a command in the host namespace.
    fn host_args(&self) -> Vec<String> {
        match &self.host_netns {
            Some(name) => vec!["-n".into(), name.clone()],
            None => Vec::new(),
        }
    }

    /// How `ip`, running inside a network namespace, names the host namespace. For the
    /// daemon's own, its main thread's namespace file: `ip -n` has already left it, so
    /// `/proc/self` would be the wrong one.
    fn host_ref(&self) -> String {
        match &self.host_netns {
            Some(name) => name.clone(),
            None => format!("/proc/{}/ns/net", std::process::id()),
        }
    }

    /// The links of the namespace with their details and addresses, in one process.
    fn links(&self, netns: &str) -> Result<Vec<Link>> {
        let args = ["-n", netns, "-j", "-d", "addr", "show"];
        let out = run("ip", &args, None)?;
        plan::parse(&render("ip", &args), &out)
    }

    fn batch(&self, program: &'static str, netns: &str, lines: &[String]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let input = lines.join("\n") + "\n";
        run(program, &["-n", netns, "-batch", "-"], Some(&input)).map(drop)
    }

    /// Deletes the endpoint's veth from either side, whichever is left.
    fn discard_endpoint(&self, names: &Names, host_side: &str, container_side: &str) {
        let gone = ["Cannot find device"];
        let ns = ["-n", names.netns.as_str(), "link", "del", host_side];
        if let Err(e) = tolerate(run("ip", &ns, None), &gone) {
            tracing::warn!(error = %e, "cannot remove a half-made endpoint");
        }
        let mut host = self.host_args();
        host.extend(["link", "del", container_side].map(String::from));
        if let Err(e) = tolerate(run("ip", &strs(&host), None), &gone) {
            tracing::warn!(error = %e, "cannot remove a half-made endpoint");
        }
    }
}

/// Whether `path` (a file under `/run/netns`) has a network namespace mounted on it: the
/// mount's file lives on nsfs, another device than the directory's.
fn is_mounted_netns(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    match (dev(path), path.parent().and_then(dev)) {
        (Some(file), Some(dir)) => file != dir,
        _ => false,
    }
}

impl Dataplane for Linux {
    fn ensure_network(&self, net: &NetSpec) -> Result<PathBuf> {
        let names = self.names(&net.id)?;
        let lock = self.lock(&names.netns);
        let _serial = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let path = Path::new(NETNS_DIR).join(&names.netns);
        if path.exists() && !is_mounted_netns(&path) {
            // A name left from before a reboot (or a crash between the file and its mount):
            // nothing lives there; make the namespace again.
            tracing::info!(netns = %names.netns, "replacing a stale namespace file");
            std::fs::remove_file(&path).map_err(|source| Error::Netns {
                path: path.clone(),
                action: "remove the stale file".into(),
                source,
            })?;
        }
        let links = if path.exists() {
            self.links(&names.netns)?
        } else {
            let created = run("ip", &["netns", "add", &names.netns], None);
            tolerate(created, &["File exists"])?;
            Vec::new()
        };

        let plan = plan::ensure(net, &names, &links);
        if plan.delete_vxlan {
            let args = ["-n", names.netns.as_str(), "link", "del", &names.vxlan];
            run("ip", &args, None)?;
        }
        if plan.create_vxlan {
            let mut args = self.host_args();
            args.extend(plan::vxlan_create_args(net, &names));
            run("ip", &strs(&args), None)?;
        }
        self.batch("ip", &names.netns, &plan.lines)?;

        // Routing between the bridge and the VIPs needs forwarding; conntrack must see bridged
        // frames (br_netfilter) to undo a VIP's translation on replies from another node.
        set_sysctls(
            &path,
            &[
                ("net/ipv4/ip_forward", "1"),
                ("net/bridge/bridge-nf-call-iptables", "1"),
            ],
        )?;
        Ok(path)
    }

    fn remove_network(&self, net_id: &str) -> Result<()> {
        let names = self.names(net_id)?;
        let lock = self.lock(&names.netns);
        let _serial = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if !Path::new(NETNS_DIR).join(&names.netns).exists() {
            return Ok(());
        }
        let args = ["-n", names.netns.as_str(), "-j", "link", "show"];
        let out = run("ip", &args, None)?;
        let links: Vec<Link> = plan::parse(&render("ip", &args), &out)?;
        // The links go first, the VXLAN port first of all: anything still holding the
        // namespace (a name server's socket) would otherwise keep the port, and with it the
        // VNI's socket in the host namespace, so the network could not be made again.
        let mut doomed: Vec<&str> = links
            .iter()
            .map(|l| l.ifname.as_str())
            .filter(|name| !name.is_empty() && *name != "lo")
            .collect();
        doomed.sort_by_key(|name| *name != names.vxlan);
        let lines: Vec<String> = doomed.iter().map(|n| format!("link del {n}")).collect();
        if !lines.is_empty() {
            // -force: a veth whose other end went meanwhile is gone too, and the rest must
            // still be deleted.
            let input = lines.join("\n") + "\n";
            let args = ["-force", "-n", names.netns.as_str(), "-batch", "-"];
            tolerate(run("ip", &args, Some(&input)), &["Cannot find device"])?;
        }
        let deleted = run("ip", &["netns", "del", &names.netns], None);
        tolerate(deleted, &["No such file or directory"])
    }

    fn add_endpoint(&self, net: &NetSpec, endpoint_id: &str, mac: &str) -> Result<String> {
        let names = self.names(&net.id)?;
        let (host_side, container_side) = veth_names(endpoint_id)?;
        let mac = normalize_mac(mac)?;
        let lines = plan::endpoint_lines(net, &host_side, &container_side, &mac, &self.host_ref());
        match self.batch("ip", &names.netns, &lines) {
            Ok(()) => Ok(container_side),
            // Left by an attempt that died half-way: the names are this endpoint's (ids are
            // 64 hex digits; 10 of them do not collide in practice), so start over.
            Err(e) if is_failure_with(&e, "File exists") => {
                self.discard_endpoint(&names, &host_side, &container_side);
                self.batch("ip", &names.netns, &lines)
                    .inspect_err(|_| self.discard_endpoint(&names, &host_side, &container_side))
                    .map(|()| container_side)
            }
            Err(e) => {
                self.discard_endpoint(&names, &host_side, &container_side);
                Err(e)
            }
        }
    }

    fn remove_endpoint(&self, net_id: &str, endpoint_id: &str) -> Result<()> {
        let names = self.names(net_id)?;
        let (host_side, _) = veth_names(endpoint_id)?;
        if !Path::new(NETNS_DIR).join(&names.netns).exists() {
            return Ok(());
        }
        let args = ["-n", names.netns.as_str(), "link", "del", &host_side];
        tolerate(run("ip", &args, None), &["Cannot find device"])
    }

    fn set_peers(&self, net: &NetSpec, peers: &[Peer]) -> Result<()> {
        let names = self.names(&net.id)?;
        let lock = self.lock(&names.netns);
        let _serial = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let ns = names.netns.as_str();
        let neigh_args = ["-n", ns, "-j", "neigh", "show", "dev", &names.vxlan];
        let neigh: Vec<Neigh> =
            plan::parse(&render("ip", &neigh_args), &run("ip", &neigh_args, None)?)?;
        let fdb_args = ["-n", ns, "-j", "fdb", "show", "dev", &names.vxlan];
        let fdb: Vec<Fdb> = plan::parse(
            &render("bridge", &fdb_args),
            &run("bridge", &fdb_args, None)?,
        )?;

        let plan = plan::peers(net, &names, peers, &neigh, &fdb)?;
        // Remote entries first: once ARP is answered from the neighbour table, frames follow.
        self.batch("bridge", ns, &plan.fdb)?;
        self.batch("ip", ns, &plan.neigh)
    }

    fn set_vips(&self, net: &NetSpec, vips: &[Vip]) -> Result<()> {
        let names = self.names(&net.id)?;
        let vips = plan::vip_set(net, vips)?;
        let lock = self.lock(&names.netns);
        let _serial = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let args = [
            "-n",
            names.netns.as_str(),
            "-j",
            "addr",
            "show",
            "dev",
            BRIDGE,
        ];
        let bridge: Vec<Link> = plan::parse(&render("ip", &args), &run("ip", &args, None)?)?;

        // Rules before addresses: a new VIP must not be answered by the bridge before there
        // is a rule that sends it on.
        let path = Path::new(NETNS_DIR).join(&names.netns);
        nft(&path, &plan::vip_rules(&vips))?;
        let lines = plan::vip_addresses(net, bridge.first(), &vips);
        self.batch("ip", &names.netns, &lines)
    }

    fn redirect_dns(&self, sandbox: &Path, dns: std::net::Ipv4Addr) -> Result<()> {
        // A packet from 127.0.0.1 may only be routed off the loopback device with this.
        set_sysctls(sandbox, &[("net/ipv4/conf/all/route_localnet", "1")])?;
        match nft(sandbox, &plan::dns_rules(dns)) {
            Err(Error::Failed { stderr, .. }) if only_errors_like(&stderr, "File exists") => Ok(()),
            other => other,
        }
    }

    fn networks(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(NETNS_DIR) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Netns {
                    path: NETNS_DIR.into(),
                    action: "list the named network namespaces".into(),
                    source,
                })
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|name| Some(name.strip_prefix(&self.prefix)?.to_owned()))
            .filter(|id| !id.is_empty())
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn netns_path(&self, net_id: &str) -> PathBuf {
        super::netns_path(&self.prefix, net_id)
    }
}

/// Runs `nft -f -` with `rules` inside the namespace at `path`.
fn nft(path: &Path, rules: &str) -> Result<()> {
    let net = format!("--net={}", path.display());
    run("nsenter", &[&net, "nft", "-f", "-"], Some(rules)).map(drop)
}

/// Runs a command to completion; its stdout, or an error with the command line, its status,
/// its stderr and (for a batch) the input line it stopped at.
fn run(program: &'static str, args: &[&str], input: Option<&str>) -> Result<String> {
    let command = render(program, args);
    let started = Instant::now();
    let spawned = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = spawned.map_err(|source| Error::Spawn {
        command: command.clone(),
        source,
    })?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // The tool reads all of its input before it can fail on any of it, and the output
        // pipes are drained only after this; our batches are far below a pipe's capacity for
        // output, so writing first cannot deadlock.
        stdin
            .write_all(input.as_bytes())
            .map_err(|source| Error::Spawn {
                command: command.clone(),
                source,
            })?;
    }
    let output = child.wait_with_output().map_err(|source| Error::Spawn {
        command: command.clone(),
        source,
    })?;
    tracing::debug!(%command, elapsed = ?started.elapsed(), status = %output.status, "data plane command");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        let input = input
            .map(|input| plan::failed_input(&stderr, input))
            .unwrap_or_default();
        return Err(Error::Failed {
            command,
            status: output.status,
            stderr,
            input,
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn render(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn is_failure_with(error: &Error, message: &str) -> bool {
    matches!(error, Error::Failed { stderr, .. } if stderr.contains(message))
}

/// Whether every complaint in `stderr` is one of `allowed` (the batch's own `Command failed`
/// summary lines aside).
fn only_errors_like(stderr: &str, allowed: &str) -> bool {
    let mut complaints = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Command failed"))
        .filter(|l| l.contains("Error") || l.contains("answers") || l.contains("Cannot"))
        .peekable();
    complaints.peek().is_some() && complaints.all(|l| l.contains(allowed))
}

/// Success when the only failures are `allowed` ones: the thing was already made, or
/// already gone.
fn tolerate(result: Result<String>, allowed: &[&str]) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(Error::Failed { ref stderr, .. })
            if allowed.iter().any(|a| {
                stderr
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with("Command failed"))
                    .all(|l| l.contains(a))
            }) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Sets `/proc/sys/<key>` to `value` inside the namespace at `path` where it differs. A
/// thread of its own enters the namespace (`/proc/sys/net` answers for the namespace of
/// whoever opens it) and ends with it, so no other work ever runs there by mistake.
fn set_sysctls(path: &Path, settings: &[(&'static str, &'static str)]) -> Result<()> {
    let owned = path.to_owned();
    let settings = settings.to_vec();
    let thread = std::thread::Builder::new()
        .name("shoal-dp-sysctl".into())
        .spawn(move || set_sysctls_inside(&owned, &settings));
    let thread = thread.map_err(|source| Error::Netns {
        path: path.to_owned(),
        action: "start a thread to set sysctls in it".into(),
        source,
    })?;
    thread.join().unwrap_or_else(|_| {
        Err(Error::Netns {
            path: path.to_owned(),
            action: "set sysctls in it".into(),
            source: std::io::Error::other("the thread doing it panicked"),
        })
    })
}

fn set_sysctls_inside(path: &Path, settings: &[(&'static str, &'static str)]) -> Result<()> {
    let netns_error = |action: String| {
        move |source| Error::Netns {
            path: path.to_owned(),
            action,
            source,
        }
    };
    let file = File::open(path).map_err(netns_error("open it".into()))?;
    setns(&file, CloneFlags::CLONE_NEWNET)
        .map_err(std::io::Error::from)
        .map_err(netns_error(
            "enter it (the daemon needs CAP_SYS_ADMIN)".into(),
        ))?;
    for (key, value) in settings {
        let sysctl = Path::new("/proc/sys").join(key);
        let current = std::fs::read_to_string(&sysctl)
            .map_err(netns_error(format!("read {}", sysctl.display())))?;
        if current.trim() != *value {
            std::fs::write(&sysctl, value)
                .map_err(netns_error(format!("set {} to {value}", sysctl.display())))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowed_complaint_is_forgiven() {
        let exists = "/dev/stdin:1:17-25: Error: Could not process rule: File exists\ncreate table ip shoal-dns\n                ^^^^^^^^^";
        assert!(only_errors_like(exists, "File exists"));
        let other = "/dev/stdin:3:1-5: Error: syntax error\nadd rule";
        assert!(!only_errors_like(other, "File exists"));
    }

    #[test]
    fn a_missing_device_is_forgiven_only_when_it_is_the_only_failure() {
        let fail = |stderr: &str| {
            Err(Error::Failed {
                command: "ip -force -n x -batch -".into(),
                status: std::process::ExitStatus::default(),
                stderr: stderr.into(),
                input: String::new(),
            })
        };
        let gone = "Cannot find device \"vh1\"\nCommand failed -:1";
        assert!(tolerate(fail(gone), &["Cannot find device"]).is_ok());
        let busy = "Cannot find device \"vh1\"\nCommand failed -:1\nRTNETLINK answers: Operation not permitted\nCommand failed -:2";
        assert!(tolerate(fail(busy), &["Cannot find device"]).is_err());
    }

    #[test]
    fn prefixes_that_could_escape_a_path_or_split_a_command_are_refused() {
        assert!(Linux::new("shoal-abc123-", None).is_ok());
        assert!(Linux::new("../etc", None).is_err());
        assert!(Linux::new("a b", None).is_err());
        assert!(Linux::new("ok-", Some("host 1".into())).is_err());
    }
}
