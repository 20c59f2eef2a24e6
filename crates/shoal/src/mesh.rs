//! The routing mesh of this node (`shoal_net::mesh`), wired to the daemon: its routes come
//! from the managers (`cluster::mesh`, long poll) and its pipes to other nodes' tasks go
//! through the node-to-node transport.

use shoal_manager::Daemon;
use shoal_net::mesh::MeshCluster;
use shoal_raft::transport::Pipe;
use shoal_types::mesh::{IngressPorts, MeshBackend, MeshRoutesResp};
use std::net::IpAddr;
use std::sync::Arc;

/// The managers and the other nodes, as the mesh asks them for routes and pipes.
pub struct Managers(pub Arc<Daemon>);

impl MeshCluster for Managers {
    type Pipe = Pipe;

    fn node_id(&self) -> Option<String> {
        self.0.node_id()
    }

    async fn fetch_routes(&self, digest: &str) -> Result<MeshRoutesResp, String> {
        self.0
            .fetch_mesh_routes(digest)
            .await
            .map_err(|e| e.to_string())
    }

    async fn open_pipe(&self, backend: &MeshBackend, target_port: u32) -> Result<Pipe, String> {
        self.0
            .open_mesh_pipe(backend, target_port)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Runs for the life of the daemon: listens on `listen_ip` on the published ingress ports of
/// the swarm the node is in, none while it is in none.
pub async fn run(daemon: Arc<Daemon>, ingress: IngressPorts, listen_ip: IpAddr) {
    shoal_net::mesh::run(Arc::new(Managers(daemon)), ingress, listen_ip).await;
}
