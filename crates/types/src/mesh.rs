//! The routing mesh's wire messages (node ↔ manager, node ↔ node): for every port published in
//! `ingress` mode, the running tasks behind it and how to reach them, and the request that
//! opens a pipe to one task on another node. The managers compute the routes from the
//! replicated state; every node listens and forwards from them (`shoal_net::mesh`).
//!
//! Also [`IngressPorts`], the one piece of node-local data the mesh shares with the agent: it
//! lives here, not in `shoal-net`, so that the agent, which writes it, does not depend on the
//! networking crate (axum, hickory, netlink) to record a port. Data only: no I/O.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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

/// The loopback ports this node's running task containers got for their ingress-mode target
/// ports: what the routing mesh connects to. Kept in memory only (Swarm's `PortStatus` holds
/// host-mode ports alone). The agent writes it; the mesh (its listeners and the pipes other
/// nodes open) reads it. Clones share one table.
#[derive(Debug, Clone, Default)]
pub struct IngressPorts(Arc<RwLock<HashMap<String, Vec<TargetBinding>>>>);

/// `(target port, loopback port)` of one container port.
type TargetBinding = (u32, u16);

impl IngressPorts {
    /// The loopback port of `task_id`'s target port, while its container runs.
    pub fn get(&self, task_id: &str, target_port: u32) -> Option<u16> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        map.get(task_id)?
            .iter()
            .find(|(target, _)| *target == target_port)
            .map(|(_, host)| *host)
    }

    /// The agent: `task_id`'s container runs with these `(target, loopback)` bindings (none:
    /// as [`IngressPorts::remove`]).
    pub fn set(&self, task_id: &str, bound: Vec<(u32, u16)>) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        if bound.is_empty() {
            map.remove(task_id);
        } else {
            map.insert(task_id.to_string(), bound);
        }
    }

    /// The agent: `task_id`'s container no longer runs.
    pub fn remove(&self, task_id: &str) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(task_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_port_is_known_while_its_container_runs_and_clones_share_it() {
        let ports = IngressPorts::default();
        let mesh = ports.clone();
        ports.set("t1", vec![(80, 32768), (443, 32769)]);
        assert_eq!(mesh.get("t1", 80), Some(32768));
        assert_eq!(mesh.get("t1", 443), Some(32769));
        assert_eq!(mesh.get("t1", 8080), None, "not a target port of the task");
        assert_eq!(mesh.get("t2", 80), None, "another task");

        ports.set("t1", Vec::new());
        assert_eq!(mesh.get("t1", 80), None, "no bindings left");
        ports.set("t1", vec![(80, 32770)]);
        ports.remove("t1");
        assert_eq!(mesh.get("t1", 80), None, "the container stopped");
    }
}
