//! Tasks (moby `api/types/swarm/task.go` and `runtime.go`): one scheduled run of a service's
//! task template in a slot, its life-cycle state, and the parts of the template that are not
//! the container itself (resources, restart policy, placement, plugin and attachment runtimes).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{
    ContainerSpec, Driver, NetworkAttachment, NetworkAttachmentConfig, Platform, PortConfig,
    Resources, Version,
};
use crate::wire::{is_default, null_default, wire_enum};

/// A task, as `GET /tasks/{id}` returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Task {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    #[serde(with = "crate::wire::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::wire::time")]
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    pub spec: TaskSpec,
    #[serde(rename = "ServiceID", skip_serializing_if = "String::is_empty")]
    pub service_id: String,
    /// Replicated services number their slots from 1; global tasks have no slot (0).
    #[serde(skip_serializing_if = "is_default")]
    pub slot: i64,
    #[serde(rename = "NodeID", skip_serializing_if = "String::is_empty")]
    pub node_id: String,
    /// Observed state, owned by the agent.
    pub status: TaskStatus,
    /// The state the orchestrator wants, owned by the manager.
    pub desired_state: TaskState,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub networks_attachments: Vec<NetworkAttachment>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub generic_resources: Vec<GenericResource>,
    /// The job iteration this task belongs to (job modes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_iteration: Option<Version>,
    /// Cluster volumes (API 1.42+; Go sends it always, shoal only when used).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub volumes: Vec<VolumeAttachment>,
}

/// A service's `TaskTemplate`: everything needed to start one task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskSpec {
    /// The container to run; mutually exclusive with `PluginSpec`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_spec: Option<ContainerSpec>,
    /// A plugin to install (`Runtime` = `plugin`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_spec: Option<PluginSpec>,
    /// A network attachment task (`Runtime` = `attachment`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_attachment_spec: Option<NetworkAttachmentSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub networks: Vec<NetworkAttachmentConfig>,
    /// Falls back to the cluster's `TaskDefaults.LogDriver`, then the engine's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<Driver>,
    /// A counter the CLI bumps (`--force`) to redeploy without any other change.
    pub force_update: u64,
    /// `container` (also when empty), `plugin` or `attachment`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub runtime: String,
}

impl TaskSpec {
    /// The runtime as Swarm names it: `container` when none was given.
    pub fn runtime_name(&self) -> &str {
        if self.runtime.is_empty() {
            RUNTIME_CONTAINER
        } else {
            &self.runtime
        }
    }
}

/// `Runtime` value of a container task.
pub const RUNTIME_CONTAINER: &str = "container";
/// `Runtime` value of a plugin task.
pub const RUNTIME_PLUGIN: &str = "plugin";
/// `Runtime` value of a network attachment task.
pub const RUNTIME_NETWORK_ATTACHMENT: &str = "attachment";

/// A plugin to install (`runtime.PluginSpec`; Go gives it lowercase JSON names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "lowercase")]
pub struct PluginSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote: String,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub privileges: Vec<PluginPrivilege>,
    #[serde(skip_serializing_if = "is_default")]
    pub disabled: bool,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub env: Vec<String>,
}

/// A privilege a plugin asks for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "lowercase")]
pub struct PluginPrivilege {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub value: Vec<String>,
}

/// The container a network attachment task stands for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkAttachmentSpec {
    #[serde(rename = "ContainerID")]
    pub container_id: String,
}

/// Limits and reservations of a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ResourceRequirements {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservations: Option<Resources>,
}

/// Resource limits of a task (`Pids` since API 1.41).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Limit {
    #[serde(rename = "NanoCPUs", skip_serializing_if = "is_default")]
    pub nano_cpus: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub memory_bytes: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub pids: i64,
}

/// A user-defined resource (e.g. GPUs): either named values or a count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct GenericResource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub named_resource_spec: Option<NamedGenericResource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discrete_resource_spec: Option<DiscreteGenericResource>,
}

/// A named generic resource, e.g. `{"Kind": "GPU", "Value": "UUID1"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NamedGenericResource {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// A counted generic resource, e.g. `{"Kind": "SSD", "Value": 3}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DiscreteGenericResource {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "is_default")]
    pub value: i64,
}

/// Where tasks may run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Placement {
    /// e.g. `node.role==manager`, `node.labels.zone!=east`.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub constraints: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub preferences: Vec<PlacementPreference>,
    /// At most this many tasks of the service per node; 0 means no limit.
    #[serde(skip_serializing_if = "is_default")]
    pub max_replicas: u64,
    /// Platforms the image runs on; empty disables the platform filter.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub platforms: Vec<Platform>,
}

/// A scheduling preference. `Spread` has no `omitempty` in Go (`null` when unset).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PlacementPreference {
    pub spread: Option<SpreadOver>,
}

/// Spread tasks evenly over the values of a label, e.g. `node.labels.zone`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SpreadOver {
    pub spread_descriptor: String,
}

/// When and how a task is replaced after it exits. Durations are nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RestartPolicy {
    pub condition: RestartPolicyCondition,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<i64>,
    /// 0 means unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    /// The window in which restarts are counted against `MaxAttempts`; 0 means unbounded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
}

wire_enum! {
    /// When to restart a task: `none`, `on-failure` or `any` (the default).
    pub enum RestartPolicyCondition ("restart condition") {
        None = "none",
        OnFailure = "on-failure",
        Any = "any",
    }
    default = Any;
}

/// A task's state. States only move forward; the order is SwarmKit's numeric one, so
/// `a < b` means "a comes before b in the life cycle".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TaskState {
    #[default]
    New,
    Pending,
    Assigned,
    Accepted,
    Preparing,
    Ready,
    Starting,
    Running,
    Complete,
    Shutdown,
    Failed,
    Rejected,
    Remove,
    Orphaned,
}

impl TaskState {
    /// Every state, in life-cycle order.
    pub const ALL: &'static [TaskState] = &[
        TaskState::New,
        TaskState::Pending,
        TaskState::Assigned,
        TaskState::Accepted,
        TaskState::Preparing,
        TaskState::Ready,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Complete,
        TaskState::Shutdown,
        TaskState::Failed,
        TaskState::Rejected,
        TaskState::Remove,
        TaskState::Orphaned,
    ];

    /// SwarmKit's numeric value of the state (NEW 0 … ORPHANED 832).
    pub fn rank(self) -> u32 {
        match self {
            TaskState::New => 0,
            TaskState::Pending => 64,
            TaskState::Assigned => 192,
            TaskState::Accepted => 256,
            TaskState::Preparing => 320,
            TaskState::Ready => 384,
            TaskState::Starting => 448,
            TaskState::Running => 512,
            TaskState::Complete => 576,
            TaskState::Shutdown => 640,
            TaskState::Failed => 704,
            TaskState::Rejected => 768,
            TaskState::Remove => 800,
            TaskState::Orphaned => 832,
        }
    }

    /// The Docker API string, lowercase (`"running"`).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::New => "new",
            TaskState::Pending => "pending",
            TaskState::Assigned => "assigned",
            TaskState::Accepted => "accepted",
            TaskState::Preparing => "preparing",
            TaskState::Ready => "ready",
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Complete => "complete",
            TaskState::Shutdown => "shutdown",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
            TaskState::Remove => "remove",
            TaskState::Orphaned => "orphaned",
        }
    }

    /// Parses a state name ignoring ASCII case (the `desired-state` filter sends `running`,
    /// SwarmKit spells it `RUNNING`); `None` if unknown.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    /// Past RUNNING: the task will never run (again).
    pub fn is_terminal(self) -> bool {
        self > TaskState::Running
    }
}

impl PartialOrd for TaskState {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TaskState {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TaskState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("invalid task state {s:?}"))
    }
}

impl Serialize for TaskState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TaskState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        if s.is_empty() {
            return Ok(TaskState::default());
        }
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A task's observed status, reported by its agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskStatus {
    #[serde(with = "crate::wire::time")]
    pub timestamp: DateTime<Utc>,
    pub state: TaskState,
    /// Human-readable progress, e.g. `started`, `no suitable node (…)`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub err: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_status: Option<ContainerStatus>,
    pub port_status: PortStatus,
}

/// The container behind a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerStatus {
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    #[serde(rename = "PID")]
    pub pid: i64,
    #[serde(rename = "ExitCode")]
    pub exit_code: i64,
}

/// Host-mode ports a task published.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PortStatus {
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub ports: Vec<PortConfig>,
}

/// A cluster volume attached to a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeAttachment {
    #[serde(rename = "ID", skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
}
