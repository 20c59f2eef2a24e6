//! The routing mesh: a port published in `ingress` mode answers on every node and reaches the
//! service's running tasks wherever they run, through the real `shoal daemon` processes and
//! the local Docker Engine, on loopback only.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;
use support::{eventually, free_port, Daemon, ENGINE_SOCKET};

const WAIT: Duration = Duration::from_secs(60);
const WEB_IMAGE: &str = "shoal-example/todo-web:latest";

/// GETs `/id` through `addr`: the answering task's hostname, or `None` when the connection
/// is refused, closed, or gives no page.
fn task_behind(addr: SocketAddr) -> Option<String> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    conn.write_all(b"GET /id HTTP/1.0\r\nHost: mesh\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    // A reset also means "no task behind it".
    let _ = conn.read_to_string(&mut answer);
    if !answer.starts_with("HTTP/1.") || !answer.contains(" 200 ") {
        return None;
    }
    let (_, body) = answer.split_once("\r\n\r\n")?;
    Some(body.trim().to_string())
}

/// The hostnames of the tasks reached through `addr` over `tries` connections.
fn tasks_behind(addr: SocketAddr, tries: usize) -> BTreeSet<String> {
    (0..tries).filter_map(|_| task_behind(addr)).collect()
}

#[test]
fn an_ingress_port_reaches_every_task_from_every_node_until_the_service_goes() {
    support::test_image();
    let m = Daemon::start_with_engine("mesh-m", ENGINE_SOCKET);
    m.init();
    // Both nodes listen on the published port: each on its own loopback address.
    let w = Daemon::start_with_engine_mesh_ip("mesh-w", ENGINE_SOCKET, "127.0.0.2");
    w.join(&m, "worker");
    let port = free_port();
    let svc = format!("meshweb{}", std::process::id());
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        &svc,
        "--replicas",
        "2",
        "--replicas-max-per-node",
        "1",
        "--stop-grace-period",
        "1s",
        "-p",
        &format!("{port}:80"),
        WEB_IMAGE,
        "sh",
        "-c",
        "echo $HOSTNAME > /www/id; exec httpd -f -p 80 -h /www",
    ]);
    let via_manager: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let via_worker: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();

    // One task per node; from either node, round-robin reaches both.
    for addr in [via_manager, via_worker] {
        let seen = eventually(WAIT, &format!("both tasks behind {addr}"), || {
            let seen = tasks_behind(addr, 6);
            (seen.len() == 2).then_some(seen)
        });
        assert_eq!(seen.len(), 2, "{seen:?}");
    }
    // The ingress port is not the task's PortStatus (that is for host-mode ports).
    let ps = m.docker_ok(&["service", "ps", "--format", "{{.Ports}}", &svc]);
    assert!(ps.trim().lines().all(|l| l.trim().is_empty()), "{ps}");

    // Scaled to one: every connection reaches the task that is left.
    m.docker_ok(&["service", "scale", "--detach", &format!("{svc}=1")]);
    for addr in [via_manager, via_worker] {
        eventually(WAIT, &format!("one task behind {addr}"), || {
            (tasks_behind(addr, 6).len() == 1).then_some(())
        });
    }

    // Scaled to none: connections are refused or closed without an answer.
    m.docker_ok(&["service", "scale", "--detach", &format!("{svc}=0")]);
    for addr in [via_manager, via_worker] {
        eventually(WAIT, &format!("no task behind {addr}"), || {
            tasks_behind(addr, 3).is_empty().then_some(())
        });
    }

    // Removed: nothing listens on the port any more, on either node.
    m.docker_ok(&["service", "rm", &svc]);
    for addr in [via_manager, via_worker] {
        eventually(WAIT, &format!("{addr} free again"), || {
            TcpListener::bind(addr).ok().map(drop)
        });
    }
}
