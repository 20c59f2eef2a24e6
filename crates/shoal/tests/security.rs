//! Security of the cluster's own machinery, through the docker CLI and raw node-to-node
//! calls: node identity is the cluster's (a join never claims, replaces or takes over another
//! node), a joining node takes no manager's call, a removed node's certificate stops working,
//! secret data that changed is refused before it reaches the Raft log, and a node's secret
//! files live in a directory of the daemon's own that no planted link redirects.

mod support;

use std::time::Duration;
use support::{
    engine_ok, eventually, files_under, new_csr, tcp_post, test_image, tls_post, ClientCert,
    Daemon, ENGINE_SOCKET,
};

const WAIT: Duration = Duration::from_secs(60);

fn json_of(answer: &str) -> serde_json::Value {
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("no JSON ({e}) in: {answer}"))
}

/// A join's body with a CSR for a new key (returned with it).
fn join_body(token: &str, claimed_id: &str) -> (String, String) {
    let (key, csr) = new_csr();
    // `node_id`/`raft_id` are what a node used to choose for itself; they must be ignored.
    let body = serde_json::json!({
        "token": token, "node_id": claimed_id, "raft_id": 1, "addr": "127.0.0.1:9",
        "availability": null, "description": {}, "csr": csr,
    });
    (body.to_string(), key)
}

fn heartbeat(addr: &str, cert: &ClientCert, node_id: &str, secret: &str) -> (u16, String) {
    let body = format!(r#"{{"node_id":"{node_id}","raft_running":false,"description":null}}"#);
    tls_post(
        addr,
        "/internal/heartbeat",
        Some(cert),
        Some(&format!("{node_id}:{secret}")),
        &body,
    )
}

#[test]
fn a_join_gets_a_fresh_identity_from_the_leader_and_never_takes_over_a_node() {
    let m = Daemon::start("ident");
    m.init();
    let mid = m.node_id();
    let token = m.docker_ok(&["swarm", "join-token", "-q", "worker"]);
    let token = token.trim();

    // A worker token, claiming the manager's node ID: the leader assigns another one.
    let (body, key) = join_body(token, &mid);
    let (status, answer) = tcp_post(&m.addr(), "/internal/join", None, &body);
    assert_eq!(status, 200, "{answer}");
    let resp = json_of(&answer);
    let cert = ClientCert {
        cert_pem: resp["certificate"].as_str().unwrap().to_string(),
        key_pem: key,
    };
    let new_id = resp["node_id"].as_str().unwrap_or_default().to_string();
    assert!(!new_id.is_empty() && new_id != mid, "{resp}");
    assert_eq!(resp["role"], "worker", "{resp}");
    assert!(resp["keys"].is_null(), "a worker gets no keys: {resp}");
    let secret = resp["node_secret"].as_str().unwrap().to_string();

    // The manager is untouched: still the leader, a manager, at its own address.
    let me = m.inspect("node", &mid);
    assert_eq!(me["Spec"]["Role"], "manager", "{me}");
    assert_eq!(me["ManagerStatus"]["Leader"], true, "{me}");
    assert_eq!(me["ManagerStatus"]["Addr"], m.addr().as_str(), "{me}");
    // The secret it got is the new node's own, worth nothing for the manager's ID.
    let (status, answer) = heartbeat(&m.addr(), &cert, &mid, &secret);
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = heartbeat(&m.addr(), &cert, &new_id, &secret);
    assert_eq!(status, 200, "{answer}");

    // Joining again is another node, never the same one.
    let (status, answer) = tcp_post(
        &m.addr(),
        "/internal/join",
        None,
        &join_body(token, &new_id).0,
    );
    assert_eq!(status, 200, "{answer}");
    let again = json_of(&answer);
    assert_ne!(again["node_id"], new_id.as_str());
    assert_ne!(again["node_id"], mid.as_str());
    assert_ne!(again["raft_id"], resp["raft_id"]);
    let ids = m.docker_ok(&["node", "ls", "-q"]);
    assert_eq!(ids.lines().count(), 3, "{ids}");

    // A token that is almost right admits nobody.
    let mut wrong = token.to_string();
    let last = if wrong.ends_with('0') { "1" } else { "0" };
    wrong.replace_range(wrong.len() - 1.., last);
    let (status, answer) = tcp_post(&m.addr(), "/internal/join", None, &join_body(&wrong, "").0);
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer.contains("A valid join token is necessary"),
        "{answer}"
    );

    // The real join through the CLI still works, and the joined node uses the given ID.
    let w = Daemon::start("ident-w");
    w.join(&m, "manager");
    let wid = w.node_id();
    assert!(![mid.as_str(), new_id.as_str()].contains(&wid.as_str()));
    eventually(WAIT, "the new manager reachable", || {
        let s = m.docker_ok(&[
            "node",
            "inspect",
            "--format",
            "{{if .ManagerStatus}}{{.ManagerStatus.Reachability}}{{end}}",
            &wid,
        ]);
        (s.trim() == "reachable").then_some(())
    });
    let on_new = w.docker_ok(&["node", "ls", "-q"]);
    assert!(on_new.contains(&mid) && on_new.contains(&wid), "{on_new}");
}

#[test]
fn a_node_that_is_joining_takes_no_managers_call() {
    let d = Daemon::start("joining");
    // A "manager" that accepts the join call and never answers: the node stays joining.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let remote = blackhole.local_addr().unwrap().to_string();
    let held = std::thread::spawn(move || {
        let (conn, _) = blackhole.accept().unwrap();
        std::thread::sleep(Duration::from_secs(4));
        drop(conn);
    });
    let token = format!("SWMTKN-1-{}-{}", "0".repeat(50), "0".repeat(25));
    let addr = d.addr();
    let joiner = std::thread::scope(|s| {
        let join = s.spawn(|| {
            d.docker(&[
                "swarm",
                "join",
                "--token",
                &token,
                "--advertise-addr",
                &addr,
                "--listen-addr",
                &addr,
                &remote,
            ])
        });
        // Its node-to-node port is up while it waits for the answer.
        eventually(Duration::from_secs(3), "the joining node's port", || {
            std::net::TcpStream::connect(&addr).ok().map(|_| ())
        });
        for path in [
            "/internal/raft/prevote",
            "/internal/raft/vote",
            "/internal/propose",
        ] {
            for bearer in [None, Some("anything")] {
                // It holds no certificate yet: its port has no TLS to offer, and closes.
                let (status, answer) = tcp_post(&addr, path, bearer, "null");
                assert!(
                    status == 0 || status == 403 || status == 503,
                    "{path} with {bearer:?} while joining: {answer}"
                );
            }
        }
        join.join().unwrap()
    });
    held.join().unwrap();
    assert!(!joiner.status.success(), "the join should fail");
    let state = d.docker_ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    assert_eq!(state.trim(), "inactive");
}

#[test]
fn a_removed_nodes_certificate_and_credential_stop_working_at_once() {
    let m = Daemon::start("rm-m");
    m.init();
    let mut w = Daemon::start("rm-w");
    w.join(&m, "worker");
    let wid = w.node_id();
    let identity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.data_dir().join("node.json")).unwrap()).unwrap();
    let secret = identity["secret"].as_str().unwrap().to_string();
    assert_eq!(identity["node_id"], wid.as_str());
    let cred = format!("{wid}:{secret}");
    let cert = w.client_cert();
    let assignments = format!(r#"{{"node_id":"{wid}","digest":""}}"#);
    let (status, answer) = tls_post(
        &m.addr(),
        "/internal/assignments",
        Some(&cert),
        Some(&cred),
        &assignments,
    );
    assert_eq!(status, 200, "{answer}");

    // The worker is gone for good (it cannot leave by itself) and removed from the swarm.
    w.kill9();
    m.docker_ok(&["node", "rm", "--force", &wid]);

    let (status, answer) = tls_post(
        &m.addr(),
        "/internal/assignments",
        Some(&cert),
        Some(&cred),
        &assignments,
    );
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("not part of this swarm"), "{answer}");
    let status_report = format!(r#"{{"node_id":"{wid}","reports":[]}}"#);
    let (status, answer) = tls_post(
        &m.addr(),
        "/internal/task-status",
        Some(&cert),
        Some(&cred),
        &status_report,
    );
    assert_eq!(status, 403, "{answer}");
    let net_view = format!(r#"{{"node_id":"{wid}","digest":""}}"#);
    let (status, answer) = tls_post(
        &m.addr(),
        "/internal/net-view",
        Some(&cert),
        Some(&cred),
        &net_view,
    );
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = tls_post(
        &m.addr(),
        "/internal/leave",
        Some(&cert),
        Some(&cred),
        &format!(r#"{{"node_id":"{wid}"}}"#),
    );
    assert_eq!(status, 403, "{answer}");
    // Its heartbeat learns that it was removed, and nothing else.
    let (status, answer) = heartbeat(&m.addr(), &cert, &wid, &secret);
    assert_eq!(status, 200, "{answer}");
    let hb = json_of(&answer);
    assert_eq!(hb["removed"], true, "{hb}");
    assert_eq!(hb["managers"], serde_json::json!([]), "{hb}");
    assert!(hb["keys"].is_null(), "{hb}");
}

fn holds(path: &std::path::Path, needles: &[&str]) -> bool {
    let bytes = std::fs::read(path).unwrap_or_default();
    needles
        .iter()
        .any(|n| bytes.windows(n.len()).any(|w| w == n.as_bytes()))
}

#[test]
fn changed_secret_data_is_refused_before_anything_is_proposed() {
    let m = Daemon::start("secret-upd");
    m.init();
    let old = "0ld-s3cret-of-the-app-4c1d";
    let new = "n3w-s3cret-never-stored-9e2b";
    let new_b64 = "bjN3LXMzY3JldC1uZXZlci1zdG9yZWQtOWUyYg==";
    let body = format!(
        r#"{{"Name":"api-key","Data":"{}"}}"#,
        "MGxkLXMzY3JldC1vZi10aGUtYXBwLTRjMWQ="
    );
    let (status, answer) = m
        .http("POST", "/v1.41/secrets/create", Some(body.as_bytes()))
        .unwrap();
    assert_eq!(status, 201, "{answer}");
    let id = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let version = |m: &Daemon| {
        m.inspect("secret", &id)["Version"]["Index"]
            .as_u64()
            .unwrap()
    };

    let v = version(&m);
    let update = format!(r#"{{"Name":"api-key","Data":"{new_b64}"}}"#);
    let (status, answer) = m
        .http(
            "POST",
            &format!("/v1.41/secrets/{id}/update?version={v}"),
            Some(update.as_bytes()),
        )
        .unwrap();
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains("only updates to Labels are allowed"),
        "{answer}"
    );
    // Nothing was committed: the version did not move.
    assert_eq!(version(&m), v);
    // A new name is refused the same way; labels alone, and the same data again, are fine.
    let (status, answer) = m
        .http(
            "POST",
            &format!("/v1.41/secrets/{id}/update?version={v}"),
            Some(br#"{"Name":"renamed"}"#),
        )
        .unwrap();
    assert_eq!(status, 400, "{answer}");
    let same = format!(
        r#"{{"Name":"api-key","Labels":{{"tier":"db"}},"Data":"{}"}}"#,
        "MGxkLXMzY3JldC1vZi10aGUtYXBwLTRjMWQ="
    );
    let (status, answer) = m
        .http(
            "POST",
            &format!("/v1.41/secrets/{id}/update?version={v}"),
            Some(same.as_bytes()),
        )
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(m.inspect("secret", &id)["Spec"]["Labels"]["tier"], "db");

    // Neither the refused data nor the old one is in any file of the data dir (Raft log
    // included), in plaintext or base64.
    for f in files_under(&m.data_dir()) {
        assert!(
            !holds(&f, &[new, new_b64, old]),
            "{} holds secret data",
            f.display()
        );
    }
}

#[test]
fn a_nodes_secret_files_live_in_a_private_directory_no_planted_link_redirects() {
    let image = test_image();
    let m = Daemon::start_with_engine("secret-files", ENGINE_SOCKET);
    m.init();
    let node = m.node_id();
    // Where secrets used to go, predictably: a link planted there must not be followed.
    let bait = tempfile::tempdir().unwrap();
    let old_path = std::path::PathBuf::from(format!("/dev/shm/shoal-{node}"));
    let _ = std::fs::remove_file(&old_path);
    std::os::unix::fs::symlink(bait.path(), &old_path).unwrap();
    struct Unplant(std::path::PathBuf);
    impl Drop for Unplant {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _unplant = Unplant(old_path.clone());

    let value = "t4sk-s3cret-on-the-node-51ab";
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("v"), value).unwrap();
    m.docker_ok(&[
        "secret",
        "create",
        "node-key",
        src.path().join("v").to_str().unwrap(),
    ]);
    let svc = format!("sfiles{}", std::process::id());
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--stop-grace-period",
        "1s",
        "--name",
        &svc,
        "--secret",
        "source=node-key,target=key,mode=0400",
        image,
        "sleep",
        "100000",
    ]);
    let container = eventually(WAIT, "a running container", || {
        let out = engine_ok(&[
            "ps",
            "--filter",
            &format!("label=com.docker.swarm.service.name={svc}"),
            "--filter",
            "status=running",
            "--format",
            "{{.ID}}",
        ]);
        out.lines().next().map(str::to_string)
    });
    let source = engine_ok(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{if eq .Destination \"/run/secrets/key\"}}{{.Source}}{{end}}{{end}}",
        &container,
    ]);
    let source = std::path::PathBuf::from(source.trim());
    let root = m
        .secrets_dir()
        .expect("the daemon records its secrets directory");
    assert!(
        source.starts_with(&root),
        "{} not under {}",
        source.display(),
        root.display()
    );
    assert!(!source.starts_with(&old_path));
    assert_eq!(
        std::fs::read_dir(bait.path()).unwrap().count(),
        0,
        "the planted link was followed"
    );
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::symlink_metadata(&source).unwrap();
    assert!(file.file_type().is_file());
    assert_eq!(file.mode() & 0o7777, 0o400);
    for dir in [root.clone(), source.parent().unwrap().to_path_buf()] {
        let meta = std::fs::symlink_metadata(&dir).unwrap();
        assert!(meta.file_type().is_dir(), "{}", dir.display());
        assert_eq!(meta.mode() & 0o7777, 0o700, "{}", dir.display());
    }
    let inside = engine_ok(&["exec", &container, "cat", "/run/secrets/key"]);
    assert_eq!(inside, value);
    // On a tmpfs of the daemon's own (not /dev/shm's), nosuid, nodev, noexec.
    let mount = own_mount(&root).expect("a tmpfs mounted on the secrets directory");
    assert!(mount.contains(" - tmpfs "), "{mount}");
    for option in ["nosuid", "nodev", "noexec"] {
        assert!(mount.contains(option), "{option}: {mount}");
    }

    // The task goes: no plaintext is left on the node.
    m.docker_ok(&["service", "rm", &svc]);
    eventually(WAIT, "the task's secret files to go", || {
        (!source.exists()).then_some(())
    });
    for f in files_under(&root)
        .into_iter()
        .chain(files_under(&m.data_dir()))
    {
        assert!(!holds(&f, &[value]), "{} holds the secret", f.display());
    }
    assert_eq!(std::fs::read_dir(bait.path()).unwrap().count(), 0);
    // The last task with secrets gone, the tmpfs goes too.
    eventually(WAIT, "the secrets tmpfs unmounted", || {
        own_mount(&root).is_none().then_some(())
    });
}

/// The line of /proc/self/mountinfo of what is mounted on `dir`, if anything.
fn own_mount(dir: &std::path::Path) -> Option<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .find(|l| l.split(' ').nth(4) == dir.to_str())
        .map(str::to_string)
}
