//! moby's `api/types/swarm`: the cluster objects (nodes, services, tasks, networks, configs,
//! secrets, the swarm itself) exactly as the Docker Engine API puts them on the wire.
//!
//! Go embeds `Meta` (`Version`, `CreatedAt`, `UpdatedAt`) in every object and `Annotations`
//! (`Name`, `Labels`) in every spec; without `#[serde(flatten)]` those fields are written out
//! in each type. These types carry data only: validation lives in `crate::names` and in the
//! manager's control API, defaults are applied by the manager.

mod cluster;
mod common;
mod config;
mod container;
mod network;
mod node;
mod secret;
mod service;
mod task;

pub use cluster::*;
pub use common::*;
pub use config::*;
pub use container::*;
pub use network::*;
pub use node::*;
pub use secret::*;
pub use service::*;
pub use task::*;

#[cfg(test)]
mod tests;
