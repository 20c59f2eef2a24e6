//! shoal's Raft: openraft with redb storage, the node-to-node transport, and the election
//! driver.
//!
//! This crate owns *how a command becomes committed and applied on every manager*: the log
//! (durable in redb, batched fsync), the state machine (the in-memory [`shoal_store::State`],
//! persisted through snapshots), and the HTTP transport between managers. It does not decide
//! what a command means (that is `shoal-store`) nor who may send one (that is the manager).

// openraft's trait signatures return its own (large) error types; boxing them is not ours
// to choose.
#![allow(clippy::result_large_err)]

mod batch;
mod chunks;
mod disk;
mod election;
pub mod journal;
pub mod limits;
mod log_store;
mod network;
mod node;
mod recovery;
mod replica;
mod state_machine;
mod timing;
pub mod tls;
pub mod transport;

pub use batch::{Batch, WriteError};
pub use disk::{Disk, Sealer};
pub use election::PreVoteResp;
pub use network::{AppendReq, AppendResp, SnapshotReq, SnapshotResp, VoteReq, VoteResp};
pub use node::{open_database, RaftNode, RaftOpenError};
pub use recovery::{force_new_cluster, ForcedCluster};
/// The store a Raft member keeps its log, vote and snapshots in.
pub use redb::Database;
pub use replica::Replica;
pub use timing::Timing;

pub use openraft::BasicNode;
use shoal_store::Response;
use std::io::Cursor;

openraft::declare_raft_types!(
    /// openraft's view of shoal: commands in, results out, node IDs are u64.
    pub TypeConfig:
        D = Batch,
        R = Vec<Response>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type NodeId = u64;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type ClientWriteError = openraft::error::ClientWriteError<NodeId, BasicNode>;
pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;
