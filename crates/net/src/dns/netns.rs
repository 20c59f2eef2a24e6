//! Binding a name server's sockets inside a network's namespace.
//!
//! A socket belongs to the namespace it was created in, for life; so a short-lived thread
//! enters the namespace, binds, and exits, and the sockets it returns keep serving there.
//! Entering is per thread, which is why this never happens on a tokio worker: the worker would
//! stay in the namespace and every later task on it (the upstream forwarder's sockets among
//! them) would land there too.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};

use super::Error;

/// Binds a UDP socket and a TCP listener at `addr` inside the network namespace `netns`
/// (a `/proc/PID/ns/net` or a file it is bind-mounted on, such as `/run/netns/NAME`), both
/// nonblocking. With port 0 the listener takes the UDP socket's port, as DNS clients expect
/// both on one port. Blocks the calling thread for a few syscalls.
pub fn bind_in_netns(netns: &Path, addr: SocketAddr) -> Result<(UdpSocket, TcpListener), Error> {
    let path = netns.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("shoal-dns-netns".into())
        .spawn(move || bind_inside(path, addr));
    let thread = thread.map_err(|source| Error::NetnsThread {
        path: netns.to_owned(),
        source: Some(source),
    })?;
    thread.join().map_err(|_| Error::NetnsThread {
        path: netns.to_owned(),
        source: None,
    })?
}

/// Runs on its own thread, which exits right after: the namespace change dies with it.
fn bind_inside(path: PathBuf, addr: SocketAddr) -> Result<(UdpSocket, TcpListener), Error> {
    let file = File::open(&path).map_err(|source| Error::OpenNetns {
        path: path.clone(),
        source,
    })?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|source| Error::EnterNetns {
        path: path.clone(),
        source,
    })?;
    let bind_error = |proto: &'static str, addr: SocketAddr| {
        let path = path.clone();
        move |source| Error::Bind {
            path,
            proto,
            addr,
            source,
        }
    };
    let udp = UdpSocket::bind(addr).map_err(bind_error("UDP", addr))?;
    let addr = udp.local_addr().map_err(bind_error("UDP", addr))?;
    let tcp = TcpListener::bind(addr).map_err(bind_error("TCP", addr))?;
    udp.set_nonblocking(true).map_err(bind_error("UDP", addr))?;
    tcp.set_nonblocking(true).map_err(bind_error("TCP", addr))?;
    Ok((udp, tcp))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::process::Command;

    use hickory_proto::rr::RecordType;

    use super::*;
    use crate::dns::test_support::*;
    use crate::dns::{view, NameServer, Upstream};

    /// A network namespace persisted on a file, as `ip netns add` makes them; removed on drop.
    struct Netns {
        _dir: tempfile::TempDir,
        path: PathBuf,
    }

    impl Netns {
        /// `None` (and why, printed) when this machine cannot make one: not root, no util-linux.
        fn create() -> Option<Self> {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("net");
            File::create(&path).unwrap();
            let created = Command::new("unshare")
                .arg(format!("--net={}", path.display()))
                .arg("true")
                .status();
            if !matches!(created, Ok(status) if status.success()) {
                eprintln!("skipped: cannot create a network namespace (`unshare --net=FILE` needs root and util-linux): {created:?}");
                return None;
            }
            let netns = Self { _dir: dir, path };
            let lo_up = Command::new("nsenter")
                .arg(format!("--net={}", netns.path.display()))
                .args(["ip", "link", "set", "lo", "up"])
                .status();
            if !matches!(lo_up, Ok(status) if status.success()) {
                eprintln!("skipped: cannot bring lo up in the namespace (needs nsenter and ip): {lo_up:?}");
                return None;
            }
            Some(netns)
        }

        /// Runs `f` on a thread inside the namespace, as a container's process would.
        fn run<T: Send + 'static>(
            &self,
            f: impl FnOnce() -> T + Send + 'static,
        ) -> std::thread::JoinHandle<T> {
            let path = self.path.clone();
            std::thread::spawn(move || {
                setns(File::open(path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            Command::new("umount").arg(&self.path).status().ok();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn server_bound_in_a_namespace_answers_there_and_forwards_from_the_host() {
        let Some(netns) = Netns::create() else { return };
        let (udp, tcp) = bind_in_netns(&netns.path, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = udp.local_addr().unwrap();
        assert_eq!(
            tcp.local_addr().unwrap(),
            addr,
            "UDP and TCP share the port"
        );

        // The upstream listens on the host's loopback, which only the forwarder can reach.
        let upstream = FakeUdpUpstream::answering(Ipv4Addr::new(192, 0, 2, 53)).await;
        let (_view, receiver) = view(fixture());
        let server = NameServer::spawn(
            "n-front",
            udp,
            tcp,
            receiver,
            Upstream::new([upstream.addr]),
        )
        .unwrap();

        let client = netns.run(move || {
            let web = query_message("web.", RecordType::A);
            let other = query_message("example.com.", RecordType::A);
            (
                blocking_exchange_udp(addr, UNKNOWN_CLIENT, &web),
                blocking_exchange_udp(addr, UNKNOWN_CLIENT, &other),
                blocking_exchange_tcp(addr, &web),
            )
        });
        let joined = tokio::task::spawn_blocking(move || client.join())
            .await
            .unwrap();
        let (local, forwarded, over_tcp) = joined.unwrap();
        assert_eq!(a_records(&local), vec![Ipv4Addr::new(10, 0, 1, 2)]);
        assert_eq!(a_records(&forwarded), vec![Ipv4Addr::new(192, 0, 2, 53)]);
        assert_eq!(a_records(&over_tcp), vec![Ipv4Addr::new(10, 0, 1, 2)]);

        assert!(
            std::net::TcpStream::connect(server.tcp_addr()).is_err(),
            "the listener is not in the host's namespace"
        );
    }

    #[test]
    fn binding_in_a_missing_namespace_names_the_file() {
        let error = bind_in_netns(
            Path::new("/nonexistent/netns"),
            "127.0.0.1:0".parse().unwrap(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("/nonexistent/netns"), "{error}");
    }
}
