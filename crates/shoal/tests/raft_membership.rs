//! Managers joining and leaving: a late manager catches up from a snapshot, and a manager that
//! leaves is taken out of the Raft group so the others keep their quorum.

mod support;

use std::time::Duration;
use support::{eventually, three_managers, Daemon};

fn create_configs(d: &Daemon, prefix: &str, n: usize) {
    for i in 0..n {
        let body = format!(r#"{{"Name":"{prefix}-{i}","Data":"eA=="}}"#);
        let (status, text) = d
            .http("POST", "/v1.41/configs/create", Some(body.as_bytes()))
            .expect("http");
        assert_eq!(status, 201, "{text}");
    }
}

fn config_count(d: &Daemon) -> usize {
    let (_, body) = d.http("GET", "/configs", None).unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0)
}

#[test]
fn a_manager_that_joins_late_catches_up_from_a_snapshot() {
    // The fast profile snapshots every 500 entries and keeps 50 behind: after 1200 writes
    // the first entries are gone from the log and only a snapshot can carry them.
    let a = Daemon::start("early");
    a.init();
    create_configs(&a, "c", 1200);
    let b = Daemon::start("late");
    b.join(&a, "manager");
    eventually(
        Duration::from_secs(20),
        "the late manager to hold every config",
        || (config_count(&b) == 1200).then_some(()),
    );
    let (status, body) = b.http("GET", "/configs/c-0", None).unwrap();
    assert_eq!(status, 200, "{body}");
    // It is a full member: with the first manager stopped it cannot commit alone, and with
    // it back both agree on new writes.
    create_configs(&b, "after", 3);
    eventually(
        Duration::from_secs(10),
        "the new writes on the first manager",
        || (config_count(&a) == 1203).then_some(()),
    );
}

#[test]
fn a_manager_that_leaves_is_removed_from_raft_and_the_others_keep_writing() {
    let mut nodes = three_managers();
    let leaving = nodes.pop().unwrap();
    let id = leaving.node_id();
    let refused = leaving.docker_err(&["swarm", "leave"]);
    assert!(refused.contains("participating as a manager"), "{refused}");
    let out = leaving.docker_ok(&["swarm", "leave", "--force"]);
    assert!(out.contains("Node left the swarm."), "{out}");
    drop(leaving);
    // Two managers of two are a quorum: writes commit even with the third process gone.
    nodes[1].docker_ok(&["network", "create", "-d", "overlay", "after-leave"]);
    eventually(
        Duration::from_secs(10),
        "the departed manager shown down",
        || {
            let s = nodes[0].docker_ok(&["node", "inspect", "--format", "{{.Status.State}}", &id]);
            (s.trim() == "down").then_some(())
        },
    );
    nodes[0].docker_ok(&["node", "demote", &id]);
    nodes[0].docker_ok(&["node", "rm", &id]);
    let ls = nodes[0].docker_ok(&["node", "ls", "--format", "{{.ManagerStatus}}"]);
    let mut statuses: Vec<&str> = ls.lines().collect();
    statuses.sort();
    assert_eq!(statuses, vec!["Leader", "Reachable"], "{ls}");
}

#[test]
fn a_demotion_that_would_lose_the_quorum_is_refused() {
    let mut nodes = three_managers();
    let mut dead = nodes.pop().unwrap();
    let dead_id = dead.node_id();
    dead.kill9();
    eventually(
        Duration::from_secs(20),
        "the killed manager shown unreachable",
        || {
            let s = nodes[0].docker_ok(&[
                "node",
                "inspect",
                "--format",
                "{{.ManagerStatus.Reachability}}",
                &dead_id,
            ]);
            (s.trim() == "unreachable").then_some(())
        },
    );
    // Demoting a live manager would leave one reachable manager of two.
    let err = nodes[0].docker_err(&["node", "demote", &nodes[1].node_id()]);
    assert!(err.contains("would result in a loss of quorum"), "{err}");
    let role = nodes[0].docker_ok(&[
        "node",
        "inspect",
        "--format",
        "{{.Spec.Role}}",
        &nodes[1].node_id(),
    ]);
    assert_eq!(role.trim(), "manager");
    // The dead one can go: the two live managers remain a quorum, and keep writing.
    nodes[0].docker_ok(&["node", "demote", &dead_id]);
    nodes[1].docker_ok(&["network", "create", "-d", "overlay", "after-demote"]);
}

#[test]
fn join_tokens_are_checked() {
    let a = Daemon::start("gate");
    a.init();
    let b = Daemon::start("intruder");
    let real = a.docker_ok(&["swarm", "join-token", "-q", "worker"]);
    // Same cluster digest, wrong secret part.
    let (digest, _) = real.trim().rsplit_once('-').unwrap();
    let forged = format!("{digest}-{}", "0".repeat(25));
    let err = b.docker_err(&[
        "swarm",
        "join",
        "--token",
        &forged,
        "--listen-addr",
        &b.addr(),
        "--advertise-addr",
        &b.addr(),
        &a.addr(),
    ]);
    assert!(err.contains("A valid join token is necessary"), "{err}");
    let err = b.docker_err(&[
        "swarm",
        "join",
        "--token",
        "SWMTKN-1-nonsense",
        "--listen-addr",
        &b.addr(),
        "--advertise-addr",
        &b.addr(),
        &a.addr(),
    ]);
    assert!(err.contains("invalid join token"), "{err}");
    // Nothing was admitted, and the refused node can still join with the real token.
    let ls = a.docker_ok(&["node", "ls", "-q"]);
    assert_eq!(ls.lines().count(), 1, "{ls}");
    b.join(&a, "worker");
    let ls = a.docker_ok(&["node", "ls", "-q"]);
    assert_eq!(ls.lines().count(), 2, "{ls}");
}

#[test]
fn a_manager_without_a_quorum_refuses_writes_instead_of_hanging() {
    let mut nodes = three_managers();
    let survivor = nodes.remove(0);
    for mut n in nodes {
        n.kill9();
    }
    // (raw_http gives up after 30 s, so a hanging write fails the test.)
    let (status, body) = survivor
        .http(
            "POST",
            "/v1.41/configs/create",
            Some(br#"{"Name":"lonely","Data":"eA=="}"#),
        )
        .expect("http");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("majority of managers"), "{body}");
    // Reads still work from the local replica.
    let (status, _) = survivor.http("GET", "/configs", None).unwrap();
    assert_eq!(status, 200);
}

#[test]
fn a_log_that_grows_large_in_bytes_is_snapshotted_before_its_entry_count_says_so() {
    // The fast profile snapshots every 500 entries or 1 MiB of log: 12 configs of 150 KB
    // are far fewer entries than 500 but well over 1 MiB.
    let m = Daemon::start("bulky");
    m.init();
    let data = "QUFB".repeat(50_000); // 200 KB of base64, 150 KB of data
    for i in 0..12 {
        let body = format!(r#"{{"Name":"bulk-{i}","Data":"{data}"}}"#);
        let (status, text) = m
            .http("POST", "/v1.41/configs/create", Some(body.as_bytes()))
            .expect("http");
        assert_eq!(status, 201, "{text}");
    }
    eventually(Duration::from_secs(20), "a snapshot taken for size", || {
        let log = m.log();
        (log.contains("the log is large: taking a snapshot") && log.contains("built a snapshot"))
            .then_some(())
    });
    let mut m = m;
    m.restart();
    assert_eq!(config_count(&m), 12);
}
