//! What container a task becomes: its name, its labels and the engine's create body, derived
//! from the task's `ContainerSpec` the way Swarm's container adapter does it. Pure functions,
//! no I/O: the controller decides when to create, this module only says what.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HealthConfig, HostConfig, HostConfigLogConfig,
    Mount as EngineMount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions,
    MountType, MountVolumeOptions, MountVolumeOptionsDriverConfig, NetworkingConfig, PortBinding,
    ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
};
use shoal_types::swarm::{
    AppArmorMode, ContainerSpec, Mount, MountType as SpecMountType, PortConfig, PortConfigProtocol,
    PortStatus, Privileges, PublishMode, SeccompMode, Task,
};

use crate::Assignment;

/// Label holding the ID of the node a task's container belongs to.
pub const LABEL_NODE_ID: &str = "com.docker.swarm.node.id";
/// Label holding the task ID; its presence marks a container as shoal's.
pub const LABEL_TASK_ID: &str = "com.docker.swarm.task.id";
pub const LABEL_TASK: &str = "com.docker.swarm.task";
pub const LABEL_TASK_NAME: &str = "com.docker.swarm.task.name";
pub const LABEL_SERVICE_ID: &str = "com.docker.swarm.service.id";
pub const LABEL_SERVICE_NAME: &str = "com.docker.swarm.service.name";

/// A bind mount of a file the agent wrote (a config or a secret), read-only in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMount {
    pub source: String,
    pub target: String,
}

/// `<service>.<slot>.<task id>`; a task without a slot (global services) uses the node ID.
pub fn container_name(task: &Task, service_name: &str, node_id: &str) -> String {
    let slot = if task.slot == 0 {
        node_id.to_string()
    } else {
        task.slot.to_string()
    };
    format!("{service_name}.{slot}.{}", task.id)
}

/// Task labels, then container spec labels, then the `com.docker.swarm.*` labels, which win.
pub fn container_labels(
    assignment: &Assignment,
    node_id: &str,
    name: &str,
) -> BTreeMap<String, String> {
    let task = &assignment.task;
    let mut labels = task.labels.clone();
    if let Some(spec) = &task.spec.container_spec {
        labels.extend(spec.labels.clone());
    }
    for (key, value) in [
        (LABEL_NODE_ID, node_id),
        (LABEL_SERVICE_ID, task.service_id.as_str()),
        (LABEL_SERVICE_NAME, assignment.service_name.as_str()),
        (LABEL_TASK, ""),
        (LABEL_TASK_ID, task.id.as_str()),
        (LABEL_TASK_NAME, name),
    ] {
        labels.insert(key.to_string(), value.to_string());
    }
    labels
}

/// The engine's create body for a task.
pub fn create_body(
    assignment: &Assignment,
    spec: &ContainerSpec,
    labels: BTreeMap<String, String>,
    files: &[FileMount],
    networks: &[String],
) -> ContainerCreateBody {
    let task = &assignment.task;
    let mut host = HostConfig {
        mounts: Some(mounts(&spec.mounts, files)),
        readonly_rootfs: Some(spec.read_only),
        init: spec.init,
        group_add: non_empty(spec.groups.clone()),
        extra_hosts: non_empty(extra_hosts(&spec.hosts)),
        sysctls: non_empty_map(&spec.sysctls),
        cap_add: non_empty(spec.capability_add.clone()),
        cap_drop: non_empty(spec.capability_drop.clone()),
        security_opt: non_empty(security_options(spec.privileges.as_ref())),
        ulimits: non_empty(
            spec.ulimits
                .iter()
                .map(|u| ResourcesUlimits {
                    name: Some(u.name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect(),
        ),
        oom_score_adj: (spec.oom_score_adj != 0).then_some(spec.oom_score_adj),
        // The orchestrator replaces failed tasks; the engine must never restart them.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        // A task on overlay networks joins the first one here (the others are connected
        // before it starts); a task on none stays on the engine's default bridge.
        network_mode: networks.first().cloned(),
        ..Default::default()
    };
    // The cluster's name server for the task's networks (on the first network's gateway)
    // comes first: the engine's resolver forwards every name it does not know to it.
    let cluster_dns = crate::networks::name_server(task);
    if let Some(ns) = &cluster_dns {
        host.dns = Some(vec![ns.clone()]);
    }
    if let Some(dns) = &spec.dns_config {
        let mut servers: Vec<String> = cluster_dns.into_iter().collect();
        servers.extend(dns.nameservers.iter().cloned());
        host.dns = non_empty(servers);
        host.dns_search = non_empty(dns.search.clone());
        host.dns_options = non_empty(dns.options.clone());
    }
    if let Some(resources) = &task.spec.resources {
        if let Some(limits) = &resources.limits {
            host.nano_cpus = (limits.nano_cpus != 0).then_some(limits.nano_cpus);
            host.memory = (limits.memory_bytes != 0).then_some(limits.memory_bytes);
            host.pids_limit = (limits.pids != 0).then_some(limits.pids);
        }
        if let Some(reservations) = &resources.reservations {
            host.memory_reservation =
                (reservations.memory_bytes != 0).then_some(reservations.memory_bytes);
        }
    }
    if let Some(driver) = &task.spec.log_driver {
        if !driver.name.is_empty() {
            host.log_config = Some(HostConfigLogConfig {
                typ: Some(driver.name.clone()),
                config: Some(to_hash_map(&driver.options)),
            });
        }
    }

    let host_ports = host_mode_ports(&assignment.ports);
    let ingress = ingress_mode_ports(&assignment.ports);
    // Host-mode ports on the node's interfaces; ingress-mode ones on an ephemeral loopback
    // port that only the node's routing mesh connects to.
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &host_ports {
        let binding = PortBinding {
            host_ip: None,
            // 0: the engine picks a free port.
            host_port: (p.published_port != 0).then(|| p.published_port.to_string()),
        };
        push_binding(&mut bindings, port_key(p), binding);
    }
    for p in &ingress {
        let binding = PortBinding {
            host_ip: Some(MESH_HOST_IP.to_string()),
            host_port: None,
        };
        push_binding(&mut bindings, port_key(p), binding);
    }
    let mut exposed: Vec<String> = bindings.keys().cloned().collect();
    exposed.sort();
    if !bindings.is_empty() {
        host.port_bindings = Some(bindings);
    }

    ContainerCreateBody {
        image: Some(spec.image.clone()),
        exposed_ports: non_empty(exposed),
        entrypoint: non_empty(spec.command.clone()),
        cmd: non_empty(spec.args.clone()),
        env: non_empty(spec.env.clone()),
        working_dir: non_empty_str(&spec.dir),
        user: non_empty_str(&spec.user),
        hostname: non_empty_str(&spec.hostname),
        labels: Some(to_hash_map(&labels)),
        tty: Some(spec.tty),
        open_stdin: Some(spec.open_stdin),
        stop_signal: non_empty_str(&spec.stop_signal),
        // Also the engine's own grace when something other than the agent stops the
        // container (a sweep of orphans, the engine shutting down).
        stop_timeout: Some(i64::from(crate::engine::grace_secs(stop_grace(spec)))),
        healthcheck: spec.healthcheck.as_ref().map(|h| HealthConfig {
            test: non_empty(h.test.clone()),
            interval: Some(h.interval),
            timeout: Some(h.timeout),
            retries: Some(h.retries),
            start_period: Some(h.start_period),
            // API 1.44+; dockerd 20.10 would ignore it, so leave it out unless set.
            start_interval: (h.start_interval != 0).then_some(h.start_interval),
        }),
        host_config: Some(host),
        networking_config: task.networks_attachments.first().zip(networks.first()).map(
            |(a, name)| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    name.clone(),
                    crate::networks::endpoint_settings(a),
                )])),
            },
        ),
        ..Default::default()
    }
}

/// Where a task's ingress-mode ports are bound on its node, for the routing mesh only.
pub const MESH_HOST_IP: &str = "127.0.0.1";

fn push_binding(
    bindings: &mut HashMap<String, Option<Vec<PortBinding>>>,
    key: String,
    binding: PortBinding,
) {
    bindings
        .entry(key)
        .or_insert_with(|| Some(Vec::new()))
        .get_or_insert_with(Vec::new)
        .push(binding);
}

/// The ports published in `host` mode: bound on the node that runs the task.
pub fn host_mode_ports(ports: &[PortConfig]) -> Vec<&PortConfig> {
    ports
        .iter()
        .filter(|p| p.publish_mode == PublishMode::Host && p.target_port != 0)
        .collect()
}

/// The TCP ports published in `ingress` mode: the routing mesh of every node forwards their
/// published port to one task, through a loopback port on the task's node (UDP and SCTP are
/// not routed yet).
pub fn ingress_mode_ports(ports: &[PortConfig]) -> Vec<&PortConfig> {
    ports
        .iter()
        .filter(|p| {
            p.publish_mode == PublishMode::Ingress
                && p.target_port != 0
                && p.protocol == PortConfigProtocol::Tcp
        })
        .collect()
}

/// The loopback ports a container was given for the task's ingress-mode target ports, from
/// its inspect: `(target port, host port)`.
pub fn ingress_bindings(
    ports: &[PortConfig],
    inspect: &ContainerInspectResponse,
) -> Vec<(u32, u16)> {
    let bound = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref());
    ingress_mode_ports(ports)
        .into_iter()
        .filter_map(|p| {
            let host = bound
                .and_then(|b| b.get(&port_key(p)))
                .and_then(|b| b.as_ref())
                .and_then(|b| {
                    b.iter().find_map(|x| {
                        if x.host_ip.as_deref() != Some(MESH_HOST_IP) {
                            return None;
                        }
                        x.host_port.as_deref()?.parse().ok()
                    })
                })?;
            Some((p.target_port, host))
        })
        .collect()
}

/// The engine's name of a container port: `80/tcp`.
pub fn port_key(p: &PortConfig) -> String {
    format!("{}/{}", p.target_port, p.protocol.as_str())
}

/// The host ports a container was given for the task's host-mode ports, from its inspect.
pub fn port_status(ports: &[PortConfig], inspect: &ContainerInspectResponse) -> PortStatus {
    let bound = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref());
    let ports = host_mode_ports(ports)
        .into_iter()
        .map(|p| {
            let host = bound
                .and_then(|b| b.get(&port_key(p)))
                .and_then(|b| b.as_ref())
                .and_then(|b| {
                    b.iter().find_map(|x| {
                        if x.host_ip.as_deref() == Some(MESH_HOST_IP) {
                            return None;
                        }
                        x.host_port.as_deref()?.parse().ok()
                    })
                });
            PortConfig {
                published_port: host.unwrap_or(p.published_port),
                ..p.clone()
            }
        })
        .collect();
    PortStatus { ports }
}

/// How long a stopped container gets between its stop signal and the kill: the spec's
/// `StopGracePeriod`, else Swarm's 10 s.
pub fn stop_grace(spec: &ContainerSpec) -> std::time::Duration {
    spec.stop_grace_period
        .filter(|&ns| ns >= 0)
        .map(|ns| std::time::Duration::from_nanos(ns as u64))
        .unwrap_or(std::time::Duration::from_secs(10))
}

/// The spec's mounts, then the config and secret files.
fn mounts(spec_mounts: &[Mount], files: &[FileMount]) -> Vec<EngineMount> {
    let mut out: Vec<EngineMount> = spec_mounts.iter().filter_map(engine_mount).collect();
    out.extend(files.iter().map(|f| EngineMount {
        typ: Some(MountType::BIND),
        source: Some(f.source.clone()),
        target: Some(f.target.clone()),
        read_only: Some(true),
        ..Default::default()
    }));
    out
}

fn engine_mount(m: &Mount) -> Option<EngineMount> {
    let typ = match m.r#type {
        SpecMountType::Bind => MountType::BIND,
        SpecMountType::Volume => MountType::VOLUME,
        SpecMountType::Tmpfs => MountType::TMPFS,
        SpecMountType::Npipe => MountType::NPIPE,
        // Cluster (CSI) and image mounts need engine features dockerd 20.10 lacks.
        SpecMountType::Cluster | SpecMountType::Image => return None,
    };
    Some(EngineMount {
        typ: Some(typ),
        source: non_empty_str(&m.source),
        target: Some(m.target.clone()),
        read_only: Some(m.read_only),
        consistency: non_empty_str(&m.consistency),
        bind_options: m.bind_options.as_ref().map(|b| MountBindOptions {
            propagation: b.propagation.parse().ok().and_then(
                |p: MountBindOptionsPropagationEnum| {
                    (p != MountBindOptionsPropagationEnum::EMPTY).then_some(p)
                },
            ),
            non_recursive: b.non_recursive.then_some(true),
            create_mountpoint: b.create_mountpoint.then_some(true),
            read_only_non_recursive: b.read_only_non_recursive.then_some(true),
            read_only_force_recursive: b.read_only_force_recursive.then_some(true),
        }),
        volume_options: m.volume_options.as_ref().map(|v| MountVolumeOptions {
            no_copy: Some(v.no_copy),
            labels: non_empty_map(&v.labels),
            driver_config: v
                .driver_config
                .as_ref()
                .map(|d| MountVolumeOptionsDriverConfig {
                    name: non_empty_str(&d.name),
                    options: non_empty_map(&d.options),
                }),
            subpath: non_empty_str(&v.subpath),
        }),
        tmpfs_options: m.tmpfs_options.as_ref().map(|t| MountTmpfsOptions {
            size_bytes: (t.size_bytes != 0).then_some(t.size_bytes),
            mode: (t.mode != 0).then_some(i64::from(t.mode)),
            options: non_empty(t.options.clone()),
        }),
        image_options: None,
    })
}

/// Swarm's hosts entries are `IP HOST [ALIAS…]`; the engine wants `HOST:IP`, one per name.
/// An entry already in `HOST:IP` form passes through.
pub fn extra_hosts(hosts: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for entry in hosts {
        let mut fields = entry.split_whitespace();
        let Some(ip) = fields.next() else { continue };
        let names: Vec<&str> = fields.collect();
        if names.is_empty() {
            out.push(ip.to_string());
        }
        out.extend(names.iter().map(|name| format!("{name}:{ip}")));
    }
    out
}

fn security_options(privileges: Option<&Privileges>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(p) = privileges else { return out };
    if p.no_new_privileges {
        out.push("no-new-privileges=true".into());
    }
    if let Some(selinux) = &p.selinux_context {
        if selinux.disable {
            out.push("label=disable".into());
        }
        for (key, value) in [
            ("user", &selinux.user),
            ("role", &selinux.role),
            ("type", &selinux.r#type),
            ("level", &selinux.level),
        ] {
            if !value.is_empty() {
                out.push(format!("label={key}:{value}"));
            }
        }
    }
    if let Some(seccomp) = &p.seccomp {
        match seccomp.mode {
            SeccompMode::Default => {}
            SeccompMode::Unconfined => out.push("seccomp=unconfined".into()),
            SeccompMode::Custom => out.push(format!(
                "seccomp={}",
                String::from_utf8_lossy(&seccomp.profile)
            )),
        }
    }
    if let Some(apparmor) = &p.app_armor {
        if apparmor.mode == AppArmorMode::Disabled {
            out.push("apparmor=unconfined".into());
        }
    }
    out
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn non_empty_str(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn non_empty_map(m: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!m.is_empty()).then(|| to_hash_map(m))
}

fn to_hash_map(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_types::swarm::{
        DNSConfig, Driver, Limit, ResourceRequirements, Resources, TaskSpec, Ulimit,
    };

    fn assignment(spec: ContainerSpec) -> Assignment {
        Assignment {
            task: Task {
                id: "t1".into(),
                service_id: "s1".into(),
                slot: 2,
                labels: BTreeMap::from([("com.docker.stack.namespace".into(), "app".into())]),
                spec: TaskSpec {
                    container_spec: Some(spec),
                    resources: Some(ResourceRequirements {
                        limits: Some(Limit {
                            nano_cpus: 500_000_000,
                            memory_bytes: 64 << 20,
                            pids: 100,
                        }),
                        reservations: Some(Resources {
                            memory_bytes: 32 << 20,
                            ..Default::default()
                        }),
                    }),
                    log_driver: Some(Driver {
                        name: "json-file".into(),
                        options: BTreeMap::from([("max-size".into(), "1m".into())]),
                    }),
                    ..Default::default()
                },
                ..Default::default()
            },
            service_name: "web".into(),
            configs: vec![],
            secrets: vec![],
            ports: vec![PortConfig {
                target_port: 80,
                published_port: 8080,
                publish_mode: PublishMode::Host,
                ..Default::default()
            }],
            registry_auth: None,
        }
    }

    #[test]
    fn a_slotless_task_is_named_after_its_node() {
        let mut a = assignment(ContainerSpec::default());
        assert_eq!(container_name(&a.task, "web", "n1"), "web.2.t1");
        a.task.slot = 0;
        assert_eq!(container_name(&a.task, "web", "n1"), "web.n1.t1");
    }

    #[test]
    fn swarm_labels_override_user_labels_and_task_labels_are_kept() {
        let a = assignment(ContainerSpec {
            labels: BTreeMap::from([
                ("mine".into(), "1".into()),
                (LABEL_TASK_ID.into(), "forged".into()),
            ]),
            ..Default::default()
        });
        let labels = container_labels(&a, "n1", "web.2.t1");
        assert_eq!(labels["mine"], "1");
        assert_eq!(labels[LABEL_TASK_ID], "t1");
        assert_eq!(labels[LABEL_TASK], "");
        assert_eq!(labels[LABEL_TASK_NAME], "web.2.t1");
        assert_eq!(labels[LABEL_SERVICE_NAME], "web");
        assert_eq!(labels[LABEL_SERVICE_ID], "s1");
        assert_eq!(labels[LABEL_NODE_ID], "n1");
        assert_eq!(labels["com.docker.stack.namespace"], "app");
    }

    #[test]
    fn hosts_entries_become_host_colon_ip_per_name() {
        let hosts = vec![
            "10.0.0.1 db database".to_string(),
            "cache:10.0.0.2".to_string(),
        ];
        assert_eq!(
            extra_hosts(&hosts),
            ["db:10.0.0.1", "database:10.0.0.1", "cache:10.0.0.2"]
        );
    }

    #[test]
    fn the_spec_maps_onto_the_create_body() {
        let spec = ContainerSpec {
            image: "busybox:latest".into(),
            command: vec!["sh".into(), "-c".into()],
            args: vec!["sleep 1".into()],
            env: vec!["A=1".into()],
            dir: "/tmp".into(),
            user: "nobody".into(),
            stop_signal: "SIGINT".into(),
            read_only: true,
            init: Some(true),
            dns_config: Some(DNSConfig {
                nameservers: vec!["1.1.1.1".into()],
                ..Default::default()
            }),
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 10,
                hard: 20,
            }],
            mounts: vec![Mount {
                r#type: SpecMountType::Tmpfs,
                target: "/scratch".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let a = assignment(spec.clone());
        let files = [FileMount {
            source: "/state/tasks/t1/configs/c1".into(),
            target: "/etc/app.conf".into(),
        }];
        let body = create_body(&a, &spec, BTreeMap::new(), &files, &[]);
        assert_eq!(body.entrypoint.unwrap(), ["sh", "-c"]);
        assert_eq!(body.cmd.unwrap(), ["sleep 1"]);
        assert_eq!(body.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(
            body.exposed_ports.as_deref(),
            Some(&["80/tcp".to_string()][..])
        );
        let host = body.host_config.unwrap();
        let bound = &host.port_bindings.as_ref().unwrap()["80/tcp"];
        assert_eq!(
            bound.as_ref().unwrap()[0].host_port.as_deref(),
            Some("8080")
        );
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.pids_limit, Some(100));
        assert_eq!(host.memory_reservation, Some(32 << 20));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.init, Some(true));
        assert_eq!(host.dns.unwrap(), ["1.1.1.1"]);
        assert_eq!(host.log_config.unwrap().typ.as_deref(), Some("json-file"));
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].typ, Some(MountType::TMPFS));
        assert_eq!(mounts[1].target.as_deref(), Some("/etc/app.conf"));
        assert_eq!(mounts[1].read_only, Some(true));
    }

    #[test]
    fn a_tmpfs_mount_takes_its_size_and_mode_to_the_engine() {
        let m = Mount {
            r#type: SpecMountType::Tmpfs,
            target: "/scratch".into(),
            tmpfs_options: Some(shoal_types::swarm::TmpfsOptions {
                size_bytes: 1 << 20,
                mode: 0o1777,
                options: Vec::new(),
            }),
            ..Default::default()
        };
        let tmpfs = engine_mount(&m).unwrap().tmpfs_options.unwrap();
        assert_eq!(tmpfs.size_bytes, Some(1 << 20));
        assert_eq!(tmpfs.mode, Some(0o1777));
    }

    #[test]
    fn ingress_ports_bind_to_an_ephemeral_loopback_port_kept_out_of_port_status() {
        let spec = ContainerSpec {
            image: "busybox:latest".into(),
            ..Default::default()
        };
        let mut a = assignment(spec.clone());
        a.ports = vec![PortConfig {
            target_port: 8080,
            published_port: 30080,
            publish_mode: PublishMode::Ingress,
            ..Default::default()
        }];
        let body = create_body(&a, &spec, BTreeMap::new(), &[], &[]);
        assert_eq!(
            body.exposed_ports.as_deref(),
            Some(&["8080/tcp".to_string()][..])
        );
        let host = body.host_config.unwrap();
        let bound = host.port_bindings.as_ref().unwrap()["8080/tcp"]
            .clone()
            .unwrap();
        assert_eq!(bound.len(), 1);
        assert_eq!(bound[0].host_ip.as_deref(), Some(MESH_HOST_IP));
        assert_eq!(bound[0].host_port, None);

        let inspect = ContainerInspectResponse {
            network_settings: Some(bollard::models::NetworkSettings {
                ports: Some(HashMap::from([(
                    "8080/tcp".to_string(),
                    Some(vec![PortBinding {
                        host_ip: Some(MESH_HOST_IP.into()),
                        host_port: Some("49153".into()),
                    }]),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(ingress_bindings(&a.ports, &inspect), [(8080, 49153)]);
        assert!(port_status(&a.ports, &inspect).ports.is_empty());
    }
}
