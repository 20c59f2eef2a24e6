//! Secret data never lands on disk in plaintext (nor in base64), and no API returns it; nor does
//! the rest of the state (specs, environment, labels, join tokens): the Raft log and snapshots
//! are sealed with the data key, as Swarm encrypts its Raft log.

mod support;

use std::time::Duration;
use support::{eventually, files_under, three_managers};

#[test]
fn secret_values_are_nowhere_in_the_data_dirs_or_the_api() {
    let mut nodes = three_managers();
    let value = "s3cr3t-value-0f-the-t0d0-app-7f1c2e";
    let b64 = "czNjcjN0LXZhbHVlLTBmLXRoZS10MGQwLWFwcC03ZjFjMmU=";
    let file = nodes[0].dir.path().join("secret.txt");
    std::fs::write(&file, value).unwrap();
    let id = nodes[0].docker_ok(&["secret", "create", "db-password", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    for n in &nodes {
        eventually(
            Duration::from_secs(10),
            "the secret on every manager",
            || {
                n.http("GET", &format!("/secrets/{}", id.trim()), None)
                    .ok()
                    .filter(|(s, _)| *s == 200)
            },
        );
        for path in ["/secrets", &format!("/secrets/{}", id.trim())] {
            let (_, body) = n.http("GET", path, None).unwrap();
            assert!(
                !body.contains(value) && !body.contains(b64),
                "{path} leaks the secret: {body}"
            );
            assert!(
                !body.contains("\"Data\""),
                "{path} returns a Data field: {body}"
            );
        }
    }
    // The rest of the state is sealed too: a service's environment and labels.
    let env = "TODO_DB_HOST=visible-env-7c1d9a";
    let label = "visible-label-5e2b44";
    let spec = format!(
        r#"{{"Name":"sealed-spec","Labels":{{"owner":"{label}"}},"TaskTemplate":{{"ContainerSpec":{{"Image":"busybox:1.36","Env":["{env}"]}}}},"Mode":{{"Replicated":{{"Replicas":0}}}}}}"#
    );
    let (status, text) = nodes[0]
        .http("POST", "/v1.41/services/create", Some(spec.as_bytes()))
        .unwrap();
    assert_eq!(status, 201, "{text}");
    // Enough writes for every manager to take a snapshot (every 500 entries in the fast
    // profile), then restart them all: snapshots are loaded and the log replayed.
    for i in 0..600 {
        let body = format!(r#"{{"Name":"filler-{i}","Data":"eA=="}}"#);
        let (status, text) = nodes[0]
            .http("POST", "/v1.41/configs/create", Some(body.as_bytes()))
            .unwrap();
        assert_eq!(status, 201, "{text}");
    }
    for n in nodes.iter_mut() {
        n.restart();
    }
    for n in &nodes {
        eventually(Duration::from_secs(20), "the secret after restart", || {
            n.http("GET", &format!("/secrets/{}", id.trim()), None)
                .ok()
                .filter(|(s, _)| *s == 200)
        });
    }
    for n in &nodes {
        for f in files_under(n.dir.path()) {
            let bytes = std::fs::read(&f).unwrap_or_default();
            let hay = String::from_utf8_lossy(&bytes);
            assert!(
                !hay.contains(value),
                "{} holds the secret in plaintext",
                f.display()
            );
            assert!(
                !hay.contains(b64),
                "{} holds the secret in base64",
                f.display()
            );
            for visible in [env, label] {
                assert!(!hay.contains(visible), "{} holds {visible}", f.display());
            }
        }
    }
}
