//! Every acknowledged write survives kill -9, on one manager and on three.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{eventually, raw_http, three_managers, Daemon};

/// Creates configs in a loop until told to stop; returns the names acknowledged with 201.
fn writer(
    sock: std::path::PathBuf,
    prefix: &'static str,
    stop: Arc<AtomicBool>,
) -> Arc<Mutex<Vec<String>>> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let out = acked.clone();
    std::thread::spawn(move || {
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let name = format!("{prefix}-{i}");
            let body = format!(r#"{{"Name":"{name}","Data":"aGVsbG8="}}"#);
            if let Ok((201, _)) = raw_http(
                &sock,
                "POST",
                "/v1.41/configs/create",
                Some(body.as_bytes()),
            ) {
                out.lock().unwrap().push(name);
            }
            i += 1;
        }
    });
    acked
}

fn config_names(d: &Daemon) -> Vec<String> {
    let (_, body) = d.http("GET", "/configs", None).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["Spec"]["Name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_single_manager_killed_mid_stream_keeps_every_acknowledged_write() {
    let mut d = Daemon::start("solo");
    d.init();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = writer(d.socket(), "solo", stop.clone());
    eventually(Duration::from_secs(20), "some acknowledged writes", || {
        (acked.lock().unwrap().len() >= 50).then_some(())
    });
    d.kill9();
    stop.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(100));
    let acked = acked.lock().unwrap().clone();
    d.restart();
    let names = eventually(Duration::from_secs(20), "the state after restart", || {
        let n = config_names(&d);
        acked.iter().all(|a| n.contains(a)).then_some(n)
    });
    assert!(names.len() >= acked.len());
    // And the restarted node takes writes again.
    d.docker_ok(&["network", "create", "-d", "overlay", "after-crash"]);
}

#[test]
fn a_follower_killed_mid_stream_loses_nothing_and_catches_up() {
    let mut nodes = three_managers();
    let stop = Arc::new(AtomicBool::new(false));
    // Writes go to node 1 (whatever its role); node 2 is killed under them.
    let acked = writer(nodes[1].socket(), "three", stop.clone());
    eventually(Duration::from_secs(20), "some acknowledged writes", || {
        (acked.lock().unwrap().len() >= 30).then_some(())
    });
    nodes[2].kill9();
    eventually(
        Duration::from_secs(20),
        "more writes with one manager down",
        || (acked.lock().unwrap().len() >= 60).then_some(()),
    );
    nodes[1].kill9();
    stop.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(100));
    let acked = acked.lock().unwrap().clone();
    nodes[2].restart();
    nodes[1].restart();
    for d in &nodes {
        eventually(
            Duration::from_secs(30),
            "every acknowledged write on every manager",
            || {
                let n = config_names(d);
                acked.iter().all(|a| n.contains(a)).then_some(())
            },
        );
    }
}

#[test]
fn a_whole_cluster_killed_at_once_comes_back_with_its_state() {
    let mut nodes = three_managers();
    let w = Daemon::start("worker");
    w.join(&nodes[0], "worker");
    let mut w = w;
    nodes[0].docker_ok(&["network", "create", "-d", "overlay", "before-outage"]);
    for n in nodes.iter_mut() {
        n.kill9();
    }
    w.kill9();
    for n in nodes.iter_mut() {
        n.restart();
    }
    w.restart();
    // A leader is elected again and every manager serves the old state and new writes.
    eventually(Duration::from_secs(30), "a write after the outage", || {
        nodes[2]
            .docker(&["network", "create", "-d", "overlay", "after-outage"])
            .status
            .success()
            .then_some(())
    });
    for n in &nodes {
        eventually(
            Duration::from_secs(20),
            "both networks on every manager",
            || {
                let ls = n.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
                (ls.contains("before-outage") && ls.contains("after-outage")).then_some(())
            },
        );
    }
    // The worker is still a worker of this cluster and reports in again.
    let info = w.docker_ok(&[
        "info",
        "--format",
        "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
    ]);
    assert_eq!(info.trim(), "active false");
    let wid = w.node_id();
    eventually(Duration::from_secs(20), "the worker Ready again", || {
        let s = nodes[0].docker_ok(&["node", "inspect", "--format", "{{.Status.State}}", &wid]);
        (s.trim() == "ready").then_some(())
    });
}
