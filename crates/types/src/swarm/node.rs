//! Nodes (moby `api/types/swarm/node.go`): the spec an operator sets (role, availability,
//! labels), what the node's agent reports about itself, and the status the managers observe.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{GenericResource, TLSInfo, Version};
use crate::wire::{is_default, null_default, wire_enum};

/// A cluster member, as `GET /nodes/{id}` returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    #[serde(with = "crate::wire::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::wire::time")]
    pub updated_at: DateTime<Utc>,
    /// What the operator wants; the system never changes it on its own.
    pub spec: NodeSpec,
    /// What the node's agent reports about itself.
    pub description: NodeDescription,
    /// What the managers observe.
    pub status: NodeStatus,
    /// Present on managers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager_status: Option<ManagerStatus>,
}

/// `POST /nodes/{id}/update` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    pub role: NodeRole,
    pub availability: NodeAvailability,
}

wire_enum! {
    /// `worker` or `manager`.
    pub enum NodeRole ("node role") {
        Worker = "worker",
        Manager = "manager",
    }
    default = Worker;
}

wire_enum! {
    /// Whether the scheduler may place tasks on a node: `active`, `pause` (keep running tasks,
    /// place no new ones) or `drain` (move everything away).
    pub enum NodeAvailability ("node availability") {
        Active = "active",
        Pause = "pause",
        Drain = "drain",
    }
    default = Active;
}

wire_enum! {
    /// A node's state as the managers see it.
    pub enum NodeState ("node state") {
        Unknown = "unknown",
        Down = "down",
        Ready = "ready",
        Disconnected = "disconnected",
    }
    default = Unknown;
}

wire_enum! {
    /// Whether a manager can be reached by the Raft group.
    pub enum Reachability ("reachability") {
        Unknown = "unknown",
        Unreachable = "unreachable",
        Reachable = "reachable",
    }
    default = Unknown;
}

/// What a node's agent reports about itself.
///
/// moby 28 also has `CSIInfo` (API 1.42+); shoal speaks 1.41 and leaves it out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeDescription {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    pub platform: Platform,
    pub resources: Resources,
    pub engine: EngineDescription,
    /// Go sends this struct always; shoal omits it while unknown.
    #[serde(rename = "TLSInfo", skip_serializing_if = "Option::is_none")]
    pub tls_info: Option<TLSInfo>,
}

/// Architecture and operating system, with Go's names (`amd64`, `linux`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Platform {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    #[serde(rename = "OS", skip_serializing_if = "String::is_empty")]
    pub os: String,
}

/// CPU and memory (a node's capacity, or a task's reservation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Resources {
    /// CPU in units of 1e-9 CPUs.
    #[serde(rename = "NanoCPUs", skip_serializing_if = "is_default")]
    pub nano_cpus: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub memory_bytes: i64,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub generic_resources: Vec<GenericResource>,
}

/// The container engine on a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct EngineDescription {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub engine_version: String,
    /// Engine labels (matched by the nodes `label` filter and `engine.labels.*` constraints).
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub plugins: Vec<PluginDescription>,
}

/// An engine plugin, e.g. `{"Type": "Network", "Name": "overlay"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PluginDescription {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// A node's status as the managers observe it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeStatus {
    pub state: NodeState,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The node's IP address as seen by the managers.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
}

/// A manager's Raft membership.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ManagerStatus {
    #[serde(skip_serializing_if = "is_default")]
    pub leader: bool,
    pub reachability: Reachability,
    /// The manager's advertised cluster address, `ip:2377`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
}
