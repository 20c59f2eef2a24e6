//! A loaded Compose project → the objects `docker stack deploy` creates for stack NAME, field
//! for field what docker's `cli/compose/convert` produces: networks `NAME_net` (overlay),
//! configs and secrets `NAME_x` with their data, and one ServiceSpec per service
//! `NAME_svc`. Every key is checked here, with its position; keys Swarm ignores are only
//! warned about. References to configs and secrets are left without IDs: the deploy looks
//! them up by name in the cluster, as the docker CLI does.
//!
//! This module holds the stack and what converting a service needs (`Ctx`); each Compose
//! section has its own module, which `service` puts together into one ServiceSpec: `keys`
//! (which service keys exist), `image`, `container`, `environment`, `healthcheck`, `logging`,
//! `ports`, `networks`, `volumes`, `configs_secrets`, `deploy` and `resources`; `read` reads
//! YAML nodes as typed values. The order in which keys are read decides which of several
//! mistakes is reported: keep it when moving code.

use std::collections::{BTreeMap, BTreeSet};

use shoal_types::network::NetworkCreateRequest;
use shoal_types::swarm::{ConfigSpec, SecretSpec, ServiceSpec};

use crate::yaml::Pos;
use crate::{Error, Project};

mod configs_secrets;
mod container;
mod deploy;
mod environment;
mod healthcheck;
mod image;
mod keys;
mod logging;
mod networks;
mod ports;
mod read;
mod resources;
mod service;
mod volumes;

pub use image::tagged_image;
pub use keys::unsupported_warnings;

use read::entries;

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

/// An object's name in the cluster: `NAMESPACE_NAME`.
pub(super) fn scoped(ns: &str, name: &str) -> String {
    format!("{ns}_{name}")
}

/// `labels` with the label that ties an object to stack `ns`.
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

impl<'a> Ctx<'a> {
    /// Reads the top-level networks, volumes, configs and secrets (in that order: the first
    /// error found is the one reported).
    fn new(project: &'a Project, ns: &'a str) -> Result<Ctx<'a>, Error> {
        let root = &project.root;
        Ok(Ctx {
            project,
            ns,
            networks: networks::load_networks(root)?,
            volumes: volumes::load_volumes(root)?,
            configs: configs_secrets::load_file_objects(
                root,
                configs_secrets::Kind::Config,
                project,
            )?,
            secrets: configs_secrets::load_file_objects(
                root,
                configs_secrets::Kind::Secret,
                project,
            )?,
            warnings: Vec::new(),
        })
    }
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
    let mut ctx = Ctx::new(project, namespace)?;
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

    /// A project of the one file `t.yml` with `text`, in folder `dir`, with variables `vars`.
    pub fn project(text: &str, dir: &std::path::Path, vars: &[(&str, &str)]) -> crate::Project {
        let source = crate::Source {
            name: "t.yml".into(),
            text: text.into(),
        };
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        crate::load_sources(&[source], dir, vars).expect("project")
    }

    /// The message of an error that must be there.
    pub fn message<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
        result.expect_err("an error").to_string()
    }
}
