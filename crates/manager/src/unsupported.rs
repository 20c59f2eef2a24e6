//! The parts of a service spec that shoal does not carry out, refused by name with what to do
//! instead, so that nothing a client sends is stored and silently ignored. Pure functions of
//! the spec; `docs/compat.md` lists the same fields.
//!
//! What Swarm itself refuses is refused with Swarm's words (`unsupported runtime`); what
//! Swarm would carry out but shoal's nodes cannot (plugin services, image and cluster
//! volume mounts, generic resources, Windows-only settings) says so.

use crate::error::{ApiError, Result};
use shoal_types::swarm::{
    ContainerSpec, Driver, MountType, PortConfigProtocol, PublishMode, ServiceSpec, Spec, TaskSpec,
    RUNTIME_CONTAINER, RUNTIME_NETWORK_ATTACHMENT, RUNTIME_PLUGIN,
};

/// The shortest heartbeat period shoal takes (`Dispatcher.HeartbeatPeriod`).
pub const MIN_HEARTBEAT_PERIOD_NANOS: i64 = 100_000_000;

/// Checks a swarm spec against the cluster's `current` one (at init: the defaults) and fills
/// what it leaves unset (zero) with the current values. The Raft settings are the managers'
/// timing profile's: a change is refused, not stored and ignored. A heartbeat period must be
/// at least [`MIN_HEARTBEAT_PERIOD_NANOS`].
pub fn settle_swarm_spec(current: &Spec, new: &mut Spec) -> Result<()> {
    let period = new.dispatcher.heartbeat_period;
    if period < 0 || (period > 0 && period < MIN_HEARTBEAT_PERIOD_NANOS) {
        return Err(ApiError::invalid(format!(
            "Dispatcher.HeartbeatPeriod {period}ns: the heartbeat period must be at least 100ms"
        )));
    }
    if period == 0 {
        new.dispatcher.heartbeat_period = current.dispatcher.heartbeat_period;
    }
    let (have, want) = (&current.raft, &mut new.raft);
    let fixed = "shoal's Raft timing comes from the managers' --timing profile and cannot be changed through the swarm spec";
    let settle = |name: &str, have: u64, want: &mut u64| -> Result<()> {
        if *want == 0 {
            *want = have;
        } else if *want != have {
            return Err(ApiError::invalid(format!(
                "Raft.{name} {want} (the cluster's is {have}): {fixed}"
            )));
        }
        Ok(())
    };
    settle(
        "SnapshotInterval",
        have.snapshot_interval,
        &mut want.snapshot_interval,
    )?;
    settle(
        "LogEntriesForSlowFollowers",
        have.log_entries_for_slow_followers,
        &mut want.log_entries_for_slow_followers,
    )?;
    let mut election = want.election_tick.max(0) as u64;
    settle(
        "ElectionTick",
        have.election_tick.max(0) as u64,
        &mut election,
    )?;
    want.election_tick = election as i64;
    let mut heartbeat = want.heartbeat_tick.max(0) as u64;
    settle(
        "HeartbeatTick",
        have.heartbeat_tick.max(0) as u64,
        &mut heartbeat,
    )?;
    want.heartbeat_tick = heartbeat as i64;
    match (have.keep_old_snapshots, want.keep_old_snapshots) {
        (_, None) => want.keep_old_snapshots = have.keep_old_snapshots,
        (Some(h), Some(w)) if h == w => {}
        (h, Some(w)) => {
            return Err(ApiError::invalid(format!(
            "Raft.KeepOldSnapshots {w} (the cluster's is {}): shoal keeps only the latest snapshot",
            h.unwrap_or(0)
        )))
        }
    }
    Ok(())
}

/// Checks a service spec for what shoal refuses: see [`check_task_spec`], and ports
/// published in `ingress` mode over UDP or SCTP, which shoal's routing mesh does not route.
pub fn check_service_spec(spec: &ServiceSpec) -> Result<()> {
    check_task_spec(&spec.task_template)?;
    if let Some(endpoint) = &spec.endpoint_spec {
        for (i, p) in endpoint.ports.iter().enumerate() {
            if p.publish_mode == PublishMode::Ingress && p.protocol != PortConfigProtocol::Tcp {
                return Err(ApiError::invalid(format!(
                    "EndpointSpec.Ports[{i}] ({}/{}): shoal's routing mesh routes TCP only; publish {} ports with mode=host",
                    p.target_port,
                    p.protocol.as_str(),
                    p.protocol.as_str()
                )));
            }
        }
    }
    Ok(())
}

/// Checks `TaskTemplate` for what shoal refuses: a runtime other than `container`, a
/// `PluginSpec` or `NetworkAttachmentSpec`, and the container settings its nodes cannot apply.
pub fn check_task_spec(task: &TaskSpec) -> Result<()> {
    check_runtime(task)?;
    if let Some(cs) = &task.container_spec {
        check_no_placeholders(cs)?;
        if !cs.isolation.is_empty() && !cs.isolation.eq_ignore_ascii_case("default") {
            return Err(ApiError::invalid(format!(
                "ContainerSpec.Isolation {:?}: only \"default\" is supported on Linux nodes (process and hyperv isolation are Windows-only)",
                cs.isolation
            )));
        }
        if cs
            .privileges
            .as_ref()
            .is_some_and(|p| p.credential_spec.is_some())
        {
            return Err(ApiError::invalid(
                "ContainerSpec.Privileges.CredentialSpec: credential specs (--credential-spec) are Windows-only and not supported by shoal's Linux nodes",
            ));
        }
        for (i, m) in cs.mounts.iter().enumerate() {
            match m.r#type {
                MountType::Image | MountType::Cluster => {
                    return Err(ApiError::invalid(format!(
                        "ContainerSpec.Mounts[{i}] (target {}): {} mounts are not supported by shoal (its nodes' Docker Engine 20.10 has no image mounts and shoal no cluster volumes); use a bind or volume mount",
                        m.target,
                        m.r#type.as_str()
                    )));
                }
                MountType::Npipe => {
                    return Err(ApiError::invalid(format!(
                        "ContainerSpec.Mounts[{i}] (target {}): npipe mounts are Windows-only",
                        m.target
                    )));
                }
                MountType::Bind | MountType::Volume | MountType::Tmpfs => {}
            }
        }
    }
    let generic = task
        .resources
        .as_ref()
        .and_then(|r| r.reservations.as_ref())
        .is_some_and(|r| !r.generic_resources.is_empty());
    if generic {
        return Err(ApiError::invalid(
            "Resources.Reservations.GenericResources: generic resources (--generic-resource) are not supported by shoal: its nodes advertise none, so no task could be placed",
        ));
    }
    Ok(())
}

/// Swarm expands Go templates (`{{.Node.Hostname}}`, `{{.Task.Slot}}`) in a container's
/// hostname, environment and mounts (source, target, volume labels and driver options);
/// shoal does not yet, and refuses them rather than give containers the literal text.
fn check_no_placeholders(cs: &ContainerSpec) -> Result<()> {
    let refuse = |field: String| {
        Err(ApiError::invalid(format!(
            "ContainerSpec.{field}: service templates such as {{{{.Node.Hostname}}}} or {{{{.Task.Slot}}}} are not supported by shoal yet; give the value literally"
        )))
    };
    if cs.hostname.contains("{{") {
        return refuse("Hostname".into());
    }
    if let Some(i) = cs.env.iter().position(|e| e.contains("{{")) {
        return refuse(format!("Env[{i}]"));
    }
    for (i, m) in cs.mounts.iter().enumerate() {
        let volume_values = m.volume_options.iter().flat_map(|v| {
            v.labels
                .values()
                .chain(v.driver_config.iter().flat_map(|d| d.options.values()))
        });
        if m.source.contains("{{")
            || m.target.contains("{{")
            || volume_values.into_iter().any(|v| v.contains("{{"))
        {
            return refuse(format!("Mounts[{i}]"));
        }
    }
    Ok(())
}

/// `DataPathAddr` (`--data-path-addr`): shoal's overlay traffic leaves from the node's
/// advertise address, so another address is refused rather than ignored.
pub fn check_data_path_addr(data_path_addr: &str, advertise: &str) -> Result<()> {
    let want = data_path_addr.trim();
    if want.is_empty() {
        return Ok(());
    }
    let host = |a: &str| -> String {
        a.parse::<std::net::SocketAddr>()
            .map(|s| s.ip().to_string())
            .unwrap_or_else(|_| a.rsplit_once(':').map_or(a, |(h, _)| h).to_string())
    };
    if want == advertise || want == host(advertise) {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "DataPathAddr {want:?}: shoal sends overlay traffic from the node's advertise address ({}); a separate data path address (--data-path-addr) is not supported",
        host(advertise)
    )))
}

/// Config and secret templates (`--template-driver golang`): shoal hands the data to tasks as
/// it is, so a template is refused rather than delivered unexpanded.
pub fn check_templating(kind: &str, templating: Option<&Driver>) -> Result<()> {
    match templating {
        Some(d) if !d.name.is_empty() => Err(ApiError::invalid(format!(
            "Templating: {kind} templates (--template-driver {}) are not supported by shoal; the data would reach tasks unexpanded",
            d.name
        ))),
        _ => Ok(()),
    }
}

/// Docker's rule for `TaskTemplate.Runtime`: empty or `container` runs `ContainerSpec`;
/// `plugin` needs an experimental daemon (shoal has none); anything else is unsupported.
fn check_runtime(task: &TaskSpec) -> Result<()> {
    match task.runtime.as_str() {
        "" | RUNTIME_CONTAINER => {
            if task.plugin_spec.is_some() {
                return Err(ApiError::invalid(
                    "TaskTemplate.PluginSpec is set but Runtime is \"container\": a plugin service needs Runtime \"plugin\", which shoal does not support",
                ));
            }
            if task.network_attachment_spec.is_some() {
                return Err(ApiError::invalid(
                    "TaskTemplate.NetworkAttachmentSpec is set by Swarm on network attachment tasks, not by a service spec",
                ));
            }
            Ok(())
        }
        RUNTIME_PLUGIN => Err(ApiError::invalid(
            "runtime type \"plugin\" is not supported by shoal (Docker runs plugin services only on an experimental daemon): install the plugin on each node with docker plugin install",
        )),
        RUNTIME_NETWORK_ATTACHMENT => Err(ApiError::invalid(
            "unsupported runtime \"attachment\": network attachment tasks are made by Swarm for containers that join an attachable network, not by a service spec",
        )),
        other => Err(ApiError::invalid(format!(
            "unsupported runtime {other:?}: the runtimes are \"container\" (and \"plugin\", which shoal does not support)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_types::swarm::{
        ContainerSpec, CredentialSpec, GenericResource, Mount, PluginSpec, Privileges,
        ResourceRequirements, Resources,
    };

    fn container() -> TaskSpec {
        TaskSpec {
            container_spec: Some(ContainerSpec {
                image: "nginx".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn refused(task: &TaskSpec, needle: &str) {
        let e = check_task_spec(task).expect_err("should be refused");
        assert!(e.to_string().contains(needle), "{e}");
    }

    #[test]
    fn container_runtime_empty_or_named_is_accepted() {
        assert!(check_task_spec(&container()).is_ok());
        let mut t = container();
        t.runtime = "container".into();
        assert!(check_task_spec(&t).is_ok());
    }

    #[test]
    fn plugin_attachment_and_unknown_runtimes_are_refused() {
        let mut t = container();
        t.runtime = "plugin".into();
        refused(&t, "runtime type \"plugin\"");
        t.runtime = "attachment".into();
        refused(&t, "unsupported runtime \"attachment\"");
        // Go compares the runtime exactly.
        t.runtime = "Container".into();
        refused(&t, "unsupported runtime \"Container\"");
    }

    #[test]
    fn a_plugin_spec_with_the_container_runtime_is_refused() {
        let mut t = container();
        t.plugin_spec = Some(PluginSpec::default());
        refused(&t, "PluginSpec");
        let mut t = container();
        t.network_attachment_spec = Some(Default::default());
        refused(&t, "NetworkAttachmentSpec");
    }

    #[test]
    fn windows_only_settings_are_refused() {
        let mut t = container();
        let cs = t.container_spec.as_mut().unwrap();
        cs.isolation = "default".into();
        assert!(check_task_spec(&t).is_ok());
        t.container_spec.as_mut().unwrap().isolation = "hyperv".into();
        refused(&t, "ContainerSpec.Isolation");
        let mut t = container();
        t.container_spec.as_mut().unwrap().privileges = Some(Privileges {
            credential_spec: Some(CredentialSpec {
                config: "cfg".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        refused(&t, "CredentialSpec");
    }

    #[test]
    fn image_cluster_and_npipe_mounts_are_refused() {
        for (ty, needle) in [
            (MountType::Image, "image mounts"),
            (MountType::Cluster, "cluster mounts"),
            (MountType::Npipe, "npipe"),
        ] {
            let mut t = container();
            t.container_spec.as_mut().unwrap().mounts = vec![Mount {
                r#type: ty,
                target: "/data".into(),
                ..Default::default()
            }];
            refused(&t, needle);
        }
    }

    #[test]
    fn generic_resources_are_refused() {
        let mut t = container();
        t.resources = Some(ResourceRequirements {
            reservations: Some(Resources {
                generic_resources: vec![GenericResource::default()],
                ..Default::default()
            }),
            ..Default::default()
        });
        refused(&t, "GenericResources");
    }

    fn cluster() -> Spec {
        let mut s = Spec::default();
        s.raft.snapshot_interval = 10_000;
        s.raft.keep_old_snapshots = Some(0);
        s.raft.log_entries_for_slow_followers = 500;
        s.raft.election_tick = 10;
        s.raft.heartbeat_tick = 1;
        s.dispatcher.heartbeat_period = 5_000_000_000;
        s
    }

    #[test]
    fn unset_swarm_settings_keep_the_clusters() {
        let mut new = Spec::default();
        settle_swarm_spec(&cluster(), &mut new).unwrap();
        assert_eq!(new.raft, cluster().raft);
        assert_eq!(new.dispatcher, cluster().dispatcher);
        let mut same = cluster();
        same.dispatcher.heartbeat_period = 2_000_000_000;
        settle_swarm_spec(&cluster(), &mut same).unwrap();
        assert_eq!(same.dispatcher.heartbeat_period, 2_000_000_000);
    }

    #[test]
    fn raft_changes_and_tiny_heartbeats_are_refused() {
        let mut s = cluster();
        s.raft.snapshot_interval = 5000;
        let e = settle_swarm_spec(&cluster(), &mut s).unwrap_err();
        assert!(e.to_string().contains("Raft.SnapshotInterval 5000"), "{e}");
        let mut s = cluster();
        s.raft.keep_old_snapshots = Some(3);
        let e = settle_swarm_spec(&cluster(), &mut s).unwrap_err();
        assert!(e.to_string().contains("KeepOldSnapshots"), "{e}");
        let mut s = cluster();
        s.raft.election_tick = 3;
        assert!(settle_swarm_spec(&cluster(), &mut s).is_err());
        for bad in [-1, 1, 99_999_999] {
            let mut s = cluster();
            s.dispatcher.heartbeat_period = bad;
            let e = settle_swarm_spec(&cluster(), &mut s).unwrap_err();
            assert!(e.to_string().contains("at least 100ms"), "{e}");
        }
    }

    #[test]
    fn ingress_ports_other_than_tcp_are_refused_host_ones_are_not() {
        use shoal_types::swarm::{EndpointSpec, PortConfig};
        let spec = |protocol, publish_mode| ServiceSpec {
            task_template: container(),
            endpoint_spec: Some(EndpointSpec {
                ports: vec![PortConfig {
                    protocol,
                    publish_mode,
                    target_port: 53,
                    published_port: 53,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(check_service_spec(&spec(PortConfigProtocol::Tcp, PublishMode::Ingress)).is_ok());
        assert!(check_service_spec(&spec(PortConfigProtocol::Udp, PublishMode::Host)).is_ok());
        let e =
            check_service_spec(&spec(PortConfigProtocol::Udp, PublishMode::Ingress)).unwrap_err();
        assert!(e.to_string().contains("mode=host"), "{e}");
        assert!(check_service_spec(&spec(PortConfigProtocol::Sctp, PublishMode::Ingress)).is_err());
    }

    #[test]
    fn service_templates_are_refused_until_expanded() {
        let mut t = container();
        t.container_spec.as_mut().unwrap().hostname = "{{.Node.Hostname}}".into();
        refused(&t, "ContainerSpec.Hostname: service templates");
        let mut t = container();
        t.container_spec.as_mut().unwrap().env = vec!["A=1".into(), "SLOT={{.Task.Slot}}".into()];
        refused(&t, "ContainerSpec.Env[1]");
    }

    #[test]
    fn a_data_path_address_other_than_the_advertise_address_is_refused() {
        assert!(check_data_path_addr("", "10.0.0.1:2377").is_ok());
        assert!(check_data_path_addr("10.0.0.1", "10.0.0.1:2377").is_ok());
        let e = check_data_path_addr("10.0.0.9", "10.0.0.1:2377").unwrap_err();
        assert!(e.to_string().contains("--data-path-addr"), "{e}");
    }
}
