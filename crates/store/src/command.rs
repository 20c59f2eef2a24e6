//! The commands that travel through Raft, and what applying one returns.

use crate::error::StoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shoal_types::dispatch::TaskReport;
use shoal_types::swarm::{
    ClusterInfo, Config, ConfigSpec, JoinTokens, ManagerStatus, Network, Node, NodeDescription,
    NodeSpec, NodeStatus, Secret, SecretSpec, Service, ServiceSpec, Spec, Task, TaskState,
    TaskStatus, UpdateStatus,
};

/// Which registry credentials a service update leaves the service with: Docker's
/// `registryAuthFrom` when the request carries none, else the new ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum AuthChange {
    /// The current spec's (`registryAuthFrom=spec`, the default).
    #[default]
    Keep,
    /// The previous spec's (`registryAuthFrom=previous-spec`).
    FromPrevious,
    /// New credentials, sealed with the data key.
    Set(#[serde(with = "shoal_types::bytes_b64")] Vec<u8>),
}

impl AuthChange {
    pub fn is_keep(&self) -> bool {
        *self == AuthChange::Keep
    }
}

/// The cluster object: Docker's `ClusterInfo` and the join tokens that admit new nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub info: ClusterInfo,
    pub join_tokens: JoinTokens,
    /// With autolock, the managers' unlock key sealed with the cluster's data key (empty
    /// without autolock). Never shown by `GET /swarm`; `GET /swarm/unlockkey` opens it.
    #[serde(
        default,
        with = "shoal_types::bytes_b64",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub unlock_key: Vec<u8>,
    /// The root CA's key, once a root rotation made it (the first root's key is kept only in
    /// the managers' `keys.json`): sealed with the data key, as every manager can open it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_ca: Option<SealedRootCa>,
    /// The root rotation under way, if any (`ClusterInfo.RootRotationInProgress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_rotation: Option<RootRotation>,
}

/// A root CA certificate (PEM) with its key (the CA as JSON, sealed with the data key:
/// never in clear in the state).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SealedRootCa {
    pub cert_pem: String,
    #[serde(with = "shoal_types::bytes_b64")]
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedRootCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedRootCa(..)")
    }
}

/// A root rotation (`docker swarm ca --rotate`): node certificates are issued by the new root
/// and presented with `cross_signed` (the new root's certificate signed by the current root),
/// so that nodes which still trust only the current root take them; once every node holds one,
/// the new root becomes the cluster's (`Command::FinishRootRotation`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RootRotation {
    pub new_root: SealedRootCa,
    pub cross_signed: String,
}

/// What a swarm update does to the root rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RotationChange {
    /// Starts a rotation to this root (one under way is replaced).
    Start(RootRotation),
    /// Stops the rotation under way: the current root stays (Swarm: rotating to the current root).
    Abort,
}

/// How the managers reach a node: its Raft member ID (workers have one too, for when they
/// are promoted) and the address of its node-to-node server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub raft_id: u64,
    pub addr: String,
}

/// One Raft log payload: a command, the moment its proposer chose for it, and the ID that
/// makes a retried proposal apply once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub at: DateTime<Utc>,
    pub cmd: Command,
    /// Chosen once by the proposer and kept when it retries (after a lost answer, a timeout,
    /// a leader change): a request whose ID was applied recently is answered as it was then
    /// and changes nothing (see [`crate::RecentRequests`]). Empty: no such protection
    /// (entries written before request IDs).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
}

impl Request {
    /// A new request with a fresh ID.
    pub fn now(cmd: Command) -> Self {
        Self {
            at: Utc::now(),
            cmd,
            id: shoal_types::ids::new_id(),
        }
    }
}

/// Every change the cluster state can go through. IDs, timestamps and generated secrets are
/// chosen by the proposer so that applying is deterministic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op")]
pub enum Command {
    /// Creates the cluster with its first manager and the ingress network.
    InitCluster {
        cluster: Box<Cluster>,
        node: Box<Node>,
        member: Member,
        ingress: Box<Network>,
    },
    /// Admits a node that presented a valid join token.
    AddNode {
        node: Box<Node>,
        member: Member,
    },
    UpdateNodeSpec {
        id: String,
        version: u64,
        spec: NodeSpec,
    },
    /// What the leader observes of a node: heartbeats, reachability, its description.
    SetNodeStatus {
        id: String,
        status: NodeStatus,
        /// The node's new manager status; `None` when it is not a Raft member (any more).
        manager_status: Option<ManagerStatus>,
        description: Option<Box<NodeDescription>>,
    },
    RemoveNode {
        id: String,
        force: bool,
    },
    /// `swarm init --force-new-cluster` on the manager `node_id`: it is the only Raft member
    /// now. Every other manager is out of the Raft group: it has no manager status any more,
    /// is a worker (were it to come back, it becomes one instead of a second cluster's
    /// member), and is down until it reports in.
    ForceNewCluster {
        node_id: String,
    },
    CreateService {
        service: Box<Service>,
        /// The service's registry credentials (`--with-registry-auth`), sealed with the data
        /// key by the proposer; empty: none.
        #[serde(
            default,
            with = "shoal_types::bytes_b64",
            skip_serializing_if = "Vec::is_empty"
        )]
        registry_auth: Vec<u8>,
    },
    UpdateService {
        id: String,
        version: u64,
        spec: Box<ServiceSpec>,
        /// The registry credentials the service has after this update (ignored by a
        /// rollback, which brings back the previous spec's with the previous spec).
        #[serde(default, skip_serializing_if = "AuthChange::is_keep")]
        registry_auth: AuthChange,
        /// `rollback=previous`: the previous spec comes back and `spec` is ignored.
        rollback: bool,
        /// Why the orchestrator rolls back (failure action `rollback`); `None` when a user
        /// asked for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rollback_reason: Option<String>,
    },
    RemoveService {
        id: String,
    },
    CreateConfig {
        config: Box<Config>,
    },
    UpdateConfig {
        id: String,
        version: u64,
        spec: Box<ConfigSpec>,
    },
    RemoveConfig {
        id: String,
    },
    /// The secret's data is already sealed by the proposer.
    CreateSecret {
        secret: Box<Secret>,
    },
    UpdateSecret {
        id: String,
        version: u64,
        spec: Box<SecretSpec>,
    },
    RemoveSecret {
        id: String,
    },
    CreateNetwork {
        network: Box<Network>,
    },
    RemoveNetwork {
        id: String,
    },
    UpdateCluster {
        version: u64,
        spec: Box<Spec>,
        join_tokens: JoinTokens,
        /// The sealed unlock key the cluster has after this update (see `Cluster`).
        #[serde(
            default,
            with = "shoal_types::bytes_b64",
            skip_serializing_if = "Vec::is_empty"
        )]
        unlock_key: Vec<u8>,
        /// A root rotation started or aborted with this update; none: as it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        root_rotation: Option<RotationChange>,
    },
    /// The leader ends the root rotation to `new_root` (every node holds a certificate it
    /// issued): it becomes the cluster's root, shown as `tls_info`, with new join tokens (of
    /// its digest). Refused when the rotation under way is to another root by then.
    FinishRootRotation {
        new_root: String,
        tls_info: shoal_types::swarm::TLSInfo,
        join_tokens: JoinTokens,
    },
    /// New tasks from the orchestrators: new slots, replacements, global tasks on new nodes.
    /// A task of a service that is gone by the time this applies is dropped.
    CreateTasks {
        tasks: Vec<Task>,
    },
    /// The managers' side of tasks (desired state, node assignment, scheduling status). Each
    /// update applies on its own: tasks that are gone are skipped, states never move back.
    UpdateTasks {
        updates: Vec<TaskUpdate>,
    },
    /// What a node's agent observed of its tasks. Only tasks assigned to that node change, and
    /// only forward.
    ReportTaskStatus {
        node_id: String,
        reports: Vec<TaskReport>,
    },
    /// Forgets tasks: history beyond the retention limit, tasks of removed services.
    RemoveTasks {
        ids: Vec<String>,
    },
    /// The progress of a service's rolling update (or rollback).
    SetServiceUpdateStatus {
        id: String,
        update_status: Option<UpdateStatus>,
    },
    /// A node's engine attaches a container to an attachable network (`docker run
    /// --network`): hands out an address (`addr` asks for a given one); the applied ID is
    /// the address in CIDR form.
    AttachContainer {
        network_id: String,
        node_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        addr: Option<String>,
    },
    /// The node released a container's address.
    DetachContainer {
        network_id: String,
        node_id: String,
        addr: String,
    },
    /// shoal's stack API: a whole stack, every object it owns created, updated or removed as
    /// it says, or nothing changed (see [`crate::stacks`]).
    DeployStack {
        deploy: Box<crate::stacks::StackDeploy>,
    },
    /// Every object of a stack (labelled with its namespace, so also stacks the docker CLI
    /// made) and its stored versions go, or nothing does.
    RemoveStack {
        name: String,
    },
    /// Commits nothing; used to confirm leadership and in benchmarks.
    Noop,
}

/// An address a node's engine holds on an attachable network for a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub node_id: String,
}

/// One change the managers make to a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskUpdate {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_state: Option<TaskState>,
    /// Set once, by the scheduler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskStatus>,
}

/// What a successful command produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The log index the command was applied at: the new `Version.Index` of what it wrote.
    pub index: u64,
    /// The ID of the object it created, if any.
    pub id: Option<String>,
}

pub type Response = Result<Applied, StoreError>;
