//! A node describes itself from the machine and from the local Docker Engine.

mod support;

use std::process::Command;
use std::time::Duration;
use support::{eventually, Daemon, ENGINE_SOCKET};

fn engine_version() -> String {
    // Starts the engine if none runs (and builds the test images).
    support::test_image();
    let out = Command::new("docker")
        .args([
            "-H",
            &format!("unix://{ENGINE_SOCKET}"),
            "version",
            "--format",
            "{{.Server.Version}}",
        ])
        .output()
        .expect("cannot run docker");
    assert!(
        out.status.success(),
        "this test needs a Docker Engine at {ENGINE_SOCKET} (scripts/ensure-docker.sh starts one): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn nodes_report_hostname_resources_and_their_engine() {
    let version = engine_version();
    let m = Daemon::start_with_engine("described", ENGINE_SOCKET);
    m.init();
    let w = Daemon::start("engineless");
    w.join(&m, "worker");
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let row = m.docker_ok(&[
        "node", "inspect", "self", "--format",
        "{{.Description.Hostname}}|{{.Description.Platform.OS}}|{{.Description.Engine.EngineVersion}}|{{gt .Description.Resources.NanoCPUs 0}}|{{gt .Description.Resources.MemoryBytes 0}}",
    ]);
    assert_eq!(
        row.trim(),
        format!("{}|linux|{version}|true|true", hostname.trim())
    );
    let ls = m.docker_ok(&["node", "ls", "--format", "{{.Self}} {{.EngineVersion}}"]);
    assert!(ls.lines().any(|l| l == format!("true {version}")), "{ls}");
    // The worker has no engine: it says so by leaving the version empty.
    let wid = w.node_id();
    eventually(Duration::from_secs(10), "the worker's description", || {
        let v = m.docker_ok(&[
            "node",
            "inspect",
            &wid,
            "--format",
            "{{.Description.Engine.EngineVersion}}|{{.Description.Platform.Architecture}}",
        ]);
        (v.trim() == format!("|{}", std::env::consts::ARCH)).then_some(())
    });
}
