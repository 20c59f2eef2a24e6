//! The node's agent loop: fetches this node's tasks from the managers, hands them to the
//! agent that runs them on the local Docker Engine, and sends back what it observed.

use shoal_agent::networks::PendingAddresses;
use shoal_agent::{Agent, AgentConfig, TaskReport};
use shoal_manager::Daemon;
use shoal_types::mesh::IngressPorts;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// Pause after a failed call before trying again.
const RETRY: Duration = Duration::from_millis(500);

/// Runs for the life of the daemon: an agent while the node is in a swarm, none otherwise.
pub async fn run(daemon: Arc<Daemon>, ingress: IngressPorts, pending: PendingAddresses) {
    let secrets_dir = loop {
        match secrets_dir(&daemon.config().data_dir) {
            Ok(d) => break d,
            Err(e) => {
                tracing::error!("cannot run tasks that use secrets: {e}");
                tokio::time::sleep(RETRY * 20).await;
            }
        }
    };
    loop {
        let Some(node_id) = daemon.node_id() else {
            tokio::time::sleep(RETRY).await;
            continue;
        };
        let cfg = AgentConfig {
            node_id: node_id.clone(),
            engine_socket: daemon.config().engine_socket.clone(),
            state_dir: daemon.config().data_dir.clone(),
            secrets_dir: secrets_dir.clone(),
            network_driver: daemon.config().network_plugin.clone(),
            pending_addresses: pending.clone(),
        };
        let (agent, statuses) = Agent::start_with_ingress(cfg, ingress.clone());
        let reporter = tokio::spawn(report(daemon.clone(), statuses));
        let mut digest = String::new();
        // Until the node leaves the swarm (or becomes another node).
        while daemon.node_id().as_deref() == Some(node_id.as_str()) {
            match daemon.fetch_assignments(&digest).await {
                Ok(resp) => {
                    if resp.digest != digest {
                        agent.assign(resp.assignments).await;
                        digest = resp.digest;
                    }
                }
                Err(e) => {
                    tracing::debug!("cannot fetch this node's tasks: {e}");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
        // Out of the swarm: its tasks stop, as when Swarm's node leaves.
        tracing::info!("this node left the swarm: its tasks stop");
        agent.assign(Vec::new()).await;
        agent.shutdown().await;
        reporter.abort();
    }
}

/// Secrets live only on tmpfs (/dev/shm when there is one), in a directory of the daemon's
/// own (see `shoal_agent::secrets_root`).
fn secrets_dir(data_dir: &Path) -> Result<PathBuf, shoal_agent::FilesError> {
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() {
        shm
    } else {
        tracing::warn!("no /dev/shm: task secrets are written under /run");
        PathBuf::from("/run")
    };
    shoal_agent::secrets_root(data_dir, &base)
}

/// Sends status changes to the managers in batches, keeping the latest per task until they
/// were taken.
async fn report(daemon: Arc<Daemon>, mut statuses: UnboundedReceiver<TaskReport>) {
    let mut pending: Vec<TaskReport> = Vec::new();
    loop {
        if pending.is_empty() {
            match statuses.recv().await {
                Some(u) => push(&mut pending, u),
                None => return,
            }
        }
        while let Ok(u) = statuses.try_recv() {
            push(&mut pending, u);
        }
        match daemon.report_status(pending.clone()).await {
            Ok(()) => pending.clear(),
            Err(e) => {
                tracing::debug!("cannot report task status: {e}");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

fn push(pending: &mut Vec<TaskReport>, u: TaskReport) {
    // Only the newest status of a task matters; states only move forward anyway.
    pending.retain(|r| r.id != u.id || r.status.state > u.status.state);
    if !pending
        .iter()
        .any(|r| r.id == u.id && r.status.state > u.status.state)
    {
        pending.push(u);
    }
}
