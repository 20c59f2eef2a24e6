//! A loaded Compose project → the objects `docker stack deploy` creates for stack NAME, field
//! for field what docker's `cli/compose/convert` produces: networks `NAME_net` (overlay),
//! configs and secrets `NAME_x` with their data, and one ServiceSpec per service
//! `NAME_svc`. Every key is checked here, with its position; keys Swarm ignores are only
//! warned about. References to configs and secrets are left without IDs: the deploy looks
//! them up by name in the cluster, as the docker CLI does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use shoal_types::network::{IPAMConfig, NetworkCreateRequest, IPAM};
use shoal_types::swarm::{
    BindOptions, ConfigReference, ConfigReferenceFileTarget, ConfigSpec, ContainerSpec,
    CredentialSpec, DNSConfig, Driver, EndpointSpec, Mount, MountType, NetworkAttachmentConfig,
    Privileges, SecretReference, SecretReferenceFileTarget, SecretSpec, ServiceSpec, TaskSpec,
    TmpfsOptions, Ulimit, VolumeOptions,
};

use crate::yaml::{Node, Pos, Value};
use crate::{shell, units, Error, Project};

mod deploy;
mod healthcheck;
mod image;
mod keys;
mod logging;
mod ports;
mod read;
mod resources;

pub use image::tagged_image;
pub use keys::unsupported_warnings;

use read::{
    entries, external, field, fields, integer, opt_bool, opt_duration, opt_text, opt_unsigned,
    size, string_map, strings, text, text_or_empty, Entries,
};

/// The label that ties an object to its stack.
pub const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";
/// The image as written in the Compose file, on the service.
pub const LABEL_IMAGE: &str = "com.docker.stack.image";

/// A network the stack needs, to be created when missing.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkCreate {
    pub name: String,
    pub request: NetworkCreateRequest,
}

/// Everything a deploy of stack `namespace` creates or updates.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub namespace: String,
    /// Networks of the stack, by name.
    pub networks: Vec<NetworkCreate>,
    /// Networks declared external that the services use; they must exist (swarm scope).
    pub external_networks: Vec<String>,
    pub secrets: Vec<SecretSpec>,
    pub configs: Vec<ConfigSpec>,
    /// Service specs by their name in the file (`web`, not `NAME_web`). Config and secret
    /// references carry names only.
    pub services: BTreeMap<String, ServiceSpec>,
    /// Configs and secrets declared external that the services use (names in the cluster).
    pub external_configs: Vec<String>,
    pub external_secrets: Vec<String>,
    /// Where each object was declared, by kind (`network`, `config`, `secret`, `service`)
    /// and name in the cluster: `file:line:col`.
    pub positions: BTreeMap<(String, String), String>,
    /// Things the user should know (ignored host IPs, ...).
    pub warnings: Vec<String>,
}

impl Stack {
    /// Where object `name` of `kind` was declared, or "" when it was not in a file.
    pub fn position(&self, kind: &str, name: &str) -> String {
        self.positions
            .get(&(kind.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_default()
    }
}

fn scoped(ns: &str, name: &str) -> String {
    format!("{ns}_{name}")
}

fn with_namespace(ns: &str, mut labels: BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels.insert(LABEL_NAMESPACE.to_string(), ns.to_string());
    labels
}

// ----- top-level objects -----

#[derive(Debug, Clone, Default)]
struct NetworkDef {
    /// Where it is declared (its key under `networks:`).
    pos: Option<Pos>,
    external: bool,
    /// `name:` (or the external name).
    name: Option<String>,
    driver: String,
    driver_opts: BTreeMap<String, String>,
    internal: bool,
    attachable: bool,
    ipam_driver: String,
    subnets: Vec<String>,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
struct VolumeDef {
    external: bool,
    name: Option<String>,
    driver: String,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
struct FileObjectDef {
    /// Where it is declared (its key under `configs:` or `secrets:`).
    pos: Option<Pos>,
    external: bool,
    name: Option<String>,
    data: Vec<u8>,
    labels: BTreeMap<String, String>,
    driver: String,
    driver_opts: BTreeMap<String, String>,
    template_driver: String,
}

fn load_networks(root: &Node) -> Result<BTreeMap<String, NetworkDef>, Error> {
    let mut out = BTreeMap::new();
    let Some(section) = root.get("networks") else {
        return Ok(out);
    };
    for (key, node) in entries(section, "networks")? {
        let name = key.as_str().unwrap_or_default().to_string();
        let what = format!("networks.{name}");
        let e = fields(
            node,
            &what,
            &[
                "driver",
                "driver_opts",
                "external",
                "internal",
                "attachable",
                "ipam",
                "labels",
                "name",
                "enable_ipv6",
            ],
        )?;
        let (ext, ext_name) = external(field(e, "external"), &what)?;
        let mut def = NetworkDef {
            pos: Some(key.pos.clone()),
            external: ext,
            name: opt_text(e, "name", &what)?,
            driver: text_or_empty(e, "driver", &what)?,
            internal: opt_bool(e, "internal", &what)?.unwrap_or(false),
            attachable: opt_bool(e, "attachable", &what)?.unwrap_or(false),
            ..Default::default()
        };
        if let Some(n) = field(e, "driver_opts") {
            def.driver_opts = string_map(n, &format!("{what}.driver_opts"))?;
        }
        if let Some(n) = field(e, "labels") {
            def.labels = string_map(n, &format!("{what}.labels"))?;
        }
        if let Some(ipam) = field(e, "ipam") {
            let iw = format!("{what}.ipam");
            let ie = fields(ipam, &iw, &["driver", "config", "options"])?;
            def.ipam_driver = text_or_empty(ie, "driver", &iw)?;
            if let Some(configs) = field(ie, "config") {
                for c in configs
                    .as_seq()
                    .ok_or_else(|| Error::at(&configs.pos, format!("{iw}.config must be a list")))?
                {
                    let ce = fields(
                        c,
                        &format!("{iw}.config"),
                        &["subnet", "ip_range", "gateway", "aux_addresses"],
                    )?;
                    def.subnets.push(text_or_empty(ce, "subnet", &iw)?);
                }
            }
        }
        if ext {
            if ext_name.is_some() && def.name.is_some() {
                return Err(Error::at(
                    &key.pos,
                    format!("network {name}: network.external.name and network.name conflict; only use network.name"),
                ));
            }
            def.name = Some(ext_name.or(def.name).unwrap_or_else(|| name.clone()));
        }
        out.insert(name, def);
    }
    Ok(out)
}

fn load_volumes(root: &Node) -> Result<BTreeMap<String, VolumeDef>, Error> {
    let mut out = BTreeMap::new();
    let Some(section) = root.get("volumes") else {
        return Ok(out);
    };
    for (key, node) in entries(section, "volumes")? {
        let name = key.as_str().unwrap_or_default().to_string();
        let what = format!("volumes.{name}");
        let e = fields(
            node,
            &what,
            &["driver", "driver_opts", "external", "labels", "name"],
        )?;
        let (ext, ext_name) = external(field(e, "external"), &what)?;
        let mut def = VolumeDef {
            external: ext,
            name: opt_text(e, "name", &what)?,
            driver: text_or_empty(e, "driver", &what)?,
            ..Default::default()
        };
        if let Some(n) = field(e, "driver_opts") {
            def.driver_opts = Some(string_map(n, &format!("{what}.driver_opts"))?);
        }
        if let Some(n) = field(e, "labels") {
            def.labels = string_map(n, &format!("{what}.labels"))?;
        }
        if ext {
            for (k, set) in [
                ("driver", !def.driver.is_empty()),
                ("driver_opts", def.driver_opts.is_some()),
                ("labels", !def.labels.is_empty()),
            ] {
                if set {
                    return Err(Error::at(
                        &key.pos,
                        format!("conflicting parameters \"external\" and {k:?} specified for volume {name:?}"),
                    ));
                }
            }
            def.name = Some(ext_name.or(def.name).unwrap_or_else(|| name.clone()));
        }
        out.insert(name, def);
    }
    Ok(out)
}

fn load_file_objects(
    root: &Node,
    section_name: &str,
    project: &Project,
) -> Result<BTreeMap<String, FileObjectDef>, Error> {
    let kind = if section_name == "secrets" {
        "secret"
    } else {
        "config"
    };
    let mut out = BTreeMap::new();
    let Some(section) = root.get(section_name) else {
        return Ok(out);
    };
    for (key, node) in entries(section, section_name)? {
        let name = key.as_str().unwrap_or_default().to_string();
        let what = format!("{section_name}.{name}");
        let e = fields(
            node,
            &what,
            &[
                "file",
                "external",
                "labels",
                "name",
                "driver",
                "driver_opts",
                "template_driver",
                "content",
                "environment",
            ],
        )?;
        let (ext, ext_name) = external(field(e, "external"), &what)?;
        let mut def = FileObjectDef {
            pos: Some(key.pos.clone()),
            external: ext,
            name: opt_text(e, "name", &what)?,
            driver: text_or_empty(e, "driver", &what)?,
            template_driver: text_or_empty(e, "template_driver", &what)?,
            ..Default::default()
        };
        if let Some(n) = field(e, "labels") {
            def.labels = string_map(n, &format!("{what}.labels"))?;
        }
        if let Some(n) = field(e, "driver_opts") {
            def.driver_opts = string_map(n, &format!("{what}.driver_opts"))?;
        }
        let file = field(e, "file");
        if ext {
            if ext_name.is_some() && def.name.is_some() {
                return Err(Error::at(
                    &key.pos,
                    format!("{kind} {name}: {kind}.external.name and {kind}.name conflict; only use {kind}.name"),
                ));
            }
            def.name = Some(ext_name.or(def.name).unwrap_or_else(|| name.clone()));
        } else if !def.driver.is_empty() {
            if let Some(f) = file {
                return Err(Error::at(
                    &f.pos,
                    format!("{kind} {name}: {kind}.driver and {kind}.file conflict; only use {kind}.driver"),
                ));
            }
        } else if let Some(f) = file {
            let path = text(f, &format!("{what}.file"))?;
            let full = project.working_dir.join(&path);
            def.data = std::fs::read(&full).map_err(|source| Error::ReadAt {
                pos: f.pos.clone(),
                path: full.display().to_string(),
                source,
            })?;
        } else if let Some(c) = field(e, "content") {
            def.data = text(c, &format!("{what}.content"))?.into_bytes();
        } else if let Some(v) = field(e, "environment") {
            let var = text(v, &format!("{what}.environment"))?;
            def.data = project
                .env
                .get(&var)
                .ok_or_else(|| {
                    Error::at(
                        &v.pos,
                        format!("{kind} {name}: variable {var:?} is not set"),
                    )
                })?
                .clone()
                .into_bytes();
        } else {
            return Err(Error::at(
                &key.pos,
                format!("{kind} {name:?} needs `file:` (or `external: true`)"),
            ));
        }
        out.insert(name, def);
    }
    Ok(out)
}

// ----- the stack -----

struct Ctx<'a> {
    project: &'a Project,
    ns: &'a str,
    networks: BTreeMap<String, NetworkDef>,
    volumes: BTreeMap<String, VolumeDef>,
    configs: BTreeMap<String, FileObjectDef>,
    secrets: BTreeMap<String, FileObjectDef>,
    warnings: Vec<String>,
}

/// Converts a loaded project into the objects of stack `namespace`.
pub fn convert(project: &Project, namespace: &str) -> Result<Stack, Error> {
    let root = &project.root;
    let mut ctx = Ctx {
        project,
        ns: namespace,
        networks: load_networks(root)?,
        volumes: load_volumes(root)?,
        configs: load_file_objects(root, "configs", project)?,
        secrets: load_file_objects(root, "secrets", project)?,
        warnings: Vec::new(),
    };
    let mut services = BTreeMap::new();
    let mut used_networks = BTreeSet::new();
    let mut positions = BTreeMap::new();
    let mut place = |kind: &str, name: &str, pos: &Option<Pos>| {
        if let Some(pos) = pos {
            positions.insert((kind.to_string(), name.to_string()), pos.to_string());
        }
    };
    if let Some(section) = root.get("services") {
        for (key, node) in entries(section, "services")? {
            let name = key.as_str().unwrap_or_default().to_string();
            place("service", &scoped(namespace, &name), &Some(key.pos.clone()));
            let (spec, nets) = ctx.service(&name, key, node)?;
            used_networks.extend(nets);
            services.insert(name, spec);
        }
    }

    let mut networks = Vec::new();
    let mut external_networks = Vec::new();
    for internal in &used_networks {
        let def = ctx.networks.get(internal).cloned().unwrap_or_default();
        if def.external {
            let name = def.name.clone().unwrap_or_else(|| internal.clone());
            place("network", &name, &def.pos);
            external_networks.push(name);
            continue;
        }
        let ipam = (!def.ipam_driver.is_empty() || !def.subnets.is_empty()).then(|| IPAM {
            driver: def.ipam_driver.clone(),
            config: def
                .subnets
                .iter()
                .map(|s| IPAMConfig {
                    subnet: s.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        let name = def
            .name
            .clone()
            .unwrap_or_else(|| scoped(namespace, internal));
        place("network", &name, &def.pos);
        networks.push(NetworkCreate {
            name: name.clone(),
            request: NetworkCreateRequest {
                name,
                driver: if def.driver.is_empty() {
                    "overlay".into()
                } else {
                    def.driver.clone()
                },
                internal: def.internal,
                attachable: def.attachable,
                ipam,
                options: def.driver_opts.clone(),
                labels: with_namespace(namespace, def.labels.clone()),
                ..Default::default()
            },
        });
    }
    networks.sort_by(|a, b| a.name.cmp(&b.name));

    let object_name =
        |key: &str, def: &FileObjectDef| def.name.clone().unwrap_or_else(|| scoped(namespace, key));
    let used = |kind: &str, name: &str| {
        services.values().any(|spec: &ServiceSpec| {
            spec.task_template.container_spec.as_ref().is_some_and(|c| {
                if kind == "secret" {
                    c.secrets.iter().any(|r| r.secret_name == name)
                } else {
                    c.configs.iter().any(|r| r.config_name == name)
                }
            })
        })
    };
    let mut external_secrets = Vec::new();
    let mut external_configs = Vec::new();
    let mut secrets = Vec::new();
    for (key, def) in &ctx.secrets {
        let name = object_name(key, def);
        place("secret", &name, &def.pos);
        if def.external {
            if used("secret", &name) {
                external_secrets.push(name);
            }
            continue;
        }
        secrets.push(SecretSpec {
            name: object_name(key, def),
            labels: with_namespace(namespace, def.labels.clone()),
            data: Some(def.data.clone()),
            driver: (!def.driver.is_empty()).then(|| Driver {
                name: def.driver.clone(),
                options: def.driver_opts.clone(),
            }),
            templating: (!def.template_driver.is_empty()).then(|| Driver {
                name: def.template_driver.clone(),
                ..Default::default()
            }),
        });
    }
    let mut configs = Vec::new();
    for (key, def) in &ctx.configs {
        let name = object_name(key, def);
        place("config", &name, &def.pos);
        if def.external {
            if used("config", &name) {
                external_configs.push(name);
            }
            continue;
        }
        configs.push(ConfigSpec {
            name: object_name(key, def),
            labels: with_namespace(namespace, def.labels.clone()),
            data: def.data.clone(),
            templating: (!def.template_driver.is_empty()).then(|| Driver {
                name: def.template_driver.clone(),
                ..Default::default()
            }),
        });
    }
    Ok(Stack {
        namespace: namespace.to_string(),
        networks,
        external_networks,
        secrets,
        configs,
        services,
        external_configs,
        external_secrets,
        positions,
        warnings: ctx.warnings,
    })
}

impl Ctx<'_> {
    /// One service's spec, and the (file) names of the networks it uses.
    fn service(
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

        let container_labels = match field(e, "labels") {
            Some(n) => string_map(n, &format!("{what}.labels"))?,
            None => BTreeMap::new(),
        };

        let command = |k: &str| -> Result<Vec<String>, Error> {
            match field(e, k) {
                None => Ok(Vec::new()),
                Some(n) => match &n.value {
                    Value::Scalar { text, .. } => shell::split(text)
                        .map_err(|m| Error::at(&n.pos, format!("{what}.{k}: {m}"))),
                    _ => strings(n, &format!("{what}.{k}"), false),
                },
            }
        };

        let (cap_add, cap_drop) = effective_caps(
            field(e, "cap_add")
                .map(|n| strings(n, &format!("{what}.cap_add"), false))
                .transpose()?
                .unwrap_or_default(),
            field(e, "cap_drop")
                .map(|n| strings(n, &format!("{what}.cap_drop"), false))
                .transpose()?
                .unwrap_or_default(),
        );

        let dns = field(e, "dns")
            .map(|n| strings(n, &format!("{what}.dns"), true))
            .transpose()?;
        let dns_search = field(e, "dns_search")
            .map(|n| strings(n, &format!("{what}.dns_search"), true))
            .transpose()?;
        let dns_opt = field(e, "dns_opt")
            .map(|n| strings(n, &format!("{what}.dns_opt"), false))
            .transpose()?;
        let dns_config =
            (dns.is_some() || dns_search.is_some() || dns_opt.is_some()).then(|| DNSConfig {
                nameservers: dns.unwrap_or_default(),
                search: dns_search.unwrap_or_default(),
                options: dns_opt.unwrap_or_default(),
            });

        let mut privileges = Privileges::default();
        if let Some(cs) = field(e, "credential_spec") {
            let cw = format!("{what}.credential_spec");
            let ce = fields(cs, &cw, &["config", "file", "registry"])?;
            let spec = CredentialSpec {
                config: text_or_empty(ce, "config", &cw)?,
                file: text_or_empty(ce, "file", &cw)?,
                registry: text_or_empty(ce, "registry", &cw)?,
            };
            let set = [&spec.config, &spec.file, &spec.registry]
                .iter()
                .filter(|s| !s.is_empty())
                .count();
            if set > 1 {
                return Err(Error::at(
                    &cs.pos,
                    "invalid credential spec: set only one of config, file and registry",
                ));
            }
            if !spec.config.is_empty() {
                return Err(Error::at(
                    &cs.pos,
                    "credential_spec.config is not supported by shoal yet: use file or registry",
                ));
            }
            if set == 1 {
                privileges.credential_spec = Some(spec);
            }
        }

        let log_driver = logging::log_driver(field(e, "logging"), &what)?;

        let networks = self.service_networks(name, e, &what)?;
        let used: Vec<String> = match field(e, "networks") {
            Some(n) if !entries(n, "networks")?.is_empty() => entries(n, "networks")?
                .iter()
                .map(|(k, _)| k.as_str().unwrap_or_default().to_string())
                .collect(),
            _ => vec!["default".to_string()],
        };

        let container = ContainerSpec {
            image: image.clone(),
            labels: with_namespace(self.ns, container_labels),
            command: command("entrypoint")?,
            args: command("command")?,
            hostname: text_or_empty(e, "hostname", &what)?,
            env: self.environment(e, &what)?,
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
            hosts: extra_hosts(field(e, "extra_hosts"), &what)?,
            dns_config,
            secrets: self.secret_refs(e, &what)?,
            configs: self.config_refs(e, &what)?,
            isolation: text_or_empty(e, "isolation", &what)?,
            sysctls: match field(e, "sysctls") {
                Some(n) => string_map(n, &format!("{what}.sysctls"))?,
                None => BTreeMap::new(),
            },
            capability_add: cap_add,
            capability_drop: cap_drop,
            ulimits: ulimits(field(e, "ulimits"), &what)?,
            oom_score_adj: field(e, "oom_score_adj")
                .map(|n| integer(n, &format!("{what}.oom_score_adj")))
                .transpose()?
                .unwrap_or(0),
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

    fn environment(&self, e: Entries<'_>, what: &str) -> Result<Vec<String>, Error> {
        let mut env: BTreeMap<String, Option<String>> = BTreeMap::new();
        let lookup = |k: &str, v: Option<String>| -> Option<String> {
            match v {
                Some(v) if !v.is_empty() => Some(v),
                other => self.project.env.get(k).cloned().or(other),
            }
        };
        if let Some(files) = field(e, "env_file") {
            for f in files_list(files, &format!("{what}.env_file"))? {
                let (path, pos) = f;
                let full = self.project.working_dir.join(&path);
                let content = std::fs::read_to_string(&full).map_err(|source| Error::ReadAt {
                    pos: pos.clone(),
                    path: full.display().to_string(),
                    source,
                })?;
                for line in content.lines() {
                    let line = line.trim_start();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    match line.split_once('=') {
                        Some((k, v)) => {
                            if k.chars().any(char::is_whitespace) {
                                return Err(Error::at(
                                    &pos,
                                    format!(
                                        "{}: variable {k:?} contains whitespaces",
                                        full.display()
                                    ),
                                ));
                            }
                            let v = lookup(k, Some(v.to_string()));
                            env.insert(k.to_string(), v);
                        }
                        None => {
                            // A bare name takes its value from the environment, or is left out.
                            let k = line.trim_end();
                            if let Some(v) = self.project.env.get(k) {
                                env.insert(k.to_string(), Some(v.clone()));
                            }
                        }
                    }
                }
            }
        }
        if let Some(n) = field(e, "environment") {
            for (k, v) in entries(n, &format!("{what}.environment"))? {
                let key = k.as_str().unwrap_or_default().to_string();
                let value = match &v.value {
                    Value::Null => None,
                    Value::Scalar { text, .. } => Some(text.clone()),
                    _ => {
                        return Err(Error::at(
                            &v.pos,
                            format!(
                                "{what}.environment.{key} must be a string, not {}",
                                v.kind()
                            ),
                        ))
                    }
                };
                let value = lookup(&key, value);
                env.insert(key, value);
            }
        }
        let mut out: Vec<String> = env
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k,
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn service_networks(
        &self,
        service: &str,
        e: Entries<'_>,
        what: &str,
    ) -> Result<Vec<NetworkAttachmentConfig>, Error> {
        let declared: Vec<(Node, Node)> = match field(e, "networks") {
            Some(n) if !entries(n, "networks")?.is_empty() => entries(n, "networks")?.to_vec(),
            _ => vec![(
                Node::scalar(Pos::new(&"".into(), 0, 0), "default"),
                Node::new(Pos::new(&"".into(), 0, 0), Value::Null),
            )],
        };
        let mut out = Vec::new();
        for (k, v) in &declared {
            let name = k.as_str().unwrap_or_default();
            let def = self.networks.get(name);
            if def.is_none() && name != "default" {
                return Err(Error::at(
                    &k.pos,
                    format!("service {service}: undefined network {name:?} (declare it under the top-level networks)"),
                ));
            }
            let nw = format!("{what}.networks.{name}");
            let mut aliases = Vec::new();
            let mut driver_opts = BTreeMap::new();
            if !v.is_null() {
                let ve = fields(
                    v,
                    &nw,
                    &[
                        "aliases",
                        "ipv4_address",
                        "ipv6_address",
                        "driver_opts",
                        "priority",
                        "link_local_ips",
                        "mac_address",
                    ],
                )?;
                if let Some(a) = field(ve, "aliases") {
                    aliases = strings(a, &format!("{nw}.aliases"), false)?;
                }
                if let Some(d) = field(ve, "driver_opts") {
                    driver_opts = string_map(d, &format!("{nw}.driver_opts"))?;
                }
            }
            let target = def
                .and_then(|d| d.name.clone())
                .unwrap_or_else(|| scoped(self.ns, name));
            if !matches!(target.as_str(), "default" | "bridge" | "host" | "none")
                && !target.starts_with("container:")
            {
                aliases.push(service.to_string());
            }
            out.push(NetworkAttachmentConfig {
                target,
                aliases,
                driver_opts,
            });
        }
        out.sort_by(|a, b| a.target.cmp(&b.target));
        Ok(out)
    }

    fn mounts(&self, e: Entries<'_>, what: &str) -> Result<Vec<Mount>, Error> {
        let Some(list) = field(e, "volumes") else {
            return Ok(Vec::new());
        };
        let vw = format!("{what}.volumes");
        let items = list.as_seq().ok_or_else(|| {
            Error::at(
                &list.pos,
                format!("{vw} must be a list, not {}", list.kind()),
            )
        })?;
        let mut mounts = Vec::new();
        for item in items {
            mounts.push(self.mount(item, &vw)?);
        }
        Ok(mounts)
    }

    fn mount(&self, item: &Node, vw: &str) -> Result<Mount, Error> {
        struct Spec {
            kind: String,
            source: String,
            target: String,
            read_only: bool,
            consistency: String,
            propagation: Option<String>,
            no_copy: Option<bool>,
            subpath: String,
            tmpfs_size: Option<i64>,
            has_bind: bool,
            has_volume: bool,
            has_tmpfs: bool,
        }
        let spec = match &item.value {
            Value::Scalar { text: s, .. } => {
                let v = units::parse_volume_spec(s);
                if let Some(err) = v.error {
                    return Err(Error::at(&item.pos, format!("{vw}: {err}")));
                }
                Spec {
                    kind: v.kind.to_string(),
                    source: v.source,
                    target: v.target,
                    read_only: v.read_only,
                    consistency: String::new(),
                    has_bind: v.propagation.is_some(),
                    propagation: v.propagation,
                    has_volume: v.no_copy,
                    no_copy: v.no_copy.then_some(true),
                    subpath: String::new(),
                    tmpfs_size: None,
                    has_tmpfs: false,
                }
            }
            Value::Map(_) => {
                let me = fields(
                    item,
                    vw,
                    &[
                        "type",
                        "source",
                        "target",
                        "read_only",
                        "consistency",
                        "bind",
                        "volume",
                        "tmpfs",
                        "image",
                    ],
                )?;
                let kind = opt_text(me, "type", vw)?.ok_or_else(|| {
                    Error::at(
                        &item.pos,
                        format!("{vw}: a long-syntax volume needs a type (volume, bind or tmpfs)"),
                    )
                })?;
                let mut s = Spec {
                    kind,
                    source: text_or_empty(me, "source", vw)?,
                    target: text_or_empty(me, "target", vw)?,
                    read_only: opt_bool(me, "read_only", vw)?.unwrap_or(false),
                    consistency: text_or_empty(me, "consistency", vw)?,
                    propagation: None,
                    no_copy: None,
                    subpath: String::new(),
                    tmpfs_size: None,
                    has_bind: false,
                    has_volume: false,
                    has_tmpfs: false,
                };
                if let Some(b) = field(me, "bind") {
                    let be = fields(
                        b,
                        &format!("{vw}.bind"),
                        &["propagation", "create_host_path", "selinux"],
                    )?;
                    s.has_bind = true;
                    s.propagation = opt_text(be, "propagation", vw)?;
                }
                if let Some(v) = field(me, "volume") {
                    let ve = fields(v, &format!("{vw}.volume"), &["nocopy", "subpath"])?;
                    s.has_volume = true;
                    s.no_copy = opt_bool(ve, "nocopy", vw)?;
                    s.subpath = text_or_empty(ve, "subpath", vw)?;
                }
                if let Some(t) = field(me, "tmpfs") {
                    let te = fields(t, &format!("{vw}.tmpfs"), &["size", "mode"])?;
                    s.has_tmpfs = true;
                    s.tmpfs_size = field(te, "size")
                        .map(|n| size(n, &format!("{vw}.tmpfs.size")))
                        .transpose()?;
                }
                s
            }
            _ => {
                return Err(Error::at(
                    &item.pos,
                    format!(
                        "{vw} entries must be strings or mappings, not {}",
                        item.kind()
                    ),
                ))
            }
        };
        if spec.target.is_empty() {
            return Err(Error::at(
                &item.pos,
                format!("{vw}: a mount needs a target"),
            ));
        }
        let incompatible = |what: &str, kind: &str| {
            Err(Error::at(
                &item.pos,
                format!("{vw}: {what} options are incompatible with type {kind}"),
            ))
        };
        let mut mount = Mount {
            target: spec.target.clone(),
            read_only: spec.read_only,
            consistency: spec.consistency.clone(),
            ..Default::default()
        };
        match spec.kind.as_str() {
            "volume" => {
                mount.r#type = MountType::Volume;
                if spec.has_bind {
                    return incompatible("bind", "volume");
                }
                if spec.has_tmpfs {
                    return incompatible("tmpfs", "volume");
                }
                if spec.source.is_empty() {
                    return Ok(mount);
                }
                let def = self.volumes.get(&spec.source).ok_or_else(|| {
                    Error::at(
                        &item.pos,
                        format!(
                            "undefined volume {:?} (declare it under the top-level volumes)",
                            spec.source
                        ),
                    )
                })?;
                mount.source = def
                    .name
                    .clone()
                    .unwrap_or_else(|| scoped(self.ns, &spec.source));
                let mut options = VolumeOptions {
                    no_copy: spec.no_copy.unwrap_or(false),
                    subpath: spec.subpath.clone(),
                    ..Default::default()
                };
                if !def.external {
                    options.labels = with_namespace(self.ns, def.labels.clone());
                    if !def.driver.is_empty() || def.driver_opts.is_some() {
                        options.driver_config = Some(Driver {
                            name: def.driver.clone(),
                            options: def.driver_opts.clone().unwrap_or_default(),
                        });
                    }
                }
                mount.volume_options = Some(options);
            }
            "bind" => {
                mount.r#type = MountType::Bind;
                if spec.source.is_empty() {
                    return Err(Error::at(
                        &item.pos,
                        format!("{vw}: invalid bind source, source cannot be empty"),
                    ));
                }
                if spec.has_volume {
                    return incompatible("volume", "bind");
                }
                if spec.has_tmpfs {
                    return incompatible("tmpfs", "bind");
                }
                mount.source = self.bind_path(&spec.source);
                if spec.has_bind {
                    mount.bind_options = Some(BindOptions {
                        propagation: spec.propagation.clone().unwrap_or_default(),
                        ..Default::default()
                    });
                }
            }
            "tmpfs" => {
                mount.r#type = MountType::Tmpfs;
                if !spec.source.is_empty() {
                    return Err(Error::at(
                        &item.pos,
                        format!("{vw}: invalid tmpfs source, source must be empty"),
                    ));
                }
                if spec.has_bind {
                    return incompatible("bind", "tmpfs");
                }
                if spec.has_volume {
                    return incompatible("volume", "tmpfs");
                }
                if spec.has_tmpfs {
                    mount.tmpfs_options = Some(TmpfsOptions {
                        size_bytes: spec.tmpfs_size.unwrap_or(0),
                        ..Default::default()
                    });
                }
            }
            "npipe" => {
                mount.r#type = MountType::Npipe;
                mount.source = spec.source.clone();
            }
            other => {
                return Err(Error::at(
                    &item.pos,
                    format!(
                        "{vw}: volume type must be volume, bind, tmpfs or npipe, not {other:?}"
                    ),
                ))
            }
        }
        Ok(mount)
    }

    /// A bind source as the docker CLI resolves it: `~` is the home folder, relative paths
    /// are relative to the Compose file's folder.
    fn bind_path(&self, source: &str) -> String {
        let mut s = source.to_string();
        if let Some(rest) = s.strip_prefix('~') {
            if let Some(home) = self.project.env.get("HOME") {
                s = format!("{home}{rest}");
            }
        }
        if Path::new(&s).is_absolute() {
            return s;
        }
        let joined = self.project.working_dir.join(&s);
        // Clean `./` and `a/../` like Go's filepath.Join.
        let mut parts: Vec<String> = Vec::new();
        for c in joined.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    if parts.len() > 1 {
                        parts.pop();
                    }
                }
                std::path::Component::RootDir => parts.push(String::new()),
                other => parts.push(other.as_os_str().to_string_lossy().into_owned()),
            }
        }
        let out = parts.join("/");
        if out.is_empty() {
            "/".into()
        } else {
            out
        }
    }

    fn file_refs(
        &self,
        e: Entries<'_>,
        key: &str,
        what: &str,
    ) -> Result<Vec<(String, ConfigReferenceFileTarget)>, Error> {
        let Some(list) = field(e, key) else {
            return Ok(Vec::new());
        };
        let kw = format!("{what}.{key}");
        let defs = if key == "secrets" {
            &self.secrets
        } else {
            &self.configs
        };
        let kind = if key == "secrets" { "secret" } else { "config" };
        let items = list.as_seq().ok_or_else(|| {
            Error::at(
                &list.pos,
                format!("{kw} must be a list, not {}", list.kind()),
            )
        })?;
        let mut out = Vec::new();
        for item in items {
            let (source, target, uid, gid, mode) = match &item.value {
                Value::Scalar { text, .. } => (
                    text.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    None,
                ),
                Value::Map(_) => {
                    let ie = fields(item, &kw, &["source", "target", "uid", "gid", "mode"])?;
                    let source = opt_text(ie, "source", &kw)?.ok_or_else(|| {
                        Error::at(
                            &item.pos,
                            format!("{kw}: a {kind} reference needs a source"),
                        )
                    })?;
                    let mode = field(ie, "mode")
                        .map(|n| integer(n, &format!("{kw}.mode")))
                        .transpose()?;
                    (
                        source,
                        text_or_empty(ie, "target", &kw)?,
                        text_or_empty(ie, "uid", &kw)?,
                        text_or_empty(ie, "gid", &kw)?,
                        mode,
                    )
                }
                _ => {
                    return Err(Error::at(
                        &item.pos,
                        format!(
                            "{kw} entries must be names or mappings, not {}",
                            item.kind()
                        ),
                    ))
                }
            };
            let def = defs.get(&source).ok_or_else(|| {
                Error::at(
                    &item.pos,
                    format!("undefined {kind} {source:?} (declare it under the top-level {key})"),
                )
            })?;
            let name = def.name.clone().unwrap_or_else(|| scoped(self.ns, &source));
            let file = ConfigReferenceFileTarget {
                name: if target.is_empty() {
                    source.clone()
                } else {
                    target
                },
                uid: if uid.is_empty() { "0".into() } else { uid },
                gid: if gid.is_empty() { "0".into() } else { gid },
                mode: u32::try_from(mode.unwrap_or(0o444))
                    .map_err(|_| Error::at(&item.pos, format!("{kw}: invalid file mode")))?,
            };
            out.push((name, file));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn secret_refs(&self, e: Entries<'_>, what: &str) -> Result<Vec<SecretReference>, Error> {
        Ok(self
            .file_refs(e, "secrets", what)?
            .into_iter()
            .map(|(name, f)| SecretReference {
                file: Some(SecretReferenceFileTarget {
                    name: f.name,
                    uid: f.uid,
                    gid: f.gid,
                    mode: f.mode,
                }),
                secret_id: String::new(),
                secret_name: name,
            })
            .collect())
    }

    fn config_refs(&self, e: Entries<'_>, what: &str) -> Result<Vec<ConfigReference>, Error> {
        Ok(self
            .file_refs(e, "configs", what)?
            .into_iter()
            .map(|(name, f)| ConfigReference {
                file: Some(f),
                runtime: None,
                config_id: String::new(),
                config_name: name,
            })
            .collect())
    }
}

fn files_list(node: &Node, what: &str) -> Result<Vec<(String, Pos)>, Error> {
    match &node.value {
        Value::Scalar { text, .. } => Ok(vec![(text.clone(), node.pos.clone())]),
        Value::Seq(items) => items
            .iter()
            .map(|i| match &i.value {
                Value::Scalar { text, .. } => Ok((text.clone(), i.pos.clone())),
                Value::Map(_) => {
                    let e = fields(i, what, &["path", "required", "format"])?;
                    let path = opt_text(e, "path", what)?.ok_or_else(|| {
                        Error::at(&i.pos, format!("{what}: an env file needs a path"))
                    })?;
                    Ok((path, i.pos.clone()))
                }
                _ => Err(Error::at(&i.pos, format!("{what} entries must be paths"))),
            })
            .collect(),
        _ => Err(Error::at(
            &node.pos,
            format!("{what} must be a path or a list of paths"),
        )),
    }
}

fn effective_caps(add: Vec<String>, drop: Vec<String>) -> (Vec<String>, Vec<String>) {
    let normalize = |c: &String| {
        let c = c.trim().to_ascii_uppercase();
        if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
            c
        } else {
            format!("CAP_{c}")
        }
    };
    let mut add: BTreeSet<String> = add.iter().map(normalize).collect();
    let mut drop: BTreeSet<String> = drop.iter().map(normalize).collect();
    if add.contains("ALL") {
        add = ["ALL".to_string()].into();
    }
    if drop.contains("ALL") {
        drop = ["ALL".to_string()].into();
    }
    let cap_drop = drop
        .iter()
        .filter(|c| !add.contains(*c) && *c != "RESET")
        .cloned()
        .collect();
    let cap_add = add.into_iter().filter(|c| c != "RESET").collect();
    (cap_add, cap_drop)
}

fn extra_hosts(node: Option<&Node>, what: &str) -> Result<Vec<String>, Error> {
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    let mut hosts = Vec::new();
    for entry in strings(node, &format!("{what}.extra_hosts"), false)? {
        // `host:ip` or `host=ip`; the engine wants "ip host".
        let split = entry.split_once('=').or_else(|| entry.split_once(':'));
        if let Some((host, ip)) = split {
            let ip = ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .unwrap_or(ip);
            hosts.push(format!("{ip} {host}"));
        }
    }
    Ok(hosts)
}

fn ulimits(node: Option<&Node>, what: &str) -> Result<Vec<Ulimit>, Error> {
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    let uw = format!("{what}.ulimits");
    let mut out = Vec::new();
    for (k, v) in entries(node, &uw)? {
        let name = k.as_str().unwrap_or_default().to_string();
        let (soft, hard) = if v.as_map().is_some() {
            let e = fields(v, &format!("{uw}.{name}"), &["soft", "hard"])?;
            let get = |key: &str| -> Result<i64, Error> {
                field(e, key)
                    .map(|n| integer(n, &format!("{uw}.{name}.{key}")))
                    .transpose()?
                    .ok_or_else(|| Error::at(&v.pos, format!("{uw}.{name} needs soft and hard")))
            };
            (get("soft")?, get("hard")?)
        } else {
            let single = integer(v, &format!("{uw}.{name}"))?;
            (single, single)
        };
        out.push(Ulimit { name, soft, hard });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Builders shared by the unit tests of the section modules.
#[cfg(test)]
pub(super) mod testing {
    use crate::yaml::{parse, Node};
    use crate::Error;

    /// The value of `v` in the one-line document `v: TEXT`, from file `t.yml`: its position is
    /// `t.yml:1:4`.
    pub fn node(text: &str) -> Node {
        parse("t.yml", &format!("v: {text}"))
            .expect("yaml")
            .get("v")
            .cloned()
            .expect("v")
    }

    /// The message of an error that must be there.
    pub fn message<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
        result.expect_err("an error").to_string()
    }
}
