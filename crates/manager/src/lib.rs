//! shoal's manager: the node's role in a cluster (init, join, leave, promotion, heartbeats),
//! the control API that validates and proposes every change, and the keys that keep secret
//! data sealed at rest.

pub mod ca;
pub mod ca_config;
pub mod cluster;
pub mod controlapi;
pub mod dependencies;
pub mod describe;
pub mod error;
pub mod identity;
pub mod internal;
pub mod keyformat;
pub mod keys;
pub mod network_spec;
pub mod orchestrator;
pub mod placement;
pub mod scheduler;
pub mod tokens;
pub mod unsupported;

pub use cluster::{BindFuture, Binder, Caller, Daemon, DaemonConfig, Manager, Role};
pub use error::{ApiError, Result};
