//! Conformance with the unmodified `docker` CLI: each test walks one realistic scenario on its
//! own cluster of real `shoal daemon` processes and asserts on what `docker` prints, the way a
//! user reads it. These daemons have no Docker Engine, so their tasks stay pending ("no suitable
//! node") and replica counts read `0/N`; tasks that run are tested in `tasks.rs`.

mod support;

use serde_json::Value;
use std::sync::Once;
use std::time::Duration;
use support::{eventually, rows_with, squash, Daemon};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/book-ch13");
const WAIT: Duration = Duration::from_secs(20);

/// Records which docker CLI the suite ran with, once per test process.
fn log_docker_version(d: &Daemon) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let out = d.docker(&["version"]);
        eprintln!(
            "docker version against shoal:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// A one-manager cluster, initialised through `docker swarm init`.
fn manager(name: &str) -> Daemon {
    let m = Daemon::start(name);
    m.init();
    log_docker_version(&m);
    m
}

/// The `Version.Index` of an inspected object.
fn version_of(obj: &Value) -> u64 {
    obj["Version"]["Index"]
        .as_u64()
        .unwrap_or_else(|| panic!("no Version.Index in {obj}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_string()
        })
        .collect()
}

/// The data rows of a CLI table (the header dropped), whitespace squashed.
fn table_rows(out: &str) -> Vec<String> {
    out.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(squash)
        .collect()
}

/// `docker node ls` row of one node, via a format that keeps empty columns visible.
fn node_row(m: &Daemon, id: &str) -> Option<String> {
    let out = m.docker(&[
        "node",
        "ls",
        "--format",
        "{{.ID}}|{{.Self}}|{{.Status}}|{{.Availability}}|{{.ManagerStatus}}",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(id))
        .map(str::to_string)
}

// ----- the CLI and the server agree on the API -----

#[test]
fn docker_version_shows_the_shoal_server_speaking_api_1_41() {
    let d = Daemon::start("version");
    let out = d.docker_ok(&["version"]);
    eprintln!("docker version against shoal:\n{out}");
    let text = squash(&out);
    assert!(text.contains("Client:"), "{out}");
    assert!(text.contains("Server: shoal"), "{out}");
    assert!(
        text.contains("API version: 1.41 (minimum version 1.24)"),
        "{out}"
    );
    let server = d.docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(server.trim(), "1.41");
    // Before `swarm init` the node is a plain engine as far as `docker info` is concerned.
    let info = squash(&d.docker_ok(&["info"]));
    assert!(info.contains("Swarm: inactive"), "{info}");
}

// ----- swarm and nodes -----

#[test]
fn swarm_init_join_and_node_commands_work_through_the_docker_cli() {
    let m = Daemon::start("manager");
    log_docker_version(&m);
    let init = m.init();
    let first = init.lines().next().unwrap_or_default();
    let id = first
        .strip_prefix("Swarm initialized: current node (")
        .and_then(|r| r.strip_suffix(") is now a manager."))
        .unwrap_or_else(|| panic!("unexpected swarm init output:\n{init}"))
        .to_string();
    assert_eq!(id, m.node_id());
    assert!(
        init.contains("To add a worker to this swarm, run the following command:"),
        "{init}"
    );
    assert!(
        init.contains("docker swarm join --token SWMTKN-1-"),
        "{init}"
    );
    assert!(
        init.contains(&m.addr()),
        "the join command names the manager's address:\n{init}"
    );
    assert!(
        init.contains("To add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions."),
        "{init}"
    );

    let info = squash(&m.docker_ok(&["info"]));
    for want in [
        "Swarm: active",
        &format!("NodeID: {id}"),
        "Is Manager: true",
        "ClusterID:",
        "Managers: 1",
        "Nodes: 1",
        &format!("Manager Addresses: {}", m.addr()),
    ] {
        assert!(info.contains(want), "docker info lacks {want:?}:\n{info}");
    }
    let again = m.docker_err(&["swarm", "init", "--advertise-addr", &m.addr()]);
    assert!(
        again.contains("This node is already part of a swarm"),
        "{again}"
    );

    // Join tokens: one per role, sharing the CA digest, differing in the secret.
    let worker_token = m
        .docker_ok(&["swarm", "join-token", "-q", "worker"])
        .trim()
        .to_string();
    let manager_token = m
        .docker_ok(&["swarm", "join-token", "-q", "manager"])
        .trim()
        .to_string();
    for t in [&worker_token, &manager_token] {
        assert!(t.starts_with("SWMTKN-1-"), "{t}");
        assert_eq!(t.split('-').count(), 4, "SWMTKN-1-<digest>-<secret>: {t}");
    }
    assert_ne!(worker_token, manager_token);
    assert_eq!(
        worker_token.split('-').nth(2),
        manager_token.split('-').nth(2)
    );
    let shown = m.docker_ok(&["swarm", "join-token", "worker"]);
    assert!(
        shown.contains("To add a worker to this swarm, run the following command:"),
        "{shown}"
    );
    assert!(
        squash(&shown).contains(&format!(
            "docker swarm join --token {worker_token} {}",
            m.addr()
        )),
        "{shown}"
    );
    let shown = m.docker_ok(&["swarm", "join-token", "manager"]);
    assert!(
        shown.contains("To add a manager to this swarm, run the following command:"),
        "{shown}"
    );
    assert!(squash(&shown).contains(&manager_token), "{shown}");
    let rotated = m.docker_ok(&["swarm", "join-token", "--rotate", "-q", "manager"]);
    let manager_token = rotated.trim().to_string();
    assert!(manager_token.starts_with("SWMTKN-1-"), "{rotated}");
    assert_ne!(
        m.docker_ok(&["swarm", "join-token", "-q", "manager"])
            .trim(),
        worker_token
    );
    assert_eq!(
        m.docker_ok(&["swarm", "join-token", "-q", "manager"])
            .trim(),
        manager_token
    );
    assert_eq!(
        m.docker_ok(&["swarm", "join-token", "-q", "worker"]).trim(),
        worker_token,
        "only the manager token rotated"
    );
    let updated = m.docker_ok(&["swarm", "update", "--task-history-limit", "10"]);
    assert_eq!(updated.trim(), "Swarm updated.");
    assert!(squash(&m.docker_ok(&["info"])).contains("Task History Retention Limit: 10"));
    let bad = m.docker_err(&["swarm", "join-token", "chief"]);
    assert!(bad.contains("unknown role chief"), "{bad}");

    // A second node: not in a swarm yet, then a worker.
    let w = Daemon::start("worker");
    let outside = w.docker_err(&["node", "ls"]);
    assert!(
        outside.contains("This node is not a swarm manager."),
        "{outside}"
    );
    let joined = w.docker_ok(&[
        "swarm",
        "join",
        "--token",
        &worker_token,
        "--advertise-addr",
        &w.addr(),
        "--listen-addr",
        &w.addr(),
        &m.addr(),
    ]);
    assert_eq!(joined.trim(), "This node joined a swarm as a worker.");
    let wid = w.node_id();
    assert_ne!(wid, id);
    let winfo = squash(&w.docker_ok(&["info"]));
    assert!(winfo.contains("Swarm: active"), "{winfo}");
    assert!(winfo.contains("Is Manager: false"), "{winfo}");
    let refused = w.docker_err(&["node", "ls"]);
    assert!(
        refused.contains("This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state."),
        "{refused}"
    );
    let twice = w.docker_err(&["swarm", "join", "--token", &worker_token, &m.addr()]);
    assert!(
        twice.contains("This node is already part of a swarm"),
        "{twice}"
    );

    // node ls: the table Docker prints, with `*` on the node the CLI talks to.
    let ls = m.docker_ok(&["node", "ls"]);
    let header = squash(ls.lines().next().unwrap_or_default());
    assert_eq!(
        header,
        "ID HOSTNAME STATUS AVAILABILITY MANAGER STATUS ENGINE VERSION"
    );
    assert_eq!(table_rows(&ls).len(), 2, "{ls}");
    let hostname = m
        .docker_ok(&["info", "--format", "{{.Name}}"])
        .trim()
        .to_string();
    let row = rows_with(&ls, &id);
    assert_eq!(row.len(), 1, "{ls}");
    assert!(
        row[0].starts_with(&format!("{id} * {hostname} Ready Active Leader")),
        "{ls}"
    );
    eventually(WAIT, "the worker to be Ready", || {
        node_row(&m, &wid).filter(|r| *r == format!("{wid}|false|Ready|Active|"))
    });
    let info = squash(&m.docker_ok(&["info"]));
    assert!(
        info.contains("Nodes: 2") && info.contains("Managers: 1"),
        "{info}"
    );

    // node inspect, raw and pretty.
    let node = m.inspect("node", &wid);
    assert_eq!(node["ID"], wid.as_str());
    assert_eq!(node["Spec"]["Role"], "worker");
    assert_eq!(node["Spec"]["Availability"], "active");
    assert_eq!(node["Status"]["State"], "ready");
    assert_eq!(node["Status"]["Addr"], "127.0.0.1");
    assert_eq!(node["Description"]["Hostname"], hostname.as_str());
    assert!(
        node.get("ManagerStatus").is_none_or(Value::is_null),
        "{node}"
    );
    let me = m.inspect("node", "self");
    assert_eq!(me["ID"], id.as_str());
    assert_eq!(me["ManagerStatus"]["Leader"], true);
    assert_eq!(me["ManagerStatus"]["Reachability"], "reachable");
    assert_eq!(me["ManagerStatus"]["Addr"], m.addr().as_str());
    let pretty = squash(&m.docker_ok(&["node", "inspect", "--pretty", &wid]));
    for want in [
        format!("ID: {wid}"),
        format!("Hostname: {hostname}"),
        "Status: State: Ready Availability: Active Address: 127.0.0.1".to_string(),
        "Platform: Operating System: linux".to_string(),
    ] {
        assert!(
            pretty.contains(&want),
            "node inspect --pretty lacks {want:?}:\n{pretty}"
        );
    }

    // Labels and availability, each update sent with the version the CLI read.
    let v0 = version_of(&node);
    m.docker_ok(&[
        "node",
        "update",
        "--label-add",
        "storage=raid",
        "--label-add",
        "zone=a",
        &wid,
    ]);
    let labels = m.docker_ok(&[
        "node",
        "inspect",
        "--format",
        "{{ index .Spec.Labels \"storage\" }}",
        &wid,
    ]);
    assert_eq!(labels.trim(), "raid");
    let node = m.inspect("node", &wid);
    assert!(version_of(&node) > v0, "the update bumps Version.Index");
    assert_eq!(node["Spec"]["Labels"]["zone"], "a");
    let filtered = m.docker_ok(&["node", "ls", "-q", "--filter", "node.label=storage=raid"]);
    assert_eq!(filtered.trim(), wid);
    m.docker_ok(&["node", "update", "--label-rm", "zone", &wid]);
    let node = m.inspect("node", &wid);
    assert_eq!(
        node["Spec"]["Labels"],
        serde_json::json!({ "storage": "raid" })
    );
    let missing = m.docker_err(&["node", "update", "--label-rm", "nope", &wid]);
    assert!(
        missing.contains("key nope doesn't exist in node's labels"),
        "{missing}"
    );
    m.docker_ok(&["node", "update", "--availability", "drain", &wid]);
    assert_eq!(m.inspect("node", &wid)["Spec"]["Availability"], "drain");
    eventually(WAIT, "node ls to show the worker drained", || {
        node_row(&m, &wid).filter(|r| r.ends_with("|Drain|"))
    });
    m.docker_ok(&["node", "update", "--availability", "active", &wid]);
    assert_eq!(m.inspect("node", &wid)["Spec"]["Availability"], "active");
    assert_eq!(
        m.inspect("node", &wid)["Spec"]["Labels"]["storage"],
        "raid",
        "labels survive"
    );

    // Promote: the worker becomes a reachable manager, and knows it.
    let promoted = m.docker_ok(&["node", "promote", &wid]);
    assert_eq!(
        promoted.trim(),
        format!("Node {wid} promoted to a manager in the swarm.")
    );
    eventually(WAIT, "the promoted node to be Reachable", || {
        node_row(&m, &wid).filter(|r| r.ends_with("|Reachable"))
    });
    eventually(
        WAIT,
        "docker info on the promoted node to say Is Manager: true",
        || {
            let out = w.docker(&["info"]);
            let info = squash(&String::from_utf8_lossy(&out.stdout));
            (info.contains("Is Manager: true") && info.contains("Managers: 2")).then_some(())
        },
    );
    let from_w = eventually(WAIT, "node ls on the new manager", || {
        let out = w.docker(&["node", "ls"]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert!(
        rows_with(&from_w, &wid)[0].starts_with(&format!("{wid} *")),
        "{from_w}"
    );
    let managers = m.docker_ok(&["node", "ls", "-q", "--filter", "role=manager"]);
    let mut managers: Vec<&str> = managers.lines().collect();
    managers.sort_unstable();
    let mut both = vec![id.as_str(), wid.as_str()];
    both.sort_unstable();
    assert_eq!(managers, both);
    assert_eq!(m.inspect("node", &wid)["Spec"]["Role"], "manager");
    let promote_again = m.docker_ok(&["node", "promote", &wid]);
    assert!(
        promote_again.contains(&format!("Node {wid} is already a manager.")),
        "{promote_again}"
    );

    // Demote it back.
    let demoted = m.docker_ok(&["node", "demote", &wid]);
    assert_eq!(
        demoted.trim(),
        format!("Manager {wid} demoted in the swarm.")
    );
    eventually(WAIT, "the demoted node to lose its manager status", || {
        node_row(&m, &wid).filter(|r| *r == format!("{wid}|false|Ready|Active|"))
    });
    eventually(
        WAIT,
        "docker info on the demoted node to say Is Manager: false",
        || {
            let out = w.docker(&["info"]);
            squash(&String::from_utf8_lossy(&out.stdout))
                .contains("Is Manager: false")
                .then_some(())
        },
    );
    let managers = m.docker_ok(&["node", "ls", "-q", "--filter", "role=manager"]);
    assert_eq!(managers.trim(), id);
    let workers = m.docker_ok(&["node", "ls", "-q", "--filter", "role=worker"]);
    assert_eq!(workers.trim(), wid);
    let bad_role = m.docker_err(&["node", "ls", "--filter", "role=chief"]);
    assert!(
        bad_role.contains("Invalid role filter: 'chief'"),
        "{bad_role}"
    );
    let last = m.docker_err(&["node", "demote", &id]);
    assert!(
        last.contains("attempting to demote the last manager of the swarm"),
        "{last}"
    );

    // A node that is up cannot be removed; once it left and is down, it can.
    let up = m.docker_err(&["node", "rm", &wid]);
    assert!(up.contains("is not down and can't be removed"), "{up}");
    let left = w.docker_ok(&["swarm", "leave"]);
    assert_eq!(left.trim(), "Node left the swarm.");
    assert!(squash(&w.docker_ok(&["info"])).contains("Swarm: inactive"));
    eventually(WAIT, "the node that left to be Down", || {
        node_row(&m, &wid).filter(|r| r.contains("|Down|"))
    });
    let removed = m.docker_ok(&["node", "rm", &wid]);
    assert_eq!(removed.trim(), wid);
    assert_eq!(table_rows(&m.docker_ok(&["node", "ls"])).len(), 1);

    // Unknown nodes.
    for args in [
        vec!["node", "inspect", "nosuchnode"],
        vec!["node", "update", "--availability", "drain", "nosuchnode"],
        vec!["node", "rm", "nosuchnode"],
        vec!["node", "promote", "nosuchnode"],
    ] {
        let err = m.docker_err(&args);
        assert!(err.contains("node nosuchnode not found"), "{args:?}: {err}");
    }

    // The only manager does not leave without --force.
    let refused = m.docker_err(&["swarm", "leave"]);
    assert!(
        refused.contains("You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message."),
        "{refused}"
    );
    assert!(squash(&m.docker_ok(&["info"])).contains("Swarm: active"));
    let forced = m.docker_ok(&["swarm", "leave", "--force"]);
    assert_eq!(forced.trim(), "Node left the swarm.");
    assert!(squash(&m.docker_ok(&["info"])).contains("Swarm: inactive"));
}

// ----- services -----

#[test]
fn services_are_stored_versioned_and_updated() {
    let m = manager("services");
    let created = m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--replicas",
        "2",
        "--env",
        "A=1",
        "--label",
        "x=y",
        "--publish",
        "8080:80",
        "--constraint",
        "node.role==manager",
        "nginx:alpine",
    ]);
    let id = created.trim().to_string();
    assert_eq!(id.len(), 25, "service create prints the new ID: {created}");
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{created}");

    let ls = m.docker_ok(&["service", "ls"]);
    assert_eq!(
        squash(ls.lines().next().unwrap_or_default()),
        "ID NAME MODE REPLICAS IMAGE PORTS"
    );
    let rows = table_rows(&ls);
    assert_eq!(rows.len(), 1, "{ls}");
    assert_eq!(
        rows[0],
        format!(
            "{} web replicated 0/2 nginx:alpine *:8080->80/tcp",
            &id[..12]
        ),
        "{ls}"
    );

    let svc = m.inspect("service", "web");
    assert_eq!(svc["ID"], id.as_str());
    assert_eq!(svc["Spec"]["Name"], "web");
    assert_eq!(svc["Spec"]["Labels"]["x"], "y");
    assert_eq!(svc["Spec"]["Mode"]["Replicated"]["Replicas"], 2);
    assert_eq!(svc["Spec"]["TaskTemplate"]["Runtime"], "container");
    let cs = &svc["Spec"]["TaskTemplate"]["ContainerSpec"];
    assert_eq!(cs["Image"], "nginx:alpine");
    assert_eq!(strings(&cs["Env"]), ["A=1"]);
    assert_eq!(
        strings(&svc["Spec"]["TaskTemplate"]["Placement"]["Constraints"]),
        ["node.role==manager"]
    );
    assert_eq!(
        svc["Endpoint"]["Ports"],
        serde_json::json!([{
            "Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"
        }])
    );
    assert_eq!(svc["Endpoint"]["Spec"]["Ports"][0]["PublishedPort"], 8080);
    assert!(
        svc.get("PreviousSpec").is_none_or(Value::is_null),
        "a new service has no PreviousSpec"
    );
    // `docker service inspect` asks for Swarm's defaults; the stored spec keeps only what was set.
    let policy = serde_json::json!({
        "Parallelism": 1, "FailureAction": "pause", "Monitor": 5_000_000_000u64,
        "MaxFailureRatio": 0, "Order": "stop-first"
    });
    assert_eq!(svc["Spec"]["UpdateConfig"], policy);
    assert_eq!(svc["Spec"]["RollbackConfig"], policy);
    assert_eq!(
        svc["Spec"]["TaskTemplate"]["RestartPolicy"],
        serde_json::json!({ "Condition": "any", "Delay": 5_000_000_000u64 })
    );
    assert_eq!(cs["StopGracePeriod"], 10_000_000_000u64);
    let (status, raw) = m
        .http("GET", &format!("/v1.41/services/{id}"), None)
        .expect("http");
    assert_eq!(status, 200, "{raw}");
    let raw: Value = serde_json::from_str(&raw).expect("json");
    assert!(
        raw["Spec"].get("UpdateConfig").is_none(),
        "defaults are not stored: {raw}"
    );
    assert!(
        raw["Spec"]["TaskTemplate"].get("RestartPolicy").is_none(),
        "{raw}"
    );
    let by_prefix = m.inspect("service", &id[..6]);
    assert_eq!(
        by_prefix["ID"],
        id.as_str(),
        "services resolve by ID prefix"
    );
    let pretty = squash(&m.docker_ok(&["service", "inspect", "--pretty", "web"]));
    for want in [
        format!("ID: {id}"),
        "Name: web".to_string(),
        "Labels: x=y".to_string(),
        "Service Mode: Replicated Replicas: 2".to_string(),
        "Constraints: [node.role==manager]".to_string(),
        "Image: nginx:alpine".to_string(),
        "Env: A=1".to_string(),
        "PublishedPort = 8080 Protocol = tcp TargetPort = 80 PublishMode = ingress".to_string(),
        "UpdateConfig: Parallelism: 1 On failure: pause Monitoring Period: 5s Max failure ratio: 0 Update order: stop-first".to_string(),
        "RollbackConfig: Parallelism: 1 On failure: pause Monitoring Period: 5s Max failure ratio: 0 Rollback order: stop-first".to_string(),
    ] {
        assert!(pretty.contains(&want), "service inspect --pretty lacks {want:?}:\n{pretty}");
    }
    let ps = m.docker_ok(&["service", "ps", "web"]);
    assert_eq!(
        squash(ps.lines().next().unwrap_or_default()),
        "ID NAME IMAGE NODE DESIRED STATE CURRENT STATE ERROR PORTS"
    );

    // Updates: each one bumps Version.Index and keeps the spec it replaced.
    let v1 = version_of(&svc);
    let out = m.docker_ok(&["service", "update", "--detach", "--replicas", "3", "web"]);
    assert_eq!(out.trim(), "web");
    let svc = m.inspect("service", "web");
    let v2 = version_of(&svc);
    assert!(v2 > v1, "{v2} > {v1}");
    assert_eq!(svc["Spec"]["Mode"]["Replicated"]["Replicas"], 3);
    assert_eq!(svc["PreviousSpec"]["Mode"]["Replicated"]["Replicas"], 2);
    assert!(rows_with(&m.docker_ok(&["service", "ls"]), "web")[0].contains(" 0/3 "));

    let scaled = m.docker_ok(&["service", "scale", "--detach", "web=5"]);
    assert!(scaled.contains("web scaled to 5"), "{scaled}");
    let svc = m.inspect("service", "web");
    let v3 = version_of(&svc);
    assert!(v3 > v2, "{v3} > {v2}");
    assert_eq!(svc["Spec"]["Mode"]["Replicated"]["Replicas"], 5);

    m.docker_ok(&["service", "update", "--detach", "--env-add", "B=2", "web"]);
    let svc = m.inspect("service", "web");
    let v4 = version_of(&svc);
    assert!(v4 > v3, "{v4} > {v3}");
    // The CLI builds the list from a map: its order is not defined.
    let mut env = strings(&svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]);
    env.sort();
    assert_eq!(env, ["A=1", "B=2"]);
    assert_eq!(
        strings(&svc["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Env"]),
        ["A=1"]
    );
    assert_eq!(svc["Spec"]["Mode"]["Replicated"]["Replicas"], 5);
    assert_eq!(svc["ID"], id.as_str(), "an update keeps the service's ID");
    assert_eq!(svc["CreatedAt"], m.inspect("service", &id)["CreatedAt"]);

    let rolled = m.docker_ok(&["service", "update", "--detach", "--rollback", "web"]);
    assert!(rolled.contains("web"), "{rolled}");
    let svc = m.inspect("service", "web");
    assert!(version_of(&svc) > v4);
    assert_eq!(
        strings(&svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]),
        ["A=1"]
    );
    let mut previous = strings(&svc["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Env"]);
    previous.sort();
    assert_eq!(
        previous,
        ["A=1", "B=2"],
        "a rollback swaps Spec and PreviousSpec"
    );
    let combined = m.docker_err(&[
        "service",
        "update",
        "--detach",
        "--rollback",
        "--replicas",
        "1",
        "web",
    ]);
    assert!(
        combined.contains("other flags may not be combined with --rollback"),
        "{combined}"
    );

    // What the managers refuse.
    let clash = m.docker_err(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "nginx:alpine",
    ]);
    assert!(
        clash.contains("web") && clash.contains("already exists"),
        "{clash}"
    );
    let port = m.docker_err(&[
        "service",
        "create",
        "--detach",
        "--name",
        "other",
        "--publish",
        "8080:80",
        "nginx:alpine",
    ]);
    assert!(port.contains("port '8080' is already in use"), "{port}");
    assert!(
        port.contains("'web'"),
        "the message names the service using the port: {port}"
    );
    let invalid = m.docker_err(&[
        "service",
        "create",
        "--detach",
        "--name",
        "bad.name",
        "nginx:alpine",
    ]);
    assert!(
        invalid.contains("invalid service name \"bad.name\""),
        "{invalid}"
    );
    let long = "x".repeat(64);
    let too_long = m.docker_err(&[
        "service",
        "create",
        "--detach",
        "--name",
        &long,
        "nginx:alpine",
    ]);
    assert!(too_long.contains("63 characters or fewer"), "{too_long}");
    let memory = m.docker_err(&[
        "service",
        "create",
        "--detach",
        "--name",
        "tiny",
        "--limit-memory",
        "1m",
        "nginx:alpine",
    ]);
    assert!(memory.contains("Must be at least 4MiB"), "{memory}");
    let rollback_new = m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "fresh",
        "--publish",
        "9090:80",
        "nginx:alpine",
    ]);
    assert!(!rollback_new.trim().is_empty());
    let no_previous = m.docker_err(&["service", "update", "--detach", "--rollback", "fresh"]);
    assert!(
        no_previous.contains("does not have a previous spec"),
        "{no_previous}"
    );
    let unknown = m.docker_err(&["service", "inspect", "nosuchservice"]);
    assert!(
        unknown
            .to_lowercase()
            .contains("no such service: nosuchservice"),
        "{unknown}"
    );
    let unknown = m.docker_err(&[
        "service",
        "update",
        "--detach",
        "--replicas",
        "2",
        "nosuchservice",
    ]);
    assert!(unknown.contains("nosuchservice"), "{unknown}");
    // Ports added and removed (by target port), and dynamic ones from 30000 up.
    m.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--publish-add",
        "9091:91",
        "fresh",
    ]);
    let ports = m.inspect("service", "fresh")["Endpoint"]["Ports"].clone();
    assert_eq!(ports.as_array().map(Vec::len), Some(2), "{ports}");
    m.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--publish-rm",
        "91",
        "fresh",
    ]);
    let ports = m.inspect("service", "fresh")["Endpoint"]["Ports"].clone();
    assert_eq!(ports[0]["PublishedPort"], 9090, "{ports}");
    assert_eq!(ports.as_array().map(Vec::len), Some(1), "{ports}");
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "dynamic",
        "--publish",
        "80",
        "nginx:alpine",
    ]);
    let dynamic = m.inspect("service", "dynamic");
    assert_eq!(
        dynamic["Endpoint"]["Ports"][0]["PublishedPort"], 30000,
        "{dynamic}"
    );
    m.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--env-add",
        "C=3",
        "dynamic",
    ]);
    assert_eq!(
        m.inspect("service", "dynamic")["Endpoint"]["Ports"][0]["PublishedPort"],
        30000,
        "an update keeps the dynamic port"
    );
    m.docker_ok(&["service", "rm", "dynamic"]);
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "everywhere",
        "--mode",
        "global",
        "nginx:alpine",
    ]);
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "batch",
        "--mode",
        "replicated-job",
        "--replicas",
        "3",
        "busybox",
    ]);
    let ls = m.docker_ok(&["service", "ls"]);
    assert!(
        rows_with(&ls, " everywhere ")[0].contains(" everywhere global 0/0 nginx:alpine"),
        "{ls}"
    );
    assert!(
        rows_with(&ls, " batch ")[0]
            .contains(" batch replicated job 0/3 (0/3 completed) busybox:latest"),
        "{ls}"
    );
    let mode_change = m.docker_err(&[
        "service",
        "update",
        "--detach",
        "--replicas",
        "2",
        "everywhere",
    ]);
    assert!(
        mode_change.contains("replicas can only be used with replicated"),
        "{mode_change}"
    );
    m.docker_ok(&["service", "rm", "everywhere", "batch"]);
    let modes = m.docker_ok(&[
        "service",
        "ls",
        "--filter",
        "mode=replicated",
        "--format",
        "{{.Name}}",
    ]);
    let mut modes: Vec<&str> = modes.lines().collect();
    modes.sort_unstable();
    assert_eq!(modes, ["fresh", "web"]);
    let named = m.docker_ok(&[
        "service",
        "ls",
        "--filter",
        "name=we",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(named.trim(), "web");
    let labelled = m.docker_ok(&["service", "ls", "--filter", "label=x=y", "-q"]);
    assert_eq!(labelled.trim(), &id[..12]);

    // Removal frees the name and the port.
    let removed = m.docker_ok(&["service", "rm", "web", "fresh"]);
    assert_eq!(removed.lines().collect::<Vec<_>>(), ["web", "fresh"]);
    assert_eq!(
        table_rows(&m.docker_ok(&["service", "ls"])),
        Vec::<String>::new()
    );
    let gone = m.docker_err(&["service", "rm", "web"]);
    assert!(gone.contains("web"), "{gone}");
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--publish",
        "8080:80",
        "nginx:alpine",
    ]);
    assert_eq!(table_rows(&m.docker_ok(&["service", "ls"])).len(), 1);
}

// ----- configs, secrets, networks -----

#[test]
fn configs_secrets_and_networks() {
    let m = manager("objects");
    let config_file = fixture("configs/config.json");
    let secret_file = fixture("secrets/secrets.json");
    let config_text = std::fs::read_to_string(&config_file).expect("config fixture");

    // Configs: data is stored and shown.
    let cid = m
        .docker_ok(&["config", "create", "todo-list-config", &config_file])
        .trim()
        .to_string();
    assert_eq!(cid.len(), 25, "{cid}");
    let ls = m.docker_ok(&["config", "ls"]);
    assert_eq!(
        squash(ls.lines().next().unwrap_or_default()),
        "ID NAME CREATED UPDATED"
    );
    let row = rows_with(&ls, "todo-list-config");
    assert_eq!(row.len(), 1, "{ls}");
    assert!(
        row[0].starts_with(&format!("{cid} todo-list-config ")),
        "{ls}"
    );
    let config = m.inspect("config", "todo-list-config");
    assert_eq!(config["ID"], cid.as_str());
    assert_eq!(config["Spec"]["Name"], "todo-list-config");
    let data = m.docker_ok(&[
        "config",
        "inspect",
        "--format",
        "{{printf \"%s\" .Spec.Data}}",
        "todo-list-config",
    ]);
    assert_eq!(
        data.trim_end(),
        config_text.trim_end(),
        "config data round-trips"
    );
    let pretty = m.docker_ok(&["config", "inspect", "--pretty", "todo-list-config"]);
    let sq = squash(&pretty);
    assert!(
        sq.contains(&format!("ID: {cid}")) && sq.contains("Name: todo-list-config"),
        "{pretty}"
    );
    assert!(sq.contains("Data:"), "{pretty}");
    assert!(
        pretty.contains("\"Provider\": \"Postgres\""),
        "--pretty shows the data:\n{pretty}"
    );
    let dup = m.docker_err(&["config", "create", "todo-list-config", &config_file]);
    assert!(
        dup.contains("todo-list-config") && dup.contains("already exists"),
        "{dup}"
    );

    // Secrets: the data never comes back.
    let sid = m
        .docker_ok(&["secret", "create", "todo-list-secret", &secret_file])
        .trim()
        .to_string();
    assert_eq!(sid.len(), 25, "{sid}");
    let raw = m.docker_ok(&["secret", "inspect", "todo-list-secret"]);
    assert!(
        !raw.contains("\"Data\""),
        "secret inspect must not carry Data at all:\n{raw}"
    );
    assert!(!raw.contains("p4ssw0rd"), "{raw}");
    let secret = m.inspect("secret", "todo-list-secret");
    assert_eq!(secret["ID"], sid.as_str());
    assert_eq!(secret["Spec"]["Name"], "todo-list-secret");
    assert!(secret["Spec"].get("Data").is_none(), "{secret}");
    let pretty = m.docker_ok(&["secret", "inspect", "--pretty", "todo-list-secret"]);
    assert!(
        squash(&pretty).contains("Name: todo-list-secret"),
        "{pretty}"
    );
    assert!(!pretty.contains("p4ssw0rd"), "{pretty}");
    let ls = m.docker_ok(&["secret", "ls"]);
    assert_eq!(
        squash(ls.lines().next().unwrap_or_default()),
        "ID NAME DRIVER CREATED UPDATED"
    );
    assert!(
        rows_with(&ls, "todo-list-secret")[0].starts_with(&format!("{sid} todo-list-secret ")),
        "{ls}"
    );
    let labelled = m.docker_ok(&[
        "secret",
        "create",
        "--label",
        "env=prod",
        "labelled",
        &secret_file,
    ]);
    assert!(!labelled.trim().is_empty());
    let by_label = m.docker_ok(&[
        "secret",
        "ls",
        "--filter",
        "label=env=prod",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(by_label.trim(), "labelled");
    let by_name = m.docker_ok(&[
        "secret",
        "ls",
        "--filter",
        "name=todo",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(by_name.trim(), "todo-list-secret");
    m.docker_ok(&["secret", "rm", "labelled"]);
    let dup = m.docker_err(&["secret", "create", "todo-list-secret", &secret_file]);
    assert!(
        dup.contains("todo-list-secret") && dup.contains("already exists"),
        "{dup}"
    );
    let (status, body) = m
        .http(
            "POST",
            "/v1.41/secrets/create",
            Some(br#"{"Name":"todo-list-secret","Data":"aGVsbG8="}"#),
        )
        .expect("http");
    assert_eq!(status, 409, "{body}");
    let (status, body) = m
        .http(
            "POST",
            "/v1.41/configs/create",
            Some(br#"{"Name":"todo-list-config","Data":"aGVsbG8="}"#),
        )
        .expect("http");
    assert_eq!(status, 409, "{body}");

    // A service that uses both holds them in place.
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "todo",
        "--secret",
        "todo-list-secret",
        "--config",
        "todo-list-config",
        "nginx:alpine",
    ]);
    let svc = m.inspect("service", "todo");
    let cs = &svc["Spec"]["TaskTemplate"]["ContainerSpec"];
    assert_eq!(cs["Secrets"][0]["SecretID"], sid.as_str());
    assert_eq!(cs["Secrets"][0]["SecretName"], "todo-list-secret");
    assert_eq!(cs["Secrets"][0]["File"]["Name"], "todo-list-secret");
    assert_eq!(cs["Configs"][0]["ConfigID"], cid.as_str());
    assert_eq!(cs["Configs"][0]["ConfigName"], "todo-list-config");
    let busy = m.docker_err(&["secret", "rm", "todo-list-secret"]);
    assert!(
        busy.contains("secret 'todo-list-secret' is in use by the following service: todo"),
        "{busy}"
    );
    let busy = m.docker_err(&["config", "rm", "todo-list-config"]);
    assert!(
        busy.contains("config 'todo-list-config' is in use by the following service: todo"),
        "{busy}"
    );
    let missing = m.docker_err(&[
        "service",
        "create",
        "--detach",
        "--name",
        "s2",
        "--secret",
        "nosuchsecret",
        "nginx:alpine",
    ]);
    assert!(missing.contains("nosuchsecret"), "{missing}");
    m.docker_ok(&["service", "rm", "todo"]);
    assert_eq!(
        m.docker_ok(&["secret", "rm", "todo-list-secret"]).trim(),
        "todo-list-secret"
    );
    assert_eq!(
        m.docker_ok(&["config", "rm", "todo-list-config"]).trim(),
        "todo-list-config"
    );
    assert_eq!(
        table_rows(&m.docker_ok(&["secret", "ls"])),
        Vec::<String>::new()
    );
    assert_eq!(
        table_rows(&m.docker_ok(&["config", "ls"])),
        Vec::<String>::new()
    );
    let gone = m.docker_err(&["secret", "inspect", "todo-list-secret"]);
    assert!(gone.contains("secret todo-list-secret not found"), "{gone}");
    let gone = m.docker_err(&["config", "inspect", "todo-list-config"]);
    assert!(gone.contains("config todo-list-config not found"), "{gone}");
    let bad = m.docker_err(&["secret", "create", "bad/name", &secret_file]);
    assert!(bad.contains("invalid secret name"), "{bad}");

    // Networks: swarm-scoped overlays next to the ingress network.
    let nid = m
        .docker_ok(&[
            "network",
            "create",
            "-d",
            "overlay",
            "--attachable",
            "backend",
        ])
        .trim()
        .to_string();
    assert!(!nid.is_empty());
    let ls = m.docker_ok(&["network", "ls"]);
    assert_eq!(
        squash(ls.lines().next().unwrap_or_default()),
        "NETWORK ID NAME DRIVER SCOPE"
    );
    let ingress = rows_with(&ls, " ingress ");
    assert_eq!(ingress.len(), 1, "{ls}");
    assert!(ingress[0].ends_with(" ingress overlay swarm"), "{ls}");
    let backend = rows_with(&ls, " backend ");
    assert_eq!(
        backend,
        [format!("{} backend overlay swarm", &nid[..12])],
        "{ls}"
    );
    let net = m.inspect("network", "backend");
    assert_eq!(net["Id"], nid.as_str());
    assert_eq!(net["Name"], "backend");
    assert_eq!(net["Driver"], "overlay");
    assert_eq!(net["Scope"], "swarm");
    assert_eq!(net["Attachable"], true);
    assert_eq!(net["Ingress"], false);
    assert!(
        net["IPAM"]["Config"][0]["Subnet"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{net}"
    );
    let ingress = m.inspect("network", "ingress");
    assert_eq!(ingress["Ingress"], true);
    let dup = m.docker_err(&["network", "create", "-d", "overlay", "backend"]);
    assert!(
        dup.contains("backend") && dup.contains("already exists"),
        "{dup}"
    );
    let bridge = m.docker_err(&["network", "create", "-d", "bridge", "local"]);
    assert!(bridge.contains("bridge"), "{bridge}");
    m.docker_ok(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.50.0.0/24",
        "--label",
        "tier=db",
        "pinned",
    ]);
    let pinned = m.inspect("network", "pinned");
    assert_eq!(pinned["IPAM"]["Config"][0]["Subnet"], "10.50.0.0/24");
    assert_eq!(pinned["Labels"]["tier"], "db");
    let overlap = m.docker_err(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.50.0.0/24",
        "pinned2",
    ]);
    assert!(overlap.contains("10.50.0.0/24"), "{overlap}");
    let by_label = m.docker_ok(&[
        "network",
        "ls",
        "--filter",
        "label=tier=db",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(by_label.trim(), "pinned");
    m.docker_ok(&["network", "rm", "pinned"]);
    let predefined = m.docker_err(&["network", "create", "-d", "overlay", "host"]);
    assert!(predefined.contains("pre-defined network"), "{predefined}");
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "api",
        "--network",
        "backend",
        "nginx:alpine",
    ]);
    let svc = m.inspect("service", "api");
    assert_eq!(
        svc["Spec"]["TaskTemplate"]["Networks"][0]["Target"],
        nid.as_str()
    );
    let busy = m.docker_err(&["network", "rm", "backend"]);
    assert!(busy.contains("backend") && busy.contains("api"), "{busy}");
    m.docker_ok(&["service", "rm", "api"]);
    assert_eq!(m.docker_ok(&["network", "rm", "backend"]).trim(), "backend");
    assert!(rows_with(&m.docker_ok(&["network", "ls"]), " backend ").is_empty());
    let gone = m.docker_err(&["network", "inspect", "backend"]);
    assert!(
        gone.contains("backend") && gone.to_lowercase().contains("not found"),
        "{gone}"
    );
}

// ----- stacks -----

#[test]
fn stack_deploy_of_the_book_fixtures() {
    let m = manager("stacks");
    let v1 = fixture("v1.yml");
    let out = m.docker_ok(&["stack", "deploy", "-c", &v1, "todo"]);
    assert!(out.contains("Creating network todo_default"), "{out}");
    assert!(out.contains("Creating service todo_todo-web"), "{out}");
    let ls = m.docker_ok(&["stack", "ls"]);
    assert_eq!(table_rows(&ls), ["todo 1"], "{ls}");
    let services = m.docker_ok(&["stack", "services", "todo"]);
    let rows = table_rows(&services);
    assert_eq!(rows.len(), 1, "{services}");
    assert!(
        rows[0]
            .ends_with(" todo_todo-web replicated 0/1 diamol/ch06-todo-list:latest *:8080->80/tcp"),
        "{services}"
    );
    let web = m.inspect("service", "todo_todo-web");
    let web_id = web["ID"].as_str().unwrap_or_default().to_string();
    assert_eq!(web["Spec"]["Labels"]["com.docker.stack.namespace"], "todo");
    assert_eq!(
        web["Spec"]["Labels"]["com.docker.stack.image"],
        "diamol/ch06-todo-list"
    );
    assert_eq!(web["Endpoint"]["Ports"][0]["PublishedPort"], 8080);
    let net = m.inspect("network", "todo_default");
    assert_eq!(net["Driver"], "overlay");
    assert_eq!(net["Scope"], "swarm");
    assert_eq!(net["Labels"]["com.docker.stack.namespace"], "todo");
    let attachment = &web["Spec"]["TaskTemplate"]["Networks"][0];
    assert_eq!(attachment["Target"], net["Id"]);
    assert_eq!(strings(&attachment["Aliases"]), ["todo-web"]);

    // v2: the same service, updated in place.
    let out = m.docker_ok(&["stack", "deploy", "-c", &fixture("v2.yml"), "todo"]);
    assert!(
        out.contains(&format!("Updating service todo_todo-web (id: {web_id})")),
        "{out}"
    );
    let web2 = m.inspect("service", "todo_todo-web");
    assert_eq!(web2["ID"], web_id.as_str());
    assert!(version_of(&web2) > version_of(&web));
    assert_eq!(web2["Spec"]["Mode"]["Replicated"]["Replicas"], 2);
    let limits = &web2["Spec"]["TaskTemplate"]["Resources"]["Limits"];
    assert_eq!(limits["NanoCPUs"], 500_000_000);
    assert_eq!(limits["MemoryBytes"], 100 * 1024 * 1024);
    assert_eq!(web2["PreviousSpec"]["Mode"]["Replicated"]["Replicas"], 1);
    assert_eq!(table_rows(&m.docker_ok(&["stack", "ls"])), ["todo 1"]);

    // v4 and v5 need the external config and secret, and a node labelled for the database.
    let v4 = fixture("v4.yml");
    let missing = m.docker_err(&["stack", "deploy", "-c", &v4, "todo"]);
    assert!(
        missing.contains("todo-list-config") || missing.contains("todo-list-secret"),
        "{missing}"
    );
    // The CLI creates the stack's networks before it finds the external objects missing.
    assert!(m
        .docker_ok(&["network", "ls", "--format", "{{.Name}}"])
        .contains("todo_app-net"));
    m.docker_ok(&[
        "config",
        "create",
        "todo-list-config",
        &fixture("configs/config.json"),
    ]);
    m.docker_ok(&[
        "secret",
        "create",
        "todo-list-secret",
        &fixture("secrets/secrets.json"),
    ]);
    let me = m.node_id();
    m.docker_ok(&["node", "update", "--label-add", "storage=raid", &me]);
    let out = m.docker_ok(&["stack", "deploy", "-c", &v4, "todo"]);
    assert!(out.contains("Creating service todo_todo-db"), "{out}");
    assert!(out.contains("Updating service todo_todo-web"), "{out}");
    let out = m.docker_ok(&["stack", "deploy", "-c", &fixture("v5.yml"), "todo"]);
    assert!(out.contains("Updating service todo_todo-db"), "{out}");
    let names = m.docker_ok(&["stack", "services", "todo", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["todo_todo-db", "todo_todo-web"]);
    assert_eq!(table_rows(&m.docker_ok(&["stack", "ls"])), ["todo 2"]);
    let app_net = m.inspect("network", "todo_app-net");
    assert_eq!(app_net["Labels"]["com.docker.stack.namespace"], "todo");
    let web = m.inspect("service", "todo_todo-web");
    assert_eq!(web["ID"], web_id.as_str());
    let cs = &web["Spec"]["TaskTemplate"]["ContainerSpec"];
    assert_eq!(cs["Configs"][0]["ConfigName"], "todo-list-config");
    assert_eq!(cs["Configs"][0]["File"]["Name"], "/app/config/config.json");
    assert_eq!(cs["Secrets"][0]["SecretName"], "todo-list-secret");
    assert_eq!(cs["Secrets"][0]["File"]["Name"], "/app/config/secrets.json");
    assert_eq!(
        web["Spec"]["TaskTemplate"]["Networks"][0]["Target"],
        app_net["Id"]
    );
    let db = m.inspect("service", "todo_todo-db");
    let task = &db["Spec"]["TaskTemplate"];
    let mount = &task["ContainerSpec"]["Mounts"][0];
    assert_eq!(mount["Type"], "volume");
    assert_eq!(mount["Source"], "todo_todo-db-data");
    assert_eq!(mount["Target"], "/var/lib/postgresql/data");
    assert_eq!(
        mount["VolumeOptions"]["Labels"]["com.docker.stack.namespace"], "todo",
        "{mount}"
    );
    assert_eq!(
        strings(&task["ContainerSpec"]["Env"]),
        ["PGDATA=/var/lib/postgresql/data/pgdata"]
    );
    assert_eq!(
        strings(&task["Placement"]["Constraints"]),
        ["node.labels.storage == raid"]
    );
    assert_eq!(
        task["Resources"]["Limits"]["MemoryBytes"],
        500 * 1024 * 1024
    );
    assert_eq!(task["Networks"][0]["Target"], app_net["Id"]);
    assert_eq!(strings(&task["Networks"][0]["Aliases"]), ["todo-db"]);
    // Deploying the same file again changes nothing but the versions.
    m.docker_ok(&["stack", "deploy", "-c", &fixture("v5.yml"), "todo"]);
    let db_again = m.inspect("service", "todo_todo-db");
    assert_eq!(
        db_again["Spec"], db["Spec"],
        "a redeploy of the same file is idempotent"
    );

    // stack rm takes the stack's services and networks, never the external objects.
    let out = m.docker_ok(&["stack", "rm", "todo"]);
    for want in [
        "Removing service todo_todo-db",
        "Removing service todo_todo-web",
        "Removing network todo_app-net",
        "Removing network todo_default",
    ] {
        assert!(out.contains(want), "stack rm did not say {want:?}:\n{out}");
    }
    eventually(WAIT, "the stack to be gone", || {
        table_rows(&m.docker_ok(&["stack", "ls"]))
            .is_empty()
            .then_some(())
    });
    assert_eq!(
        table_rows(&m.docker_ok(&["service", "ls"])),
        Vec::<String>::new()
    );
    let nets = m.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(
        nets.trim(),
        "ingress",
        "only the ingress network is left:\n{nets}"
    );
    assert_eq!(
        m.docker_ok(&["config", "ls", "--format", "{{.Name}}"])
            .trim(),
        "todo-list-config"
    );
    assert_eq!(
        m.docker_ok(&["secret", "ls", "--format", "{{.Name}}"])
            .trim(),
        "todo-list-secret"
    );
    let none = m.docker(&["stack", "rm", "todo"]);
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(stderr.contains("Nothing found in stack: todo"), "{stderr}");

    // Two files merged: health checks without a test, an update policy from the second file.
    let out = m.docker_ok(&[
        "stack",
        "deploy",
        "-c",
        &fixture("numbers-v3.yml"),
        "-c",
        &fixture("numbers-prod-update-config.yml"),
        "numbers",
    ]);
    assert!(
        out.contains("Creating service numbers_numbers-api"),
        "{out}"
    );
    assert!(
        out.contains("Creating service numbers_numbers-web"),
        "{out}"
    );
    let api = m.inspect("service", "numbers_numbers-api");
    let update = &api["Spec"]["UpdateConfig"];
    assert_eq!(update["Parallelism"], 3);
    assert_eq!(update["Monitor"], 60_000_000_000u64);
    assert_eq!(update["Order"], "start-first");
    assert_eq!(update["FailureAction"], "rollback");
    let health = &api["Spec"]["TaskTemplate"]["ContainerSpec"]["Healthcheck"];
    assert_eq!(health["Interval"], 5_000_000_000u64);
    assert_eq!(health["Timeout"], 3_000_000_000u64);
    assert_eq!(health["Retries"], 2);
    assert_eq!(health["StartPeriod"], 5_000_000_000u64);
    assert!(
        health.get("Test").is_none_or(Value::is_null),
        "no test: the image's own: {health}"
    );
    let web = m.inspect("service", "numbers_numbers-web");
    assert_eq!(
        web["Spec"]["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["StartPeriod"],
        30_000_000_000u64
    );
    assert!(web["Spec"]
        .get("UpdateConfig")
        .is_none_or(|u| u.is_null() || u["Order"] != "start-first"));
    assert_eq!(table_rows(&m.docker_ok(&["stack", "ls"])), ["numbers 2"]);
}

// ----- bad requests -----

/// A request the daemon must refuse with a 4xx and a JSON message containing `needle`.
fn refused(d: &Daemon, method: &str, path: &str, body: Option<&[u8]>, status: u16, needle: &str) {
    let (got, text) = d
        .http(method, path, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("{method} {path} answered {got} with a body that is not JSON ({e}): {text}")
    });
    let msg = v["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {path}: no message in {text}"));
    assert_eq!(got, status, "{method} {path}: {msg}");
    assert!(
        msg.contains(needle),
        "{method} {path}: message {msg:?} lacks {needle:?}"
    );
}

fn encoded(filters: &str) -> String {
    filters
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn bad_requests_get_docker_style_errors() {
    let m = manager("errors");
    let v = "/v1.41";
    let svc = br#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"nginx:alpine"}}}"#;

    refused(
        &m,
        "POST",
        &format!("{v}/services/create"),
        Some(br#"{"Name": "x","#),
        400,
        "invalid JSON",
    );
    refused(
        &m,
        "POST",
        &format!("{v}/services/create"),
        Some(br#"{"Name": 5}"#),
        400,
        "Name: invalid type",
    );
    refused(
        &m,
        "POST",
        &format!("{v}/services/create"),
        Some(br#"{"Mode":{"Replicated":{"Replicas":"two"}}}"#),
        400,
        "Mode.Replicated.Replicas",
    );
    refused(
        &m,
        "POST",
        &format!("{v}/services/create"),
        None,
        400,
        "empty",
    );
    refused(
        &m,
        "POST",
        &format!("{v}/secrets/create"),
        Some(br#"{"Name":"s","Data":"not base64!"}"#),
        400,
        "",
    );
    refused(
        &m,
        "POST",
        &format!("{v}/nodes/x/update?version=1"),
        Some(b"[]"),
        404,
        "",
    );
    let big = vec![b' '; 5 * 1024 * 1024];
    refused(
        &m,
        "POST",
        &format!("{v}/configs/create"),
        Some(&big),
        413,
        "",
    );

    // Unknown objects.
    for (method, path, needle) in [
        ("GET", "/services/nosuch", "service nosuch not found"),
        ("DELETE", "/services/nosuch", "service nosuch not found"),
        ("GET", "/nodes/nosuch", "node nosuch not found"),
        ("DELETE", "/nodes/nosuch", "node nosuch not found"),
        ("GET", "/tasks/nosuch", "task nosuch not found"),
        ("GET", "/configs/nosuch", "config nosuch not found"),
        ("DELETE", "/configs/nosuch", "config nosuch not found"),
        ("GET", "/secrets/nosuch", "secret nosuch not found"),
        ("DELETE", "/secrets/nosuch", "secret nosuch not found"),
        ("GET", "/networks/nosuch", "network nosuch not found"),
        ("DELETE", "/networks/nosuch", "network nosuch not found"),
        ("GET", "/no/such/route", "page not found"),
    ] {
        refused(&m, method, &format!("{v}{path}"), None, 404, needle);
    }

    // API versions.
    refused(
        &m,
        "GET",
        "/v1.99/info",
        None,
        400,
        "client version 1.99 is too new. Maximum supported API version is 1.41",
    );
    refused(
        &m,
        "GET",
        "/v1.12/info",
        None,
        400,
        "client version 1.12 is too old. Minimum supported API version is 1.24",
    );
    let (status, _) = m.http("GET", "/v1.24/info", None).expect("http");
    assert_eq!(status, 200);

    // Versions of updates.
    let (status, body) = m
        .http("POST", &format!("{v}/services/create"), Some(svc))
        .expect("http");
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).expect("json")["ID"]
        .as_str()
        .expect("ID")
        .to_string();
    let (_, body) = m
        .http("GET", &format!("{v}/services/{id}"), None)
        .expect("http");
    let current = version_of(&serde_json::from_str(&body).expect("json"));
    let update = format!("{v}/services/{id}/update");
    refused(
        &m,
        "POST",
        &format!("{update}?version={}", current - 1),
        Some(svc),
        409,
        "update out of sequence",
    );
    refused(&m, "POST", &update, Some(svc), 400, "version");
    refused(
        &m,
        "POST",
        &format!("{update}?version=abc"),
        Some(svc),
        400,
        "version",
    );
    refused(
        &m,
        "POST",
        &format!("{update}?version={current}&rollback=sideways"),
        Some(svc),
        400,
        "rollback",
    );
    let (status, body) = m
        .http("POST", &format!("{update}?version={current}"), Some(svc))
        .expect("http");
    assert_eq!(status, 200, "the current version is accepted: {body}");
    refused(
        &m,
        "POST",
        &format!("{update}?version={current}"),
        Some(svc),
        409,
        "update out of sequence",
    );
    let renamed = br#"{"Name":"web2","TaskTemplate":{"ContainerSpec":{"Image":"nginx:alpine"}}}"#;
    let (_, body) = m
        .http("GET", &format!("{v}/services/{id}"), None)
        .expect("http");
    let current = version_of(&serde_json::from_str(&body).expect("json"));
    refused(
        &m,
        "POST",
        &format!("{update}?version={current}"),
        Some(renamed),
        400,
        "renaming services is not supported",
    );
    let (_, body) = m.http("GET", &format!("{v}/swarm"), None).expect("http");
    let swarm_version = version_of(&serde_json::from_str(&body).expect("json"));
    refused(
        &m,
        "POST",
        &format!("{v}/swarm/update?version={}", swarm_version + 100),
        Some(b"{}"),
        409,
        "update out of sequence",
    );

    // Filters.
    let bad_key = encoded(r#"{"foo":["bar"]}"#);
    refused(
        &m,
        "GET",
        &format!("{v}/services?filters={bad_key}"),
        None,
        400,
        "invalid filter 'foo'",
    );
    refused(
        &m,
        "GET",
        &format!("{v}/nodes?filters={bad_key}"),
        None,
        400,
        "invalid filter 'foo'",
    );
    refused(
        &m,
        "GET",
        &format!("{v}/tasks?filters={bad_key}"),
        None,
        400,
        "invalid filter 'foo'",
    );
    refused(
        &m,
        "GET",
        &format!("{v}/secrets?filters={bad_key}"),
        None,
        400,
        "invalid filter 'foo'",
    );
    refused(
        &m,
        "GET",
        &format!("{v}/networks?filters={bad_key}"),
        None,
        400,
        "invalid filter 'foo'",
    );
    refused(
        &m,
        "GET",
        &format!("{v}/services?filters={}", encoded("{not json")),
        None,
        400,
        "invalid filter",
    );
    refused(
        &m,
        "GET",
        &format!(
            "{v}/services?filters={}",
            encoded(r#"{"mode":["sideways"]}"#)
        ),
        None,
        400,
        "sideways",
    );
    refused(
        &m,
        "GET",
        &format!("{v}/nodes?filters={}", encoded(r#"{"role":["chief"]}"#)),
        None,
        400,
        "Invalid role filter: 'chief'",
    );

    // Names.
    let bad_service =
        br#"{"Name":"bad name","TaskTemplate":{"ContainerSpec":{"Image":"nginx:alpine"}}}"#;
    refused(
        &m,
        "POST",
        &format!("{v}/services/create"),
        Some(bad_service),
        400,
        "invalid service name",
    );
    refused(
        &m,
        "POST",
        &format!("{v}/secrets/create"),
        Some(br#"{"Name":"bad/name","Data":"aGk="}"#),
        400,
        "invalid secret name",
    );
    refused(
        &m,
        "POST",
        &format!("{v}/configs/create"),
        Some(br#"{"Name":".hidden","Data":"aGk="}"#),
        400,
        "invalid config name",
    );
    refused(
        &m,
        "POST",
        &format!("{v}/networks/create"),
        Some(br#"{"Name":"bad name","Driver":"overlay"}"#),
        400,
        "invalid network name",
    );
    refused(
        &m,
        "POST",
        &format!("{v}/networks/create"),
        Some(br#"{"Name":""}"#),
        400,
        "name",
    );
    refused(
        &m,
        "POST",
        &format!("{v}/services/create"),
        Some(svc),
        409,
        "already exists",
    );
    refused(
        &m,
        "POST",
        &format!("{v}/services/create"),
        Some(br#"{"Name":"noimage","TaskTemplate":{"ContainerSpec":{}}}"#),
        400,
        "image",
    );

    // The ingress network is in use by every service that publishes an ingress port, even
    // though no service names it.
    let published = br#"{"Name":"published","TaskTemplate":{"ContainerSpec":{"Image":"nginx:alpine"}},"EndpointSpec":{"Ports":[{"TargetPort":80,"PublishedPort":8080}]}}"#;
    let (status, body) = m
        .http("POST", &format!("{v}/services/create"), Some(published))
        .expect("http");
    assert_eq!(status, 201, "{body}");
    refused(
        &m,
        "DELETE",
        &format!("{v}/networks/ingress"),
        None,
        409,
        "depends on it",
    );
    m.docker_ok(&["service", "rm", "published"]);

    // The daemon is still fine.
    let (status, body) = m.http("GET", "/_ping", None).expect("http");
    assert_eq!((status, body.as_str()), (200, "OK"));
    let rows = table_rows(&m.docker_ok(&["service", "ls"]));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains(" web "), "{rows:?}");
    assert!(squash(&m.docker_ok(&["info"])).contains("Swarm: active"));
}
