//! Networking on one node: what makes a shoal overlay network real on the node's Docker Engine.
//!
//! - `plugin`: the libnetwork remote network driver and IPAM driver protocols (HTTP + JSON on
//!   a unix socket in the engine's plugin folder), turned into calls on a [`plugin::Driver`].
//! - `dns`: the service name server tasks query, answering from the cluster's network view.
//! - `dataplane`: the kernel side of an overlay network on this node: its namespace, bridge,
//!   VXLAN port, endpoints' veths, peers, VIP load balancing and DNS redirection.
//! - `mesh`: the routing mesh: listens on the ports published in `ingress` mode and forwards
//!   each connection to a task of the service, on this node or through a pipe to another.
//!
//! Nothing here talks to the managers or writes cluster state: the daemon hands this crate the
//! view it learned from them, and answers the rest through small traits (`overlay::Cluster`,
//! `mesh::MeshCluster`).

pub mod dataplane;
pub mod dns;
pub mod mesh;
pub mod overlay;
pub mod plugin;
