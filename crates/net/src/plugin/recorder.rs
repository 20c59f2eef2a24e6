//! A [`Driver`] for tests: records every call in order and answers like a small real one. Its
//! IPAM hands out IPv4 addresses from the pool asked for (gateway `.1`, endpoints from `.2`);
//! with veths on, its endpoints are real veth pairs the engine can move into a container.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Mutex;

use super::*;

/// One call as the driver received it.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    CreateNetwork(CreateNetworkRequest),
    DeleteNetwork(NetworkRef),
    AllocateNetwork(AllocateNetworkRequest),
    FreeNetwork(NetworkRef),
    CreateEndpoint(CreateEndpointRequest),
    EndpointOperInfo(EndpointRef),
    DeleteEndpoint(EndpointRef),
    Join(JoinRequest),
    Leave(EndpointRef),
    DiscoverNew(DiscoveryNotification),
    DiscoverDelete(DiscoveryNotification),
    ProgramExternalConnectivity(ProgramExternalConnectivityRequest),
    RevokeExternalConnectivity(EndpointRef),
    RequestPool(RequestPoolRequest),
    ReleasePool(ReleasePoolRequest),
    RequestAddress(RequestAddressRequest),
    ReleaseAddress(ReleaseAddressRequest),
}

impl Call {
    /// The protocol's name for the call, without the `NetworkDriver.`/`IpamDriver.` part.
    pub fn name(&self) -> &'static str {
        match self {
            Call::CreateNetwork(_) => "CreateNetwork",
            Call::DeleteNetwork(_) => "DeleteNetwork",
            Call::AllocateNetwork(_) => "AllocateNetwork",
            Call::FreeNetwork(_) => "FreeNetwork",
            Call::CreateEndpoint(_) => "CreateEndpoint",
            Call::EndpointOperInfo(_) => "EndpointOperInfo",
            Call::DeleteEndpoint(_) => "DeleteEndpoint",
            Call::Join(_) => "Join",
            Call::Leave(_) => "Leave",
            Call::DiscoverNew(_) => "DiscoverNew",
            Call::DiscoverDelete(_) => "DiscoverDelete",
            Call::ProgramExternalConnectivity(_) => "ProgramExternalConnectivity",
            Call::RevokeExternalConnectivity(_) => "RevokeExternalConnectivity",
            Call::RequestPool(_) => "RequestPool",
            Call::ReleasePool(_) => "ReleasePool",
            Call::RequestAddress(_) => "RequestAddress",
            Call::ReleaseAddress(_) => "ReleaseAddress",
        }
    }
}

#[derive(Default)]
struct Pool {
    base: u32,
    prefix_len: u8,
    taken: BTreeSet<u32>,
}

#[derive(Default)]
pub struct Recorder {
    calls: Mutex<Vec<Call>>,
    /// Call name → the message that call fails with.
    failures: Mutex<BTreeMap<&'static str, String>>,
    pools: Mutex<BTreeMap<String, Pool>>,
    /// Whether endpoints are real veth pairs (needs root).
    veths: bool,
    /// Host ends of the veth pairs made and not yet deleted, for cleaning up after a failure.
    live_veths: Mutex<BTreeSet<String>>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A recorder whose `CreateEndpoint` makes a veth pair and whose `Join` hands the engine
    /// one end of it.
    pub fn with_veths() -> Self {
        Recorder {
            veths: true,
            ..Self::default()
        }
    }

    /// Makes the call `name` (e.g. `"CreateNetwork"`) fail with `message`.
    pub fn fail(&self, name: &'static str, message: &str) {
        self.failures
            .lock()
            .unwrap()
            .insert(name, message.to_string());
    }

    /// Lets every call succeed again.
    pub fn clear_failures(&self) {
        self.failures.lock().unwrap().clear();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.calls().iter().map(Call::name).collect()
    }

    /// Host ends of veth pairs still there.
    pub fn live_veths(&self) -> Vec<String> {
        self.live_veths.lock().unwrap().iter().cloned().collect()
    }

    fn record(&self, call: Call) -> Result<(), PluginError> {
        let name = call.name();
        self.calls.lock().unwrap().push(call);
        match self.failures.lock().unwrap().get(name) {
            Some(message) => Err(PluginError::failed(message.clone())),
            None => Ok(()),
        }
    }

    /// The veth pair of an endpoint: (host end, end for the container). Names stay within
    /// the kernel's 15 bytes.
    pub fn veth_names(endpoint_id: &str) -> (String, String) {
        let short: String = endpoint_id.chars().take(8).collect();
        (format!("sht{short}h"), format!("sht{short}c"))
    }
}

fn parse_v4_cidr(cidr: &str) -> Result<(u32, u8), PluginError> {
    let bad = || PluginError::failed(format!("`{cidr}` is not an IPv4 CIDR"));
    let (addr, len) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > 30 {
        return Err(bad());
    }
    Ok((u32::from(addr), len))
}

async fn ip(args: &[&str]) -> Result<(), PluginError> {
    let out = tokio::process::Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|e| PluginError::failed(format!("cannot run ip: {e}")))?;
    if !out.status.success() {
        return Err(PluginError::failed(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

impl Driver for Recorder {
    async fn create_network(&self, req: CreateNetworkRequest) -> Result<(), PluginError> {
        self.record(Call::CreateNetwork(req))
    }

    async fn delete_network(&self, req: NetworkRef) -> Result<(), PluginError> {
        self.record(Call::DeleteNetwork(req))
    }

    async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse, PluginError> {
        let endpoint_id = req.endpoint_id.clone();
        self.record(Call::CreateEndpoint(req))?;
        if self.veths {
            let (host, peer) = Self::veth_names(&endpoint_id);
            ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer]).await?;
            self.live_veths.lock().unwrap().insert(host.clone());
            ip(&["link", "set", &host, "up"]).await?;
        }
        // The address came from the IPAM in the request: nothing to add.
        Ok(CreateEndpointResponse::default())
    }

    async fn delete_endpoint(&self, req: EndpointRef) -> Result<(), PluginError> {
        let endpoint_id = req.endpoint_id.clone();
        self.record(Call::DeleteEndpoint(req))?;
        if self.veths {
            let (host, _) = Self::veth_names(&endpoint_id);
            // Deleting one end deletes the pair.
            ip(&["link", "del", &host]).await?;
            self.live_veths.lock().unwrap().remove(&host);
        }
        Ok(())
    }

    async fn join(&self, req: JoinRequest) -> Result<JoinResponse, PluginError> {
        let endpoint_id = req.endpoint_id.clone();
        self.record(Call::Join(req))?;
        let (_, peer) = Self::veth_names(&endpoint_id);
        Ok(JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: peer,
                dst_prefix: "eth".into(),
                dst_name: String::new(),
            }),
            ..JoinResponse::default()
        })
    }

    async fn leave(&self, req: EndpointRef) -> Result<(), PluginError> {
        self.record(Call::Leave(req))
    }

    async fn endpoint_oper_info(
        &self,
        req: EndpointRef,
    ) -> Result<EndpointOperInfoResponse, PluginError> {
        self.record(Call::EndpointOperInfo(req))?;
        let mut value = serde_json::Map::new();
        value.insert("shoal.recorder".into(), serde_json::Value::Bool(true));
        Ok(EndpointOperInfoResponse { value })
    }

    async fn allocate_network(
        &self,
        req: AllocateNetworkRequest,
    ) -> Result<AllocateNetworkResponse, PluginError> {
        self.record(Call::AllocateNetwork(req))?;
        Ok(AllocateNetworkResponse::default())
    }

    async fn free_network(&self, req: NetworkRef) -> Result<(), PluginError> {
        self.record(Call::FreeNetwork(req))
    }

    async fn discover_new(&self, req: DiscoveryNotification) -> Result<(), PluginError> {
        self.record(Call::DiscoverNew(req))
    }

    async fn discover_delete(&self, req: DiscoveryNotification) -> Result<(), PluginError> {
        self.record(Call::DiscoverDelete(req))
    }

    async fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        self.record(Call::ProgramExternalConnectivity(req))
    }

    async fn revoke_external_connectivity(&self, req: EndpointRef) -> Result<(), PluginError> {
        self.record(Call::RevokeExternalConnectivity(req))
    }

    async fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> Result<RequestPoolResponse, PluginError> {
        let wanted = if req.pool.is_empty() {
            "10.99.0.0/24".to_string()
        } else {
            req.pool.clone()
        };
        let space = req.address_space.clone();
        self.record(Call::RequestPool(req))?;
        let (base, prefix_len) = parse_v4_cidr(&wanted)?;
        let pool_id = format!("{space}/{wanted}");
        self.pools
            .lock()
            .unwrap()
            .entry(pool_id.clone())
            .or_insert(Pool {
                base,
                prefix_len,
                taken: BTreeSet::new(),
            });
        Ok(RequestPoolResponse {
            pool_id,
            pool: wanted,
            data: BTreeMap::new(),
        })
    }

    async fn release_pool(&self, req: ReleasePoolRequest) -> Result<(), PluginError> {
        let pool_id = req.pool_id.clone();
        self.record(Call::ReleasePool(req))?;
        match self.pools.lock().unwrap().remove(&pool_id) {
            Some(_) => Ok(()),
            None => Err(PluginError::UnknownPool { pool_id }),
        }
    }

    async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, PluginError> {
        let (pool_id, wanted, gateway) =
            (req.pool_id.clone(), req.address.clone(), req.is_gateway());
        self.record(Call::RequestAddress(req))?;
        let mut pools = self.pools.lock().unwrap();
        let pool = pools
            .get_mut(&pool_id)
            .ok_or(PluginError::UnknownPool { pool_id })?;
        let size = 1u32 << (32 - pool.prefix_len);
        let addr = if !wanted.is_empty() {
            let ip: Ipv4Addr = wanted
                .parse()
                .map_err(|_| PluginError::failed(format!("`{wanted}` is not an IPv4 address")))?;
            u32::from(ip)
        } else {
            let first = if gateway { 1 } else { 2 };
            (first..size - 1)
                .map(|i| pool.base + i)
                .find(|a| !pool.taken.contains(a))
                .ok_or_else(|| PluginError::failed("the pool has no address left"))?
        };
        if !pool.taken.insert(addr) {
            return Err(PluginError::failed(format!(
                "{} is taken",
                Ipv4Addr::from(addr)
            )));
        }
        Ok(RequestAddressResponse {
            address: format!("{}/{}", Ipv4Addr::from(addr), pool.prefix_len),
            data: BTreeMap::new(),
        })
    }

    async fn release_address(&self, req: ReleaseAddressRequest) -> Result<(), PluginError> {
        let (pool_id, address) = (req.pool_id.clone(), req.address.clone());
        self.record(Call::ReleaseAddress(req))?;
        let mut pools = self.pools.lock().unwrap();
        let pool = pools
            .get_mut(&pool_id)
            .ok_or(PluginError::UnknownPool { pool_id })?;
        if let Ok(ip) = address.parse::<Ipv4Addr>() {
            pool.taken.remove(&u32::from(ip));
        }
        Ok(())
    }
}
