//! shoal's own stack API (not Docker's): what `shoal stack deploy` sends, and what the
//! managers answer about stacks. Served under `/shoal/v1/stacks`, a prefix the Docker Engine
//! API never uses (see docs/architecture.md, "Stacks").

use crate::network::NetworkCreateRequest;
use crate::swarm::{ConfigSpec, SecretSpec, ServiceSpec};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The label that ties an object to its stack (Docker's).
pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";

/// Marks a config or secret created by a rotation with the name the Compose file gives it
/// (the object it replaces); see docs/decisions.md, "Rotation on the managers".
pub const ROTATED_FROM_LABEL: &str = "com.shoal.rotated-from";

/// A whole stack, rendered from its Compose files: every object it owns, what it needs to
/// exist already, and the source it came from. Deployed as one Raft entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct StackSpec {
    pub name: String,
    pub source: StackSource,
    pub networks: Vec<StackItem<NetworkCreateRequest>>,
    pub configs: Vec<StackItem<ConfigSpec>>,
    /// Plain data in a request; sealed with the cluster's data key once on a manager.
    pub secrets: Vec<StackItem<SecretSpec>>,
    /// Full names (`STACK_web`); references to networks, configs and secrets by name.
    pub services: Vec<StackItem<ServiceSpec>>,
    /// Objects the stack uses but does not own (`external: true`): they must exist.
    pub external: Vec<ExternalObject>,
    /// `--with-registry-auth`: the credentials each service's nodes pull its image with, by
    /// full service name (empty credentials: none). Sealed beside the services by the
    /// managers, never part of a stored version.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub registry_auth: BTreeMap<String, crate::registry::RegistryAuth>,
}

/// The Compose files a stack was rendered from, and the variables they used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct StackSource {
    pub files: Vec<SourceFile>,
    /// Only the variables the files refer to (`$NAME`, `${NAME…}`), not the whole
    /// environment of the client.
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

/// One object of a stack and where it was defined (`file:line:col`, empty when unknown).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct StackItem<T> {
    pub spec: T,
    pub pos: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    #[default]
    Network,
    Config,
    Secret,
    Service,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Network => "network",
            ObjectKind::Config => "config",
            ObjectKind::Secret => "secret",
            ObjectKind::Service => "service",
        }
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An object declared `external` in the Compose file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ExternalObject {
    pub kind: ObjectKind,
    pub name: String,
    pub pos: String,
}

/// What a deploy did (or, dry, would do) to one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct StackChange {
    /// `create`, `update`, `remove`, `rotate` (a config or secret whose content changed,
    /// created under a new name) or `unchanged`.
    pub action: String,
    pub kind: ObjectKind,
    pub name: String,
    /// For a service update, one line per changed spec leaf:
    /// `~ TaskTemplate.ContainerSpec.Image: "a" -> "b"`.
    pub paths: Vec<String>,
    /// For `rotate`: the name in the Compose file, whose object keeps the old content.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rotated_from: String,
}

/// The answer to a deploy, a rollback or a dry run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct StackDeployResponse {
    /// The stack's version after the deploy (the current one for a dry run or when nothing
    /// changed; 0: none yet).
    pub version: u64,
    pub changes: Vec<StackChange>,
}

/// `GET /shoal/v1/stacks`: one line per stack, stored by shoal or made by the docker CLI
/// (objects labelled `com.docker.stack.namespace`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct StackSummary {
    pub name: String,
    pub services: usize,
    /// 0 for a stack the managers hold no versions of (made by `docker stack deploy`).
    pub version: u64,
    pub updated_at: Option<DateTime<Utc>>,
}

/// One stored version, as `stack history` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct StackVersionInfo {
    pub version: u64,
    pub created_at: DateTime<Utc>,
    /// `deploy`, or `rollback to version N`.
    pub note: String,
    pub services: Vec<String>,
    pub networks: Vec<String>,
    pub configs: Vec<String>,
    pub secrets: Vec<String>,
    pub files: Vec<String>,
}

/// `GET /shoal/v1/stacks/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct StackInfo {
    pub name: String,
    pub version: u64,
    /// Oldest first; at most the last ten.
    pub versions: Vec<StackVersionInfo>,
}
