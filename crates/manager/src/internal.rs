//! Messages between nodes (besides Raft's own): join, heartbeat, leave, forwarded writes.

use crate::keys::DataKey;
use serde::{Deserialize, Serialize};
use shoal_types::swarm::{NodeAvailability, NodeDescription, NodeRole};

pub const PATH_JOIN: &str = "/internal/join";
pub const PATH_HEARTBEAT: &str = "/internal/heartbeat";
pub const PATH_LEAVE: &str = "/internal/leave";
pub const PATH_PROPOSE: &str = "/internal/propose";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinReq {
    pub token: String,
    pub node_id: String,
    pub raft_id: u64,
    /// `ip:port` at which the joining node's node-to-node server listens.
    pub addr: String,
    pub availability: Option<NodeAvailability>,
    pub description: NodeDescription,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinResp {
    pub role: NodeRole,
    pub cluster_id: String,
    /// Only for managers.
    pub keys: Option<KeysMsg>,
    pub managers: Vec<String>,
    /// The node's own secret, presented with its ID on heartbeats and leave.
    pub node_secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeysMsg {
    pub data_key: DataKey,
    pub root_digest: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatReq {
    pub node_id: String,
    /// Whether this node runs a Raft member now (so a promoted node can be added).
    pub raft_running: bool,
    pub description: Option<NodeDescription>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatResp {
    /// The role the cluster wants this node in.
    pub role: NodeRole,
    /// Whether this node is a voting Raft member.
    pub voter: bool,
    pub managers: Vec<String>,
    /// Sent to a node that is to become a manager.
    pub keys: Option<KeysMsg>,
    /// The node is no longer part of the cluster.
    pub removed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaveReq {
    pub node_id: String,
}
