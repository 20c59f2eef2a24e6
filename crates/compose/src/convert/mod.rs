//! A loaded Compose project → the objects `docker stack deploy` creates for stack NAME, field
//! for field what docker's `cli/compose/convert` produces: networks `NAME_net` (overlay),
//! configs and secrets `NAME_x` with their data, and one ServiceSpec per service
//! `NAME_svc`. Every key is checked here, with its position; keys Swarm ignores are only
//! warned about. References to configs and secrets are left without IDs: the deploy looks
//! them up by name in the cluster, as the docker CLI does.

use std::collections::{BTreeMap, BTreeSet};

use shoal_types::network::NetworkCreateRequest;
use shoal_types::swarm::{
    ConfigSpec, ContainerSpec, CredentialSpec, DNSConfig, EndpointSpec, Privileges, SecretSpec,
    ServiceSpec, TaskSpec, Ulimit,
};

use crate::yaml::{Node, Pos, Value};
use crate::{shell, Error, Project};

mod configs_secrets;
mod deploy;
mod healthcheck;
mod image;
mod keys;
mod logging;
mod networks;
mod ports;
mod read;
mod resources;
mod volumes;

pub use image::tagged_image;
pub use keys::unsupported_warnings;

use read::{
    entries, field, fields, integer, opt_bool, opt_duration, opt_text, opt_unsigned, string_map,
    strings, text_or_empty, Entries,
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

pub(super) fn scoped(ns: &str, name: &str) -> String {
    format!("{ns}_{name}")
}

pub(super) fn with_namespace(
    ns: &str,
    mut labels: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    labels.insert(LABEL_NAMESPACE.to_string(), ns.to_string());
    labels
}

/// What converting a service needs: the project, the stack's namespace and the top-level
/// objects the service may refer to; and the warnings gathered on the way.
struct Ctx<'a> {
    project: &'a Project,
    ns: &'a str,
    networks: BTreeMap<String, networks::NetworkDef>,
    volumes: BTreeMap<String, volumes::VolumeDef>,
    configs: BTreeMap<String, configs_secrets::FileObjectDef>,
    secrets: BTreeMap<String, configs_secrets::FileObjectDef>,
    warnings: Vec<String>,
}

/// Where objects were declared, by kind and name in the cluster (see [`Stack::positions`]).
type Positions = BTreeMap<(String, String), String>;

/// Records where object `name` of `kind` was declared, when it was in a file.
fn place(positions: &mut Positions, kind: &str, name: &str, pos: &Option<Pos>) {
    if let Some(pos) = pos {
        positions.insert((kind.to_string(), name.to_string()), pos.to_string());
    }
}

/// Converts a loaded project into the objects of stack `namespace`.
pub fn convert(project: &Project, namespace: &str) -> Result<Stack, Error> {
    let root = &project.root;
    let mut ctx = Ctx {
        project,
        ns: namespace,
        networks: networks::load_networks(root)?,
        volumes: volumes::load_volumes(root)?,
        configs: configs_secrets::load_file_objects(root, configs_secrets::Kind::Config, project)?,
        secrets: configs_secrets::load_file_objects(root, configs_secrets::Kind::Secret, project)?,
        warnings: Vec::new(),
    };
    let mut services = BTreeMap::new();
    let mut used_networks = BTreeSet::new();
    let mut positions = Positions::new();
    if let Some(section) = root.get("services") {
        for (key, node) in entries(section, "services")? {
            let name = key.as_str().unwrap_or_default().to_string();
            place(
                &mut positions,
                "service",
                &scoped(namespace, &name),
                &Some(key.pos.clone()),
            );
            let (spec, nets) = ctx.service(&name, key, node)?;
            used_networks.extend(nets);
            services.insert(name, spec);
        }
    }
    let (networks, external_networks) = ctx.stack_networks(&used_networks, &mut positions);
    let (secrets, external_secrets) = ctx.stack_secrets(&services, &mut positions);
    let (configs, external_configs) = ctx.stack_configs(&services, &mut positions);
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

        let (networks, used) = self.service_networks(name, e, &what)?;

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
