//! Wire-compatibility tests: bodies as the docker CLI sends them and as dockerd returns them
//! must read into these types and come back out as the same JSON.

use super::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// Reads `body` into `T`, writes it back, and checks nothing was lost, added or reshaped.
fn round_trip<T: DeserializeOwned + Serialize>(body: Value) -> T {
    let parsed: T = serde_json::from_value(body.clone()).expect("body deserializes");
    let again = serde_json::to_value(&parsed).expect("value serializes");
    assert_eq!(again, body, "re-serialized JSON differs from the input");
    parsed
}

/// `docker service create --name web --replicas 2 --env A=1 --publish 8080:80
/// --constraint node.role==manager --label x=y nginx`, as the 28.x CLI posts it.
fn cli_service_create_body() -> Value {
    json!({
        "Name": "web",
        "Labels": {"x": "y"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "nginx:latest",
                "Env": ["A=1"],
                "Init": false,
                "DNSConfig": {}
            },
            "Resources": {"Limits": {}, "Reservations": {}},
            "Placement": {"Constraints": ["node.role==manager"]},
            "ForceUpdate": 0
        },
        "Mode": {"Replicated": {"Replicas": 2}},
        "EndpointSpec": {
            "Mode": "vip",
            "Ports": [{
                "Protocol": "tcp",
                "TargetPort": 80,
                "PublishedPort": 8080,
                "PublishMode": "ingress"
            }]
        }
    })
}

#[test]
fn cli_service_create_body_round_trips() {
    let spec: ServiceSpec = round_trip(cli_service_create_body());
    assert_eq!(spec.name, "web");
    assert_eq!(spec.labels.get("x").map(String::as_str), Some("y"));
    assert_eq!(
        spec.mode.replicated.as_ref().and_then(|r| r.replicas),
        Some(2)
    );
    assert_eq!(spec.mode.name(), "replicated");
    let container = spec.task_template.container_spec.as_ref().unwrap();
    assert_eq!(container.env, vec!["A=1"]);
    assert_eq!(container.init, Some(false));
    assert_eq!(container.dns_config, Some(DNSConfig::default()));
    let resources = spec.task_template.resources.as_ref().unwrap();
    assert_eq!(resources.limits, Some(Limit::default()));
    let endpoint = spec.endpoint_spec.as_ref().unwrap();
    assert_eq!(endpoint.mode, ResolutionMode::Vip);
    assert_eq!(endpoint.ports[0].published_port, 8080);
    assert_eq!(endpoint.ports[0].publish_mode, PublishMode::Ingress);
    assert_eq!(
        spec.task_template.placement.as_ref().unwrap().constraints,
        vec!["node.role==manager"]
    );
}

/// `docker service inspect web` against dockerd, after the service above converged.
fn dockerd_service_inspect_body() -> Value {
    let update = json!({
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": 5_000_000_000i64,
        "MaxFailureRatio": 0,
        "Order": "stop-first"
    });
    let ports = json!([{
        "Protocol": "tcp",
        "TargetPort": 80,
        "PublishedPort": 8080,
        "PublishMode": "ingress"
    }]);
    json!({
        "ID": "9mnpnzenvg8p8tdbtq4wvbkcz",
        "Version": {"Index": 19},
        "CreatedAt": "2016-06-07T21:05:51.880065305Z",
        "UpdatedAt": "2016-06-07T21:07:29.9622298Z",
        "Spec": {
            "Name": "web",
            "Labels": {"x": "y"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "nginx:latest@sha256:32e76d4f34f80e479964a0fbd4c5b4f6967b5322c8d004e9cf0cb81c93510766",
                    "Env": ["A=1"],
                    "Init": false,
                    "StopGracePeriod": 10_000_000_000i64,
                    "DNSConfig": {},
                    "Isolation": "default"
                },
                "Resources": {"Limits": {}, "Reservations": {}},
                "RestartPolicy": {"Condition": "any", "Delay": 5_000_000_000i64, "MaxAttempts": 0},
                "Placement": {
                    "Constraints": ["node.role==manager"],
                    "Platforms": [
                        {"Architecture": "amd64", "OS": "linux"},
                        {"Architecture": "arm64", "OS": "linux"}
                    ]
                },
                "ForceUpdate": 0,
                "Runtime": "container"
            },
            "Mode": {"Replicated": {"Replicas": 2}},
            "UpdateConfig": update,
            "RollbackConfig": update,
            "EndpointSpec": {"Mode": "vip", "Ports": ports}
        },
        "PreviousSpec": {
            "Name": "web",
            "Labels": {},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "nginx:1.25", "Isolation": "default"},
                "ForceUpdate": 0,
                "Runtime": "container"
            },
            "Mode": {"Replicated": {"Replicas": 1}},
            "EndpointSpec": {"Mode": "vip"}
        },
        "Endpoint": {
            "Spec": {"Mode": "vip", "Ports": ports},
            "Ports": ports,
            "VirtualIPs": [
                {"NetworkID": "4qvuz4ko70xaltuqbt8956gd1", "Addr": "10.0.0.3/24"}
            ]
        },
        "UpdateStatus": {
            "State": "completed",
            "StartedAt": "2016-06-07T21:07:20.1Z",
            "CompletedAt": "2016-06-07T21:07:29.962229872Z",
            "Message": "update completed"
        },
        "ServiceStatus": {"RunningTasks": 2, "DesiredTasks": 2, "CompletedTasks": 0}
    })
}

#[test]
fn dockerd_service_inspect_body_round_trips() {
    let service: Service = round_trip(dockerd_service_inspect_body());
    assert_eq!(service.version.index, 19);
    assert_eq!(
        crate::wire::format_time(&service.updated_at),
        "2016-06-07T21:07:29.9622298Z"
    );
    let update = service.spec.update_config.as_ref().unwrap();
    assert_eq!(update.failure_action, FailureAction::Pause);
    assert_eq!(update.order, UpdateOrder::StopFirst);
    assert_eq!(update.monitor, 5_000_000_000);
    let restart = service.spec.task_template.restart_policy.as_ref().unwrap();
    assert_eq!(restart.condition, RestartPolicyCondition::Any);
    assert_eq!(restart.max_attempts, Some(0));
    assert_eq!(
        service.update_status.as_ref().unwrap().state,
        UpdateState::Completed
    );
    assert_eq!(service.endpoint.virtual_ips[0].addr, "10.0.0.3/24");
    assert_eq!(service.service_status.as_ref().unwrap().running_tasks, 2);
    assert!(service.previous_spec.is_some());
}

#[test]
fn labels_are_always_sent_and_null_labels_are_accepted() {
    let spec: ServiceSpec = serde_json::from_value(json!({"Name": "web", "Labels": null})).unwrap();
    assert!(spec.labels.is_empty());
    let out = serde_json::to_value(&spec).unwrap();
    assert_eq!(out["Labels"], json!({}));
    assert_eq!(out["TaskTemplate"], json!({"ForceUpdate": 0}));
    assert_eq!(out["Mode"], json!({}));
}

#[test]
fn fractional_failure_ratio_keeps_its_value() {
    let body = json!({"Parallelism": 2, "Delay": 10_000_000_000i64, "FailureAction": "rollback",
                      "MaxFailureRatio": 0.25, "Order": "start-first"});
    let config: UpdateConfig = round_trip(body);
    assert_eq!(config.max_failure_ratio, 0.25);
    assert_eq!(config.order, UpdateOrder::StartFirst);
    let empty: UpdateConfig = serde_json::from_value(json!({"Order": ""})).unwrap();
    assert_eq!(empty.order, UpdateOrder::StopFirst);
}

#[test]
fn container_spec_with_every_kind_of_field_round_trips() {
    round_trip::<ContainerSpec>(json!({
        "Image": "registry.local/app:1",
        "Labels": {"com.example": "1"},
        "Command": ["/bin/app"],
        "Args": ["--port", "80"],
        "Hostname": "{{.Service.Name}}-{{.Task.Slot}}",
        "Env": ["A=1", "B=2"],
        "Dir": "/srv",
        "User": "1000:1000",
        "Groups": ["wheel"],
        "Privileges": {
            "CredentialSpec": null,
            "SELinuxContext": {"Disable": false, "User": "", "Role": "", "Type": "svirt_t", "Level": ""},
            "Seccomp": {"Mode": "custom", "Profile": "eyJkZWZhdWx0QWN0aW9uIjoiU0NNUF9BQ1RfQUxMT1cifQ=="},
            "AppArmor": {"Mode": "disabled"},
            "NoNewPrivileges": true
        },
        "Init": true,
        "StopSignal": "SIGTERM",
        "TTY": true,
        "OpenStdin": true,
        "ReadOnly": true,
        "Mounts": [
            {"Type": "volume", "Source": "app_data", "Target": "/data",
             "VolumeOptions": {"NoCopy": true, "Labels": {"com.docker.stack.namespace": "app"},
                               "DriverConfig": {"Name": "local", "Options": {"type": "nfs"}}}},
            {"Type": "bind", "Source": "/etc/app", "Target": "/etc/app", "ReadOnly": true,
             "BindOptions": {"Propagation": "rprivate"}},
            {"Type": "tmpfs", "Target": "/tmp",
             "TmpfsOptions": {"SizeBytes": 65536, "Mode": 1023, "Options": [["noexec"]]}}
        ],
        "StopGracePeriod": 20_000_000_000i64,
        "Healthcheck": {
            "Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
            "Interval": 30_000_000_000i64,
            "Timeout": 5_000_000_000i64,
            "StartPeriod": 1_000_000_000,
            "Retries": 3
        },
        "Hosts": ["10.0.0.9 db.local"],
        "DNSConfig": {"Nameservers": ["8.8.8.8"], "Search": ["example.org"], "Options": ["ndots:2"]},
        "Secrets": [{
            "File": {"Name": "db_password", "UID": "0", "GID": "0", "Mode": 292},
            "SecretID": "xmxpjm8lhk4j7lsouv6rsiocv",
            "SecretName": "db_password"
        }],
        "Configs": [
            {"File": {"Name": "/etc/app.conf", "UID": "0", "GID": "0", "Mode": 292},
             "ConfigID": "yk3ms0d0mokkh4cc8y3b8h1ak", "ConfigName": "app.conf"},
            {"Runtime": {}, "ConfigID": "zk3ms0d0mokkh4cc8y3b8h1ak", "ConfigName": "credspec"}
        ],
        "Isolation": "default",
        "Sysctls": {"net.core.somaxconn": "1024"},
        "CapabilityAdd": ["CAP_NET_ADMIN"],
        "CapabilityDrop": ["CAP_MKNOD"],
        "Ulimits": [{"Name": "nofile", "Hard": 2048, "Soft": 1024}],
        "OomScoreAdj": 500
    }));
}

#[test]
fn secret_reference_without_file_sends_null() {
    let r = SecretReference {
        secret_id: "s1".into(),
        secret_name: "db".into(),
        file: None,
    };
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        json!({"File": null, "SecretID": "s1", "SecretName": "db"})
    );
}

#[test]
fn task_from_dockerd_round_trips() {
    let task: Task = round_trip(json!({
        "ID": "0kzzo1i0y4jz6027t0k7aezc7",
        "Version": {"Index": 71},
        "CreatedAt": "2016-06-07T21:07:31.171892745Z",
        "UpdatedAt": "2016-06-07T21:07:31.376370513Z",
        "Labels": {},
        "Spec": {
            "ContainerSpec": {"Image": "redis", "Isolation": "default"},
            "Resources": {"Limits": {}, "Reservations": {}},
            "RestartPolicy": {"Condition": "any", "MaxAttempts": 0},
            "Placement": {},
            "ForceUpdate": 0
        },
        "ServiceID": "9mnpnzenvg8p8tdbtq4wvbkcz",
        "Slot": 1,
        "NodeID": "60gvrl6tm78dmak4yl7srz94v",
        "Status": {
            "Timestamp": "2016-06-07T21:07:31.290032978Z",
            "State": "running",
            "Message": "started",
            "ContainerStatus": {
                "ContainerID": "e5d62702a1b48d01c3e02ca1e0212a250801fa8d98c8b8bc5a3d6dfb3b3a5d7c",
                "PID": 677,
                "ExitCode": 0
            },
            "PortStatus": {}
        },
        "DesiredState": "running",
        "NetworksAttachments": [{
            "Network": {
                "ID": "4qvuz4ko70xaltuqbt8956gd1",
                "Version": {"Index": 18},
                "CreatedAt": "2016-06-07T20:31:11.912919752Z",
                "UpdatedAt": "2016-06-07T21:07:29.955277358Z",
                "Spec": {
                    "Name": "ingress",
                    "Labels": {"com.docker.swarm.internal": "true"},
                    "DriverConfiguration": {},
                    "Ingress": true,
                    "IPAMOptions": {"Driver": {}, "Configs": [{"Subnet": "10.255.0.0/16", "Gateway": "10.255.0.1"}]},
                    "Scope": "swarm"
                },
                "DriverState": {
                    "Name": "overlay",
                    "Options": {"com.docker.network.driver.overlay.vxlanid_list": "256"}
                },
                "IPAMOptions": {
                    "Driver": {"Name": "default"},
                    "Configs": [{"Subnet": "10.255.0.0/16", "Gateway": "10.255.0.1"}]
                }
            },
            "Addresses": ["10.255.0.10/16"]
        }]
    }));
    assert_eq!(task.status.state, TaskState::Running);
    assert_eq!(task.status.container_status.as_ref().unwrap().pid, 677);
    assert_eq!(task.slot, 1);
}

#[test]
fn task_states_order_by_swarmkit_rank() {
    assert!(TaskState::New < TaskState::Pending);
    assert!(TaskState::Pending < TaskState::Assigned);
    assert!(TaskState::Running < TaskState::Complete);
    assert!(TaskState::Complete < TaskState::Shutdown);
    assert!(TaskState::Shutdown < TaskState::Failed);
    assert!(TaskState::Rejected < TaskState::Remove);
    assert!(TaskState::Remove < TaskState::Orphaned);
    let ranks: Vec<u32> = TaskState::ALL.iter().map(|s| s.rank()).collect();
    assert_eq!(
        ranks,
        [0, 64, 192, 256, 320, 384, 448, 512, 576, 640, 704, 768, 800, 832]
    );
    let mut sorted = TaskState::ALL.to_vec();
    sorted.reverse();
    sorted.sort();
    assert_eq!(sorted, TaskState::ALL);
    assert_eq!(TaskState::ALL.iter().max(), Some(&TaskState::Orphaned));
    assert!(TaskState::Failed.is_terminal());
    assert!(!TaskState::Running.is_terminal());
}

#[test]
fn task_states_use_lowercase_names() {
    for state in TaskState::ALL {
        let json = serde_json::to_value(state).unwrap();
        assert_eq!(json, Value::String(state.as_str().to_string()));
        assert_eq!(serde_json::from_value::<TaskState>(json).unwrap(), *state);
    }
    assert_eq!(TaskState::Orphaned.as_str(), "orphaned");
    assert_eq!(TaskState::parse("RUNNING"), Some(TaskState::Running));
    assert!(serde_json::from_value::<TaskState>(json!("sleeping")).is_err());
}

#[test]
fn string_enums_reject_unknown_values_with_the_accepted_ones() {
    let err = serde_json::from_value::<NodeSpec>(json!({"Role": "boss"})).unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"invalid node role "boss": expected one of "worker", "manager""#),
        "{err}"
    );
    let spec: NodeSpec =
        serde_json::from_value(json!({"Role": "Manager", "Availability": "DRAIN"})).unwrap();
    assert_eq!(spec.role, NodeRole::Manager);
    assert_eq!(spec.availability, NodeAvailability::Drain);
    assert_eq!(
        serde_json::to_value(&spec).unwrap(),
        json!({"Labels": {}, "Role": "manager", "Availability": "drain"})
    );
    assert_eq!(
        serde_json::to_value(RestartPolicyCondition::OnFailure).unwrap(),
        json!("on-failure")
    );
    assert_eq!(
        serde_json::to_value(UpdateState::RollbackStarted).unwrap(),
        json!("rollback_started")
    );
    assert_eq!(
        serde_json::to_value(MountType::Tmpfs).unwrap(),
        json!("tmpfs")
    );
}

#[test]
fn node_from_dockerd_round_trips() {
    let node: Node = round_trip(json!({
        "ID": "24ifsmvkjbyhk",
        "Version": {"Index": 8},
        "CreatedAt": "2016-06-07T20:31:11.853781916Z",
        "UpdatedAt": "2016-06-07T20:31:11.999868824Z",
        "Spec": {"Name": "my-node", "Labels": {"foo": "bar"}, "Role": "manager", "Availability": "active"},
        "Description": {
            "Hostname": "bf3067039e47",
            "Platform": {"Architecture": "x86_64", "OS": "linux"},
            "Resources": {"NanoCPUs": 4_000_000_000i64, "MemoryBytes": 8_272_408_576i64,
                          "GenericResources": [
                              {"DiscreteResourceSpec": {"Kind": "SSD", "Value": 3}},
                              {"NamedResourceSpec": {"Kind": "GPU", "Value": "UUID1"}}
                          ]},
            "Engine": {
                "EngineVersion": "17.06.0",
                "Labels": {"foo": "bar"},
                "Plugins": [{"Type": "Log", "Name": "json-file"}, {"Type": "Network", "Name": "overlay"}]
            },
            "TLSInfo": {
                "TrustRoot": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
                "CertIssuerSubject": "MBMxETAPBgNVBAMTCHN3YXJtLWNh",
                "CertIssuerPublicKey": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"
            }
        },
        "Status": {"State": "ready", "Addr": "172.17.0.2"},
        "ManagerStatus": {"Leader": true, "Reachability": "reachable", "Addr": "172.17.0.2:2377"}
    }));
    assert_eq!(node.description.resources.nano_cpus, 4_000_000_000);
    let tls = node.description.tls_info.as_ref().unwrap();
    assert_eq!(&tls.cert_issuer_subject[..4], &[0x30, 0x13, 0x31, 0x11]);
    assert!(node.manager_status.as_ref().unwrap().leader);
}

#[test]
fn config_data_is_base64_on_the_wire() {
    let spec = ConfigSpec {
        name: "app.conf".into(),
        data: b"listen 80;\n".to_vec(),
        ..Default::default()
    };
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        json,
        json!({"Name": "app.conf", "Labels": {}, "Data": "bGlzdGVuIDgwOwo="})
    );
    let back: ConfigSpec = serde_json::from_value(json).unwrap();
    assert_eq!(back.data, b"listen 80;\n");
    assert!(serde_json::from_value::<ConfigSpec>(json!({"Data": "%%%"})).is_err());

    let config: Config = round_trip(json!({
        "ID": "ktnbjxoalbkvbvedmg1urrz8h",
        "Version": {"Index": 11},
        "CreatedAt": "2016-11-05T01:20:17.327670065Z",
        "UpdatedAt": "2016-11-05T01:20:17.327670065Z",
        "Spec": {"Name": "app-dev.crt", "Labels": {"foo": "bar"}, "Data": "VEhJUyBJUyBOT1QgQSBSRUFMIENFUlRJRklDQVRFCg==",
                 "Templating": {"Name": "golang"}}
    }));
    assert_eq!(config.spec.data, b"THIS IS NOT A REAL CERTIFICATE\n");
}

#[test]
fn secret_data_is_optional_and_redacted() {
    let spec: SecretSpec = round_trip(json!({"Name": "db", "Labels": {}, "Data": "cGFzcw=="}));
    assert_eq!(spec.data.as_deref(), Some(&b"pass"[..]));
    let secret = Secret {
        id: "s".into(),
        spec,
        ..Default::default()
    };
    let shown = serde_json::to_value(secret.redacted()).unwrap();
    assert_eq!(shown["Spec"], json!({"Name": "db", "Labels": {}}));
}

#[test]
fn swarm_splits_into_info_and_tokens() {
    let body = json!({
        "ID": "abajmipo7b4xz5ip2nrla6b11",
        "Version": {"Index": 373531},
        "CreatedAt": "2016-08-18T10:44:24.496525531Z",
        "UpdatedAt": "2017-08-09T07:09:37.632105588Z",
        "Spec": {
            "Name": "default",
            "Labels": {},
            "Orchestration": {"TaskHistoryRetentionLimit": 5},
            "Raft": {"SnapshotInterval": 10000, "KeepOldSnapshots": 0, "LogEntriesForSlowFollowers": 500,
                     "ElectionTick": 10, "HeartbeatTick": 1},
            "Dispatcher": {"HeartbeatPeriod": 5_000_000_000i64},
            "CAConfig": {"NodeCertExpiry": 7_776_000_000_000_000i64},
            "TaskDefaults": {},
            "EncryptionConfig": {"AutoLockManagers": false}
        },
        "TLSInfo": {"TrustRoot": "-----BEGIN CERTIFICATE-----\n"},
        "RootRotationInProgress": false,
        "DefaultAddrPool": ["10.0.0.0/8"],
        "SubnetSize": 24,
        "DataPathPort": 4789,
        "JoinTokens": {
            "Worker": "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx",
            "Manager": "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-7p73s1dx5in4tatdymyhg9hu2"
        }
    });
    let swarm: Swarm = round_trip(body.clone());
    let info = swarm.info();
    assert_eq!(info.spec.raft.election_tick, 10);
    assert_eq!(
        Swarm::from_parts(info.clone(), swarm.join_tokens.clone()),
        swarm
    );
    let mut info_json = body;
    info_json.as_object_mut().unwrap().remove("JoinTokens");
    assert_eq!(serde_json::to_value(&info).unwrap(), info_json);
}

#[test]
fn cli_swarm_init_request_is_accepted() {
    let init: InitRequest = serde_json::from_value(json!({
        "ListenAddr": "0.0.0.0:2377",
        "AdvertiseAddr": "",
        "DataPathAddr": "",
        "DataPathPort": 0,
        "ForceNewCluster": false,
        "Spec": {
            "Labels": null,
            "Orchestration": {},
            "Raft": {"ElectionTick": 10, "HeartbeatTick": 1},
            "Dispatcher": {},
            "CAConfig": {},
            "TaskDefaults": {},
            "EncryptionConfig": {"AutoLockManagers": false}
        },
        "AutoLockManagers": false,
        "Availability": "active",
        "DefaultAddrPool": null,
        "SubnetSize": 0
    }))
    .unwrap();
    assert_eq!(init.listen_addr, "0.0.0.0:2377");
    assert_eq!(init.availability, NodeAvailability::Active);
    assert!(init.default_addr_pool.is_empty());
    assert_eq!(init.spec.raft.election_tick, 10);
}

#[test]
fn job_status_sends_go_zero_time_when_never_executed() {
    let status = JobStatus {
        job_iteration: Version::new(3),
        last_execution: None,
    };
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(
        json,
        json!({"JobIteration": {"Index": 3}, "LastExecution": "0001-01-01T00:00:00Z"})
    );
    assert_eq!(serde_json::from_value::<JobStatus>(json).unwrap(), status);
    assert_eq!(serde_json::to_value(Version::default()).unwrap(), json!({}));
}

#[test]
fn job_modes_round_trip() {
    let mode: ServiceMode =
        round_trip(json!({"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 10}}));
    assert!(mode.is_job());
    assert_eq!(mode.name(), "replicated-job");
    let mode: ServiceMode = round_trip(json!({"GlobalJob": {}}));
    assert_eq!(mode.name(), "global-job");
    let mode: ServiceMode = round_trip(json!({"Global": {}}));
    assert_eq!(mode.name(), "global");
}

#[test]
fn swarm_info_in_docker_info_round_trips() {
    round_trip::<Info>(json!({
        "NodeID": "k67qz4598weg5unwwffg6z1m1",
        "NodeAddr": "10.0.0.46",
        "LocalNodeState": "active",
        "ControlAvailable": true,
        "Error": "",
        "RemoteManagers": [{"NodeID": "k67qz4598weg5unwwffg6z1m1", "Addr": "10.0.0.46:2377"}],
        "Nodes": 3,
        "Managers": 1
    }));
    let inactive: Info = serde_json::from_value(json!({"LocalNodeState": ""})).unwrap();
    assert_eq!(inactive.local_node_state, LocalNodeState::Inactive);
}

#[test]
fn create_responses_match_dockerd() {
    let r = ServiceCreateResponse {
        id: "abc".into(),
        warnings: vec![],
    };
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        json!({"ID": "abc", "Warnings": []})
    );
    let r: ServiceCreateResponse =
        serde_json::from_value(json!({"ID": "abc", "Warnings": null})).unwrap();
    assert!(r.warnings.is_empty());
    assert_eq!(
        serde_json::to_value(SecretCreateResponse { id: "s".into() }).unwrap(),
        json!({"ID": "s"})
    );
}

#[test]
fn swarm_defaults_fill_only_what_a_spec_leaves_out() {
    let spec: ServiceSpec = serde_json::from_value(json!({
        "Name": "web",
        "TaskTemplate": {"ContainerSpec": {"Image": "nginx"}},
        "UpdateConfig": {"Parallelism": 3, "Order": "start-first"}
    }))
    .expect("spec");
    let v = serde_json::to_value(spec.with_defaults()).expect("json");
    assert_eq!(v["UpdateConfig"]["Parallelism"], 3);
    assert_eq!(v["UpdateConfig"]["Order"], "start-first");
    assert_eq!(v["UpdateConfig"]["Monitor"], 5_000_000_000u64);
    assert_eq!(v["RollbackConfig"]["Parallelism"], 1);
    assert_eq!(
        v["TaskTemplate"]["RestartPolicy"],
        json!({"Condition": "any", "Delay": 5_000_000_000u64})
    );
    assert_eq!(
        v["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"],
        10_000_000_000u64
    );

    let job: ServiceSpec = serde_json::from_value(json!({
        "Name": "batch",
        "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}},
        "Mode": {"ReplicatedJob": {}}
    }))
    .expect("spec");
    let v = serde_json::to_value(job.with_defaults()).expect("json");
    assert!(
        v.get("UpdateConfig").is_none(),
        "jobs may not have an update config: {v}"
    );
}
