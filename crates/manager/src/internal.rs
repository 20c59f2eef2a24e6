//! Messages between nodes (besides Raft's own): join, heartbeat, leave, forwarded writes.

use crate::ca::RootCa;
use crate::keys::DataKey;
use serde::{Deserialize, Serialize};
use shoal_types::swarm::{NodeAvailability, NodeDescription, NodeRole};

pub const PATH_JOIN: &str = "/internal/join";
pub const PATH_HEARTBEAT: &str = "/internal/heartbeat";
pub const PATH_LEAVE: &str = "/internal/leave";
pub const PATH_PROPOSE: &str = "/internal/propose";

/// A node asks to join. It names no identity of its own: the leader assigns one (Swarm does
/// the same), so a join can never claim, replace or take over another node.
#[derive(Clone, Serialize, Deserialize)]
pub struct JoinReq {
    pub token: String,
    /// `ip:port` at which the joining node's node-to-node server listens.
    pub addr: String,
    pub availability: Option<NodeAvailability>,
    pub description: NodeDescription,
    /// A CSR (PEM) for the key the joining node made: its certificate is issued on it.
    #[serde(default)]
    pub csr: String,
}

impl std::fmt::Debug for JoinReq {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinReq")
            .field("addr", &self.addr)
            .field("availability", &self.availability)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinResp {
    /// The node ID the leader assigned to the joining node.
    pub node_id: String,
    /// The Raft ID the leader assigned to it (a manager's Raft member runs under it).
    pub raft_id: u64,
    pub role: NodeRole,
    pub cluster_id: String,
    /// Only for managers.
    pub keys: Option<KeysMsg>,
    pub managers: Vec<String>,
    /// The node's own secret, presented with its ID on heartbeats and leave.
    pub node_secret: String,
    /// The node's certificate (PEM), issued on its CSR.
    #[serde(default)]
    pub certificate: String,
    /// The cluster's root CA certificate (PEM); its digest is the join token's.
    #[serde(default)]
    pub ca_cert: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeysMsg {
    pub data_key: DataKey,
    pub root_digest: String,
    /// The root CA with its key: every manager can issue node certificates.
    #[serde(default)]
    pub ca: Option<RootCa>,
}

/// A node asks for a new certificate for a new key: when its role changed (promotion,
/// demotion) or its certificate nears its end. Issued for the role the cluster holds for it.
pub const PATH_NODE_CERT: &str = "/internal/node-cert";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeCertReq {
    pub node_id: String,
    pub csr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeCertResp {
    /// The node's certificate, PEM, with what it presents after it (during a root rotation
    /// the new root cross-signed by the current one).
    pub certificate: String,
    pub ca_cert: String,
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
    /// The cluster's root CA certificate (PEM): a node that trusts another takes it (a root
    /// rotation finished).
    #[serde(default)]
    pub root_ca: String,
    /// The root CA certificate (PEM) node certificates must be issued by now: the new root
    /// while a root rotation runs. A node whose certificate another issued renews it at once.
    #[serde(default)]
    pub issuer_ca: String,
    /// How often the node is to report (`Dispatcher.HeartbeatPeriod`), in nanoseconds; 0
    /// when the manager did not say.
    #[serde(default)]
    pub period_nanos: u64,
}

/// A manager that joined (and runs its Raft member under the ID it was given) asks the leader
/// to make it a voter. Only the node itself asks, with its own credential, once it holds the
/// cluster's keys: no Raft call reaches it before it can check the managers' credential.
pub const PATH_RAFT_JOIN: &str = "/internal/raft-join";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RaftJoinReq {
    pub node_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaveReq {
    pub node_id: String,
}

pub const PATH_ASSIGNMENTS: &str = "/internal/assignments";
pub const PATH_TASK_STATUS: &str = "/internal/task-status";
/// The routing mesh's routes (long poll); see `cluster::mesh`.
pub const PATH_MESH_ROUTES: &str = "/internal/mesh-routes";
/// A routing-mesh pipe to one of the node's tasks (HTTP/1.1 upgrade).
pub const PATH_MESH: &str = "/internal/mesh";

/// A node asks for its tasks. The answer waits (up to a long-poll period) until the set
/// differs from the one whose digest the node has.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssignmentsReq {
    pub node_id: String,
    /// The digest of the set the node has; empty on the first call.
    pub digest: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AssignmentsResp {
    pub digest: String,
    pub assignments: Vec<shoal_types::dispatch::Assignment>,
}

/// What a node's agent observed of its tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskStatusReq {
    pub node_id: String,
    pub reports: Vec<shoal_types::dispatch::TaskReport>,
}
