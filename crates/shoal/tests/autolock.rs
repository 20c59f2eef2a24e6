//! Keys at rest and autolock, through the docker CLI: `swarm init --autolock`, `swarm
//! unlock-key [--rotate]`, `swarm update --autolock`, a restarted manager that stays locked
//! until `swarm unlock` gives the right key, and no data key in clear on any disk.

mod support;

use base64::Engine;
use shoal_manager::identity::{Files, StoredKeys};
use shoal_manager::keys::Kek;
use std::path::Path;
use std::time::Duration;
use support::{eventually, files_under, three_managers, Daemon};

const LOCKED: &str = "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it.";
const WRONG_KEY: &str = "swarm could not be unlocked: invalid key provided";

/// The `SWMKEY-1-…` word in what the docker CLI printed.
fn unlock_key_in(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("SWMKEY-1-"))
        .unwrap_or_else(|| panic!("no unlock key in:\n{text}"))
        .to_string()
}

/// Fails the test if any file of `dir` holds `key` as bytes, hex or base64.
fn assert_nowhere(dir: &Path, key: &[u8; 32], what: &str) {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(key);
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key);
    let needles: Vec<Vec<u8>> = vec![
        key.to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
        b64.into_bytes(),
        b64url.into_bytes(),
    ];
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for n in &needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_slice()),
                "{} holds {what} ({} bytes of it)",
                f.display(),
                n.len()
            );
        }
    }
}

/// Fails the test if any file of `dir` holds the private key `pem` (its DER as bytes or hex,
/// or a full line of its base64 past the first, which is mostly the algorithm's header).
fn assert_pem_nowhere(dir: &Path, pem: &str, what: &str) {
    let lines: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(lines.concat())
        .unwrap();
    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
    let mut needles: Vec<Vec<u8>> = vec![der, hex.into_bytes()];
    needles.extend(
        lines
            .iter()
            .skip(1)
            .filter(|l| l.len() >= 32)
            .map(|l| l.as_bytes().to_vec()),
    );
    assert!(needles.len() > 2, "{what}: no line of the key to look for");
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for n in &needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_slice()),
                "{} holds {what} ({} bytes of it)",
                f.display(),
                n.len()
            );
        }
    }
}

/// The root CA's private key of a manager (PEM), opened from its disk with the unlock key.
fn ca_key_with(d: &Daemon, unlock_key: &str) -> String {
    let kek = Kek::from_unlock_key(unlock_key).unwrap();
    match Files::new(&d.data_dir()).load_keys().unwrap() {
        Some(StoredKeys::Locked(l)) => l
            .unlock(&kek)
            .unwrap_or_else(|e| panic!("{}: the disk does not open with {unlock_key}: {e}", d.name))
            .ca
            .unwrap_or_else(|| panic!("{}: keys.json holds no root CA", d.name))
            .expose_key_pem()
            .to_string(),
        _ => panic!("{}: the keys open without the unlock key", d.name),
    }
}

/// The data key of a manager, opened from its disk with the unlock key (as a thief with the
/// key could); also proves the disk is wrapped by exactly that key.
fn data_key_with(d: &Daemon, unlock_key: &str) -> [u8; 32] {
    let kek = Kek::from_unlock_key(unlock_key).unwrap();
    match Files::new(&d.data_dir()).load_keys().unwrap() {
        Some(StoredKeys::Locked(l)) => *l
            .unlock(&kek)
            .unwrap_or_else(|e| panic!("{}: the disk does not open with {unlock_key}: {e}", d.name))
            .data_key
            .expose_bytes(),
        Some(StoredKeys::Open(..)) => {
            panic!("{}: the data key opens without the unlock key", d.name)
        }
        None => panic!("{}: no keys.json", d.name),
    }
}

/// A manager's own TLS private key (PEM), opened from its disk with the unlock key: sealed with
/// the data key in its `node.json`.
fn tls_key_with(d: &Daemon, unlock_key: &str) -> String {
    let kek = Kek::from_unlock_key(unlock_key).unwrap();
    let files = Files::new(&d.data_dir());
    let Some(StoredKeys::Locked(l)) = files.load_keys().unwrap() else {
        panic!("{}: the keys open without the unlock key", d.name);
    };
    let keys = l.unlock(&kek).unwrap();
    let sealed = files.load_identity().unwrap().expect("node.json");
    assert!(
        sealed.cert.as_ref().unwrap().key_pem.is_empty(),
        "{}: node.json holds the TLS key in clear",
        d.name
    );
    let opened = files.open_identity(sealed, &keys.data_key).unwrap();
    opened.cert.unwrap().key_pem
}

/// Whether this manager's disk is wrapped by `unlock_key` now.
fn wrapped_by(d: &Daemon, unlock_key: &str) -> bool {
    let kek = Kek::from_unlock_key(unlock_key).unwrap();
    matches!(
        Files::new(&d.data_dir()).load_keys(),
        Ok(Some(StoredKeys::Locked(l))) if l.unlock(&kek).is_ok()
    )
}

fn local_state(d: &Daemon) -> String {
    d.docker_ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"])
        .trim()
        .to_string()
}

fn unlock(d: &Daemon, key: &str) -> std::process::Output {
    d.docker_stdin(&["swarm", "unlock"], &format!("{key}\n"))
}

fn assert_unlock_refused(d: &Daemon, key: &str) {
    let out = unlock(d, key);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}: a wrong key unlocked", d.name);
    assert!(err.contains(WRONG_KEY), "{}: {err}", d.name);
    assert_eq!(local_state(d), "locked");
}

fn assert_unlocks(d: &Daemon, key: &str) {
    let out = unlock(d, key);
    assert!(
        out.status.success(),
        "{}: unlock failed: {}{}",
        d.name,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(
        Duration::from_secs(20),
        "the unlocked manager answers",
        || d.docker(&["node", "ls"]).status.success().then_some(()),
    );
    assert_eq!(local_state(d), "active");
}

fn assert_locked(d: &Daemon) {
    assert_eq!(local_state(d), "locked", "{}", d.name);
    for args in [
        &["service", "ls"][..],
        &["node", "ls"],
        &["secret", "ls"],
        &["swarm", "unlock-key"],
    ] {
        let err = d.docker_err(args);
        assert!(err.contains(LOCKED), "{}: docker {args:?}: {err}", d.name);
    }
    let (status, body) = d.http("GET", "/v1.41/swarm", None).unwrap();
    assert_eq!(status, 503, "{body}");
    // A manager joining or a new swarm is refused while it waits.
    let err = d.docker_err(&["swarm", "init"]);
    assert!(err.contains("already part of a swarm"), "{err}");
}

fn create_objects(d: &Daemon) {
    let file = d.dir.path().join("secret.txt");
    std::fs::write(&file, "autolock-s3cr3t-data").unwrap();
    d.docker_ok(&["secret", "create", "db-password", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    d.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        "web",
        "--replicas",
        "2",
        "--secret",
        "db-password",
        "busybox:latest",
    ]);
}

fn assert_objects(d: &Daemon) {
    let svc = d.inspect("service", "web");
    assert_eq!(svc["Spec"]["Mode"]["Replicated"]["Replicas"], 2, "{svc}");
    let secret = d.inspect("secret", "db-password");
    assert_eq!(secret["Spec"]["Name"], "db-password", "{secret}");
}

#[test]
fn init_with_autolock_prints_a_key_and_a_restarted_manager_stays_locked_until_it_is_given() {
    let mut d = Daemon::start("al1");
    let printed = d.init_with(&["--autolock"]);
    let key = unlock_key_in(&printed);
    assert!(printed.contains("docker swarm unlock"), "{printed}");
    assert_eq!(d.docker_ok(&["swarm", "unlock-key", "-q"]).trim(), key);
    let shown = d.docker_ok(&["swarm", "unlock-key"]);
    assert_eq!(unlock_key_in(&shown), key);
    let (_, body) = d.http("GET", "/v1.41/swarm", None).unwrap();
    let swarm: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        swarm["Spec"]["EncryptionConfig"]["AutoLockManagers"], true,
        "{swarm}"
    );
    assert!(
        !body.contains("SWMKEY") && !body.contains("UnlockKey"),
        "{body}"
    );
    assert!(!d.data_dir().join("keys.kek").exists());
    create_objects(&d);
    let dek = data_key_with(&d, &key);
    let kek = *Kek::from_unlock_key(&key).unwrap().expose_bytes();
    let ca_key = ca_key_with(&d, &key);
    let tls_key = tls_key_with(&d, &key);
    assert_nowhere(&d.data_dir(), &dek, "the data key");
    assert_nowhere(&d.data_dir(), &kek, "the unlock key");
    assert_pem_nowhere(&d.data_dir(), &ca_key, "the root CA's key");
    assert_pem_nowhere(&d.data_dir(), &tls_key, "the manager's TLS key");

    d.restart();
    assert_locked(&d);
    assert_unlock_refused(&d, &Kek::generate().unlock_key());
    let out = unlock(&d, "not-a-key");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid key string"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_nowhere(&d.data_dir(), &dek, "the data key");
    assert_pem_nowhere(&d.data_dir(), &tls_key, "the manager's TLS key");

    assert_unlocks(&d, &key);
    assert_objects(&d);
    // The state is whole: the secret still opens (a task would get it) and writes commit.
    d.docker_ok(&["service", "scale", "--detach", "web=3"]);
    assert_eq!(d.docker_ok(&["swarm", "unlock-key", "-q"]).trim(), key);
    let err = String::from_utf8_lossy(&unlock(&d, &key).stderr).into_owned();
    assert!(err.contains("not locked"), "{err}");
    assert_nowhere(&d.data_dir(), &dek, "the data key");
    assert_nowhere(&d.data_dir(), &kek, "the unlock key");
    // The root CA came back with the data key: it still issues, so a node can join (and the
    // manager's TLS key came back with it: the worker's join is a TLS handshake with it).
    assert_eq!(ca_key_with(&d, &key), ca_key);
    assert_eq!(tls_key_with(&d, &key), tls_key);
    let w = Daemon::start("al1w");
    w.join(&d, "worker");
    assert_pem_nowhere(&d.data_dir(), &ca_key, "the root CA's key");
    assert_pem_nowhere(&d.data_dir(), &tls_key, "the manager's TLS key");
    // A worker has no autolock: its key is in its node.json, as Swarm's workers keep theirs.
    assert!(!w.client_cert().key_pem.is_empty());
}

#[test]
fn a_rotated_unlock_key_replaces_the_old_one_across_restarts() {
    let mut d = Daemon::start("al2");
    let old = unlock_key_in(&d.init_with(&["--autolock"]));
    let dek = data_key_with(&d, &old);
    let printed = d.docker_ok(&["swarm", "unlock-key", "--rotate"]);
    assert!(
        printed.contains("Successfully rotated manager unlock key"),
        "{printed}"
    );
    let new = unlock_key_in(&printed);
    assert_ne!(new, old);
    assert_eq!(d.docker_ok(&["swarm", "unlock-key", "-q"]).trim(), new);
    assert!(
        wrapped_by(&d, &new),
        "the disk is not wrapped by the new key"
    );
    assert!(!wrapped_by(&d, &old));
    for k in [&old, &new] {
        let kek = *Kek::from_unlock_key(k).unwrap().expose_bytes();
        assert_nowhere(&d.data_dir(), &kek, "an unlock key");
    }
    assert_nowhere(&d.data_dir(), &dek, "the data key");

    d.restart();
    assert_locked(&d);
    assert_unlock_refused(&d, &old);
    assert_unlocks(&d, &new);
    assert_nowhere(&d.data_dir(), &dek, "the data key");

    // `-q` prints only the new key.
    let quiet = d.docker_ok(&["swarm", "unlock-key", "--rotate", "-q"]);
    assert!(
        quiet.trim().starts_with("SWMKEY-1-") && !quiet.contains(' '),
        "{quiet}"
    );
    assert_ne!(quiet.trim(), new);
    // shoal's own CLI shows the same key.
    assert_eq!(
        d.shoal_ok(&["swarm", "unlock-key", "-q"]).trim(),
        quiet.trim()
    );

    // A locked manager leaves only with --force, as with Docker.
    d.restart();
    assert_locked(&d);
    let err = d.docker_err(&["swarm", "leave"]);
    assert!(err.contains("Swarm is encrypted and locked"), "{err}");
    d.docker_ok(&["swarm", "leave", "--force"]);
    assert_eq!(local_state(&d), "inactive");
    assert!(!d.data_dir().join("keys.json").exists());
}

#[test]
fn autolock_turned_on_and_off_decides_whether_a_restart_comes_up_locked() {
    let mut d = Daemon::start("al3");
    d.init();
    // Without autolock the data key is wrapped too, by a key in a file of its own.
    assert!(d.data_dir().join("keys.kek").exists());
    let keys = std::fs::read_to_string(d.data_dir().join("keys.json")).unwrap();
    assert!(!keys.contains("\"data_key\""), "{keys}");
    let err = d.docker_err(&["swarm", "unlock-key"]);
    assert!(err.contains("no unlock key is set"), "{err}");
    let err = d.docker_err(&["swarm", "unlock-key", "--rotate"]);
    assert!(err.contains("autolock is not turned on"), "{err}");

    let printed = d.docker_ok(&["swarm", "update", "--autolock=true"]);
    let key = unlock_key_in(&printed);
    assert!(wrapped_by(&d, &key));
    assert!(!d.data_dir().join("keys.kek").exists());
    d.docker_ok(&["secret", "create", "s1", "/etc/hostname"]);
    d.restart();
    assert_locked(&d);
    assert_unlocks(&d, &key);
    d.inspect("secret", "s1");

    d.docker_ok(&["swarm", "update", "--autolock=false"]);
    let err = d.docker_err(&["swarm", "unlock-key"]);
    assert!(err.contains("no unlock key is set"), "{err}");
    assert!(d.data_dir().join("keys.kek").exists());
    let dek = match Files::new(&d.data_dir()).load_keys().unwrap() {
        Some(StoredKeys::Open(k, _)) => *k.data_key.expose_bytes(),
        _ => panic!("autolock off: the keys do not open from the disk"),
    };
    assert_nowhere(&d.data_dir(), &dek, "the data key");
    d.restart();
    assert_eq!(local_state(&d), "active");
    eventually(Duration::from_secs(20), "the manager answers", || {
        d.docker(&["secret", "inspect", "s1"])
            .status
            .success()
            .then_some(())
    });
    let err = String::from_utf8_lossy(&unlock(&d, &key).stderr).into_owned();
    assert!(err.contains("not locked"), "{err}");
}

#[test]
fn a_locked_manager_waits_while_the_others_work_and_catches_up_once_unlocked() {
    let mut nodes = three_managers();
    let printed = nodes[0].docker_ok(&["swarm", "update", "--autolock=true"]);
    let first = unlock_key_in(&printed);
    for n in &nodes {
        eventually(
            Duration::from_secs(10),
            "every manager wraps with the unlock key",
            || (wrapped_by(n, &first) && !n.data_dir().join("keys.kek").exists()).then_some(()),
        );
        assert_eq!(n.docker_ok(&["swarm", "unlock-key", "-q"]).trim(), first);
    }
    let dek = data_key_with(&nodes[2], &first);

    nodes[2].restart();
    assert_locked(&nodes[2]);
    eventually(
        Duration::from_secs(20),
        "the others see it unreachable",
        || {
            let out = nodes[0].docker_ok(&["node", "ls", "--format", "{{.ManagerStatus}}"]);
            out.lines().any(|l| l == "Unreachable").then_some(())
        },
    );
    // Two of three managers keep the cluster writable.
    create_objects(&nodes[0]);
    assert_objects(&nodes[1]);
    // A rotation reaches the running managers; the locked one's disk keeps the old key.
    let second = unlock_key_in(&nodes[1].docker_ok(&["swarm", "unlock-key", "--rotate"]));
    for n in &nodes[..2] {
        eventually(
            Duration::from_secs(10),
            "the running managers re-wrap",
            || wrapped_by(n, &second).then_some(()),
        );
    }
    assert!(wrapped_by(&nodes[2], &first));
    assert_locked(&nodes[2]);

    // Its disk opens with the key it was locked with; then it follows the cluster.
    assert_unlock_refused(&nodes[2], &second);
    assert_unlocks(&nodes[2], &first);
    eventually(
        Duration::from_secs(20),
        "the unlocked manager has caught up",
        || {
            nodes[2]
                .docker(&["service", "inspect", "web"])
                .status
                .success()
                .then_some(())
        },
    );
    assert_objects(&nodes[2]);
    eventually(
        Duration::from_secs(10),
        "it re-wraps with the rotated key",
        || wrapped_by(&nodes[2], &second).then_some(()),
    );
    assert_eq!(
        nodes[2].docker_ok(&["swarm", "unlock-key", "-q"]).trim(),
        second
    );
    eventually(
        Duration::from_secs(20),
        "three reachable managers again",
        || {
            let out = nodes[0].docker_ok(&["node", "ls", "--format", "{{.ManagerStatus}}"]);
            (out.lines()
                .filter(|l| *l == "Leader" || *l == "Reachable")
                .count()
                == 3)
                .then_some(())
        },
    );
    for n in &nodes {
        assert_nowhere(&n.data_dir(), &dek, "the data key");
    }
}

#[test]
fn managers_that_join_or_are_promoted_later_wrap_their_keys_with_the_unlock_key() {
    let a = Daemon::start("al5a");
    let key = unlock_key_in(&a.init_with(&["--autolock"]));
    let b = Daemon::start("al5b");
    b.join(&a, "manager");
    let mut c = Daemon::start("al5c");
    c.join(&a, "worker");
    assert!(!c.data_dir().join("keys.json").exists());
    let c_id = c.node_id();
    a.docker_ok(&["node", "promote", &c_id]);
    for n in [&b, &c] {
        eventually(
            Duration::from_secs(20),
            "the new manager wraps with the unlock key",
            || (wrapped_by(n, &key) && !n.data_dir().join("keys.kek").exists()).then_some(()),
        );
        assert_eq!(n.docker_ok(&["swarm", "unlock-key", "-q"]).trim(), key);
    }
    let dek = data_key_with(&c, &key);
    // The promoted node's own secret is not on its disk any more (it follows from the key).
    let node = std::fs::read_to_string(c.data_dir().join("node.json")).unwrap();
    let node: serde_json::Value = serde_json::from_str(&node).unwrap();
    assert_eq!(node["secret"], "", "{node}");
    let ca_key = ca_key_with(&c, &key);
    assert_eq!(
        ca_key_with(&b, &key),
        ca_key,
        "one root CA for all managers"
    );
    c.restart();
    assert_locked(&c);
    assert_unlocks(&c, &key);
    assert_nowhere(&c.data_dir(), &dek, "the data key");
    for n in [&b, &c] {
        assert_pem_nowhere(&n.data_dir(), &ca_key, "the root CA's key");
        let tls_key = tls_key_with(n, &key);
        assert_pem_nowhere(&n.data_dir(), &tls_key, "the manager's TLS key");
    }
}

#[test]
fn join_tokens_are_in_no_file_of_a_managers_disk() {
    let a = Daemon::start("jt-a");
    a.init_with(&["--autolock"]);
    let b = Daemon::start("jt-b");
    b.join(&a, "manager");
    let token = |role: &str| {
        a.docker_ok(&["swarm", "join-token", "-q", role])
            .trim()
            .to_string()
    };
    let first = (token("worker"), token("manager"));
    a.docker_ok(&["swarm", "join-token", "-q", "--rotate", "worker"]);
    let rotated = token("worker");
    assert_ne!(rotated, first.0);
    assert_eq!(
        b.docker_ok(&["swarm", "join-token", "-q", "worker"]).trim(),
        rotated,
        "a follower shows the same tokens"
    );
    // The rotated token still admits a worker; the old one does not.
    let w = Daemon::start("jt-w");
    w.join(&a, "worker");
    for t in [&first.0, &first.1, &rotated] {
        // The secret part (after the root's digest) is what admits a node.
        let secret = t.rsplit('-').next().unwrap();
        for n in [&a, &b] {
            for f in files_under(&n.data_dir()) {
                let bytes = std::fs::read(&f).unwrap_or_default();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{} holds a join token",
                    f.display()
                );
            }
        }
    }
}
