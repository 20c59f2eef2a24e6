//! The node side of running tasks. The managers hand this node its complete set of assigned
//! tasks ([`Agent::assign`]); the agent makes the local Docker Engine run them as containers and
//! reports every task's observed state ([`TaskReport`]). It owns observed state only: it never
//! changes a task's desired state, never restarts a container itself (the orchestrator replaces
//! failed tasks with new ones) and never uses the engine's swarm mode.
//!
//! - [`worker`]: reconciles the assigned set with the running controllers and the engine's
//!   containers (adoption, removal of containers no longer assigned).
//! - [`controller`]: one per task, drives its state forward, ASSIGNED → … → RUNNING → COMPLETE |
//!   FAILED | SHUTDOWN | REJECTED, as SwarmKit's task controller does.
//! - [`container`]: what container a task becomes (name, labels, create body).
//! - [`files`]: the task's config and secret files.
//! - [`tmpfs`]: the node's secrets tmpfs, mounted while tasks have secrets.
//! - `health`: when a container with a health check counts as running, or as failed.
//! - [`runtime`]: what the agent needs of a container runtime, as a trait ([`Runtime`]).
//! - [`engine`]: the Docker Engine API client, the runtime of every node.
//! - [`logs`]: what a task's container printed, for `docker service logs`.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;

use shoal_types::mesh::IngressPorts;
use tokio::sync::mpsc;

pub mod container;
mod controller;
pub mod engine;
pub mod files;
mod health;
pub mod logs;
pub mod networks;
pub mod runtime;
pub mod tmpfs;
mod worker;

pub use engine::{Engine, EngineError};
pub use files::{secrets_root, FilesError};
pub use logs::{container_logs, LogLine, LogLines, LogOptions, LogStream};
pub use runtime::Runtime;
/// The wire messages of task dispatch, defined once in `shoal_types`: a task given to this
/// node, its config and secret data, and a task's observed status as the agent reports it.
pub use shoal_types::dispatch::{Assignment, FileData, TaskReport};

/// Where the agent runs and keeps its files.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub node_id: String,
    /// The engine's unix socket, usually `/var/run/docker.sock`.
    pub engine_socket: PathBuf,
    /// The node's data directory; config files go under `tasks/<task>/configs/`.
    pub state_dir: PathBuf,
    /// The daemon's own directory on tmpfs for secret files (see [`files::secrets_root`]).
    pub secrets_dir: PathBuf,
    /// The name the node's network plugin is served under (`shoal`).
    pub network_driver: String,
    /// Shared with the node's network plugin: the addresses of containers being started.
    pub pending_addresses: networks::PendingAddresses,
}

/// The running agent of one node.
pub struct Agent {
    worker: Arc<worker::Worker>,
}

impl Agent {
    /// Starts the agent; statuses come out of the receiver. Updates for one task come in
    /// order; a receiver that is dropped only loses them.
    pub fn start(cfg: AgentConfig) -> (Agent, mpsc::UnboundedReceiver<TaskReport>) {
        Self::start_with_ingress(cfg, IngressPorts::default())
    }

    /// Like [`Agent::start`], recording the loopback ports of ingress-mode ports in `ingress`.
    pub fn start_with_ingress(
        cfg: AgentConfig,
        ingress: IngressPorts,
    ) -> (Agent, mpsc::UnboundedReceiver<TaskReport>) {
        let engine = Engine::new(cfg.engine_socket.clone())
            .with_network_driver(cfg.network_driver.clone())
            .with_pending_addresses(cfg.pending_addresses.clone());
        Self::start_on(Arc::new(engine), cfg, ingress)
    }

    /// Starts the agent on `runtime` instead of the engine at `cfg.engine_socket`.
    pub fn start_on(
        runtime: Arc<dyn Runtime>,
        cfg: AgentConfig,
        ingress: IngressPorts,
    ) -> (Agent, mpsc::UnboundedReceiver<TaskReport>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = worker::Worker::start(cfg, runtime, tx, ingress);
        (Agent { worker }, rx)
    }

    /// The complete set of tasks assigned to this node, replacing the previous set. Tasks that
    /// left the set have their containers stopped and removed. Idempotent: the same set twice
    /// changes nothing.
    pub async fn assign(&self, set: Vec<Assignment>) {
        self.worker.assign(set).await;
    }

    /// Stops watching and reporting. Containers keep running: an agent started later adopts
    /// them.
    pub async fn shutdown(&self) {
        self.worker.shutdown().await;
    }
}
