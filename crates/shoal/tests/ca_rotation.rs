//! Root CA rotation without downtime, as Docker Swarm does it: `docker swarm ca --rotate`
//! (a new root made by the swarm) and `--rotate --ca-cert --ca-key` (a root of the
//! operator's) move every node to a certificate of the new root while tasks keep running and
//! Raft keeps committing; then the new root is the only one trusted, with new join tokens. A
//! down node holds the rotation until it is back; a manager restarted mid-rotation under
//! autolock comes back with the new root's key wrapped like the rest.

mod support;

use shoal_manager::ca;
use shoal_manager::identity::{Files, StoredKeys};
use shoal_manager::keys::Kek;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{
    eventually, files_under, running_containers, stderr_of, stdout_of, test_image, tls_post,
    ClientCert, Daemon, ENGINE_SOCKET,
};

const WAIT: Duration = Duration::from_secs(90);

/// Runs the docker CLI against `d`, killed after `secs` (a rotation that never converges
/// fails the test instead of hanging it).
fn docker_within(d: &Daemon, secs: u32, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg(secs.to_string())
        .arg("docker")
        .args(args)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CLI_HINTS", "false")
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run docker")
}

/// `GET /swarm`, as the docker CLI reads it.
fn swarm_of(d: &Daemon) -> serde_json::Value {
    let (status, body) = d.http("GET", "/swarm", None).expect("GET /swarm");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// The certificate PEM block at the end of what `docker swarm ca` printed.
fn root_in(printed: &str) -> String {
    let start = printed
        .rfind("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("no certificate in:\n{printed}"));
    printed[start..].trim().to_string()
}

fn same_cert(a: &str, b: &str) -> bool {
    shoal_raft::tls::cert_der(a).unwrap() == shoal_raft::tls::cert_der(b).unwrap()
}

/// A node's certificate and trust root, as it keeps them in `node.json`.
fn node_cert(d: &Daemon) -> (String, String) {
    let identity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.data_dir().join("node.json")).unwrap()).unwrap();
    let cert = &identity["cert"];
    (
        cert["cert_pem"].as_str().unwrap().to_string(),
        cert["ca_pem"].as_str().unwrap().to_string(),
    )
}

/// What `docker node inspect` shows of every node's TLS: (trust root, issuer public key).
fn nodes_tls(m: &Daemon) -> Vec<(String, String)> {
    let ids = m.docker_ok(&["node", "ls", "-q"]);
    ids.lines()
        .map(|id| {
            let n = m.inspect("node", id);
            let tls = &n["Description"]["TLSInfo"];
            (
                tls["TrustRoot"].as_str().unwrap_or_default().to_string(),
                tls["CertIssuerPublicKey"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// Raft writes made from `m` in a loop until stopped: one new config each.
struct Writer {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(m: &Daemon) -> Writer {
        let host = m.host();
        let file = m.dir.path().join("config-data");
        std::fs::write(&file, "written during a root rotation").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let (s, d, f) = (stop.clone(), done.clone(), failures.clone());
        let thread = std::thread::spawn(move || {
            let mut i = 0;
            while !s.load(Ordering::SeqCst) {
                i += 1;
                let out = Command::new("docker")
                    .args(["config", "create"])
                    .arg(format!("rotation-write-{i}"))
                    .arg(&file)
                    .env("DOCKER_HOST", &host)
                    .env_remove("DOCKER_CONTEXT")
                    .stdin(Stdio::null())
                    .output()
                    .expect("docker");
                if out.status.success() {
                    d.fetch_add(1, Ordering::SeqCst);
                } else {
                    f.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&out.stderr).into_owned());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Writer {
            stop,
            done,
            failures,
            thread: Some(thread),
        }
    }

    /// Stops writing; how many writes were committed, and the failures.
    fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.done.load(Ordering::SeqCst), failures)
    }
}

#[test]
fn rotating_the_root_ca_keeps_tasks_and_raft_running_and_moves_every_node_to_the_new_root() {
    test_image();
    let m1 = Daemon::start_with_engine("rot-m1", ENGINE_SOCKET);
    m1.init();
    let m2 = Daemon::start("rot-m2");
    m2.join(&m1, "manager");
    let m3 = Daemon::start("rot-m3");
    m3.join(&m1, "manager");
    let w = Daemon::start_with_engine("rot-w", ENGINE_SOCKET);
    w.join(&m1, "worker");
    let nodes = [&m1, &m2, &m3, &w];
    eventually(WAIT, "four ready nodes", || {
        let ls = m1.docker_ok(&["node", "ls", "--format", "{{.Status}}"]);
        (ls.lines().filter(|l| *l == "Ready").count() == 4).then_some(())
    });
    let svc = format!("rot{}", std::process::id());
    m1.create_sleeping_service(
        &svc,
        &["--replicas", "2", "--constraint", "node.role==worker"],
    );
    let before = eventually(WAIT, "two running tasks", || {
        let ids = running_containers(&svc);
        (ids.len() == 2).then_some(ids)
    });
    let old_root = root_in(&m1.docker_ok(&["swarm", "ca"]));
    let old_worker_token = m1.docker_ok(&["swarm", "join-token", "-q", "worker"]);
    let old_cert: ClientCert = w.client_cert();
    // With its certificate of the old root the worker is let in now (what it may call is
    // another matter: no credential here).
    let (status, answer) = tls_post(
        &m1.addr(),
        "/internal/heartbeat",
        Some(&old_cert),
        None,
        "{}",
    );
    assert_ne!(status, 0, "{answer}");

    let writer = Writer::start(&m2);
    // Without --detach the CLI follows the rotation (node TLS info, RootRotationInProgress)
    // until every node has a certificate and trust root of the new root, then prints it.
    let out = docker_within(&m1, 180, &["swarm", "ca", "--rotate"]);
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert!(
        out.status.success(),
        "swarm ca --rotate failed:\n{stdout}\n{stderr}"
    );
    let (writes, failures) = writer.finish();
    assert!(
        failures.is_empty(),
        "Raft writes failed during the rotation: {failures:?}"
    );
    assert!(writes > 0, "no Raft write went through during the rotation");

    let new_root = root_in(&stdout);
    assert!(!same_cert(&new_root, &old_root), "the root did not change");
    let swarm = swarm_of(&m1);
    assert_eq!(swarm["RootRotationInProgress"], false, "{swarm}");
    assert!(same_cert(
        swarm["TLSInfo"]["TrustRoot"].as_str().unwrap(),
        &new_root
    ));
    assert!(same_cert(
        &root_in(&m2.docker_ok(&["swarm", "ca"])),
        &new_root
    ));
    // `docker node inspect`: every node trusts the new root and holds a certificate it issued.
    let want_key = swarm["TLSInfo"]["CertIssuerPublicKey"]
        .as_str()
        .unwrap()
        .to_string();
    for (trust_root, issuer_key) in nodes_tls(&m1) {
        assert!(same_cert(&trust_root, &new_root));
        assert_eq!(issuer_key, want_key);
    }
    // And on their disks: every certificate chains to the new root, the only one trusted.
    for d in nodes {
        let (cert, ca_pem) = node_cert(d);
        assert!(same_cert(&ca_pem, &new_root), "{}", d.name);
        assert!(ca::issued_by(&cert, &ca_pem, &new_root), "{}", d.name);
    }

    // `docker info` on another manager shows the new root too.
    let info_root = m2.docker_ok(&["info", "--format", "{{.Swarm.Cluster.TLSInfo.TrustRoot}}"]);
    assert!(same_cert(&info_root, &new_root), "{info_root}");

    // The tasks ran on: the same containers, still running; no node dropped.
    assert_eq!(running_containers(&svc), before);
    let ls = m1.docker_ok(&["node", "ls", "--format", "{{.Status}}"]);
    assert_eq!(ls.lines().filter(|l| *l == "Ready").count(), 4, "{ls}");

    // A certificate of the old root opens nothing any more.
    let (status, answer) = tls_post(
        &m1.addr(),
        "/internal/heartbeat",
        Some(&old_cert),
        None,
        "{}",
    );
    assert_eq!(status, 0, "an old-root certificate was let in: {answer}");
    let (status, answer) = tls_post(
        &m1.addr(),
        "/internal/heartbeat",
        Some(&w.client_cert()),
        None,
        "{}",
    );
    assert_ne!(status, 0, "{answer}");

    // The join tokens carry the new root's digest: an old one is refused, a new one works.
    let new_worker_token = m1.docker_ok(&["swarm", "join-token", "-q", "worker"]);
    assert_ne!(new_worker_token.trim(), old_worker_token.trim());
    let late = Daemon::start("rot-late");
    let err = late.docker_err(&[
        "swarm",
        "join",
        "--token",
        old_worker_token.trim(),
        "--advertise-addr",
        &late.addr(),
        "--listen-addr",
        &late.addr(),
        &m1.addr(),
    ]);
    assert!(err.contains("root CA does not match"), "{err}");
    late.join(&m1, "worker");
    let (cert, ca_pem) = node_cert(&late);
    assert!(same_cert(&ca_pem, &new_root));
    assert!(ca::issued_by(&cert, &ca_pem, &new_root));
    m1.docker_ok(&["service", "rm", &svc]);
}

/// A root CA made with openssl, as an operator would: (certificate, PKCS#8 key) files.
fn openssl_root(dir: &std::path::Path, name: &str, ca: bool) -> (String, String) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let constraints = if ca {
        "basicConstraints=critical,CA:TRUE"
    } else {
        "basicConstraints=critical,CA:FALSE"
    };
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650"])
        .args(["-subj", &format!("/O=example/CN={name}")])
        .args(["-addext", constraints])
        .args([
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

/// An expired CA certificate with its key, made with rcgen.
fn expired_root(dir: &std::path::Path) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2001, 1, 1);
    params.not_after = rcgen::date_time_ymd(2002, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join("expired.crt"), dir.join("expired.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (
        c.to_string_lossy().into_owned(),
        k.to_string_lossy().into_owned(),
    )
}

#[test]
fn rotating_to_a_given_root_ca_uses_it_and_bad_ones_are_refused_with_the_reason() {
    let m = Daemon::start("given-m");
    m.init();
    let w = Daemon::start("given-w");
    w.join(&m, "worker");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_root(dir.path(), "my-root", true);
    let (other_cert, _) = openssl_root(dir.path(), "other-root", true);
    let (leaf_cert, leaf_key) = openssl_root(dir.path(), "not-a-ca", false);
    let (old_cert, old_key) = expired_root(dir.path());
    let old_root = root_in(&m.docker_ok(&["swarm", "ca"]));
    let version = swarm_of(&m)["Version"]["Index"].clone();

    let refused = |c: &str, k: &str, why: &str| {
        let err = m.docker_err(&["swarm", "ca", "--rotate", "--ca-cert", c, "--ca-key", k]);
        assert!(err.contains(why), "expected `{why}` in:\n{err}");
    };
    refused(&other_cert, &key, "does not match the CA certificate");
    refused(&leaf_cert, &leaf_key, "is not a CA certificate");
    refused(&old_cert, &old_key, "expired");
    refused(&cert, &cert, "--ca-key");
    // Nothing changed for any of them.
    let swarm = swarm_of(&m);
    assert_eq!(swarm["Version"]["Index"], version);
    assert_eq!(swarm["RootRotationInProgress"], false);
    // External CAs stay refused, with what to do.
    let err = m.docker_err(&[
        "swarm",
        "update",
        "--external-ca",
        "protocol=cfssl,url=https://ca.example.com",
    ]);
    assert!(err.contains("external CAs"), "{err}");

    // The key as `openssl ec` writes it (SEC1, `BEGIN EC PRIVATE KEY`), which Docker takes too.
    let sec1_key = dir.path().join("my-root.sec1.key");
    let out = Command::new("openssl")
        .args(["ec", "-in", &key, "-out"])
        .arg(&sec1_key)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let sec1 = std::fs::read_to_string(&sec1_key).unwrap();
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{sec1}");
    let out = docker_within(
        &m,
        180,
        &[
            "swarm",
            "ca",
            "--rotate",
            "--ca-cert",
            &cert,
            "--ca-key",
            sec1_key.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let given = std::fs::read_to_string(&cert).unwrap();
    assert!(same_cert(&root_in(&stdout), &given), "{stdout}");
    assert!(!same_cert(&given, &old_root));
    // Neither the key nor the certificate given is kept in the spec.
    let swarm = swarm_of(&m);
    assert!(
        swarm["Spec"]["CAConfig"].get("SigningCAKey").is_none(),
        "{swarm}"
    );
    assert!(
        swarm["Spec"]["CAConfig"].get("SigningCACert").is_none(),
        "{swarm}"
    );
    for d in [&m, &w] {
        let (c, ca_pem) = node_cert(d);
        assert!(same_cert(&ca_pem, &given), "{}", d.name);
        assert!(ca::issued_by(&c, &ca_pem, &given), "{}", d.name);
    }
    // The same root again is no rotation; with a key that is not its own it is refused.
    m.docker_ok(&[
        "swarm",
        "ca",
        "--rotate",
        "--detach",
        "--ca-cert",
        &cert,
        "--ca-key",
        &key,
    ]);
    assert_eq!(swarm_of(&m)["RootRotationInProgress"], false);
    let (_, stray_key) = openssl_root(dir.path(), "stray", true);
    refused(&cert, &stray_key, "does not match the CA certificate");
    // The manager signs with the given key from now on: a node that joins gets a certificate
    // of the given root.
    let late = Daemon::start("given-late");
    late.join(&m, "worker");
    let (c, ca_pem) = node_cert(&late);
    assert!(same_cert(&ca_pem, &given));
    assert!(ca::issued_by(&c, &ca_pem, &given));
}

/// The root CA a manager's `keys.json` holds, opened with the unlock key: (certificate, key).
fn disk_root_with(d: &Daemon, unlock_key: &str) -> (String, String) {
    let kek = Kek::from_unlock_key(unlock_key).unwrap();
    match Files::new(&d.data_dir()).load_keys().unwrap() {
        Some(StoredKeys::Locked(l)) => {
            let ca = l.unlock(&kek).unwrap().ca.unwrap();
            (ca.cert_pem.clone(), ca.expose_key_pem().to_string())
        }
        _ => panic!("{}: the keys open without the unlock key", d.name),
    }
}

#[test]
fn a_down_manager_holds_the_rotation_and_once_back_and_unlocked_it_ends_with_the_key_wrapped() {
    let m1 = Daemon::start("rotlock-m1");
    let printed = m1.init_with(&["--autolock"]);
    let unlock_key = printed
        .split_whitespace()
        .find(|w| w.starts_with("SWMKEY-1-"))
        .unwrap()
        .to_string();
    let m2 = Daemon::start("rotlock-m2");
    m2.join(&m1, "manager");
    let mut m3 = Daemon::start("rotlock-m3");
    m3.join(&m1, "manager");
    eventually(WAIT, "three ready managers", || {
        let ls = m1.docker_ok(&["node", "ls", "--format", "{{.Status}}"]);
        (ls.lines().filter(|l| *l == "Ready").count() == 3).then_some(())
    });
    // A joined manager wraps its keys with the unlock key once it sees autolock in the state.
    eventually(WAIT, "m3's keys wrapped by the unlock key", || {
        matches!(
            Files::new(&m3.data_dir()).load_keys(),
            Ok(Some(StoredKeys::Locked(_)))
        )
        .then_some(())
    });
    let old_root = root_in(&m1.docker_ok(&["swarm", "ca"]));
    m3.kill9();
    m1.docker_ok(&["swarm", "ca", "--rotate", "--detach"]);
    let swarm = swarm_of(&m1);
    assert_eq!(swarm["RootRotationInProgress"], true, "{swarm}");
    // The managers that run move to the new root; the down one holds the rotation (Swarm:
    // every node of the swarm must have a new certificate; remove one that is gone).
    let (m1_id, m2_id) = (m1.node_id(), m2.node_id());
    eventually(WAIT, "the running managers on the new root", || {
        [&m1_id, &m2_id]
            .iter()
            .all(|id| {
                let (cert, ca_pem) = node_cert(if *id == &m1_id { &m1 } else { &m2 });
                !ca::issued_by(&cert, &ca_pem, &old_root)
            })
            .then_some(())
    });
    let swarm = swarm_of(&m1);
    assert_eq!(swarm["RootRotationInProgress"], true, "{swarm}");
    // Mid-rotation, the managers on certificates of the new root (presented with the
    // cross-signed root) and trusting the old one still commit together.
    let data = m2.dir.path().join("config-data");
    std::fs::write(&data, "mid-rotation").unwrap();
    m2.docker_ok(&["config", "create", "mid-rotation", data.to_str().unwrap()]);
    assert!(same_cert(
        swarm["TLSInfo"]["TrustRoot"].as_str().unwrap(),
        &old_root
    ));

    // Back, locked, unlocked: it renews, and the rotation ends.
    m3.restart();
    let out = m3.docker_stdin(&["swarm", "unlock"], &format!("{unlock_key}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_root = eventually(WAIT, "the rotation to end", || {
        let swarm = swarm_of(&m1);
        (swarm["RootRotationInProgress"] == false)
            .then(|| swarm["TLSInfo"]["TrustRoot"].as_str().unwrap().to_string())
    });
    assert!(!same_cert(&new_root, &old_root));
    // Every manager keeps the new root's key, wrapped by the unlock key, in clear nowhere.
    for d in [&m1, &m2, &m3] {
        let (cert, key) = eventually(WAIT, "the new root in keys.json", || {
            let (cert, key) = disk_root_with(d, &unlock_key);
            same_cert(&cert, &new_root).then_some((cert, key))
        });
        assert!(same_cert(&cert, &new_root));
        for f in files_under(&d.data_dir()) {
            let bytes = std::fs::read(&f).unwrap_or_default();
            for line in key
                .lines()
                .filter(|l| !l.starts_with("-----") && l.len() > 16)
            {
                assert!(
                    !bytes.windows(line.len()).any(|w| w == line.as_bytes()),
                    "{}: {} holds the root CA key in clear",
                    d.name,
                    f.display()
                );
            }
        }
        let (c, ca_pem) = node_cert(d);
        assert!(ca::issued_by(&c, &ca_pem, &new_root), "{}", d.name);
    }
    // The restarted manager works on: a write through it commits.
    m3.docker_ok(&["node", "update", "--label-add", "back=yes", &m2_id]);
}
