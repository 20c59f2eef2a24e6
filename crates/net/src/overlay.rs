//! The node's overlay networks: the Docker network and IPAM plugin that the node's engine
//! calls, the data plane it programs, and the name servers it runs — all driven by the
//! cluster's network view (`shoal_types::netview`), which the daemon hands to
//! [`Overlay::apply_view`] whenever the managers send a new one.
//!
//! - IPAM: a pool is a cluster network (its ID is the pool ID, so nothing is lost when the
//!   daemon restarts); a task's container asks for the address the managers gave the task; a
//!   container attached with `docker run --network` gets one from the managers
//!   ([`Cluster::attach`]).
//! - Driver: an endpoint is a veth pair on the network's bridge; joining also points the
//!   container's `127.0.0.11:53` at this network's name server, so shoal — not the engine's
//!   own resolver, whose aliases would shadow the cluster's names — answers every query.
//! - The view: for each network that matters on this node (it has an endpoint here, the
//!   engine created it, or it is attachable), the bridge and tunnel exist, the other nodes'
//!   endpoints are reachable, each VIP spreads over the serving tasks, and a name server
//!   answers on the gateway address.
//!
//! It writes no cluster state itself: addresses for attached containers are asked of the
//! managers.

use crate::dataplane::{Dataplane, NetSpec, Peer, Vip};
use crate::dns::{
    bind_in_netns, EndpointMode, EndpointRecord, NameServer, Names, NetworkRecords, ServiceRecord,
    Upstream,
};
use crate::plugin::{
    CreateEndpointRequest, CreateEndpointResponse, CreateNetworkRequest, Driver, EndpointInterface,
    EndpointRef, InterfaceName, JoinRequest, JoinResponse, NetworkRef, PluginError,
    ReleaseAddressRequest, ReleasePoolRequest, RequestAddressRequest, RequestAddressResponse,
    RequestPoolRequest, RequestPoolResponse,
};
use shoal_types::netview::{mac_for, NetInfo, NetView};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// The option (driver and IPAM) that names the cluster network of an engine network.
pub const NETWORK_ID_OPTION: &str = "shoal.network.id";

/// How long a plugin call waits for the managers' view to show a network or an address the
/// engine already asks about (the agent may be quicker than the view's long poll).
const VIEW_WAIT: Duration = Duration::from_secs(5);

/// How long a joined container's namespace may take to appear.
const SANDBOX_WAIT: Duration = Duration::from_secs(30);

/// What the overlay asks of the managers.
pub trait Cluster: Send + Sync + 'static {
    /// An address on an attachable network for a container of this node's engine
    /// (`addr`: the one `docker run --ip` asked for). CIDR form.
    fn attach(
        &self,
        network_id: &str,
        addr: Option<String>,
    ) -> impl Future<Output = Result<String, String>> + Send;

    /// Whether this node's agent is starting a task's container with `addr` on the network
    /// (granted at once; else the address must show in the network view).
    fn starting(&self, _network_id: &str, _addr: Ipv4Addr) -> bool {
        false
    }

    /// The engine released the address of an attached container.
    fn detach(
        &self,
        network_id: &str,
        addr: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// An endpoint the engine created: its address.
#[derive(Debug, Clone)]
struct Endpoint {
    addr: Ipv4Addr,
}

struct Inner {
    /// This node, and its underlay address (the VXLAN tunnels' source), from the view.
    node_id: String,
    underlay: Ipv4Addr,
    view: Arc<NetView>,
    /// Engine network ID → cluster network ID.
    engine_networks: HashMap<String, String>,
    endpoints: HashMap<String, Endpoint>,
    /// Networks whose bridge, tunnel and name server are up on this node.
    servers: HashMap<String, NameServer>,
}

/// The overlay networks of one node.
pub struct Overlay<C: Cluster, D: Dataplane> {
    cluster: C,
    dataplane: Arc<D>,
    upstream: Upstream,
    names: watch::Sender<Arc<Names>>,
    view_changed: watch::Sender<u64>,
    inner: Mutex<Inner>,
    /// Serialises programming of the data plane (the view loop and plugin calls).
    programming: tokio::sync::Mutex<()>,
}

fn spec_of(n: &NetInfo, underlay: Ipv4Addr, port: u16) -> NetSpec {
    NetSpec {
        id: n.id.clone(),
        vni: n.vni,
        gateway: n.gateway,
        prefix_len: prefix_len(&n.subnet),
        mtu: n.mtu,
        underlay,
        port,
    }
}

fn prefix_len(subnet: &str) -> u8 {
    subnet
        .split_once('/')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(24)
}

fn failed(e: impl std::fmt::Display) -> PluginError {
    PluginError::failed(e.to_string())
}

/// The name records of every network in `view`.
pub fn names_of(view: &NetView) -> Names {
    // A container's addresses on every network, so a client is known on all of its networks.
    let mut by_task: HashMap<&str, BTreeMap<String, Ipv4Addr>> = HashMap::new();
    for n in &view.networks {
        for e in n.endpoints.iter().filter(|e| !e.task_id.is_empty()) {
            by_task
                .entry(e.task_id.as_str())
                .or_default()
                .insert(n.id.clone(), e.addr);
        }
    }
    let records: Vec<NetworkRecords> = view
        .networks
        .iter()
        .map(|n| NetworkRecords {
            id: n.id.clone(),
            name: n.name.clone(),
            services: n
                .services
                .iter()
                .map(|s| ServiceRecord {
                    name: s.name.clone(),
                    aliases: s.aliases.clone(),
                    mode: if s.vip.is_some() {
                        EndpointMode::Vip
                    } else {
                        EndpointMode::Dnsrr
                    },
                    vip: s.vip,
                    task_ips: n.backends(&s.id),
                })
                .collect(),
            endpoints: n
                .endpoints
                .iter()
                .map(|e| EndpointRecord {
                    ip: e.addr,
                    names: e.names.clone(),
                    attachments: by_task.get(e.task_id.as_str()).cloned().unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    Names::new(records)
}

impl<C: Cluster, D: Dataplane> Overlay<C, D> {
    pub fn new(cluster: C, dataplane: Arc<D>, upstream: Upstream) -> Self {
        let (names, _) = watch::channel(Arc::new(Names::new(Vec::<NetworkRecords>::new())));
        let (view_changed, _) = watch::channel(0);
        Overlay {
            cluster,
            dataplane,
            upstream,
            names,
            view_changed,
            inner: Mutex::new(Inner {
                node_id: String::new(),
                underlay: Ipv4Addr::LOCALHOST,
                view: Arc::default(),
                engine_networks: HashMap::new(),
                endpoints: HashMap::new(),
                servers: HashMap::new(),
            }),
            programming: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn view(&self) -> Arc<NetView> {
        self.lock().view.clone()
    }

    /// Runs a blocking data plane call off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&D) -> crate::dataplane::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let dp = self.dataplane.clone();
        tokio::task::spawn_blocking(move || f(&dp))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// The network `id` once the view has it (waiting a little: the engine may ask about a
    /// network before this node's view shows it).
    async fn network(&self, id: &str) -> Result<NetInfo, PluginError> {
        let mut changed = self.view_changed.subscribe();
        let deadline = tokio::time::Instant::now() + VIEW_WAIT;
        loop {
            if let Some(n) = self.view().networks.iter().find(|n| n.id == id) {
                return Ok(n.clone());
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return Err(PluginError::UnknownNetwork {
                    network_id: id.to_string(),
                });
            }
        }
    }

    /// Takes a new view from the managers: programs every network that matters here,
    /// removes those that left, swaps the names.
    pub async fn apply_view(&self, node_id: &str, view: NetView) {
        let view = Arc::new(view);
        {
            let mut inner = self.lock();
            inner.node_id = node_id.to_string();
            if let Some(a) = view.node_addr {
                inner.underlay = a;
            }
            inner.view = view.clone();
        }
        self.names.send_replace(Arc::new(names_of(&view)));
        self.view_changed.send_modify(|v| *v += 1);
        let _guard = self.programming.lock().await;
        let wanted: Vec<NetInfo> = {
            let inner = self.lock();
            view.networks
                .iter()
                .filter(|n| {
                    n.attachable
                        || inner.servers.contains_key(&n.id)
                        || inner.engine_networks.values().any(|id| *id == n.id)
                        || n.endpoints.iter().any(|e| e.node_id == inner.node_id)
                })
                .cloned()
                .collect()
        };
        for n in &wanted {
            if let Err(e) = self.program(n).await {
                warn!(network = %n.name, "programming the overlay network failed: {e}");
            }
        }
        // Networks gone from the cluster, or left over from before a restart.
        let gone: Vec<String> = {
            let mut inner = self.lock();
            let gone: Vec<String> = inner
                .servers
                .keys()
                .filter(|id| !view.networks.iter().any(|n| n.id == **id))
                .cloned()
                .collect();
            for id in &gone {
                inner.servers.remove(id);
            }
            gone
        };
        let existing = self.blocking(|dp| dp.networks()).await.unwrap_or_default();
        for id in gone.into_iter().chain(existing.into_iter().filter(|e| {
            !view
                .networks
                .iter()
                .any(|n| n.id.starts_with(e.as_str()) || *e == n.id)
        })) {
            info!(network = %id, "removing the overlay network from this node");
            let id2 = id.clone();
            if let Err(e) = self.blocking(move |dp| dp.remove_network(&id2)).await {
                warn!(network = %id, "removing the overlay network failed: {e}");
            }
        }
    }

    /// Bridge, tunnel, peers, VIPs and name server of one network.
    async fn program(&self, n: &NetInfo) -> Result<(), String> {
        let (node_id, underlay, port) = {
            let inner = self.lock();
            (
                inner.node_id.clone(),
                inner.underlay,
                inner.view.data_path_port,
            )
        };
        let spec = spec_of(n, underlay, port);
        let s = spec.clone();
        let netns = self.blocking(move |dp| dp.ensure_network(&s)).await?;
        let peers: Vec<Peer> = n
            .endpoints
            .iter()
            .filter(|e| e.node_id != node_id)
            .map(|e| Peer {
                addr: e.addr,
                mac: mac_for(e.addr),
                node: e.node_addr,
            })
            .collect();
        let vips: Vec<Vip> = n
            .services
            .iter()
            .filter_map(|s| {
                Some(Vip {
                    addr: s.vip?,
                    backends: n.backends(&s.id),
                })
            })
            .collect();
        let s = spec.clone();
        self.blocking(move |dp| dp.set_peers(&s, &peers)).await?;
        let s = spec.clone();
        self.blocking(move |dp| dp.set_vips(&s, &vips)).await?;
        // Without its name server the network still carries traffic: say so, and try again
        // on the next view.
        if let Err(e) = self.ensure_name_server(n, &netns).await {
            warn!(network = %n.name, "no name server on this network yet: {e}");
        }
        Ok(())
    }

    /// The network's name server on its gateway address, inside its namespace.
    async fn ensure_name_server(&self, n: &NetInfo, netns: &Path) -> Result<(), String> {
        if self.lock().servers.contains_key(&n.id) {
            return Ok(());
        }
        let addr = SocketAddr::new(n.gateway.into(), 53);
        let netns = netns.to_path_buf();
        let (udp, tcp) = tokio::task::spawn_blocking(move || bind_in_netns(&netns, addr))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let server = NameServer::spawn(
            n.id.clone(),
            udp,
            tcp,
            self.names.subscribe(),
            self.upstream.clone(),
        )
        .map_err(|e| e.to_string())?;
        debug!(network = %n.name, %addr, "name server up");
        self.lock().servers.insert(n.id.clone(), server);
        Ok(())
    }

    /// Programs `id` now (a plugin call needs it before the next view).
    async fn ensure_programmed(&self, id: &str) -> Result<NetInfo, PluginError> {
        let n = self.network(id).await?;
        let _guard = self.programming.lock().await;
        self.program(&n).await.map_err(failed)?;
        Ok(n)
    }

    /// Engine network `engine_id` stands for cluster network `network_id` (the engine says
    /// so only once, at create; after a restart the daemon reads it from the engine).
    pub fn learn_engine_network(&self, engine_id: &str, network_id: &str) {
        if !engine_id.is_empty() && !network_id.is_empty() {
            self.lock()
                .engine_networks
                .insert(engine_id.to_string(), network_id.to_string());
        }
    }

    fn cluster_network_of(&self, engine_network: &str) -> Result<String, PluginError> {
        self.lock()
            .engine_networks
            .get(engine_network)
            .cloned()
            .ok_or_else(|| PluginError::UnknownNetwork {
                network_id: engine_network.to_string(),
            })
    }

    /// Is `addr` a task's address on `network_id` on this node (waiting a little for the view
    /// to show a task the agent is already creating)?
    async fn is_local_task_address(&self, network_id: &str, addr: Ipv4Addr) -> bool {
        let mut changed = self.view_changed.subscribe();
        let deadline = tokio::time::Instant::now() + VIEW_WAIT;
        loop {
            if self.cluster.starting(network_id, addr) {
                return true;
            }
            let (view, me) = {
                let inner = self.lock();
                (inner.view.clone(), inner.node_id.clone())
            };
            let known = view.networks.iter().any(|n| {
                n.id == network_id
                    && n.endpoints
                        .iter()
                        .any(|e| e.addr == addr && e.node_id == me && !e.task_id.is_empty())
            });
            if known {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return false;
            }
        }
    }
}

impl<C: Cluster, D: Dataplane> Driver for Overlay<C, D> {
    async fn create_network(&self, req: CreateNetworkRequest) -> Result<(), PluginError> {
        let Some(id) = req.generic_options().get(NETWORK_ID_OPTION).cloned() else {
            return Err(PluginError::failed(format!(
                "shoal networks are created by the cluster (docker network create -d overlay on a shoal manager); option {NETWORK_ID_OPTION} is missing"
            )));
        };
        self.lock()
            .engine_networks
            .insert(req.network_id.clone(), id.clone());
        self.ensure_programmed(&id).await?;
        Ok(())
    }

    async fn delete_network(&self, req: NetworkRef) -> Result<(), PluginError> {
        self.lock().engine_networks.remove(&req.network_id);
        Ok(())
    }

    async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse, PluginError> {
        self.cluster_network_of(&req.network_id)?;
        let addr: Ipv4Addr = req
            .interface
            .address
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| {
                PluginError::failed(format!(
                    "endpoint {} has no IPv4 address from shoal's IPAM",
                    req.endpoint_id
                ))
            })?;
        self.lock()
            .endpoints
            .insert(req.endpoint_id.clone(), Endpoint { addr });
        // Only what the engine did not give may be answered.
        let interface = req
            .interface
            .mac_address
            .is_empty()
            .then(|| EndpointInterface {
                mac_address: mac_for(addr),
                ..Default::default()
            });
        Ok(CreateEndpointResponse { interface })
    }

    async fn delete_endpoint(&self, req: EndpointRef) -> Result<(), PluginError> {
        self.lock().endpoints.remove(&req.endpoint_id);
        Ok(())
    }

    async fn join(&self, req: JoinRequest) -> Result<JoinResponse, PluginError> {
        let network_id = self.cluster_network_of(&req.network_id)?;
        let ep = self
            .lock()
            .endpoints
            .get(&req.endpoint_id)
            .cloned()
            .ok_or_else(|| PluginError::UnknownEndpoint {
                network_id: req.network_id.clone(),
                endpoint_id: req.endpoint_id.clone(),
            })?;
        let n = self.ensure_programmed(&network_id).await?;
        let spec = {
            let inner = self.lock();
            spec_of(&n, inner.underlay, inner.view.data_path_port)
        };
        let endpoint_id = req.endpoint_id.clone();
        let mac = mac_for(ep.addr);
        let ifname = self
            .blocking(move |dp| dp.add_endpoint(&spec, &endpoint_id, &mac))
            .await
            .map_err(failed)?;
        // The engine makes the container's namespace only after the join (runc's prestart
        // hook mounts it at the sandbox key): point its 127.0.0.11 at our name server once
        // it is there. Until then (and for tasks always) the engine's resolver forwards the
        // names it does not know to our server too (the task's DNS server is the gateway).
        if !req.sandbox_key.is_empty() {
            let dataplane = self.dataplane.clone();
            let sandbox = req.sandbox_key.clone();
            let gateway = n.gateway;
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + SANDBOX_WAIT;
                loop {
                    let (dp, path) = (dataplane.clone(), sandbox.clone());
                    let done = tokio::task::spawn_blocking(move || {
                        dp.redirect_dns(Path::new(&path), gateway)
                    })
                    .await;
                    match done {
                        Ok(Ok(())) => return,
                        Ok(Err(e)) if tokio::time::Instant::now() >= deadline => {
                            warn!(sandbox = %sandbox, "cannot point the container's resolver at the cluster's name server: {e}");
                            return;
                        }
                        _ => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            });
        }
        Ok(JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: ifname,
                dst_prefix: "eth".into(),
                ..Default::default()
            }),
            // No gateway: the engine routes egress through docker_gwbridge (NAT on this
            // node), as Swarm does; internal networks get no such route.
            ..Default::default()
        })
    }

    async fn leave(&self, req: EndpointRef) -> Result<(), PluginError> {
        let network_id = self.cluster_network_of(&req.network_id)?;
        let endpoint_id = req.endpoint_id.clone();
        self.blocking(move |dp| dp.remove_endpoint(&network_id, &endpoint_id))
            .await
            .map_err(failed)
    }

    async fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> Result<RequestPoolResponse, PluginError> {
        let Some(id) = req.options.get(NETWORK_ID_OPTION).cloned() else {
            return Err(PluginError::failed(format!(
                "shoal's IPAM serves only networks the cluster created (option {NETWORK_ID_OPTION} is missing)"
            )));
        };
        if req.v6 {
            return Err(PluginError::failed("shoal networks have no IPv6 pool"));
        }
        Ok(RequestPoolResponse {
            pool_id: id,
            pool: req.pool,
            ..Default::default()
        })
    }

    async fn release_pool(&self, _req: ReleasePoolRequest) -> Result<(), PluginError> {
        Ok(())
    }

    async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, PluginError> {
        let n = self.network(&req.pool_id).await?;
        let prefix = prefix_len(&n.subnet);
        if req.is_gateway() {
            return Ok(RequestAddressResponse {
                address: format!("{}/{prefix}", n.gateway),
                ..Default::default()
            });
        }
        let address = match req.address.parse::<Ipv4Addr>() {
            Ok(a) if self.is_local_task_address(&n.id, a).await => format!("{a}/{prefix}"),
            Ok(a) => self
                .cluster
                .attach(&n.id, Some(a.to_string()))
                .await
                .map_err(PluginError::failed)?,
            Err(_) => self
                .cluster
                .attach(&n.id, None)
                .await
                .map_err(PluginError::failed)?,
        };
        Ok(RequestAddressResponse {
            address,
            ..Default::default()
        })
    }

    async fn release_address(&self, req: ReleaseAddressRequest) -> Result<(), PluginError> {
        let Ok(addr) = req.address.parse::<Ipv4Addr>() else {
            return Ok(());
        };
        let (view, me) = {
            let inner = self.lock();
            (inner.view.clone(), inner.node_id.clone())
        };
        let Some(n) = view.networks.iter().find(|n| n.id == req.pool_id) else {
            return Ok(());
        };
        if n.gateway == addr {
            return Ok(());
        }
        let attached = n
            .endpoints
            .iter()
            .any(|e| e.addr == addr && e.task_id.is_empty() && e.node_id == me);
        if attached {
            self.cluster
                .detach(&n.id, &req.address)
                .await
                .map_err(PluginError::failed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{Call, Recorder};
    use shoal_types::netview::{NetEndpoint, NetService};

    /// The managers, as a test sees them: attachments come from a counter.
    #[derive(Default)]
    struct FakeCluster {
        calls: Mutex<Vec<String>>,
        /// What the agent is starting: (network, address).
        starting: Mutex<Vec<(String, Ipv4Addr)>>,
    }

    impl Cluster for FakeCluster {
        async fn attach(&self, network_id: &str, addr: Option<String>) -> Result<String, String> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("attach {network_id} {addr:?}"));
            Ok(format!("{}/24", addr.unwrap_or_else(|| "10.9.0.50".into())))
        }

        fn starting(&self, network_id: &str, addr: Ipv4Addr) -> bool {
            self.starting
                .lock()
                .unwrap()
                .contains(&(network_id.to_string(), addr))
        }

        async fn detach(&self, network_id: &str, addr: &str) -> Result<(), String> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("detach {network_id} {addr}"));
            Ok(())
        }
    }

    fn endpoint(
        addr: [u8; 4],
        node: &str,
        task: &str,
        service: &str,
        serving: bool,
    ) -> NetEndpoint {
        NetEndpoint {
            addr: addr.into(),
            node_id: node.into(),
            node_addr: if node == "me" {
                Ipv4Addr::new(198, 51, 100, 1)
            } else {
                Ipv4Addr::new(198, 51, 100, 2)
            },
            task_id: task.into(),
            service_id: service.into(),
            names: vec![format!("{service}.1.{task}")],
            serving,
        }
    }

    fn net(id: &str, attachable: bool, endpoints: Vec<NetEndpoint>) -> NetInfo {
        NetInfo {
            id: id.into(),
            name: format!("{id}-name"),
            vni: 4097,
            subnet: "10.9.0.0/24".into(),
            ip_range: String::new(),
            gateway: Ipv4Addr::new(10, 9, 0, 1),
            mtu: 1450,
            internal: false,
            attachable,
            labels: Default::default(),
            endpoints,
            services: vec![NetService {
                id: "web".into(),
                name: "web".into(),
                aliases: vec![],
                vip: Some(Ipv4Addr::new(10, 9, 0, 2)),
            }],
        }
    }

    fn view(networks: Vec<NetInfo>) -> NetView {
        NetView {
            digest: "d".into(),
            node_addr: Some(Ipv4Addr::new(198, 51, 100, 1)),
            data_path_port: 4789,
            networks,
        }
    }

    fn overlay() -> (Arc<Overlay<FakeCluster, Recorder>>, Arc<Recorder>) {
        let dp = Arc::new(Recorder::new());
        let o = Overlay::new(FakeCluster::default(), dp.clone(), Upstream::none());
        (Arc::new(o), dp)
    }

    #[tokio::test]
    async fn a_view_programs_the_networks_used_here_with_other_nodes_endpoints_and_serving_backends(
    ) {
        let (o, dp) = overlay();
        let used = net(
            "netusedhere0",
            false,
            vec![
                endpoint([10, 9, 0, 3], "me", "t1", "web", true),
                endpoint([10, 9, 0, 4], "other", "t2", "web", true),
                endpoint([10, 9, 0, 5], "other", "t3", "web", false),
            ],
        );
        let elsewhere = net(
            "netelsewhere",
            false,
            vec![endpoint([10, 9, 0, 3], "other", "t4", "web", true)],
        );
        o.apply_view("me", view(vec![used, elsewhere])).await;
        let state = dp.network("netusedhere0").expect("programmed");
        let peers: Vec<Ipv4Addr> = state.peers.iter().map(|p| p.addr).collect();
        assert_eq!(
            peers,
            [Ipv4Addr::new(10, 9, 0, 4), Ipv4Addr::new(10, 9, 0, 5)]
        );
        assert!(state
            .peers
            .iter()
            .all(|p| p.node == Ipv4Addr::new(198, 51, 100, 2)));
        assert_eq!(state.vips.len(), 1);
        assert_eq!(
            state.vips[0].backends,
            [Ipv4Addr::new(10, 9, 0, 3), Ipv4Addr::new(10, 9, 0, 4)],
            "only serving tasks are behind the VIP"
        );
        assert!(dp.network("netelsewhere").is_none(), "no endpoint here");
        let spec = dp.calls().into_iter().find_map(|c| match c {
            Call::EnsureNetwork(s) => Some(s),
            _ => None,
        });
        let spec = spec.unwrap();
        assert_eq!(
            (spec.vni, spec.port, spec.underlay),
            (4097, 4789, Ipv4Addr::new(198, 51, 100, 1))
        );

        // The network leaves the cluster: it leaves the node.
        o.apply_view("me", view(vec![])).await;
        assert!(dp
            .calls()
            .iter()
            .any(|c| matches!(c, Call::RemoveNetwork(id) if id.starts_with("netusedhere"))));
    }

    #[tokio::test]
    async fn the_engine_creates_joins_and_leaves_an_endpoint_through_the_plugin() {
        let (o, dp) = overlay();
        o.apply_view(
            "me",
            view(vec![net(
                "n1",
                true,
                vec![endpoint([10, 9, 0, 3], "me", "t1", "web", true)],
            )]),
        )
        .await;
        let err = o
            .request_pool(RequestPoolRequest {
                pool: "10.9.0.0/24".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains(NETWORK_ID_OPTION), "{err}");
        let pool = o
            .request_pool(RequestPoolRequest {
                pool: "10.9.0.0/24".into(),
                options: [(NETWORK_ID_OPTION.to_string(), "n1".to_string())].into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(pool.pool_id, "n1");
        let gateway = o
            .request_address(RequestAddressRequest {
                pool_id: "n1".into(),
                options: [(
                    crate::plugin::OPTION_REQUEST_ADDRESS_TYPE.to_string(),
                    crate::plugin::GATEWAY_ADDRESS.to_string(),
                )]
                .into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(gateway.address, "10.9.0.1/24");
        // The task's own address is taken as the managers gave it; any other address is
        // asked of them.
        let task = o
            .request_address(RequestAddressRequest {
                pool_id: "n1".into(),
                address: "10.9.0.3".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(task.address, "10.9.0.3/24");
        // A task's container the agent is starting, before the view shows the task: granted
        // at once, without asking the managers.
        o.cluster
            .starting
            .lock()
            .unwrap()
            .push(("n1".into(), Ipv4Addr::new(10, 9, 0, 7)));
        let t0 = std::time::Instant::now();
        let starting = o
            .request_address(RequestAddressRequest {
                pool_id: "n1".into(),
                address: "10.9.0.7".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(starting.address, "10.9.0.7/24");
        assert!(t0.elapsed() < VIEW_WAIT, "no wait for the view");
        let attached = o
            .request_address(RequestAddressRequest {
                pool_id: "n1".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(attached.address, "10.9.0.50/24");
        assert_eq!(*o.cluster.calls.lock().unwrap(), ["attach n1 None"]);

        let generic = serde_json::json!({ NETWORK_ID_OPTION: "n1" });
        o.create_network(CreateNetworkRequest {
            network_id: "engine-net".into(),
            options: [("com.docker.network.generic".to_string(), generic)]
                .into_iter()
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap();
        let created = o
            .create_endpoint(CreateEndpointRequest {
                network_id: "engine-net".into(),
                endpoint_id: "ep1".into(),
                interface: EndpointInterface {
                    address: "10.9.0.3/24".into(),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(created.interface.unwrap().mac_address, "02:42:0a:09:00:03");
        let joined = o
            .join(JoinRequest {
                network_id: "engine-net".into(),
                endpoint_id: "ep1".into(),
                sandbox_key: "/var/run/docker/netns/abc".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let name = joined.interface_name.unwrap();
        assert_eq!(name.dst_prefix, "eth");
        assert!(!name.src_name.is_empty());
        assert!(
            joined.gateway.is_empty(),
            "egress goes through the node's gwbridge"
        );
        for _ in 0..100 {
            if dp.dns(Path::new("/var/run/docker/netns/abc")).is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            dp.dns(Path::new("/var/run/docker/netns/abc")),
            Some(Ipv4Addr::new(10, 9, 0, 1)),
            "the container's resolver points at the network's name server"
        );
        o.leave(EndpointRef {
            network_id: "engine-net".into(),
            endpoint_id: "ep1".into(),
        })
        .await
        .unwrap();
        assert!(dp.network("n1").unwrap().endpoints.is_empty());
        let err = o
            .join(JoinRequest {
                network_id: "unknown".into(),
                endpoint_id: "ep2".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, PluginError::UnknownNetwork { .. }), "{err}");
    }
}
