//! The node's Docker network plugin: libnetwork's remote network driver protocol and its IPAM
//! driver protocol, served together on one unix socket in the engine's plugin folder
//! (`/run/docker/plugins/NAME.sock`), each call handed to a [`Driver`].
//!
//! This module owns the wire: the socket, the HTTP routes, the JSON bodies ([`api`]) and how an
//! error reaches the engine. It answers the handshake itself (`Plugin.Activate`, both
//! `GetCapabilities`, `GetDefaultAddressSpaces`) from a [`PluginConfig`]. It must not do the
//! work: bridges, VXLAN, veth pairs and addresses belong to the [`Driver`] the node daemon
//! implements, which asks the managers for what it needs.
//!
//! What the 20.10 engine expects, learned from its vendored libnetwork and checked against a
//! real dockerd (see the engine test):
//! - it sends `POST /Method.Name` with an `Accept: application/vnd.docker.plugins.v1.2+json`
//!   header and no `Content-Type`, so bodies are read as JSON whatever their type says;
//! - a network driver whose `Scope` is `global` cannot create networks on an engine outside
//!   swarm mode: shoal says `local` scope with `global` connectivity;
//! - an error is an HTTP status other than 200 with `{"Err": "..."}`; the person sees
//!   `Error response from daemon: NetworkDriver.CreateNetwork: <Err>` (or
//!   `IpamDriver.RequestPool: <Err>`). 404 means "not implemented", which the engine forgives
//!   for the optional calls, so no real failure may use it.
//!
//! The calls it makes (20.10, measured; `EndpointOperInfo` may come 0-2 times after `Join`):
//! - first use of the plugin name: `Plugin.Activate`, `NetworkDriver.GetCapabilities`,
//!   `IpamDriver.GetCapabilities`, `IpamDriver.GetDefaultAddressSpaces`;
//! - `network create`: `RequestPool`, `RequestAddress` for the gateway (`--gateway` as its
//!   `Address`), one `RequestAddress` per `--aux-address`, `CreateNetwork`. If a step fails
//!   the engine gives back what it took. `--label`s never reach the plugin;
//! - a container starting: `RequestAddress` (`--ip` as its `Address`), `CreateEndpoint` (the
//!   address in `Interface`, no MAC), `Join` (`SandboxKey` a netns path such as
//!   `/var/run/docker/netns/6b985864fafe`, published ports in `Options`);
//! - stopping it, disconnecting it, or before a restart: `Leave`, `DeleteEndpoint`,
//!   `ReleaseAddress`; removing a stopped container: nothing;
//! - `network rm`: `ReleaseAddress` (gateway, then aux addresses), `ReleasePool`,
//!   `DeleteNetwork`;
//! - never seen: `AllocateNetwork`/`FreeNetwork` (swarm-mode managers only),
//!   `DiscoverNew`/`DiscoverDelete` (legacy cluster store only), and
//!   `Program`/`RevokeExternalConnectivity`, which go to the network that gives the container
//!   its way out: `docker_gwbridge` while our `Join` names no gateway.
//!
//! Without request replay the engine does not ask for its pools again when the plugin
//! restarts: it goes on naming the `PoolID`s it was given, so those must outlive the process.

use std::future::Future;

pub mod api;
mod server;

pub use api::*;
pub use server::{bind, router, serve, serve_with, socket_path, PLUGIN_DIR};

/// Why a plugin call failed. The message reaches the person at the `docker` command line, so
/// it says what failed and on what.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The engine sent a body this call cannot read.
    #[error("{call}: the request body is not what this call takes: {reason}")]
    BadRequest { call: String, reason: String },
    /// This driver does not take part in the call; the engine treats it as optional where the
    /// protocol allows.
    #[error("{call} is not implemented by the shoal network plugin")]
    NotImplemented { call: String },
    /// The engine named a network this node's shoal does not know.
    #[error("network `{network_id}` is not a shoal network known to this node")]
    UnknownNetwork { network_id: String },
    /// The engine named an endpoint this node's shoal does not know.
    #[error("endpoint `{endpoint_id}` of network `{network_id}` is not known to this node")]
    UnknownEndpoint {
        network_id: String,
        endpoint_id: String,
    },
    /// The engine named an address pool shoal never handed out.
    #[error("address pool `{pool_id}` was not handed out by shoal")]
    UnknownPool { pool_id: String },
    /// The driver could not do the work; the text says why, in the driver's own words.
    #[error("{0}")]
    Failed(String),
}

impl PluginError {
    pub fn failed(message: impl Into<String>) -> Self {
        PluginError::Failed(message.into())
    }
}

/// The work behind each plugin call, one method per call. The node daemon implements it; the
/// server calls it concurrently, one call per engine request.
///
/// Required methods are the calls the 20.10 engine makes for a network and its containers.
/// The others have defaults that answer as a local-scope driver outside swarm mode should:
/// nothing to allocate cluster-wide, no discovery, no port programming.
pub trait Driver: Send + Sync + 'static {
    // --- network driver ---

    /// `docker network create`: make the network real on this node.
    fn create_network(
        &self,
        req: CreateNetworkRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// `docker network rm`: undo [`Driver::create_network`].
    fn delete_network(
        &self,
        req: NetworkRef,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// A container is being attached; the IPAM driver already gave its address (in
    /// `req.interface`). Fill only the fields the request left empty.
    fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> impl Future<Output = Result<CreateEndpointResponse, PluginError>> + Send;

    /// Undo [`Driver::create_endpoint`].
    fn delete_endpoint(
        &self,
        req: EndpointRef,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Hand the engine the interface to move into the sandbox `req.sandbox_key`, and its
    /// routes.
    fn join(
        &self,
        req: JoinRequest,
    ) -> impl Future<Output = Result<JoinResponse, PluginError>> + Send;

    /// The container leaves the network; the engine has taken the interface back out.
    fn leave(&self, req: EndpointRef) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Facts about an endpoint for `docker network inspect`.
    fn endpoint_oper_info(
        &self,
        _req: EndpointRef,
    ) -> impl Future<Output = Result<EndpointOperInfoResponse, PluginError>> + Send {
        async { Ok(EndpointOperInfoResponse::default()) }
    }

    /// Only a swarm-mode manager sends this; a standalone engine never does.
    fn allocate_network(
        &self,
        _req: AllocateNetworkRequest,
    ) -> impl Future<Output = Result<AllocateNetworkResponse, PluginError>> + Send {
        async { Ok(AllocateNetworkResponse::default()) }
    }

    /// Only a swarm-mode manager sends this; a standalone engine never does.
    fn free_network(
        &self,
        _req: NetworkRef,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        async { Ok(()) }
    }

    /// Sent only with a legacy cluster store; shoal learns its peers from the managers.
    fn discover_new(
        &self,
        _req: DiscoveryNotification,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        async { Ok(()) }
    }

    /// Sent only with a legacy cluster store; shoal learns its peers from the managers.
    fn discover_delete(
        &self,
        _req: DiscoveryNotification,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        async { Ok(()) }
    }

    /// The endpoint became the container's way out (published ports and the like).
    fn program_external_connectivity(
        &self,
        _req: ProgramExternalConnectivityRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        async { Ok(()) }
    }

    /// Undo [`Driver::program_external_connectivity`].
    fn revoke_external_connectivity(
        &self,
        _req: EndpointRef,
    ) -> impl Future<Output = Result<(), PluginError>> + Send {
        async { Ok(()) }
    }

    // --- IPAM driver ---

    /// Reserve the network's address pool. Asked again with the same request, give the same
    /// answer.
    fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> impl Future<Output = Result<RequestPoolResponse, PluginError>> + Send;

    /// Undo [`Driver::request_pool`].
    fn release_pool(
        &self,
        req: ReleasePoolRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// Reserve an address in a pool: the gateway ([`RequestAddressRequest::is_gateway`]) or an
    /// endpoint's, the one in `req.address` when it is not empty.
    fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> impl Future<Output = Result<RequestAddressResponse, PluginError>> + Send;

    /// Undo [`Driver::request_address`].
    fn release_address(
        &self,
        req: ReleaseAddressRequest,
    ) -> impl Future<Output = Result<(), PluginError>> + Send;
}

/// What the plugin says of itself during the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// The network driver's capabilities. Keep `scope` local: the 20.10 engine outside swarm
    /// mode fails to create a network of a global-scope driver.
    pub network: NetworkCapabilities,
    /// The IPAM driver's capabilities.
    pub ipam: IpamCapabilities,
    /// The address spaces libnetwork names in `RequestPool` when the user named none.
    pub address_spaces: AddressSpaces,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            network: NetworkCapabilities {
                scope: Scope::Local,
                connectivity_scope: Some(Scope::Global),
            },
            ipam: IpamCapabilities {
                requires_mac_address: false,
                // The managers keep the addresses; after an engine restart they are still
                // there, so there is nothing to replay.
                requires_request_replay: false,
            },
            address_spaces: AddressSpaces {
                local_default_address_space: "shoal-local".into(),
                global_default_address_space: "shoal".into(),
            },
        }
    }
}

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod recorder;
#[cfg(test)]
mod tests;
