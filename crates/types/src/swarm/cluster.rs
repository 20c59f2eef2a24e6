//! The swarm itself (moby `api/types/swarm/swarm.go`): cluster info and spec (Raft,
//! dispatcher, CA, encryption, task defaults), join tokens, the init/join/unlock requests and
//! the swarm part of `GET /info`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{Driver, NodeAvailability, TLSInfo, Version};
use crate::wire::{is_default, null_default, wire_enum};

/// The cluster object without its join tokens (what every node may see in `GET /info`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ClusterInfo {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    #[serde(with = "crate::wire::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::wire::time")]
    pub updated_at: DateTime<Utc>,
    pub spec: Spec,
    #[serde(rename = "TLSInfo")]
    pub tls_info: TLSInfo,
    pub root_rotation_in_progress: bool,
    /// Address pools overlay subnets are carved from, CIDR (default `10.0.0.0/8`).
    #[serde(deserialize_with = "null_default")]
    pub default_addr_pool: Vec<String>,
    /// Prefix length of each carved subnet (default 24).
    pub subnet_size: u32,
    /// VXLAN UDP port (default 4789).
    pub data_path_port: u32,
}

/// `GET /swarm`: the cluster info with the join tokens (managers only). Go embeds
/// `ClusterInfo`; here its fields are written out, see [`Swarm::from_parts`] and [`Swarm::info`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Swarm {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    #[serde(with = "crate::wire::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::wire::time")]
    pub updated_at: DateTime<Utc>,
    pub spec: Spec,
    #[serde(rename = "TLSInfo")]
    pub tls_info: TLSInfo,
    pub root_rotation_in_progress: bool,
    #[serde(deserialize_with = "null_default")]
    pub default_addr_pool: Vec<String>,
    pub subnet_size: u32,
    pub data_path_port: u32,
    pub join_tokens: JoinTokens,
}

impl Swarm {
    /// Puts the cluster info and its join tokens together.
    pub fn from_parts(info: ClusterInfo, tokens: JoinTokens) -> Swarm {
        Swarm {
            id: info.id,
            version: info.version,
            created_at: info.created_at,
            updated_at: info.updated_at,
            spec: info.spec,
            tls_info: info.tls_info,
            root_rotation_in_progress: info.root_rotation_in_progress,
            default_addr_pool: info.default_addr_pool,
            subnet_size: info.subnet_size,
            data_path_port: info.data_path_port,
            join_tokens: tokens,
        }
    }

    /// The cluster info without the join tokens.
    pub fn info(&self) -> ClusterInfo {
        ClusterInfo {
            id: self.id.clone(),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            spec: self.spec.clone(),
            tls_info: self.tls_info.clone(),
            root_rotation_in_progress: self.root_rotation_in_progress,
            default_addr_pool: self.default_addr_pool.clone(),
            subnet_size: self.subnet_size,
            data_path_port: self.data_path_port,
        }
    }
}

/// The tokens a node presents to join as a worker or as a manager.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JoinTokens {
    pub worker: String,
    pub manager: String,
}

/// The swarm's spec (`POST /swarm/update` body, `Spec` of `POST /swarm/init`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Spec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    pub orchestration: OrchestrationConfig,
    pub raft: RaftConfig,
    pub dispatcher: DispatcherConfig,
    #[serde(rename = "CAConfig")]
    pub ca_config: CAConfig,
    pub task_defaults: TaskDefaults,
    pub encryption_config: EncryptionConfig,
}

/// Orchestration settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct OrchestrationConfig {
    /// Old tasks kept per slot (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_history_retention_limit: Option<i64>,
}

/// Defaults for every task of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskDefaults {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<Driver>,
}

/// Encryption at rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct EncryptionConfig {
    /// Managers need the unlock key after a restart.
    pub auto_lock_managers: bool,
}

/// Raft settings (ticks are counts of the Raft tick, 1 s).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RaftConfig {
    /// Log entries between snapshots (default 10000).
    #[serde(skip_serializing_if = "is_default")]
    pub snapshot_interval: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_old_snapshots: Option<u64>,
    /// Log entries kept for slow followers after a snapshot (default 500).
    #[serde(skip_serializing_if = "is_default")]
    pub log_entries_for_slow_followers: u64,
    /// Ticks without a leader before an election (default 10).
    pub election_tick: i64,
    /// Ticks between leader heartbeats (default 1).
    pub heartbeat_tick: i64,
}

/// Dispatcher settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DispatcherConfig {
    /// Agent heartbeat period in nanoseconds (default 5 s).
    #[serde(skip_serializing_if = "is_default")]
    pub heartbeat_period: i64,
}

/// Certificate authority settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CAConfig {
    /// Node certificate lifetime in nanoseconds (default 90 days).
    #[serde(skip_serializing_if = "is_default")]
    pub node_cert_expiry: i64,
    #[serde(
        rename = "ExternalCAs",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub external_cas: Vec<ExternalCA>,
    /// A new root CA certificate to rotate to, PEM.
    #[serde(rename = "SigningCACert", skip_serializing_if = "String::is_empty")]
    pub signing_ca_cert: String,
    /// Its key, PEM; never returned.
    #[serde(rename = "SigningCAKey", skip_serializing_if = "String::is_empty")]
    pub signing_ca_key: String,
    /// Bump to force a root rotation even without a new certificate.
    #[serde(skip_serializing_if = "is_default")]
    pub force_rotate: u64,
}

wire_enum! {
    /// Protocol of an external CA; only `cfssl` exists.
    pub enum ExternalCAProtocol ("external CA protocol") {
        Cfssl = "cfssl",
    }
    default = Cfssl;
}

/// An external certificate authority that signs node certificates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ExternalCA {
    pub protocol: ExternalCAProtocol,
    #[serde(rename = "URL")]
    pub url: String,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub options: BTreeMap<String, String>,
    /// The root CA certificate this CA uses, PEM.
    #[serde(rename = "CACert")]
    pub ca_cert: String,
}

/// `POST /swarm/init` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct InitRequest {
    pub listen_addr: String,
    pub advertise_addr: String,
    pub data_path_addr: String,
    pub data_path_port: u32,
    pub force_new_cluster: bool,
    pub spec: Spec,
    pub auto_lock_managers: bool,
    pub availability: NodeAvailability,
    #[serde(deserialize_with = "null_default")]
    pub default_addr_pool: Vec<String>,
    pub subnet_size: u32,
}

/// `POST /swarm/join` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JoinRequest {
    pub listen_addr: String,
    pub advertise_addr: String,
    pub data_path_addr: String,
    #[serde(deserialize_with = "null_default")]
    pub remote_addrs: Vec<String>,
    pub join_token: String,
    pub availability: NodeAvailability,
}

/// `POST /swarm/unlock` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct UnlockRequest {
    pub unlock_key: String,
}

/// `GET /swarm/unlockkey` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct UnlockKeyResponse {
    pub unlock_key: String,
}

wire_enum! {
    /// This node's membership of a swarm. Go's zero value is `""`, which reads as `inactive`.
    pub enum LocalNodeState ("local node state") {
        Inactive = "inactive",
        Pending = "pending",
        Active = "active",
        Error = "error",
        Locked = "locked",
    }
    default = Inactive;
}

/// The swarm part of `GET /info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Info {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_addr: String,
    pub local_node_state: LocalNodeState,
    /// This node is a manager.
    pub control_available: bool,
    pub error: String,
    #[serde(deserialize_with = "null_default")]
    pub remote_managers: Vec<Peer>,
    #[serde(skip_serializing_if = "is_default")]
    pub nodes: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub managers: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub warnings: Vec<String>,
}

/// A manager this node knows of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Peer {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub addr: String,
}
