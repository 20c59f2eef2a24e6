//! One Compose service → one `ServiceSpec`: checks its keys and image, then builds the
//! container, task and service specs from the section modules. The order in which the keys
//! are read is the order in which errors are found: it stays as it is, so that a file with
//! several mistakes reports the same first one.

use shoal_types::swarm::{ContainerSpec, EndpointSpec, ServiceSpec, TaskSpec};

use super::read::{
    entries, field, opt_bool, opt_duration, opt_integer, opt_string_map, opt_unsigned,
    text_or_empty,
};
use super::{
    container, deploy, environment, healthcheck, image, keys, logging, ports, resources, scoped,
    with_namespace, Ctx,
};
use crate::yaml::Node;
use crate::Error;

impl Ctx<'_> {
    /// One service's spec, and the (file) names of the networks it uses.
    pub(super) fn service(
        &mut self,
        name: &str,
        key: &Node,
        node: &Node,
    ) -> Result<(ServiceSpec, Vec<String>), Error> {
        let what = format!("services.{name}");
        let e = entries(node, &what)?;
        keys::check_service_keys(name, e)?;
        let image = image::service_image(name, key, e, &what)?;

        let dw = format!("{what}.deploy");
        let deploy = deploy::entries(field(e, "deploy"), &dw)?;

        let labels = deploy::service_labels(deploy, &dw, self.ns, &image)?;

        let container_labels = opt_string_map(e, "labels", &what)?.unwrap_or_default();

        let (cap_add, cap_drop) = container::capabilities(e, &what)?;
        let dns_config = container::dns_config(e, &what)?;
        let privileges = container::privileges(e, &what)?;

        let log_driver = logging::log_driver(field(e, "logging"), &what)?;

        let (networks, used) = self.service_networks(name, e, &what)?;

        let container = ContainerSpec {
            image: image.clone(),
            labels: with_namespace(self.ns, container_labels),
            command: container::command(e, "entrypoint", &what)?,
            args: container::command(e, "command", &what)?,
            hostname: text_or_empty(e, "hostname", &what)?,
            env: environment::environment(e, &what, self.project)?,
            dir: text_or_empty(e, "working_dir", &what)?,
            user: text_or_empty(e, "user", &what)?,
            privileges: Some(privileges),
            init: opt_bool(e, "init", &what)?,
            stop_signal: text_or_empty(e, "stop_signal", &what)?,
            tty: opt_bool(e, "tty", &what)?.unwrap_or(false),
            open_stdin: opt_bool(e, "stdin_open", &what)?.unwrap_or(false),
            read_only: opt_bool(e, "read_only", &what)?.unwrap_or(false),
            mounts: self.mounts(e, &what)?,
            stop_grace_period: opt_duration(e, "stop_grace_period", &what)?,
            healthcheck: healthcheck::healthcheck(field(e, "healthcheck"), &what)?,
            hosts: container::extra_hosts(field(e, "extra_hosts"), &what)?,
            dns_config,
            secrets: self.secret_refs(e, &what)?,
            configs: self.config_refs(e, &what)?,
            isolation: text_or_empty(e, "isolation", &what)?,
            sysctls: opt_string_map(e, "sysctls", &what)?.unwrap_or_default(),
            capability_add: cap_add,
            capability_drop: cap_drop,
            ulimits: container::ulimits(field(e, "ulimits"), &what)?,
            oom_score_adj: opt_integer(e, "oom_score_adj", &what)?.unwrap_or(0),
            groups: Vec::new(),
        };

        let placement =
            deploy::placement(field(deploy, "placement"), field(e, "platform"), &dw, &what)?;
        let restart_policy =
            deploy::restart_policy(field(e, "restart"), field(deploy, "restart_policy"), &dw)?;
        let replicas = opt_unsigned(deploy, "replicas", &dw)?;
        let mode = deploy::mode(field(deploy, "mode"), replicas, &dw)?;
        let endpoint_mode = deploy::endpoint_mode(field(deploy, "endpoint_mode"), &dw)?;
        let (ports, port_warnings) = ports::ports(field(e, "ports"), &what)?;
        self.warnings.extend(port_warnings);

        let spec = ServiceSpec {
            name: scoped(self.ns, name),
            labels,
            task_template: TaskSpec {
                container_spec: Some(container),
                resources: Some(resources::resources(field(deploy, "resources"), &dw)?),
                restart_policy,
                placement: Some(placement),
                networks,
                log_driver,
                ..Default::default()
            },
            mode,
            update_config: deploy::update_config(
                field(deploy, "update_config"),
                &format!("{dw}.update_config"),
            )?,
            rollback_config: deploy::update_config(
                field(deploy, "rollback_config"),
                &format!("{dw}.rollback_config"),
            )?,
            networks: Vec::new(),
            endpoint_spec: Some(EndpointSpec {
                mode: endpoint_mode,
                ports,
            }),
        };
        Ok((spec, used))
    }
}
