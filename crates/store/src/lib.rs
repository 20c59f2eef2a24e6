//! The cluster state every manager holds: in-memory tables of nodes, services, tasks,
//! networks, configs and secrets, and the one deterministic function that changes them.
//!
//! This crate owns *what a committed command does*. Every change to cluster state is a
//! [`Command`] that went through Raft; [`State::apply`] runs it on every manager at the same
//! log index and must give the same result everywhere, so it reads no clock, no randomness and
//! no environment: timestamps and IDs are chosen by the proposer and travel inside the
//! command. Checks that depend on the current state (name clashes, version checks, objects in
//! use) live here too, because only here are they free of races.
//!
//! It does no I/O and knows nothing of Raft or HTTP.

mod changes;
mod cluster;
mod command;
mod configs;
mod error;
mod networks;
mod nodes;
mod recent;
mod services;
pub mod stacks;
mod state;
mod table;
mod tasks;

pub use changes::Observer;
pub use command::{
    Applied, Attachment, AuthChange, Cluster, Command, Member, Request, Response, RootRotation,
    RotationChange, SealedRootCa, TaskUpdate,
};
pub use error::{Kind, StoreError};
pub use networks::{addr_of, network_targets, Cidr, Pool, VNI_OPTION};
pub use recent::{RecentRequests, REMEMBER_AT_MOST, REMEMBER_FOR};
pub use services::ServiceAuth;
pub use state::{Event, EventAction, State};
pub use table::{Object, Table};
