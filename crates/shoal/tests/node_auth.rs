//! The node-to-node port only takes calls from members of the cluster: Raft and forwarded
//! writes need a manager's certificate (and the managers' credential); heartbeats and leave
//! need the node's own.

mod support;

use support::Daemon;

/// A call over TLS without a client certificate, as a stranger makes it.
fn post(addr: &str, path: &str, bearer: Option<&str>, body: &str) -> (u16, String) {
    support::tcp_post(addr, path, bearer, body)
}

#[test]
fn internal_calls_without_the_cluster_credentials_are_refused() {
    let m = Daemon::start("guarded");
    m.init();
    let w = Daemon::start("member");
    w.join(&m, "worker");
    let wid = w.node_id();
    let write = r#"{"at":"2026-01-01T00:00:00Z","cmd":{"op":"RemoveNode","id":"x","force":true}}"#;
    for bearer in [None, Some("forged"), Some(&*format!("{wid}:0000"))] {
        let (status, body) = post(&m.addr(), "/internal/propose", bearer, write);
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("without valid credentials"), "{body}");
        let (status, body) = post(&m.addr(), "/internal/raft/prevote", bearer, "null");
        assert_eq!(status, 403, "{body}");
    }
    let hb = format!(r#"{{"node_id":"{wid}","raft_running":false,"description":null}}"#);
    let (status, body) = post(&m.addr(), "/internal/heartbeat", Some("forged"), &hb);
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(
        &m.addr(),
        "/internal/leave",
        None,
        &format!(r#"{{"node_id":"{wid}"}}"#),
    );
    assert_eq!(status, 403, "{body}");
    // The real members are unaffected: the worker is still ready and can leave properly.
    let ls = m.docker_ok(&["node", "inspect", "--format", "{{.Status.State}}", &wid]);
    assert_eq!(ls.trim(), "ready");
    w.docker_ok(&["swarm", "leave"]);
    support::eventually(
        std::time::Duration::from_secs(10),
        "the worker down",
        || {
            let s = m.docker_ok(&["node", "inspect", "--format", "{{.Status.State}}", &wid]);
            (s.trim() == "down").then_some(())
        },
    );
}
