//! shoal's object model on the wire: the Docker Engine API's swarm types (moby
//! `api/types/swarm`, `api/types/network`, `api/types/system`) as serde types whose JSON is
//! what dockerd sends and accepts what the `docker` CLI sends, plus object IDs, the `filters`
//! query parameter and the name rules, and shoal's own node ↔ manager messages (`netview`,
//! `mesh`). It holds data and pure rules only: no I/O, no state (beyond the table of task
//! ports the agent shares with the routing mesh, `mesh::IngressPorts`), no defaults applied
//! behind the caller's back.

#![forbid(unsafe_code)]

pub mod bytes_b64;
pub mod depends;
pub mod dispatch;
pub mod engine_call;
pub mod events;
pub mod filters;
pub mod go_json;
pub mod ids;
pub mod mesh;
pub mod names;
pub mod netview;
pub mod network;
pub mod registry;
pub mod stack;
pub mod swarm;
pub mod system;
pub mod wire;
