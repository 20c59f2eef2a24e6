//! A node's membership in a cluster: standalone, manager or worker, and the moves between
//! them (init, join, leave, promotion, demotion), heartbeats, and the leader's watch over
//! which nodes are alive.
//!
//! This module owns *which role this node plays and what runs for it*. It does not validate
//! user objects (that is `controlapi`) and it serves no HTTP (the API crate does, and hands
//! node-to-node requests to the `internal_*` methods here).

use crate::ca::{self, RootCa};
use crate::describe::describe;
use crate::error::{
    ApiError, Result, ALREADY_IN_SWARM, LEAVE_LOCKED, NOT_A_MANAGER, NOT_IN_SWARM, SWARM_LOCKED,
};
use crate::identity::{AtRest, Files, Identity, Keys, LockedKeys, StoredKeys};
use crate::internal::*;
use crate::keys::{DataKey, Kek};
use crate::tokens;
use rand::Rng;
use shoal_raft::tls::{NodeCert, PeerIdentity, PeerRole};
use shoal_raft::transport::{Transport, TransportError};
use shoal_raft::{BasicNode, RaftNode, Replica, Timing, WriteError};
use shoal_store::{Applied, Cluster, Command, Member, Request, Response};
use shoal_types::ids::new_id;
use shoal_types::swarm::{
    ClusterInfo, Driver, IPAMConfig, IPAMOptions, InitRequest, JoinRequest, ManagerStatus, Network,
    NetworkSpec, Node, NodeAvailability, NodeDescription, NodeRole, NodeSpec, NodeState,
    NodeStatus, Reachability, Spec,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

mod authz;
mod autolock;
mod dispatch;
mod engines;
mod liveness;
pub use authz::Caller;
pub use engines::EngineNode;
pub mod logs;
mod manager;
mod membership;
pub mod mesh;
pub mod netview;
mod recovery;
mod renewal;
mod rotation;

use liveness::{heartbeat_loop, monitor_loop};

/// How the daemon was started.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub data_dir: PathBuf,
    /// The node-to-node address used when `swarm init`/`join` leave it to the default.
    pub listen_addr: String,
    pub timing: Timing,
    /// The local Docker Engine, if one runs.
    pub engine_socket: PathBuf,
    /// The name shoal's network and IPAM plugin is served under on that engine.
    pub network_plugin: String,
}

pub type BindFuture =
    Pin<Box<dyn Future<Output = std::result::Result<AbortHandle, String>> + Send>>;
/// Starts the node-to-node HTTP server on an address; the API crate provides it.
pub type Binder = Arc<dyn Fn(String, Arc<Daemon>) -> BindFuture + Send + Sync>;

/// The status message of a node that left the swarm.
const LEFT: &str = "node left the swarm";

/// The CLI's default listen address: "leave it to the daemon".
const DEFAULT_LISTEN: &str = "0.0.0.0:2377";
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub enum Role {
    Inactive,
    Manager(Arc<Manager>),
    Worker(Arc<Worker>),
    /// A manager that restarted with autolock on: it waits for the unlock key, takes no part
    /// in Raft and answers every swarm call with Docker's "Swarm is encrypted" message.
    Locked(Arc<Locked>),
}

/// What a locked manager knows until it is unlocked.
pub struct Locked {
    pub identity: Identity,
    keys: LockedKeys,
}

pub struct Daemon {
    cfg: DaemonConfig,
    files: Files,
    transport: Transport,
    binder: Binder,
    role: RwLock<Role>,
    /// Serializes role transitions (init, join, leave, promotion, demotion).
    transition: tokio::sync::Mutex<()>,
    description: Mutex<NodeDescription>,
    /// Where in its validity this node renews its certificate (`ca::renewal_point`).
    renew_at: f64,
    /// How this manager's data key is wrapped on disk now (none on other nodes).
    at_rest: Mutex<Option<AtRest>>,
}

/// What runs on a manager.
pub struct Manager {
    pub identity: Identity,
    pub raft: Arc<RaftNode>,
    pub keys: Keys,
    pub timing: Timing,
    transport: Transport,
    server: AbortHandle,
    /// The leader duties' loops (liveness monitor, orchestration), stopped with the manager.
    loops: Mutex<Vec<JoinHandle<()>>>,
    /// When each node last reported, and whether it runs a Raft member (leader only).
    liveness: Mutex<HashMap<String, (Instant, bool)>>,
    /// Serializes Raft membership changes made by this manager.
    membership_lock: tokio::sync::Mutex<()>,
    /// Set when this manager leaves the swarm: it reports no more heartbeats, so that the
    /// leader cannot take it for a manager waiting to become a voter and add it back.
    leaving: std::sync::atomic::AtomicBool,
    /// Descriptions nodes reported that differ from the stored ones (leader only).
    new_descriptions: Mutex<HashMap<String, NodeDescription>>,
    /// What other managers present on node-to-node calls (derived once: checked per RPC).
    manager_credential: String,
    /// The root CA certificate whose key this manager's `keys.json` holds: it follows the
    /// cluster's root after a rotation (`Daemon::secure_keys_at_rest`).
    disk_root: Mutex<String>,
}

/// What runs on a worker.
pub struct Worker {
    pub identity: Mutex<Identity>,
    server: AbortHandle,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn from_transport(e: TransportError) -> ApiError {
    match e {
        TransportError::Remote {
            status, message, ..
        } => match status {
            400 | 422 => ApiError::Invalid(message),
            403 => ApiError::Forbidden(message),
            404 => ApiError::NotFound(message),
            409 => ApiError::Conflict(message),
            503 => ApiError::Unavailable(message),
            _ => ApiError::Internal(message),
        },
        other => ApiError::Unavailable(other.to_string()),
    }
}

/// `host:port` → `host`.
fn host_of(addr: &str) -> String {
    match addr.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
        None => addr.to_string(),
    }
}

fn port_of(addr: &str) -> Option<&str> {
    addr.rsplit_once(':').map(|(_, p)| p)
}

impl Daemon {
    /// Starts the daemon in the role it had when it stopped.
    pub async fn start(cfg: DaemonConfig, binder: Binder) -> anyhow_like::Result<Arc<Self>> {
        std::fs::create_dir_all(&cfg.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", cfg.data_dir.display()))?;
        let description = describe(&cfg.engine_socket).await;
        let daemon = Arc::new(Self {
            files: Files::new(&cfg.data_dir),
            cfg,
            transport: Transport::new(),
            binder,
            role: RwLock::new(Role::Inactive),
            transition: tokio::sync::Mutex::new(()),
            description: Mutex::new(description),
            renew_at: ca::renewal_point(),
            at_rest: Mutex::new(None),
        });
        if let Some(identity) = daemon.files.load_identity()? {
            let role = match identity.role {
                NodeRole::Manager => match daemon
                    .files
                    .load_keys()?
                    .ok_or("this manager's keys.json is missing")?
                {
                    StoredKeys::Open(keys, at_rest) => {
                        daemon.set_at_rest(Some(at_rest));
                        let identity = daemon.files.open_identity(identity, &keys.data_key)?;
                        Role::Manager(
                            daemon
                                .start_manager(identity, keys)
                                .await
                                .map_err(|e| e.to_string())?,
                        )
                    }
                    StoredKeys::Locked(keys) => {
                        tracing::warn!(
                            "autolock: this manager is locked until `docker swarm unlock`"
                        );
                        Role::Locked(Arc::new(Locked { identity, keys }))
                    }
                },
                NodeRole::Worker => Role::Worker(
                    daemon
                        .start_worker(identity)
                        .await
                        .map_err(|e| e.to_string())?,
                ),
            };
            daemon.set_role(role);
        }
        tokio::spawn(heartbeat_loop(Arc::downgrade(&daemon)));
        tokio::spawn(autolock::keys_at_rest_loop(Arc::downgrade(&daemon)));
        Ok(daemon)
    }

    pub fn role(&self) -> Role {
        self.role.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_role(&self, role: Role) {
        *self.role.write().unwrap_or_else(|e| e.into_inner()) = role;
    }

    pub fn config(&self) -> &DaemonConfig {
        &self.cfg
    }

    pub fn description(&self) -> NodeDescription {
        self.description
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The manager runtime, or Docker's 503 for a worker or a standalone node.
    pub fn manager(&self) -> Result<Arc<Manager>> {
        match self.role() {
            Role::Manager(m) => Ok(m),
            Role::Worker(_) => Err(ApiError::Unavailable(NOT_A_MANAGER.into())),
            Role::Inactive => Err(ApiError::Unavailable(NOT_IN_SWARM.into())),
            Role::Locked(_) => Err(ApiError::Unavailable(SWARM_LOCKED.into())),
        }
    }

    async fn bind(self: &Arc<Self>, addr: &str) -> Result<AbortHandle> {
        (self.binder)(addr.to_string(), self.clone())
            .await
            .map_err(|e| ApiError::Invalid(format!("cannot listen on {addr}: {e}")))
    }

    /// Opens the Raft database (its entries and snapshots sealed with the data key) and starts
    /// this manager's Raft member as `raft_id`; on failure the node port that was bound for it
    /// (`server`) is closed again.
    async fn start_raft(
        &self,
        raft_id: u64,
        data_key: &DataKey,
        server: &AbortHandle,
    ) -> Result<Arc<RaftNode>> {
        let sealer = Arc::new(data_key.clone());
        let started = match shoal_raft::open_database(self.files.dir(), sealer) {
            Ok(db) => RaftNode::start(db, raft_id, &self.cfg.timing, self.transport.clone())
                .await
                .map_err(internal),
            Err(e) => Err(internal(e)),
        };
        if started.is_err() {
            server.abort();
        }
        started.map(Arc::new)
    }

    fn effective_addrs(&self, listen: &str, advertise: &str) -> Result<(String, String)> {
        let listen = if listen.is_empty() || listen == DEFAULT_LISTEN {
            self.cfg.listen_addr.clone()
        } else {
            listen.to_string()
        };
        let port = port_of(&listen)
            .ok_or_else(|| ApiError::invalid(format!("invalid listen address {listen}: no port")))?
            .to_string();
        let advertise = if advertise.is_empty() {
            let h = host_of(&listen);
            if h == "0.0.0.0" || h == "::" || h.is_empty() {
                return Err(ApiError::invalid(
                    "could not choose an IP address to advertise since the listen address is unspecified; use --advertise-addr",
                ));
            }
            listen.clone()
        } else if advertise.contains(':')
            && !advertise.starts_with('[')
            && advertise.matches(':').count() == 1
        {
            advertise.to_string()
        } else {
            format!("{advertise}:{port}")
        };
        Ok((listen, advertise))
    }

    /// Presents `identity`'s certificate from now on, on calls and on the node port.
    fn use_certificate(&self, identity: &Identity) -> Result<()> {
        let cert = identity.cert.as_ref().ok_or_else(|| {
            internal("this node holds no certificate (it joined before mutual TLS): leave the swarm and join again")
        })?;
        self.transport
            .set_certificate(Some(cert))
            .map_err(internal)?;
        self.show_trust_root(cert);
        Ok(())
    }

    /// The node's description shows the root it trusts and who issued its certificate
    /// (`docker node inspect`'s `TLSInfo`).
    fn show_trust_root(&self, cert: &NodeCert) {
        self.description
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tls_info =
            ca::node_tls_info(&cert.cert_pem, &cert.ca_pem).or_else(|| ca::tls_info(&cert.ca_pem));
    }

    /// The node port's TLS configuration, while this node is part of a swarm.
    pub fn tls_server_config(&self) -> Option<Arc<shoal_raft::tls::ServerConfig>> {
        self.transport.server_config()
    }

    async fn start_manager(
        self: &Arc<Self>,
        mut identity: Identity,
        keys: Keys,
    ) -> Result<Arc<Manager>> {
        self.use_certificate(&identity)?;
        // Not on a manager's disk: it follows from the data key.
        identity.secret = keys.data_key.node_secret(&identity.node_id);
        let server = self.bind(&identity.listen_addr).await?;
        self.run_manager(identity, keys, server).await
    }

    /// Starts the manager's Raft member and duties behind the node port `server`, with the
    /// keys in hand: the managers' Raft calls are checked from the first one.
    async fn run_manager(
        &self,
        identity: Identity,
        keys: Keys,
        server: AbortHandle,
    ) -> Result<Arc<Manager>> {
        self.transport
            .set_credential(Some(keys.data_key.manager_credential()));
        let raft = self
            .start_raft(identity.raft_id, &keys.data_key, &server)
            .await?;
        Ok(Manager::launch(
            identity,
            raft,
            keys,
            self.cfg.timing.clone(),
            self.transport.clone(),
            server,
        ))
    }

    /// A running manager's identity as `node.json` holds it (its key opened), else the one it
    /// started with.
    fn manager_identity(&self, m: &Manager) -> Identity {
        self.files
            .load_identity()
            .ok()
            .flatten()
            .unwrap_or_else(|| m.identity.clone())
    }

    async fn start_worker(self: &Arc<Self>, identity: Identity) -> Result<Arc<Worker>> {
        self.use_certificate(&identity)?;
        self.transport
            .set_credential(Some(format!("{}:{}", identity.node_id, identity.secret)));
        let server = self.bind(&identity.listen_addr).await?;
        Ok(Arc::new(Worker {
            identity: Mutex::new(identity),
            server,
        }))
    }

    /// The Raft member of this node, for Raft RPCs from other managers.
    pub fn raft_node(&self) -> Result<Arc<RaftNode>> {
        match self.role() {
            Role::Manager(m) => Ok(m.raft.clone()),
            _ => Err(ApiError::Unavailable("this node is not a manager".into())),
        }
    }

    /// `/internal/join` from a node that wants to join.
    pub async fn internal_join(&self, req: JoinReq) -> Result<JoinResp> {
        let m = self.manager()?;
        if !m.raft.is_leader() {
            return m.to_leader(PATH_JOIN, &req, JOIN_TIMEOUT).await;
        }
        m.admit(req).await
    }

    pub async fn internal_heartbeat(&self, req: HeartbeatReq) -> Result<HeartbeatResp> {
        let m = self.manager()?;
        if !m.raft.is_leader() {
            return m.to_leader(PATH_HEARTBEAT, &req, CALL_TIMEOUT).await;
        }
        Ok(m.heartbeat(req))
    }

    /// `/internal/raft-join` from a manager that joined and runs its Raft member.
    pub async fn internal_raft_join(&self, req: RaftJoinReq) -> Result<()> {
        let m = self.manager()?;
        if !m.raft.is_leader() {
            return m.to_leader(PATH_RAFT_JOIN, &req, JOIN_TIMEOUT).await;
        }
        m.add_joined_manager(&req.node_id).await
    }

    pub async fn internal_leave(&self, req: LeaveReq) -> Result<()> {
        let m = self.manager()?;
        // A departing leader asks right after it stepped down: this manager may be the one
        // elected while the call waits.
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            if m.raft.is_leader() {
                return m.release(&req.node_id).await;
            }
            match m.to_leader(PATH_LEAVE, &req, CALL_TIMEOUT).await {
                Err(_) if m.raft.is_leader() && Instant::now() < deadline => {}
                other => return other,
            }
        }
    }

    /// `/internal/propose`: a write forwarded by another manager. Only the leader takes it.
    pub async fn internal_propose(&self, req: Request) -> Result<Response> {
        let m = self.manager()?;
        match m.raft.write(req).await {
            Ok(r) => Ok(r),
            Err(e) => Err(ApiError::Unavailable(format!("not the leader: {e}"))),
        }
    }

    /// Stops whatever runs, for a clean shutdown. Nothing is forgotten.
    pub async fn shutdown(&self) {
        match self.role() {
            Role::Manager(m) => m.stop().await,
            Role::Worker(w) => w.server.abort(),
            Role::Inactive | Role::Locked(_) => {}
        }
    }
}

/// `Result<_, String>` for daemon start-up, where the binary adds context.
pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, String>;
}

fn new_raft_id() -> u64 {
    rand::thread_rng().gen_range(1..u64::MAX / 2)
}

/// How long a node certificate is valid: the cluster's `--cert-expiry` (Swarm's 90 days by
/// default), at least an hour.
fn node_cert_validity(spec: &Spec) -> Duration {
    Duration::from_nanos(spec.ca_config.node_cert_expiry.max(0) as u64).max(ca::MIN_NODE_VALIDITY)
}

/// The cluster spec with Swarm's defaults where the request left zeros. The Raft snapshot
/// settings and the heartbeat period are the managers' timing profile's (Swarm's own in the
/// standard profile), so that the spec shows what the cluster does.
pub(crate) fn cluster_spec(mut spec: Spec, timing: &Timing) -> Spec {
    if spec.name.is_empty() {
        spec.name = "default".into();
    }
    if spec.orchestration.task_history_retention_limit.is_none() {
        spec.orchestration.task_history_retention_limit = Some(5);
    }
    if spec.raft.snapshot_interval == 0 {
        spec.raft.snapshot_interval = timing.snapshot_every;
    }
    if spec.raft.keep_old_snapshots.is_none() {
        spec.raft.keep_old_snapshots = Some(0);
    }
    if spec.raft.log_entries_for_slow_followers == 0 {
        spec.raft.log_entries_for_slow_followers = timing.snapshot_keep;
    }
    if spec.raft.election_tick == 0 {
        spec.raft.election_tick = 10;
    }
    if spec.raft.heartbeat_tick == 0 {
        spec.raft.heartbeat_tick = 1;
    }
    if spec.dispatcher.heartbeat_period == 0 {
        spec.dispatcher.heartbeat_period = timing.node_heartbeat.as_nanos() as i64;
    }
    if spec.ca_config.node_cert_expiry == 0 {
        spec.ca_config.node_cert_expiry = 90 * 24 * 3600 * 1_000_000_000;
    }
    spec
}

fn ingress_network() -> Network {
    let mut options = BTreeMap::new();
    options.insert(
        "com.docker.network.driver.overlay.vxlanid_list".to_string(),
        "4096".to_string(),
    );
    let ipam = IPAMOptions {
        driver: Driver {
            name: "default".into(),
            ..Default::default()
        },
        configs: vec![IPAMConfig {
            subnet: "10.0.0.0/24".into(),
            gateway: "10.0.0.1".into(),
            ..Default::default()
        }],
    };
    let mut labels = BTreeMap::new();
    labels.insert("com.docker.swarm.internal".to_string(), "true".to_string());
    Network {
        id: new_id(),
        spec: NetworkSpec {
            name: "ingress".into(),
            labels,
            driver_configuration: Some(Driver {
                name: "overlay".into(),
                ..Default::default()
            }),
            ingress: true,
            ipam_options: Some(ipam.clone()),
            scope: "swarm".into(),
            ..Default::default()
        },
        driver_state: Driver {
            name: "overlay".into(),
            options,
        },
        ipam_options: Some(ipam),
        ..Default::default()
    }
}
