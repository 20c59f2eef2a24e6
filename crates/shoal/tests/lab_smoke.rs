//! The multi-host lab itself (scripts/netlab.sh): hosts with engines of their own on one
//! underlay, and a shoal daemon inside a host.

mod support;

use std::time::Duration;

use support::lab::{Lab, UNDERLAY_GATEWAY};
use support::{Daemon, TEST_IMAGE};

#[test]
fn three_hosts_each_run_their_own_engine_and_reach_each_other() {
    let lab = Lab::up(3);

    for h in lab.hosts() {
        // Each engine is its own, runs in its host's network namespace and has the test image.
        let root = h.docker_ok(&["info", "--format", "{{.DockerRootDir}}"]);
        assert_eq!(root.trim(), format!("/run/shoal-lab/{}/data", h.name()));
        let out = h.docker_ok(&[
            "run",
            "--rm",
            "--network",
            "host",
            TEST_IMAGE,
            "ip",
            "-4",
            "addr",
            "show",
            "eth0",
        ]);
        assert!(
            out.contains(&format!("{}/24", h.addr())),
            "{}: a host-network container sees no {} on eth0:\n{out}",
            h.name(),
            h.addr()
        );
        // A container on the default bridge leaves through NAT to the underlay.
        h.docker_ok(&[
            "run",
            "--rm",
            TEST_IMAGE,
            "ping",
            "-c1",
            "-W2",
            UNDERLAY_GATEWAY,
        ]);
    }

    let h1 = lab.host(1);
    for other in [lab.host(2), lab.host(3)] {
        h1.exec_ok(&["ping", "-c1", "-W1", &other.addr()]);
    }

    // The host's engine finds its plugins in its own folder, which is not the machine's.
    let probe = format!("shoal-lab-probe-{}", std::process::id());
    h1.exec_ok(&["touch", &format!("/run/docker/plugins/{probe}")]);
    assert!(h1.plugins_dir().join(&probe).exists());
    assert!(!std::path::Path::new("/run/docker/plugins")
        .join(&probe)
        .exists());
    std::fs::remove_file(h1.plugins_dir().join(&probe)).expect("remove the probe");

    let d = Daemon::start_in_lab_host("lab-h1", &h1);
    let pid = d.pid().expect("the daemon's pid");
    assert!(
        h1.runs_inside(pid),
        "shoal daemon {pid} runs outside h1's network namespace"
    );
    let version = d.docker_ok(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!version.trim().is_empty(), "no server version from shoal");
    // Its node-to-node address is the host's, reachable over the underlay.
    d.init();
    support::eventually(
        Duration::from_secs(10),
        "shoal's node-to-node port on 198.51.100.1:2377",
        || std::net::TcpStream::connect(d.addr()).ok(),
    );
    drop(d);

    for h in lab.hosts() {
        let left = h.docker_ok(&["ps", "-aq"]);
        assert!(
            left.trim().is_empty(),
            "{}: containers left: {left}",
            h.name()
        );
    }
}
