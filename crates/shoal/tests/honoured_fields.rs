//! Fields and filters shoal used to accept and ignore, now honoured or refused by name:
//! `Dispatcher.HeartbeatPeriod`, network prune's filters, networks' `dangling`, services' and
//! tasks' `runtime` (with its filter), the swarm's `TaskDefaults.LogDriver`, and the Raft
//! settings of the swarm spec.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{engine_ok, eventually, test_image, Daemon, ENGINE_SOCKET};

fn get(d: &Daemon, path: &str) -> Value {
    let (status, answer) = d
        .http("GET", &format!("/v1.41{path}"), None)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(status, 200, "GET {path}: {answer}");
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("GET {path}: {e}: {answer}"))
}

fn post(d: &Daemon, path: &str, body: &Value) -> (u16, String) {
    d.http(
        "POST",
        &format!("/v1.41{path}"),
        Some(body.to_string().as_bytes()),
    )
    .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

fn node_state(m: &Daemon, id: &str) -> String {
    get(m, &format!("/nodes/{id}"))["Status"]["State"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn names(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
    v.retain(|l| !l.is_empty());
    v.sort();
    v
}

fn encoded(filters: &Value) -> String {
    filters
        .to_string()
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The nodes' own profile says 10 s; the cluster says 500 ms. Nodes report at the cluster's
/// period once told, and a node that stops is down after three of them, not thirty seconds.
#[test]
fn dispatcher_heartbeat_period_sets_how_often_nodes_report_and_when_they_are_down() {
    let m = Daemon::start_with_flags("hb-manager", &["--node-heartbeat", "10s"]);
    m.init_with(&["--dispatcher-heartbeat", "500ms"]);
    let swarm = get(&m, "/swarm");
    assert_eq!(
        swarm["Spec"]["Dispatcher"]["HeartbeatPeriod"], 500_000_000u64,
        "{swarm}"
    );
    let mut w = Daemon::start_with_flags("hb-worker", &["--node-heartbeat", "10s"]);
    w.join(&m, "worker");
    let wid = w.node_id();
    eventually(Duration::from_secs(40), "the worker to be ready", || {
        (node_state(&m, &wid) == "ready").then_some(())
    });
    // Told the cluster's period, the worker reports often enough to stay ready (its own
    // profile's 10 s would leave it down after 1.5 s).
    let watch = Instant::now() + Duration::from_secs(4);
    while Instant::now() < watch {
        assert_eq!(node_state(&m, &wid), "ready", "the worker missed beats");
        std::thread::sleep(Duration::from_millis(200));
    }
    w.kill9();
    eventually(
        Duration::from_secs(15),
        "the stopped worker to be down after three periods",
        || (node_state(&m, &wid) == "down").then_some(()),
    );
}

#[test]
fn swarm_settings_shoal_cannot_change_are_refused() {
    let m = Daemon::start("raft-settings");
    m.init();
    let err = m.docker_err(&["swarm", "update", "--snapshot-interval", "1234"]);
    assert!(err.contains("Raft.SnapshotInterval 1234"), "{err}");
    let err = m.docker_err(&["swarm", "update", "--max-snapshots", "3"]);
    assert!(err.contains("Raft.KeepOldSnapshots 3"), "{err}");
    let err = m.docker_err(&["swarm", "update", "--dispatcher-heartbeat", "10ms"]);
    assert!(err.contains("at least 100ms"), "{err}");
    // What can change still does.
    m.docker_ok(&["swarm", "update", "--dispatcher-heartbeat", "2s"]);
    let swarm = get(&m, "/swarm");
    assert_eq!(
        swarm["Spec"]["Dispatcher"]["HeartbeatPeriod"], 2_000_000_000u64,
        "{swarm}"
    );
}

#[test]
fn network_prune_honours_its_filters_and_dangling_false_means_in_use() {
    let m = Daemon::start("net-filters");
    m.init();
    for (name, label) in [
        ("dev", "env=dev"),
        ("prod", "env=prod"),
        ("keep", "keep=yes"),
        ("used", "env=dev"),
    ] {
        m.docker_ok(&["network", "create", "-d", "overlay", "--label", label, name]);
    }
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--network",
        "used",
        "busybox",
    ]);
    let cutoff = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    std::thread::sleep(Duration::from_millis(1200));
    m.docker_ok(&[
        "network", "create", "-d", "overlay", "--label", "env=dev", "late",
    ]);
    let ls = |filter: &str| {
        names(&m.docker_ok(&["network", "ls", "--filter", filter, "--format", "{{.Name}}"]))
    };

    // dangling=false: the networks in use (ingress always); dangling=true: the others.
    assert_eq!(ls("dangling=false"), ["ingress", "used"]);
    assert_eq!(ls("dangling=true"), ["dev", "keep", "late", "prod"]);
    let err = m.docker_err(&["network", "ls", "--filter", "dangling=maybe"]);
    assert!(err.contains("dangling"), "{err}");

    // label and until together: only the unused dev network made before the cutoff.
    let out = m.docker_ok(&[
        "network",
        "prune",
        "-f",
        "--filter",
        "label=env=dev",
        "--filter",
        &format!("until={cutoff:.3}"),
    ]);
    assert!(out.contains("dev"), "{out}");
    assert_eq!(
        ls("driver=overlay"),
        ["ingress", "keep", "late", "prod", "used"]
    );

    // label!: every unused network without the label.
    m.docker_ok(&["network", "prune", "-f", "--filter", "label!=keep"]);
    assert_eq!(ls("driver=overlay"), ["ingress", "keep", "used"]);
}

#[test]
fn runtimes_other_than_container_are_refused_and_the_runtime_filter_is_honoured() {
    let m = Daemon::start("runtime");
    m.init();
    let refused = |body: Value, needle: &str| {
        let (status, answer) = post(&m, "/services/create", &body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer.contains(needle), "{body}: {answer}");
    };
    refused(
        json!({"Name": "p", "Mode": {"Global": {}},
               "TaskTemplate": {"Runtime": "plugin",
                                "PluginSpec": {"Name": "sshfs", "Remote": "vieux/sshfs"}}}),
        "runtime type \\\"plugin\\\"",
    );
    refused(
        json!({"Name": "a", "TaskTemplate": {"Runtime": "attachment",
                                             "ContainerSpec": {"Image": "busybox"}}}),
        "unsupported runtime",
    );
    refused(
        json!({"Name": "c", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"},
                                             "PluginSpec": {"Name": "sshfs"}}}),
        "PluginSpec",
    );
    refused(
        json!({"Name": "i", "TaskTemplate": {"ContainerSpec": {"Image": "busybox",
            "Mounts": [{"Type": "image", "Source": "alpine", "Target": "/img"}]}}}),
        "image mounts",
    );
    let err = m.docker_err(&[
        "service",
        "create",
        "--generic-resource",
        "gpu=1",
        "busybox",
    ]);
    assert!(err.contains("GenericResources"), "{err}");

    m.docker_ok(&["service", "create", "--detach", "--name", "web", "busybox"]);
    let svc = get(&m, "/services/web");
    assert_eq!(svc["Spec"]["TaskTemplate"]["Runtime"], "container", "{svc}");
    let services = |runtime: &str| {
        let f = encoded(&json!({ "runtime": [runtime] }));
        get(&m, &format!("/services?filters={f}"))
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(services("container"), 1);
    assert_eq!(services("plugin"), 0);
    eventually(Duration::from_secs(20), "the service's task", || {
        let all = get(&m, "/tasks");
        (all.as_array().map_or(0, Vec::len) > 0).then_some(())
    });
    let tasks = |runtime: &str| {
        let f = encoded(&json!({ "runtime": [runtime] }));
        get(&m, &format!("/tasks?filters={f}"))
            .as_array()
            .map_or(0, Vec::len)
    };
    assert!(tasks("container") > 0);
    assert_eq!(tasks("plugin"), 0);
}

/// A service that names no log driver logs with the swarm's `TaskDefaults.LogDriver`; one
/// that names its own keeps it.
#[test]
fn task_defaults_log_driver_applies_to_services_without_their_own() {
    let image = test_image();
    let m = Daemon::start_with_engine("log-defaults", ENGINE_SOCKET);
    m.init();
    let node = m.node_id();
    let swarm = get(&m, "/swarm");
    let mut spec = swarm["Spec"].clone();
    spec["TaskDefaults"] = json!({"LogDriver": {"Name": "json-file",
                                                "Options": {"max-size": "1m"}}});
    let version = swarm["Version"]["Index"].as_u64().unwrap();
    let (status, answer) = post(&m, &format!("/swarm/update?version={version}"), &spec);
    assert_eq!(status, 200, "{answer}");
    let svc = format!("logdef{}", std::process::id());
    m.docker_ok(&[
        "service", "create", "--detach", "--name", &svc, image, "sleep", "300",
    ]);
    let own = format!("logown{}", std::process::id());
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        &own,
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-file=2",
        image,
        "sleep",
        "300",
    ]);
    let log_config = |service: &str| {
        eventually(Duration::from_secs(60), "a running container", || {
            let ids = engine_ok(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.node.id={node}"),
                "--filter",
                &format!("label=com.docker.swarm.service.name={service}"),
            ]);
            let id = ids.lines().next()?.trim().to_string();
            let out = engine_ok(&["inspect", "--format", "{{json .HostConfig.LogConfig}}", &id]);
            serde_json::from_str::<Value>(out.trim()).ok()
        })
    };
    let defaults = log_config(&svc);
    assert_eq!(defaults["Type"], "json-file", "{defaults}");
    assert_eq!(defaults["Config"]["max-size"], "1m", "{defaults}");
    let own_config = log_config(&own);
    assert_eq!(own_config["Config"]["max-file"], "2", "{own_config}");
    assert!(
        own_config["Config"].get("max-size").is_none(),
        "{own_config}"
    );
    m.docker_ok(&["service", "rm", &svc, &own]);
}
