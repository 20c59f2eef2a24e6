//! Mutual TLS on the node port: it speaks only TLS, takes a call without a client certificate
//! only on the join route, takes only certificates of the cluster's own CA, and lets the role
//! and node ID in a certificate decide what its holder may call. Join tokens pin the root CA;
//! a promotion or demotion reissues the node's certificate with its new role.

mod support;

use shoal_manager::identity::{Files, StoredKeys};
use shoal_raft::tls::{peer_identity, PeerRole};
use std::time::Duration;
use support::{eventually, plain_post, tls_post, ClientCert, Daemon};

const WAIT: Duration = Duration::from_secs(60);

/// Every route of the node port but the join.
const ROUTES: &[&str] = &[
    "/internal/raft/append",
    "/internal/raft/vote",
    "/internal/raft/snapshot",
    "/internal/raft/prevote",
    "/internal/heartbeat",
    "/internal/raft-join",
    "/internal/leave",
    "/internal/propose",
    "/internal/assignments",
    "/internal/task-status",
    "/internal/logs",
    "/internal/mesh-routes",
    "/internal/mesh",
    "/internal/net-view",
    "/internal/net-attach",
    "/internal/net-detach",
    "/internal/node-cert",
];

/// The managers' bearer credential, from a manager's data key (opened from its disk as the
/// manager does): with it, what is refused is refused for the certificate alone.
fn managers_credential(m: &Daemon) -> String {
    match Files::new(&m.data_dir()).load_keys().unwrap() {
        Some(StoredKeys::Open(keys, _)) => keys.data_key.manager_credential(),
        _ => panic!("{}: no keys that open without an unlock key", m.name),
    }
}

fn role_of(cert: &ClientCert) -> PeerRole {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap();
    peer_identity(der.as_ref()).unwrap().role
}

#[test]
fn plain_http_to_the_node_port_gets_no_http_answer() {
    let m = Daemon::start("tls-plain");
    m.init();
    for path in [
        "/internal/join",
        "/internal/raft/prevote",
        "/internal/heartbeat",
    ] {
        let (status, answer) = plain_post(&m.addr(), path, "{}");
        assert_eq!(status, 0, "{path}: {answer}");
        assert!(!answer.contains("HTTP/"), "{path}: {answer}");
    }
    // The same port answers over TLS.
    let (status, answer) = tls_post(&m.addr(), "/internal/join", None, None, "{}");
    assert!(answer.starts_with("HTTP/1.1"), "{answer}");
    assert_eq!(status, 400, "{answer}");
}

#[test]
fn a_client_without_a_certificate_is_refused_on_every_route_but_join() {
    let m = Daemon::start("tls-anon");
    m.init();
    let cred = managers_credential(&m);
    for path in ROUTES {
        // Even with the managers' credential: no certificate, no call.
        let (status, answer) = tls_post(&m.addr(), path, None, Some(&cred), "{}");
        assert_eq!(status, 403, "{path}: {answer}");
        assert!(answer.contains("no client certificate"), "{path}: {answer}");
    }
    // The join is reached (and refuses the token, not the caller).
    let body = serde_json::json!({"token": "SWMTKN-1-x", "addr": "127.0.0.1:9",
        "availability": null, "description": {}, "csr": ""});
    let (status, answer) = tls_post(&m.addr(), "/internal/join", None, None, &body.to_string());
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("A valid join token"), "{answer}");
    // The manager's own certificate passes.
    let (status, answer) = tls_post(
        &m.addr(),
        "/internal/raft/prevote",
        Some(&m.client_cert()),
        Some(&cred),
        "null",
    );
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn a_worker_certificate_is_refused_on_manager_routes_and_for_other_nodes() {
    let m = Daemon::start("tls-role-m");
    m.init();
    let w = Daemon::start("tls-role-w");
    w.join(&m, "worker");
    let mid = m.node_id();
    let wid = w.node_id();
    let wcert = w.client_cert();
    assert_eq!(role_of(&wcert), PeerRole::Worker);
    let cred = managers_credential(&m);
    let write = r#"{"at":"2026-01-01T00:00:00Z","cmd":{"op":"RemoveNode","id":"x","force":true}}"#;
    for (path, body) in [
        ("/internal/raft/append", "{}"),
        ("/internal/raft/vote", "{}"),
        ("/internal/raft/prevote", "null"),
        ("/internal/propose", write),
    ] {
        let (status, answer) = tls_post(&m.addr(), path, Some(&wcert), Some(&cred), body);
        assert_eq!(status, 403, "{path}: {answer}");
        assert!(
            answer.contains("needs a manager's certificate"),
            "{path}: {answer}"
        );
    }
    // A worker speaks for itself only: another node's tasks (and their secrets) are not its.
    let identity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.data_dir().join("node.json")).unwrap()).unwrap();
    let own = format!("{wid}:{}", identity["secret"].as_str().unwrap());
    let theirs = format!(r#"{{"node_id":"{mid}","digest":""}}"#);
    for bearer in [own.as_str(), cred.as_str()] {
        let (status, answer) = tls_post(
            &m.addr(),
            "/internal/assignments",
            Some(&wcert),
            Some(bearer),
            &theirs,
        );
        assert_eq!(status, 403, "{answer}");
    }
    let mine = format!(r#"{{"node_id":"{wid}","digest":""}}"#);
    let (status, answer) = tls_post(
        &m.addr(),
        "/internal/assignments",
        Some(&wcert),
        Some(&own),
        &mine,
    );
    assert_eq!(status, 200, "{answer}");
    // The worker's own port takes no manager's call from a worker either.
    let logs = r#"{"task_id":"x","container":"x","follow":false}"#;
    let (status, answer) = tls_post(&w.addr(), "/internal/logs", Some(&wcert), None, logs);
    assert_eq!(status, 403, "{answer}");
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let m = Daemon::start("tls-ca");
    m.init();
    let mid = m.node_id();
    let cluster = m.docker_ok(&["info", "--format", "{{.Swarm.Cluster.ID}}"]);
    // A CA of its own, issuing what looks like the manager's own certificate.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "swarm-ca");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["swarm-manager".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, mid.as_str());
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, "swarm-manager");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, cluster.trim());
    let forged = ClientCert {
        cert_pem: params.signed_by(&key, &ca, &ca_key).unwrap().pem(),
        key_pem: key.serialize_pem(),
    };
    let cred = managers_credential(&m);
    for path in ["/internal/raft/prevote", "/internal/join"] {
        let (status, answer) = tls_post(&m.addr(), path, Some(&forged), Some(&cred), "null");
        assert_eq!(status, 0, "{path}: {answer}");
        assert!(!answer.contains("HTTP/"), "{path}: {answer}");
    }
}

#[test]
fn a_removed_nodes_certificate_is_refused_at_once() {
    let m = Daemon::start("tls-rm-m");
    m.init();
    let mut w = Daemon::start("tls-rm-w");
    w.join(&m, "worker");
    let wid = w.node_id();
    let cert = w.client_cert();
    let identity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.data_dir().join("node.json")).unwrap()).unwrap();
    let cred = format!("{wid}:{}", identity["secret"].as_str().unwrap());
    let body = format!(r#"{{"node_id":"{wid}","digest":""}}"#);
    let (status, answer) = tls_post(
        &m.addr(),
        "/internal/net-view",
        Some(&cert),
        Some(&cred),
        &body,
    );
    assert_eq!(status, 200, "{answer}");
    w.kill9();
    m.docker_ok(&["node", "rm", "--force", &wid]);
    for path in ["/internal/net-view", "/internal/assignments"] {
        let (status, answer) = tls_post(&m.addr(), path, Some(&cert), Some(&cred), &body);
        assert_eq!(status, 403, "{path}: {answer}");
        assert!(
            answer.contains("not part of this swarm"),
            "{path}: {answer}"
        );
    }
}

#[test]
fn a_join_token_with_another_digest_fails_to_join_with_a_clear_error() {
    let m = Daemon::start("tls-pin-m");
    m.init();
    let token = m.docker_ok(&["swarm", "join-token", "-q", "worker"]);
    let token = token.trim();
    // The right secret, the digest of another root.
    let secret = token.rsplit('-').next().unwrap();
    let other = format!("SWMTKN-1-{}-{secret}", "1".repeat(50));
    let w = Daemon::start("tls-pin-w");
    let addr = w.addr();
    let err = w.docker_err(&[
        "swarm",
        "join",
        "--token",
        &other,
        "--advertise-addr",
        &addr,
        "--listen-addr",
        &addr,
        &m.addr(),
    ]);
    assert!(err.contains("root CA does not match"), "{err}");
    let state = w.docker_ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    assert_eq!(state.trim(), "inactive");
    assert_eq!(m.docker_ok(&["node", "ls", "-q"]).lines().count(), 1);
    // The token as given joins.
    w.join(&m, "worker");
    assert_eq!(m.docker_ok(&["node", "ls", "-q"]).lines().count(), 2);
}

#[test]
fn promotion_and_demotion_reissue_the_nodes_certificate_with_its_new_role() {
    let m = Daemon::start("tls-promo-m");
    m.init();
    let w = Daemon::start("tls-promo-w");
    w.join(&m, "worker");
    let wid = w.node_id();
    assert_eq!(role_of(&w.client_cert()), PeerRole::Worker);
    m.docker_ok(&["node", "promote", &wid]);
    eventually(WAIT, "a manager's certificate on the promoted node", || {
        (role_of(&w.client_cert()) == PeerRole::Manager).then_some(())
    });
    eventually(WAIT, "the promoted node reachable", || {
        let out = m.docker(&[
            "node",
            "inspect",
            "--format",
            "{{if .ManagerStatus}}{{.ManagerStatus.Reachability}}{{end}}",
            &wid,
        ]);
        (String::from_utf8_lossy(&out.stdout).trim() == "reachable").then_some(())
    });
    // Its new certificate opens manager routes.
    let (status, answer) = tls_post(
        &m.addr(),
        "/internal/raft/prevote",
        Some(&w.client_cert()),
        Some(&managers_credential(&m)),
        "null",
    );
    assert_eq!(status, 200, "{answer}");
    let old = w.client_cert();
    m.docker_ok(&["node", "demote", &wid]);
    eventually(WAIT, "a worker's certificate on the demoted node", || {
        (role_of(&w.client_cert()) == PeerRole::Worker).then_some(())
    });
    // The manager's certificate it held no longer acts as a manager's.
    let (status, answer) = tls_post(
        &m.addr(),
        "/internal/raft/prevote",
        Some(&old),
        Some(&managers_credential(&m)),
        "null",
    );
    assert_eq!(status, 403, "{answer}");
}

#[test]
fn docker_swarm_ca_prints_the_root_and_nodes_show_their_trust_root() {
    let m = Daemon::start("tls-info-m");
    m.init();
    let w = Daemon::start("tls-info-w");
    w.join(&m, "worker");
    let root = m.docker_ok(&["swarm", "ca"]);
    assert!(root.starts_with("-----BEGIN CERTIFICATE-----"), "{root}");
    let (status, body) = m.http("GET", "/v1.41/swarm", None).unwrap();
    assert_eq!(status, 200, "{body}");
    let swarm: serde_json::Value = serde_json::from_str(&body).unwrap();
    let info = &swarm["TLSInfo"];
    assert_eq!(info["TrustRoot"].as_str().unwrap().trim(), root.trim());
    assert!(
        !info["CertIssuerSubject"].as_str().unwrap().is_empty(),
        "{info}"
    );
    assert!(
        !info["CertIssuerPublicKey"].as_str().unwrap().is_empty(),
        "{info}"
    );
    // The root the join token pins is this one.
    let token = m.docker_ok(&["swarm", "join-token", "-q", "worker"]);
    let digest = token.trim().split('-').nth(2).unwrap().to_string();
    assert_eq!(digest.len(), 50);
    let wid = w.node_id();
    eventually(WAIT, "the worker's TLSInfo", || {
        let node = m.inspect("node", &wid);
        let tls = &node["Description"]["TLSInfo"];
        (tls["TrustRoot"].as_str().map(str::trim) == Some(root.trim())
            && tls["CertIssuerSubject"] == info["CertIssuerSubject"])
            .then_some(())
    });
}

#[test]
fn swarm_update_cert_expiry_sets_how_long_node_certificates_are_valid() {
    let m = Daemon::start("tls-exp-m");
    m.init();
    let err = m.docker_err(&["swarm", "update", "--cert-expiry", "30m"]);
    assert!(
        err.contains("minimum certificate expiry time is 1h0m0s"),
        "{err}"
    );
    m.docker_ok(&["swarm", "update", "--cert-expiry", "2h"]);
    let w = Daemon::start("tls-exp-w");
    w.join(&m, "worker");
    let end = shoal_manager::ca::not_after(&w.client_cert().cert_pem).unwrap();
    let left = end - chrono::Utc::now().timestamp();
    assert!((7000..=7300).contains(&left), "valid for {left} s more");
}
