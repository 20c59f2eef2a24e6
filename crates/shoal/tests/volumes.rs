//! `docker volume ls/inspect/create/rm/prune` and `docker system df` against the cluster, with
//! the real docker CLI: the volumes of the nodes' engines, each named `NODE/VOLUME`, created on
//! the connected node or the node named, and reached on other nodes through their node port.

mod support;

use support::{engine, engine_ok, Daemon, ENGINE_SOCKET};

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

fn engine_has(volume: &str) -> bool {
    engine(&["volume", "inspect", volume]).status.success()
}

#[test]
fn volumes_are_the_engines_named_with_their_node() {
    let m = Daemon::start_with_engine("vol", ENGINE_SOCKET);
    m.init();
    let host = hostname();
    let tag = std::process::id();
    let vol = format!("shoalvol{tag}");
    let qualified = format!("{host}/{vol}");

    // Created on the node the client is connected to, named with it.
    let out = m.docker_ok(&[
        "volume",
        "create",
        "--label",
        &format!("shoaltest={tag}"),
        &vol,
    ]);
    assert_eq!(out.trim(), qualified);
    assert!(engine_has(&vol));

    let ls = m.docker_ok(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]);
    assert!(
        ls.lines().any(|l| l == format!("local {qualified}")),
        "{ls}"
    );
    let labelled = m.docker_ok(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("label=shoaltest={tag}"),
    ]);
    assert_eq!(labelled.trim(), qualified);

    // Inspect by bare name (one node has it) and qualified.
    for key in [vol.as_str(), qualified.as_str()] {
        let v = m.docker_json(&["volume", "inspect", key]);
        assert_eq!(v[0]["Name"], qualified.as_str(), "{v}");
        assert_eq!(v[0]["Labels"]["shoaltest"], tag.to_string().as_str(), "{v}");
        assert_eq!(v[0]["Scope"], "local");
    }
    let err = m.docker_err(&["volume", "inspect", &format!("nosuch{tag}")]);
    assert!(err.contains("no such volume"), "{err}");
    let err = m.docker_err(&["volume", "inspect", &format!("nosuchnode/{vol}")]);
    assert!(err.contains("node nosuchnode not found"), "{err}");

    // Disk usage lists it, named the same way.
    let df = m.docker_ok(&["system", "df"]);
    assert!(df.contains("Local Volumes"), "{df}");
    let dfv = m.docker_ok(&["system", "df", "-v"]);
    assert!(dfv.contains(&qualified), "{dfv}");

    // Removed on its node.
    m.docker_ok(&["volume", "rm", &qualified]);
    assert!(!engine_has(&vol));

    // Prune: only what the filter names, listed with its node.
    let pruned = format!("shoalprune{tag}");
    engine_ok(&[
        "volume",
        "create",
        "--label",
        &format!("shoalprune={tag}"),
        &pruned,
    ]);
    let out = m.docker_ok(&[
        "volume",
        "prune",
        "--force",
        "--filter",
        &format!("label=shoalprune={tag}"),
    ]);
    assert!(out.contains(&format!("{host}/{pruned}")), "{out}");
    assert!(!engine_has(&pruned));

    // Cluster volumes (API 1.42) are not ours to accept.
    let (status, body) = m
        .http(
            "POST",
            "/volumes/create",
            Some(br#"{"Name":"x","ClusterVolumeSpec":{}}"#),
        )
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("ClusterVolumeSpec"), "{body}");
}

#[test]
fn a_volume_is_created_on_the_node_named_and_listed_from_every_node() {
    // Both nodes use the one engine of this machine and share its hostname: each is named by
    // its ID, and the worker's engine is reached through its node port.
    let m = Daemon::start_with_engine("vol-m", ENGINE_SOCKET);
    m.init();
    let w = Daemon::start_with_engine("vol-w", ENGINE_SOCKET);
    w.join(&m, "worker");
    let (mid, wid) = (m.node_id(), w.node_id());
    let vol = format!("shoalremote{}", std::process::id());

    let out = m.docker_ok(&["volume", "create", &format!("{wid}/{vol}")]);
    assert_eq!(out.trim(), format!("{wid}/{vol}"));
    assert!(engine_has(&vol));
    let out = m.docker(&["volume", "ls", "-q"]);
    let ls = String::from_utf8_lossy(&out.stdout).into_owned();
    let why = format!("{ls}{}", String::from_utf8_lossy(&out.stderr));
    assert!(ls.lines().any(|l| l == format!("{wid}/{vol}")), "{why}");
    assert!(ls.lines().any(|l| l == format!("{mid}/{vol}")), "{why}");

    // A bare name that several nodes have must be given with its node.
    let err = m.docker_err(&["volume", "inspect", &vol]);
    assert!(err.contains("is on several nodes"), "{err}");
    let v = m.docker_json(&["volume", "inspect", &format!("{}/{vol}", &wid[..8])]);
    assert_eq!(v[0]["Name"], format!("{wid}/{vol}").as_str());

    m.docker_ok(&["volume", "rm", &format!("{wid}/{vol}")]);
    assert!(!engine_has(&vol));
}
