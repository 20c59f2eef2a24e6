//! The routing mesh's view of the cluster: for every port published in `ingress` mode, the
//! running tasks that can serve it and where they run, handed to every node (long poll with a
//! digest, like the dispatcher's), and the node-to-node pipe that carries one connection to a
//! task on another node.
//!
//! The listening and the byte copying are the node's (`shoal::mesh`); nothing here opens a
//! listener or talks to an engine.

use super::*;
use crate::internal::PATH_MESH_ROUTES;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shoal_raft::transport::Pipe;
use shoal_store::Kind;
use shoal_types::swarm::{PortConfigProtocol, PublishMode, TaskState};

/// How long a node may take to accept a pipe to one of its tasks.
const PIPE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a routes call waits for a change before it answers with the same routes.
fn long_poll(timing: &Timing) -> Duration {
    (timing.node_heartbeat * 2).min(Duration::from_secs(10))
}

/// A node asks for the mesh's routes; the answer waits until they differ from `digest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MeshRoutesReq {
    pub node_id: String,
    /// The digest of the routes the node has; empty on the first call.
    pub digest: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MeshRoutesResp {
    pub digest: String,
    pub ports: Vec<MeshPort>,
}

/// One published ingress port of a service and the tasks behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshPort {
    pub service_id: String,
    pub service_name: String,
    /// `tcp` (the only protocol routed for now).
    pub protocol: String,
    pub published_port: u32,
    pub target_port: u32,
    /// Running tasks, by task ID.
    pub backends: Vec<MeshBackend>,
}

/// A running task of the service and how to reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshBackend {
    pub task_id: String,
    pub node_id: String,
    /// The node-to-node address of the task's node.
    pub addr: String,
    /// What to present to that node to open a pipe (`keys::mesh_credential`): it opens pipes
    /// to that node's tasks and nothing else.
    pub credential: String,
}

/// `/internal/mesh`: open a pipe to `target_port` of the task `task_id`, which runs on
/// `node_id` (another node refuses).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MeshPipeReq {
    pub node_id: String,
    pub task_id: String,
    pub target_port: u32,
}

impl Manager {
    /// The routes of every published ingress (TCP) port, and their digest.
    pub(super) fn mesh_routes(&self) -> MeshRoutesResp {
        let state = self.replica().read();
        let mut services: Vec<&shoal_types::swarm::Service> = state.services.iter().collect();
        services.sort_by(|a, b| a.id.cmp(&b.id));
        let mut ports = Vec::new();
        for s in services {
            let published: Vec<_> = s
                .endpoint
                .ports
                .iter()
                .filter(|p| {
                    p.publish_mode == PublishMode::Ingress
                        && p.protocol == PortConfigProtocol::Tcp
                        && p.published_port != 0
                        && p.target_port != 0
                })
                .collect();
            if published.is_empty() {
                continue;
            }
            let mut tasks: Vec<&shoal_types::swarm::Task> = state
                .tasks
                .iter()
                .filter(|t| {
                    t.service_id == s.id
                        && t.status.state == TaskState::Running
                        && t.desired_state <= TaskState::Running
                        && state
                            .nodes
                            .get(&t.node_id)
                            .is_some_and(|n| n.status.state != NodeState::Down)
                })
                .collect();
            tasks.sort_by(|a, b| a.id.cmp(&b.id));
            let backends: Vec<MeshBackend> = tasks
                .into_iter()
                .filter_map(|t| {
                    let addr = state.members.get(&t.node_id)?.addr.clone();
                    Some(MeshBackend {
                        task_id: t.id.clone(),
                        node_id: t.node_id.clone(),
                        addr,
                        credential: self.keys.data_key.node_mesh_credential(&t.node_id),
                    })
                })
                .collect();
            for p in published {
                ports.push(MeshPort {
                    service_id: s.id.clone(),
                    service_name: s.spec.name.clone(),
                    protocol: p.protocol.as_str().to_string(),
                    published_port: p.published_port,
                    target_port: p.target_port,
                    backends: backends.clone(),
                });
            }
        }
        let mut hasher = Sha256::new();
        hasher.update(serde_json::to_vec(&ports).unwrap_or_default());
        MeshRoutesResp {
            digest: hex::encode(hasher.finalize()),
            ports,
        }
    }

    /// Answers once the routes differ from those with the request's digest, or after `wait`.
    pub(super) async fn mesh_routes_changed(
        &self,
        req: &MeshRoutesReq,
        wait: Duration,
    ) -> MeshRoutesResp {
        let deadline = tokio::time::Instant::now() + wait;
        let mut events = self.replica().subscribe();
        loop {
            let resp = self.mesh_routes();
            if resp.digest != req.digest {
                return resp;
            }
            loop {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Err(_) => return resp,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return resp,
                    Ok(Err(_)) => break,
                    Ok(Ok(e)) => {
                        if matches!(e.kind, Kind::Task | Kind::Service | Kind::Node) {
                            break;
                        }
                    }
                }
            }
        }
    }
}

impl Daemon {
    /// `/internal/mesh-routes` from a node.
    pub async fn internal_mesh_routes(&self, req: MeshRoutesReq) -> Result<MeshRoutesResp> {
        let m = self.manager()?;
        Ok(m.mesh_routes_changed(&req, long_poll(&self.cfg.timing))
            .await)
    }

    /// The node's side: the mesh's routes, once they differ from those with `digest` (or
    /// after a long-poll period).
    pub async fn fetch_mesh_routes(&self, digest: &str) -> Result<MeshRoutesResp> {
        let wait = long_poll(&self.cfg.timing);
        match self.role() {
            Role::Manager(m) => {
                let req = MeshRoutesReq {
                    node_id: m.identity.node_id.clone(),
                    digest: digest.to_string(),
                };
                Ok(m.mesh_routes_changed(&req, wait).await)
            }
            Role::Worker(w) => {
                let identity = w.identity.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let req = MeshRoutesReq {
                    node_id: identity.node_id.clone(),
                    digest: digest.to_string(),
                };
                let mut last = ApiError::Unavailable("no manager is known to this node".into());
                for addr in &identity.managers {
                    match self
                        .transport
                        .post::<_, MeshRoutesResp>(
                            addr,
                            PATH_MESH_ROUTES,
                            &req,
                            wait + CALL_TIMEOUT,
                        )
                        .await
                    {
                        Ok(r) => return Ok(r),
                        Err(e) => last = from_transport(e),
                    }
                }
                Err(last)
            }
            Role::Inactive => Err(ApiError::Unavailable(NOT_IN_SWARM.into())),
        }
    }

    /// Opens a pipe to `target_port` of a task that runs on another node.
    pub async fn open_mesh_pipe(&self, backend: &MeshBackend, target_port: u32) -> Result<Pipe> {
        let req = MeshPipeReq {
            node_id: backend.node_id.clone(),
            task_id: backend.task_id.clone(),
            target_port,
        };
        self.transport
            .open_pipe(
                &backend.addr,
                crate::internal::PATH_MESH,
                &req,
                Some(&backend.credential),
                PIPE_TIMEOUT,
            )
            .await
            .map_err(from_transport)
    }
}
