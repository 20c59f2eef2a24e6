//! Request bodies decode as the Docker daemon (Go's `encoding/json`) decodes them: object keys
//! match fields ignoring case at every nesting level, unknown keys are ignored, and a body that
//! does not fit says which field. Every route that takes a body is driven by raw HTTP with
//! lower-case and odd-case keys, the way hand-written clients send them.

mod support;

use serde_json::{json, Value};
use support::{data_path_port, Daemon};

/// POSTs `body` and returns the answer, asserting the status.
fn post(d: &Daemon, path: &str, body: &Value, status: u16) -> String {
    let bytes = body.to_string();
    let (got, answer) = d
        .http("POST", &format!("/v1.41{path}"), Some(bytes.as_bytes()))
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    assert_eq!(got, status, "POST {path} {body}: {answer}");
    answer
}

fn get(d: &Daemon, path: &str) -> Value {
    let (status, answer) = d
        .http("GET", &format!("/v1.41{path}"), None)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(status, 200, "GET {path}: {answer}");
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("GET {path}: {e}: {answer}"))
}

/// The same JSON with every object key lower-cased, except the keys of the user's own maps
/// (labels, driver options), which Go keeps as sent.
fn lower_keys(v: &Value) -> Value {
    const MAPS: &[&str] = &["Labels", "Options", "DriverOpts"];
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if MAPS.contains(&k.as_str()) {
                        v.clone()
                    } else {
                        lower_keys(v)
                    };
                    (k.to_lowercase(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_keys).collect()),
        other => other.clone(),
    }
}

fn version_of(obj: &Value) -> u64 {
    obj["Version"]["Index"]
        .as_u64()
        .unwrap_or_else(|| panic!("no Version.Index in {obj}"))
}

#[test]
fn swarm_init_join_and_update_take_lower_case_keys() {
    let m = Daemon::start("lc-init");
    post(
        &m,
        "/swarm/init",
        &json!({
            "listenaddr": m.addr(),
            "AdvertiseADDR": m.addr(),
            "dataPathPort": data_path_port(),
            "spec": {
                "labels": {"Team": "core"},
                "orchestration": {"taskHistoryRetentionLimit": 7},
                "caconfig": {"nodeCertExpiry": 48 * 3600 * 1_000_000_000u64},
            },
            "notAField": {"anything": [1, 2]},
        }),
        200,
    );
    let swarm = get(&m, "/swarm");
    assert_eq!(
        swarm["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"], 7,
        "{swarm}"
    );
    assert_eq!(swarm["Spec"]["Labels"]["Team"], "core", "{swarm}");
    assert_eq!(
        swarm["Spec"]["CAConfig"]["NodeCertExpiry"],
        48u64 * 3600 * 1_000_000_000,
        "{swarm}"
    );

    // Join: a second node with an all-lower-case request.
    let w = Daemon::start("lc-join");
    let token = swarm["JoinTokens"]["Worker"].as_str().unwrap().to_string();
    post(
        &w,
        "/swarm/join",
        &json!({
            "listenaddr": w.addr(),
            "advertiseaddr": w.addr(),
            "remoteaddrs": [m.addr()],
            "jointoken": token,
            "availability": "active",
        }),
        200,
    );
    let nodes = get(&m, "/nodes");
    assert_eq!(nodes.as_array().map(Vec::len), Some(2), "{nodes}");

    // Update: the spec as inspected, every key lower-cased, one value changed.
    let mut spec = swarm["Spec"].clone();
    spec["Orchestration"]["TaskHistoryRetentionLimit"] = json!(3);
    spec["Labels"] = json!({"Team": "core", "Tier": "gold"});
    post(
        &m,
        &format!("/swarm/update?version={}", version_of(&swarm)),
        &lower_keys(&spec),
        200,
    );
    let after = get(&m, "/swarm");
    assert_eq!(
        after["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"], 3,
        "{after}"
    );
    assert_eq!(after["Spec"]["Labels"]["Tier"], "gold", "{after}");
    assert_eq!(after["Spec"]["Raft"], swarm["Spec"]["Raft"], "{after}");
}

#[test]
fn services_nodes_secrets_configs_and_networks_take_odd_case_keys() {
    let m = Daemon::start("lc-objects");
    m.init();

    // Networks.
    let answer = post(
        &m,
        "/networks/create",
        &json!({"name": "backend", "DRIVER": "overlay", "attachable": true,
                "labels": {"Keep.Case": "yes"}, "checkDuplicate": true, "bogus": 1}),
        201,
    );
    assert!(answer.contains("\"Id\""), "{answer}");
    let net = get(&m, "/networks/backend");
    assert_eq!(net["Driver"], "overlay", "{net}");
    assert_eq!(net["Attachable"], true, "{net}");
    assert_eq!(net["Labels"]["Keep.Case"], "yes", "{net}");

    // Services: nested keys in every case, unknown keys at every level.
    post(
        &m,
        "/services/create",
        &json!({
            "name": "web",
            "labels": {"Keep.Case": "1"},
            "TASKTEMPLATE": {
                "containerSpec": {"image": "busybox:1", "Command": ["sleep", "1000"],
                                  "env": ["A=1"], "unknownKey": true},
                "resources": {"limits": {"nanocpus": 500_000_000u64, "memoryBytes": 64 << 20}},
                "restartPolicy": {"condition": "on-failure", "maxattempts": 2},
                "networks": [{"target": "backend", "aliases": ["api"]}],
                "placement": {"constraints": ["node.role==manager"]},
                "whatever": {},
            },
            "mode": {"Replicated": {"replicas": 0}},
            "updateConfig": {"parallelism": 2, "failureAction": "rollback"},
            "endpointSpec": {"mode": "vip",
                             "ports": [{"targetPort": 80, "publishedPort": 8080}]},
        }),
        201,
    );
    let svc = get(&m, "/services/web");
    let spec = &svc["Spec"];
    let task = &spec["TaskTemplate"];
    assert_eq!(task["ContainerSpec"]["Image"], "busybox:1", "{svc}");
    assert_eq!(task["ContainerSpec"]["Command"], json!(["sleep", "1000"]));
    assert_eq!(task["ContainerSpec"]["Env"], json!(["A=1"]));
    assert_eq!(task["Resources"]["Limits"]["NanoCPUs"], 500_000_000u64);
    assert_eq!(task["Resources"]["Limits"]["MemoryBytes"], 64u64 << 20);
    assert_eq!(task["RestartPolicy"]["Condition"], "on-failure");
    assert_eq!(task["RestartPolicy"]["MaxAttempts"], 2);
    assert_eq!(task["Networks"][0]["Aliases"], json!(["api"]));
    assert_eq!(
        task["Placement"]["Constraints"],
        json!(["node.role==manager"])
    );
    assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 0);
    assert_eq!(spec["UpdateConfig"]["Parallelism"], 2);
    assert_eq!(spec["UpdateConfig"]["FailureAction"], "rollback");
    assert_eq!(spec["EndpointSpec"]["Ports"][0]["PublishedPort"], 8080);
    assert_eq!(spec["Labels"]["Keep.Case"], "1");

    // Service update: the inspected spec, lower-cased, with a new image.
    let mut new = spec.clone();
    new["TaskTemplate"]["ContainerSpec"]["Image"] = json!("busybox:2");
    post(
        &m,
        &format!("/services/web/update?version={}", version_of(&svc)),
        &lower_keys(&new),
        200,
    );
    let svc = get(&m, "/services/web");
    assert_eq!(
        svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"], "busybox:2",
        "{svc}"
    );
    assert_eq!(
        svc["Spec"]["EndpointSpec"]["Ports"][0]["PublishedPort"],
        8080
    );

    // A wrong value says which field, by its path.
    let answer = post(
        &m,
        "/services/create",
        &json!({"name": "bad", "taskTemplate": {"containerSpec": {"image": 5}}}),
        400,
    );
    assert!(
        answer.contains("TaskTemplate.ContainerSpec.Image"),
        "{answer}"
    );

    // Nodes.
    let id = m.node_id();
    let node = get(&m, &format!("/nodes/{id}"));
    post(
        &m,
        &format!("/nodes/{id}/update?version={}", version_of(&node)),
        &json!({"role": "manager", "AVAILABILITY": "pause", "labels": {"Zone": "a"}}),
        200,
    );
    let node = get(&m, &format!("/nodes/{id}"));
    assert_eq!(node["Spec"]["Availability"], "pause", "{node}");
    assert_eq!(node["Spec"]["Labels"]["Zone"], "a", "{node}");

    // Secrets and configs: create, then update their labels.
    for kind in ["secrets", "configs"] {
        let answer = post(
            &m,
            &format!("/{kind}/create"),
            &json!({"name": "site", "data": "aGVsbG8=", "labels": {"A": "1"}, "x": 0}),
            201,
        );
        let id: Value = serde_json::from_str(&answer).unwrap();
        let id = id["ID"].as_str().unwrap_or_else(|| panic!("{answer}"));
        let obj = get(&m, &format!("/{kind}/{id}"));
        assert_eq!(obj["Spec"]["Name"], "site", "{obj}");
        assert_eq!(obj["Spec"]["Labels"]["A"], "1", "{obj}");
        let mut spec = obj["Spec"].clone();
        spec["Labels"] = json!({"A": "2"});
        post(
            &m,
            &format!("/{kind}/{id}/update?version={}", version_of(&obj)),
            &lower_keys(&spec),
            200,
        );
        let obj = get(&m, &format!("/{kind}/{id}"));
        assert_eq!(obj["Spec"]["Labels"]["A"], "2", "{obj}");
    }
}
