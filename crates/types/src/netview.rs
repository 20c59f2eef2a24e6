//! The cluster's overlay networks as a node needs them (node ↔ manager wire messages): for each
//! network, its VXLAN ID and addressing, every endpoint on it (tasks and attached containers,
//! with the node whose VXLAN tunnel reaches them) and the names services answer to. The
//! managers compute it from the replicated state; a node programs its data plane and its name
//! servers from it. Data only.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// A node asks for the network view; the answer waits until it differs from `digest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetViewReq {
    pub node_id: String,
    /// The digest of the view the node has; empty on the first call.
    pub digest: String,
}

/// Every overlay network of the cluster (not `ingress`), and the digest of this view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetView {
    pub digest: String,
    /// The underlay address of the node that asked (its VXLAN tunnels' source).
    #[serde(default)]
    pub node_addr: Option<Ipv4Addr>,
    /// The cluster's data path port: VXLAN's UDP port on every node.
    #[serde(default)]
    pub data_path_port: u16,
    pub networks: Vec<NetInfo>,
}

/// One overlay network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetInfo {
    pub id: String,
    pub name: String,
    /// The VXLAN network identifier: one per network, so networks are isolated.
    pub vni: u32,
    /// The network's subnet (`10.0.1.0/24`).
    pub subnet: String,
    /// Where containers may get addresses when a user-given `--ip-range` narrows the subnet.
    #[serde(default)]
    pub ip_range: String,
    pub gateway: Ipv4Addr,
    /// MTU of the containers' interfaces (underlay MTU minus the VXLAN overhead by default).
    pub mtu: u32,
    pub internal: bool,
    pub attachable: bool,
    /// The network's labels, copied onto the engine's local network.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Every endpoint holding an address on the network.
    pub endpoints: Vec<NetEndpoint>,
    /// The services attached to the network.
    pub services: Vec<NetService>,
}

/// An address held on a network by a task or an attached container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetEndpoint {
    pub addr: Ipv4Addr,
    /// The node the endpoint lives on, and that node's underlay address (VXLAN tunnel end).
    pub node_id: String,
    pub node_addr: Ipv4Addr,
    /// The task (empty for a container attached with `docker run --network`).
    #[serde(default)]
    pub task_id: String,
    #[serde(default)]
    pub service_id: String,
    /// Names this endpoint answers to by itself (a task's container name).
    #[serde(default)]
    pub names: Vec<String>,
    /// Serving: the task runs (and is healthy), is meant to run, and its node is up. Only
    /// serving endpoints are behind a service's name and VIP.
    pub serving: bool,
}

/// A service attached to a network, and what its names resolve to there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetService {
    pub id: String,
    pub name: String,
    /// Extra names on this network (Compose `aliases`, `--network name=N,alias=A`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The virtual IP on this network (endpoint mode `vip`); none in `dnsrr` mode.
    pub vip: Option<Ipv4Addr>,
}

/// A container on `node_id`'s engine asks for an address on `network_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetAttachReq {
    pub node_id: String,
    pub network_id: String,
    /// A given address (`docker run --ip`), or none for the next free one.
    #[serde(default)]
    pub addr: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetAttachResp {
    /// The address in CIDR form.
    pub addr: String,
}

/// `node_id`'s engine released `addr` on `network_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetDetachReq {
    pub node_id: String,
    pub network_id: String,
    pub addr: String,
}

impl NetInfo {
    /// The addresses of the serving endpoints of `service_id`, in a stable order.
    pub fn backends(&self, service_id: &str) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = self
            .endpoints
            .iter()
            .filter(|e| e.serving && e.service_id == service_id)
            .map(|e| e.addr)
            .collect();
        v.sort();
        v
    }
}

/// The MAC address of an endpoint, derived from its IPv4 address as Docker's overlay does
/// (`02:42:` + the four address bytes): every node derives the same one, so no node needs to
/// learn it.
pub fn mac_for(addr: Ipv4Addr) -> String {
    let o = addr.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_mac_is_derived_from_its_address() {
        assert_eq!(mac_for(Ipv4Addr::new(10, 0, 1, 5)), "02:42:0a:00:01:05");
    }
}
