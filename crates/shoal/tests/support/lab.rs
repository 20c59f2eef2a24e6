//! The multi-host lab for integration tests of overlay networking: hosts h1..hN on this
//! machine, each a network namespace with its own Docker Engine, joined by an underlay bridge
//! (198.51.100.0/24, the root namespace answers on .254). `scripts/netlab.sh` builds and tears
//! it down; this module only drives that script and starts `shoal daemon` inside a host.
//!
//! One lab serves every test: `Lab::up` reuses a healthy lab, and holds a lock on it for the
//! life of the `Lab` value, so tests that use it run one at a time, also across the processes
//! of a nextest run. Declare the `Lab` before the daemons of a test: they are dropped first,
//! then the lab removes what containers are left on its hosts.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::Duration;

use super::{eventually, Daemon};

/// The script that builds the lab.
pub const NETLAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/netlab.sh");

/// Where the lab keeps its state: per host `hN/docker.sock`, `hN/plugins`, `hN/dockerd.log`.
pub const STATE: &str = "/run/shoal-lab";

/// The underlay's first three octets; host i is `198.51.100.i`.
pub const UNDERLAY: &str = "198.51.100";

/// The root namespace's address on the underlay.
pub const UNDERLAY_GATEWAY: &str = "198.51.100.254";

/// The node-to-node port of a shoal daemon in a lab host (each host has its own addresses).
pub const LAB_SWARM_PORT: u16 = 2377;

/// Held by a test for as long as it uses the lab.
const TEST_LOCK: &str = "/run/lock/shoal-lab.tests.lock";

/// Runs `scripts/netlab.sh ARGS`.
pub fn netlab(args: &[&str]) -> Output {
    Command::new(NETLAB)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run scripts/netlab.sh")
}

fn netlab_ok(args: &[&str]) -> String {
    let out = netlab(args);
    assert!(
        out.status.success(),
        "scripts/netlab.sh {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An exclusive lock on the lab: a `flock` process that holds it until its stdin closes, so
/// the lock goes with the test process however that ends.
struct LabLock {
    child: Child,
    _stdout: ChildStdout,
}

impl LabLock {
    fn take() -> LabLock {
        let mut child = Command::new("flock")
            .arg(TEST_LOCK)
            .args(["sh", "-c", "echo locked; exec cat >/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot run flock (util-linux)");
        let mut stdout = BufReader::new(child.stdout.take().expect("flock stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("cannot read from flock");
        assert_eq!(line.trim(), "locked", "flock {TEST_LOCK} failed");
        LabLock {
            child,
            _stdout: stdout.into_inner(),
        }
    }
}

impl Drop for LabLock {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The lab, for the duration of one test.
pub struct Lab {
    hosts: usize,
    _lock: LabLock,
}

impl Lab {
    /// Waits for the lab to be free, then brings up (or reuses) a lab of at least `n` hosts.
    /// The hosts start with no containers and no process but their engine's: what an earlier
    /// test left (one killed before its clean-up ran) goes.
    pub fn up(n: usize) -> Lab {
        let lock = LabLock::take();
        netlab_ok(&["up", &n.to_string()]);
        let lab = Lab {
            hosts: n,
            _lock: lock,
        };
        for h in lab.hosts() {
            h.kill_strays();
            h.remove_overlay_namespaces();
            h.cleanup_containers();
        }
        lab
    }

    /// Host `i` (1-based, as in h1..hN).
    pub fn host(&self, i: usize) -> LabHost {
        assert!(
            (1..=self.hosts).contains(&i),
            "the lab has hosts h1..h{}, not h{i}",
            self.hosts
        );
        LabHost { index: i }
    }

    pub fn hosts(&self) -> Vec<LabHost> {
        (1..=self.hosts).map(|index| LabHost { index }).collect()
    }

    /// Restarts host `i`: its engine and every process in it stop (a shoal daemon in it too:
    /// restart that with `Daemon::restart`), its network namespace is made anew, as after a
    /// reboot, and its engine starts again with the containers it had. As a reboot empties
    /// `/run`, the names of the network namespaces made in the host go too: their mounts went
    /// with the host's mount namespace, and only empty files would be left in `/run/netns`
    /// (which the hosts share with this machine).
    pub fn restart_host(&self, i: usize) {
        let host = self.host(i);
        let own = host.overlay_namespaces();
        netlab_ok(&["restart-host", &host.name()]);
        for name in own {
            let _ = std::fs::remove_file(format!("/run/netns/{name}"));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // No assertion here: a panic in a drop during a test's panic would abort the run.
        for h in self.hosts() {
            h.remove_containers();
            h.remove_overlay_namespaces();
        }
    }
}

/// One host of the lab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabHost {
    index: usize,
}

impl LabHost {
    pub fn index(&self) -> usize {
        self.index
    }

    /// `h1`, `h2`, ...
    pub fn name(&self) -> String {
        format!("h{}", self.index)
    }

    /// The host's address on the underlay, `198.51.100.i`.
    pub fn addr(&self) -> String {
        format!("{UNDERLAY}.{}", self.index)
    }

    /// The host's own Docker Engine.
    pub fn engine_socket(&self) -> PathBuf {
        PathBuf::from(format!("{STATE}/h{}/docker.sock", self.index))
    }

    /// What the host's engine sees as `/run/docker/plugins`, where its network plugins live.
    pub fn plugins_dir(&self) -> PathBuf {
        PathBuf::from(format!("{STATE}/h{}/plugins", self.index))
    }

    /// The host's network namespace, as a file.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/shoallab-h{}", self.index))
    }

    /// Whether process `pid` runs in this host's network namespace.
    pub fn runs_inside(&self, pid: u32) -> bool {
        let ino = |p: PathBuf| std::fs::metadata(p).map(|m| m.ino()).ok();
        let own = ino(self.netns_path());
        own.is_some() && own == ino(PathBuf::from(format!("/proc/{pid}/ns/net")))
    }

    /// The docker CLI against the host's engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.engine_socket().display()))
            .args(args)
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .output()
            .expect("cannot run docker")
    }

    /// Like [`LabHost::docker`], failing the test when the command fails; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "{}: docker {} failed:\nstdout: {}\nstderr: {}",
            self.name(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A command that runs `program` inside the host: in its network namespace and in the
    /// mount namespace of its engine (which has the host's own `/run/docker/plugins`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(NETLAB);
        c.args(["exec", &self.name(), program]);
        c
    }

    /// Runs `cmd` inside the host.
    pub fn exec(&self, cmd: &[&str]) -> Output {
        let (program, args) = cmd.split_first().expect("exec: an empty command");
        self.command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run scripts/netlab.sh exec")
    }

    /// Like [`LabHost::exec`], failing the test when the command fails; returns stdout.
    pub fn exec_ok(&self, cmd: &[&str]) -> String {
        let out = self.exec(cmd);
        assert!(
            out.status.success(),
            "{}: {} failed:\nstdout: {}\nstderr: {}",
            self.name(),
            cmd.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Force-removes every container on the host's engine, and fails the test when some are
    /// still there after 30 s.
    pub fn cleanup_containers(&self) {
        eventually(
            Duration::from_secs(30),
            &format!("{}: no containers", self.name()),
            || self.remove_containers().then_some(()),
        );
    }

    /// Force-removes every container on the host's engine; whether none is left.
    fn remove_containers(&self) -> bool {
        let out = self.docker(&["ps", "-aq"]);
        if !out.status.success() {
            return false;
        }
        let ids = String::from_utf8_lossy(&out.stdout);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if ids.is_empty() {
            return true;
        }
        let mut args = vec!["rm", "-f"];
        args.extend(ids);
        self.docker(&args).status.success()
    }

    /// Removes the network namespaces shoal daemons made in this host for overlay networks
    /// (`/run/netns/shoal-*` as the host's mount namespace has them) once no daemon runs in
    /// the host: a daemon that was killed leaves them, with their VXLAN ports, whose sockets
    /// in the host's namespace would keep their VNI and UDP port from the next cluster. The
    /// VXLAN ports go first, then the namespace. Only a namespace mounted in this host's
    /// mount namespace is touched (another host's file is only a stale name here).
    pub fn remove_overlay_namespaces(&self) {
        if self.shoal_daemon_runs() {
            return;
        }
        let script = r#"for f in /run/netns/shoal-*; do
  [ -e "$f" ] || continue
  n=${f##*/}
  ip -n "$n" link show >/dev/null 2>&1 || continue
  for l in $(ip -n "$n" -o link show type vxlan | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
    ip -n "$n" link del "$l" 2>/dev/null
  done
  ip netns del "$n" 2>/dev/null
done
exit 0"#;
        let _ = self.exec(&["sh", "-c", script]);
    }

    /// The names of the overlay network namespaces (`/run/netns/shoal-*`) mounted in the
    /// host's mount namespace.
    fn overlay_namespaces(&self) -> Vec<String> {
        let script = r#"for f in /run/netns/shoal-*; do
  [ -e "$f" ] && ip -n "${f##*/}" link show >/dev/null 2>&1 && echo "${f##*/}"
done
exit 0"#;
        let out = self.exec(&["sh", "-c", script]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Whether a `shoal` process runs in the host's network namespace.
    fn shoal_daemon_runs(&self) -> bool {
        let out = Command::new("ip")
            .args(["netns", "pids", &format!("shoallab-h{}", self.index)])
            .output()
            .expect("cannot run ip");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "shoal")
            })
    }

    /// Copies `images` from the machine's engine into the host's engine, unless it has them
    /// already (same IDs).
    pub fn load_images(&self, images: &[&str]) {
        let mut inspect = vec!["image", "inspect", "-f", "{{.Id}}"];
        inspect.extend(images);
        let want = super::engine_ok(&inspect);
        let have = self.docker(&inspect);
        if have.status.success() && String::from_utf8_lossy(&have.stdout) == want {
            return;
        }
        let tar = tempfile::Builder::new()
            .prefix("shoal-lab-images-")
            .suffix(".tar")
            .tempfile()
            .expect("cannot create a temp file");
        let path = tar.path().to_string_lossy().into_owned();
        let mut save = vec!["save", "-o", path.as_str()];
        save.extend(images);
        super::engine_ok(&save);
        self.docker_ok(&["load", "-q", "-i", &path]);
    }

    /// Kills the processes in the host that are not its engine's (a shoal daemon of a test
    /// that was killed before it could stop it, say).
    fn kill_strays(&self) {
        let out = Command::new("ip")
            .args(["netns", "pids", &format!("shoallab-h{}", self.index)])
            .output()
            .expect("cannot run ip");
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let engine = ["dockerd", "containerd", "docker-proxy"].contains(&comm.trim())
                || comm.starts_with("containerd-shim");
            if !engine {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
    }
}

/// Force-removes every container on `host`'s engine.
pub fn cleanup_containers(host: &LabHost) {
    host.cleanup_containers();
}

impl Daemon {
    /// Starts `shoal daemon` inside a lab host (fast timing profile): its network and mount
    /// namespaces, the host's engine, node-to-node address `198.51.100.i:2377`, routing mesh on
    /// `198.51.100.i`; data dir and API socket in a temp dir of the test, which the test
    /// reaches as it is (the host's mount namespace shares the file system).
    pub fn start_in_lab_host(name: &str, host: &LabHost) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix(&format!("shoal-{name}-"))
            .tempdir()
            .expect("cannot create a temp dir");
        let mut d = Daemon {
            name: name.to_string(),
            dir,
            port: LAB_SWARM_PORT,
            engine: Some(host.engine_socket()),
            mesh_ip: host.addr(),
            listen_ip: host.addr(),
            prefix: vec![NETLAB.to_string(), "exec".to_string(), host.name()],
            swarm_node: std::sync::Mutex::new(None),
            extra_args: Vec::new(),
            child: None,
        };
        d.spawn();
        d
    }
}
