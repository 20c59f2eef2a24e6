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

mod autolock;
mod dispatch;
mod engines;
mod liveness;
pub use engines::EngineNode;
pub mod logs;
mod manager;
pub mod mesh;
pub mod netview;
mod recovery;
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

    /// Opens the Raft database and starts this manager's Raft member as `raft_id`; on failure
    /// the node port that was bound for it (`server`) is closed again.
    async fn start_raft(&self, raft_id: u64, server: &AbortHandle) -> Result<Arc<RaftNode>> {
        let started = match shoal_raft::open_database(self.files.dir()) {
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
        self.transport
            .set_credential(Some(keys.data_key.manager_credential()));
        let server = self.bind(&identity.listen_addr).await?;
        let raft = self.start_raft(identity.raft_id, &server).await?;
        Ok(Manager::launch(
            identity,
            raft,
            keys,
            self.cfg.timing.clone(),
            self.transport.clone(),
            server,
        ))
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

    /// `POST /swarm/init`: a new cluster with this node as its only manager.
    /// With `ForceNewCluster`, a manager of a cluster that lost its quorum becomes its only
    /// manager instead (see `recovery`); on a worker that is refused as Docker does, and on a
    /// standalone node it is a plain init, as with Docker.
    pub async fn init(self: &Arc<Self>, req: InitRequest) -> Result<String> {
        let _t = self.transition.lock().await;
        match self.role() {
            Role::Inactive => {}
            Role::Manager(m) if req.force_new_cluster => {
                return self.force_new_cluster(m, &req).await
            }
            Role::Worker(_) if req.force_new_cluster => {
                return Err(ApiError::Unavailable(NOT_A_MANAGER.into()))
            }
            _ => return Err(ApiError::Unavailable(ALREADY_IN_SWARM.into())),
        }
        crate::ca_config::plan_ca_change(None, "", None, &req.spec.ca_config)?;
        crate::unsupported::settle_swarm_spec(
            &cluster_spec(Spec::default(), &self.cfg.timing),
            &mut req.spec.clone(),
        )?;
        let (listen, advertise) = self.effective_addrs(&req.listen_addr, &req.advertise_addr)?;
        crate::unsupported::check_data_path_addr(&req.data_path_addr, &advertise)?;
        let node_id = new_id();
        let raft_id = new_raft_id();
        let cluster_id = new_id();
        let autolock = req.auto_lock_managers || req.spec.encryption_config.auto_lock_managers;
        let mut spec = cluster_spec(req.spec.clone(), &self.cfg.timing);
        spec.encryption_config.auto_lock_managers = autolock;
        let ca = RootCa::generate().map_err(internal)?;
        let tls_info = ca::tls_info(&ca.cert_pem).unwrap_or_default();
        let root = ca.cert_der().map_err(internal)?;
        let (key_pem, csr) = ca::node_key_and_csr().map_err(internal)?;
        let cert_pem = ca
            .issue(
                &csr,
                &node_id,
                NodeRole::Manager,
                &cluster_id,
                node_cert_validity(&spec),
            )
            .map_err(internal)?;
        let cert = NodeCert {
            ca_pem: ca.cert_pem.clone(),
            cert_pem,
            key_pem,
        };
        let keys = Keys {
            data_key: DataKey::generate(),
            root_digest: tokens::digest(&root),
            ca: Some(ca),
        };
        let (at_rest, unlock_key) = if autolock {
            let kek = Kek::generate();
            let sealed = kek.seal_for_cluster(&keys.data_key);
            (AtRest::UnlockKey(kek), sealed)
        } else {
            (AtRest::KekFile(Kek::generate()), Vec::new())
        };
        let identity = Identity {
            node_id: node_id.clone(),
            raft_id,
            role: NodeRole::Manager,
            cluster_id: cluster_id.clone(),
            listen_addr: listen,
            advertise_addr: advertise.clone(),
            managers: vec![advertise.clone()],
            secret: keys.data_key.node_secret(&node_id),
            cert: Some(cert),
        };
        self.files.wipe().map_err(internal)?;
        self.save_keys(&keys, at_rest).map_err(internal)?;
        self.files.save_identity(&identity).map_err(internal)?;
        let result = async {
            let m = self.start_manager(identity, keys).await?;
            let mut members = BTreeMap::new();
            members.insert(
                raft_id,
                BasicNode {
                    addr: advertise.clone(),
                },
            );
            if let Err(e) = m.raft.raft.initialize(members).await {
                m.stop().await;
                return Err(internal(e));
            }
            let cluster = Cluster {
                info: ClusterInfo {
                    id: cluster_id,
                    spec,
                    tls_info,
                    default_addr_pool: if req.default_addr_pool.is_empty() {
                        vec!["10.0.0.0/8".into()]
                    } else {
                        req.default_addr_pool.clone()
                    },
                    subnet_size: if req.subnet_size == 0 {
                        24
                    } else {
                        req.subnet_size
                    },
                    data_path_port: if req.data_path_port == 0 {
                        4789
                    } else {
                        req.data_path_port
                    },
                    ..Default::default()
                },
                join_tokens: tokens::generate(&root),
                unlock_key,
                ..Default::default()
            };
            let node = Node {
                id: node_id.clone(),
                spec: NodeSpec {
                    role: NodeRole::Manager,
                    availability: req.availability,
                    ..Default::default()
                },
                description: self.description(),
                status: NodeStatus {
                    state: NodeState::Ready,
                    addr: host_of(&advertise),
                    ..Default::default()
                },
                // The first manager leads; the leader's monitor keeps the stored flag
                // current (so that `docker events` shows leadership changes), while the API
                // derives it from Raft when asked.
                manager_status: Some(ManagerStatus {
                    leader: true,
                    reachability: Reachability::Reachable,
                    addr: advertise.clone(),
                }),
                ..Default::default()
            };
            let cmd = Command::InitCluster {
                cluster: Box::new(cluster),
                node: Box::new(node),
                member: Member {
                    raft_id,
                    addr: advertise.clone(),
                },
                ingress: Box::new(ingress_network()),
            };
            if let Err(e) = m.propose(cmd).await {
                m.stop().await;
                return Err(e);
            }
            Ok(m)
        }
        .await;
        match result {
            Ok(m) => {
                self.set_role(Role::Manager(m));
                Ok(node_id)
            }
            Err(e) => {
                let _ = self.files.wipe();
                self.set_at_rest(None);
                Err(e)
            }
        }
    }

    /// `POST /swarm/join`: join the cluster a manager at one of `remote_addrs` belongs to.
    pub async fn join(self: &Arc<Self>, req: JoinRequest) -> Result<()> {
        let _t = self.transition.lock().await;
        if !matches!(self.role(), Role::Inactive) {
            return Err(ApiError::Unavailable(ALREADY_IN_SWARM.into()));
        }
        if req.remote_addrs.is_empty() {
            return Err(ApiError::invalid(
                "at least 1 RemoteAddr is required to join",
            ));
        }
        let Some((digest, _)) = tokens::parse(&req.join_token) else {
            return Err(ApiError::invalid("invalid join token"));
        };
        let digest = digest.to_string();
        // The key is made here and stays here: the manager signs a request for it.
        let (key_pem, csr) = ca::node_key_and_csr().map_err(internal)?;
        let (listen, advertise) = self.effective_addrs(&req.listen_addr, &req.advertise_addr)?;
        crate::unsupported::check_data_path_addr(&req.data_path_addr, &advertise)?;
        self.files.wipe().map_err(internal)?;
        // Listening already proves the address is ours to use; while the node is not in a
        // swarm it refuses every node-to-node call.
        let server = self.bind(&listen).await?;
        let jr = JoinReq {
            token: req.join_token.clone(),
            addr: advertise.clone(),
            availability: Some(req.availability),
            description: self.description(),
            csr,
        };
        let pinned = digest.clone();
        let pin: shoal_raft::tls::CaPin = Arc::new(move |der: &[u8]| tokens::digest(der) == pinned);
        let mut last_err = None;
        let mut answer = None;
        for remote in &req.remote_addrs {
            match self
                .transport
                .join::<_, JoinResp>(remote, PATH_JOIN, &jr, pin.clone(), JOIN_TIMEOUT)
                .await
            {
                Ok(r) => {
                    answer = Some((remote.clone(), r));
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let Some((remote, resp)) = answer else {
            server.abort();
            let _ = self.files.wipe();
            let e = last_err
                .map(from_transport)
                .unwrap_or_else(|| internal("no manager answered"));
            return Err(match e {
                ApiError::Unavailable(m) => ApiError::Unavailable(format!(
                    "could not join the swarm at {}: {m}",
                    req.remote_addrs.join(", ")
                )),
                other => other,
            });
        };
        if resp.node_id.is_empty() || resp.raft_id == 0 || resp.node_secret.is_empty() {
            server.abort();
            return Err(ApiError::Unavailable(format!(
                "could not join the swarm at {remote}: the manager assigned no node identity"
            )));
        }
        // The root the manager sends must be the one the token pins (the handshake already
        // checked that the manager's chain holds it).
        let ca_der = shoal_raft::tls::cert_der(&resp.ca_cert).map(|c| c.as_ref().to_vec());
        if !ca_der.is_ok_and(|der| tokens::digest(&der) == digest) || resp.certificate.is_empty() {
            server.abort();
            return Err(ApiError::Unavailable(format!(
                "could not join the swarm at {remote}: {}",
                shoal_raft::tls::CA_MISMATCH
            )));
        }
        let cert = NodeCert {
            ca_pem: resp.ca_cert.clone(),
            cert_pem: resp.certificate.clone(),
            key_pem,
        };
        if let Err(e) = self.transport.set_certificate(Some(&cert)) {
            server.abort();
            return Err(internal(e));
        }
        self.show_trust_root(&cert);
        // The identity is the one the leader assigned.
        let identity = Identity {
            node_id: resp.node_id.clone(),
            raft_id: resp.raft_id,
            role: resp.role,
            cluster_id: resp.cluster_id.clone(),
            listen_addr: listen,
            advertise_addr: advertise,
            managers: resp.managers.clone(),
            secret: resp.node_secret.clone(),
            cert: Some(cert),
        };
        match (resp.role, resp.keys) {
            (NodeRole::Manager, Some(k)) => {
                let keys = Keys {
                    data_key: k.data_key,
                    root_digest: k.root_digest,
                    ca: k.ca,
                };
                // Wrapped by a KEK of its own until the replicated state shows whether the
                // cluster is autolocked (`autolock::keys_at_rest_loop`).
                let saved = self
                    .save_keys(&keys, AtRest::KekFile(Kek::generate()))
                    .and_then(|()| self.files.save_identity(&identity));
                if let Err(e) = saved {
                    server.abort();
                    let _ = self.files.wipe();
                    return Err(internal(e));
                }
                // The Raft member starts under the assigned ID, with the keys in hand: the
                // leader's Raft calls are checked from the first one.
                self.transport
                    .set_credential(Some(keys.data_key.manager_credential()));
                let raft = self.start_raft(identity.raft_id, &server).await?;
                let node_id = identity.node_id.clone();
                let m = Manager::launch(
                    identity,
                    raft,
                    keys,
                    self.cfg.timing.clone(),
                    self.transport.clone(),
                    server,
                );
                self.set_role(Role::Manager(m));
                // The leader replicates to the new member before it answers. Should that
                // fail, the leader's monitor adds it once its heartbeats say it runs Raft.
                let rj = RaftJoinReq {
                    node_id: node_id.clone(),
                };
                if let Err(e) = self
                    .transport
                    .post::<_, ()>(&remote, PATH_RAFT_JOIN, &rj, JOIN_TIMEOUT)
                    .await
                {
                    tracing::warn!("joined as a manager; not a Raft voter yet: {e}");
                }
            }
            (NodeRole::Manager, None) => {
                server.abort();
                let _ = self.transport.set_certificate(None);
                let _ = self.files.wipe();
                return Err(ApiError::Unavailable(format!(
                    "could not join the swarm at {remote}: the manager sent no keys"
                )));
            }
            (NodeRole::Worker, _) => {
                self.files.save_identity(&identity).map_err(internal)?;
                self.transport
                    .set_credential(Some(format!("{}:{}", identity.node_id, identity.secret)));
                self.set_role(Role::Worker(Arc::new(Worker {
                    identity: Mutex::new(identity),
                    server,
                })));
            }
        }
        Ok(())
    }

    /// `POST /swarm/leave`.
    pub async fn leave(self: &Arc<Self>, force: bool) -> Result<()> {
        let _t = self.transition.lock().await;
        match self.role() {
            Role::Inactive => Err(ApiError::Unavailable(
                "This node is not part of a swarm".into(),
            )),
            Role::Locked(_) => {
                if !force {
                    return Err(ApiError::Unavailable(LEAVE_LOCKED.into()));
                }
                // It cannot reach the Raft group it would leave: like a manager that is gone,
                // the others remove it (`docker node rm --force`).
                self.set_role(Role::Inactive);
                self.set_at_rest(None);
                self.files.wipe().map_err(internal)
            }
            Role::Manager(m) => {
                let (voters, reachable) = {
                    let metrics = m.raft.raft.metrics().borrow().clone();
                    let voters: Vec<u64> =
                        metrics.membership_config.membership().voter_ids().collect();
                    let state = m.raft.replica.read();
                    let reachable = state
                        .nodes
                        .iter()
                        .filter(|n| {
                            n.manager_status
                                .as_ref()
                                .is_some_and(|s| s.reachability == Reachability::Reachable)
                        })
                        .count();
                    (voters, reachable)
                };
                if !force {
                    let msg = if voters.len() <= 1 {
                        "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.".to_string()
                    } else {
                        format!("You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves {} managers out of {}. Without a Raft quorum your swarm will be inaccessible. The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message.", reachable.saturating_sub(1), voters.len())
                    };
                    return Err(ApiError::Unavailable(msg));
                }
                if voters.len() > 1 {
                    m.leave_raft().await;
                }
                m.stop().await;
                self.set_role(Role::Inactive);
                self.set_at_rest(None);
                self.transport.set_credential(None);
                let _ = self.transport.set_certificate(None);
                self.files.wipe().map_err(internal)
            }
            Role::Worker(w) => {
                let identity = w.identity.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let req = LeaveReq {
                    node_id: identity.node_id.clone(),
                };
                for addr in &identity.managers {
                    if self
                        .transport
                        .post::<_, ()>(addr, PATH_LEAVE, &req, CALL_TIMEOUT)
                        .await
                        .is_ok()
                    {
                        break;
                    }
                }
                w.server.abort();
                self.set_role(Role::Inactive);
                self.transport.set_credential(None);
                let _ = self.transport.set_certificate(None);
                self.files.wipe().map_err(internal)
            }
        }
    }

    /// Checks a node-to-node call: first the peer's certificate, then the bearer credential
    /// that backs it. Managers present the managers'
    /// credential, a node presents `ID:SECRET` for calls about itself, and only while it is
    /// part of the cluster (a removed node's secret opens nothing but the heartbeat that tells
    /// it so). A manager calling one particular node (a worker has no managers' credential to
    /// check against) presents that node's call credential (`keys::node_call_credential`).
    /// A node that is not (yet) a manager takes no manager's call: a joining manager starts
    /// its Raft member only once it holds the keys to check the leader's calls.
    pub fn authorize(
        &self,
        peer: Option<&PeerIdentity>,
        bearer: Option<&str>,
        caller: Caller<'_>,
    ) -> Result<()> {
        self.authorize_peer(peer, caller)?;
        self.authorize_bearer(bearer, caller)
    }

    /// What the peer's certificate (its chain already checked against the cluster's root by
    /// the TLS handshake) allows: the role in it decides whether it may act as a manager, the
    /// node ID in it which node it speaks for. On a manager, the state backs both: a node no
    /// longer in it (removed) is refused at once, a manager's certificate kept by a node the
    /// state now holds as a worker (demoted) no longer acts as a manager.
    fn authorize_peer(&self, peer: Option<&PeerIdentity>, caller: Caller<'_>) -> Result<()> {
        let refused = |why: &str| {
            ApiError::Forbidden(format!(
                "node-to-node call without valid credentials for this cluster: {why}"
            ))
        };
        let peer = peer.ok_or_else(|| refused("no client certificate"))?;
        match self.role() {
            Role::Manager(m) => {
                if peer.cluster_id != m.identity.cluster_id {
                    return Err(refused("a certificate of another cluster"));
                }
                let state = m.replica().read();
                let node = state.nodes.get(&peer.node_id);
                // A manager that joined a moment ago has not applied its own admission yet:
                // it cannot tell members from strangers, and takes the CA's word for the role.
                let caught_up = state.nodes.get(&m.identity.node_id).is_some();
                let is_manager = peer.role == PeerRole::Manager
                    && match node {
                        Some(n) => n.spec.role == NodeRole::Manager,
                        None => !caught_up,
                    };
                let ok = match caller {
                    Caller::Manager => is_manager,
                    Caller::Node(id) => is_manager || (peer.node_id == id && node.is_some()),
                    Caller::Heartbeat(id) => is_manager || peer.node_id == id,
                    Caller::Mesh => is_manager || node.is_some(),
                };
                if ok {
                    return Ok(());
                }
                Err(match (node, caller) {
                    (None, _) if caught_up => ApiError::Forbidden(format!(
                        "node {} is not part of this swarm (it was removed or never joined)",
                        peer.node_id
                    )),
                    (_, Caller::Manager) => {
                        refused("a manager's call needs a manager's certificate")
                    }
                    _ => refused("the certificate is another node's"),
                })
            }
            Role::Worker(w) => {
                let cluster = w
                    .identity
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .cluster_id
                    .clone();
                if peer.cluster_id != cluster {
                    return Err(refused("a certificate of another cluster"));
                }
                match caller {
                    Caller::Mesh => Ok(()),
                    Caller::Manager if peer.role == PeerRole::Manager => Ok(()),
                    _ => Err(refused("a manager's call needs a manager's certificate")),
                }
            }
            Role::Inactive => Err(ApiError::Unavailable("this node is not a manager".into())),
            // It binds no node port while locked; a call that raced the lock finds this.
            Role::Locked(_) => Err(ApiError::Unavailable(SWARM_LOCKED.into())),
        }
    }

    fn authorize_bearer(&self, bearer: Option<&str>, caller: Caller<'_>) -> Result<()> {
        let refused = || {
            ApiError::Forbidden(
                "node-to-node call without valid credentials for this cluster".into(),
            )
        };
        match self.role() {
            Role::Manager(m) => {
                let key = &m.keys.data_key;
                let bearer = bearer.ok_or_else(refused)?;
                if matches!(caller, Caller::Mesh) {
                    let own = key.node_mesh_credential(&m.identity.node_id);
                    return if same(bearer, &own) {
                        Ok(())
                    } else {
                        Err(refused())
                    };
                }
                if same(bearer, &m.manager_credential) {
                    return Ok(());
                }
                if matches!(caller, Caller::Manager)
                    && same(bearer, &key.node_call_credential(&m.identity.node_id))
                {
                    return Ok(());
                }
                let (id, member_only) = match caller {
                    Caller::Node(id) => (id, true),
                    Caller::Heartbeat(id) => (id, false),
                    Caller::Manager | Caller::Mesh => return Err(refused()),
                };
                match bearer.split_once(':') {
                    Some((who, secret)) if who == id && same(secret, &key.node_secret(id)) => {
                        if member_only && m.replica().read().nodes.get(id).is_none() {
                            return Err(ApiError::Forbidden(format!(
                                "node {id} is not part of this swarm (it was removed or never joined)"
                            )));
                        }
                        Ok(())
                    }
                    _ => Err(refused()),
                }
            }
            Role::Worker(w) if matches!(caller, Caller::Mesh) => {
                let expected = {
                    let identity = w.identity.lock().unwrap_or_else(|e| e.into_inner());
                    if identity.secret.is_empty() {
                        String::new()
                    } else {
                        crate::keys::mesh_credential(&identity.secret)
                    }
                };
                match bearer {
                    Some(b) if same(b, &expected) => Ok(()),
                    _ => Err(refused()),
                }
            }
            Role::Worker(w) if matches!(caller, Caller::Manager) => {
                let expected = {
                    let identity = w.identity.lock().unwrap_or_else(|e| e.into_inner());
                    if identity.secret.is_empty() {
                        String::new()
                    } else {
                        crate::keys::node_call_credential(&identity.secret)
                    }
                };
                match bearer {
                    // A node that never got a secret has nothing to check against.
                    Some(b) if same(b, &expected) => Ok(()),
                    _ => Err(refused()),
                }
            }
            _ => Err(ApiError::Unavailable("this node is not a manager".into())),
        }
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

    /// Applies what the leader answered to a heartbeat: promotion, demotion, manager list.
    /// Says whether the node changed role.
    async fn on_heartbeat(self: &Arc<Self>, resp: HeartbeatResp) -> bool {
        let _t = self.transition.lock().await;
        if resp.removed {
            if let Role::Worker(w) = self.role() {
                tracing::warn!("this node was removed from the swarm: it leaves it");
                w.server.abort();
                self.set_role(Role::Inactive);
                self.transport.set_credential(None);
                let _ = self.transport.set_certificate(None);
                if let Err(e) = self.files.wipe() {
                    tracing::error!("cannot forget the swarm: {e}");
                }
                return true;
            }
            return false;
        }
        self.follow_root(&resp.root_ca, &resp.issuer_ca).await;
        match self.role() {
            Role::Worker(w) => {
                let mut identity = w.identity.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if resp.role == NodeRole::Manager {
                    let Some(k) = resp.keys else { return false };
                    tracing::info!("promoted: this node becomes a manager");
                    let keys = Keys {
                        data_key: k.data_key,
                        root_digest: k.root_digest,
                        ca: k.ca,
                    };
                    identity.role = NodeRole::Manager;
                    identity.managers = resp.managers;
                    // Its Raft calls need a manager's certificate: asked for first, with the
                    // worker's one; the next heartbeat tries again when it cannot be had.
                    if let Err(e) = self.renew_certificate(&mut identity).await {
                        tracing::warn!("promoted, but no manager certificate yet: {e}");
                        return false;
                    }
                    w.server.abort();
                    let _ = std::fs::remove_file(self.files.raft_db());
                    if self
                        .save_keys(&keys, AtRest::KekFile(Kek::generate()))
                        .is_err()
                        || self.files.save_identity(&identity).is_err()
                    {
                        return false;
                    }
                    match self.start_manager(identity, keys).await {
                        Ok(m) => {
                            self.set_role(Role::Manager(m));
                            return true;
                        }
                        Err(e) => tracing::error!("cannot become a manager: {e}"),
                    }
                } else if !resp.managers.is_empty() && resp.managers != identity.managers {
                    identity.managers = resp.managers;
                    let _ = self.files.save_identity(&identity);
                    *w.identity.lock().unwrap_or_else(|e| e.into_inner()) = identity;
                }
            }
            Role::Manager(m) => {
                if resp.role == NodeRole::Worker && !resp.voter {
                    tracing::info!("demoted: this node becomes a worker");
                    let mut identity = m.identity.clone();
                    identity.role = NodeRole::Worker;
                    identity.managers = resp.managers;
                    // A worker's certificate in place of the manager's (which the managers
                    // refuse on manager routes from now on: the state says worker).
                    if let Err(e) = self.renew_certificate(&mut identity).await {
                        tracing::warn!("demoted, and no worker certificate yet: {e}");
                    }
                    m.stop().await;
                    let _ = std::fs::remove_file(self.files.raft_db());
                    let _ = self.files.remove_keys();
                    self.set_at_rest(None);
                    if self.files.save_identity(&identity).is_err() {
                        return false;
                    }
                    match self.start_worker(identity).await {
                        Ok(w) => {
                            self.set_role(Role::Worker(w));
                            return true;
                        }
                        Err(e) => tracing::error!("cannot become a worker: {e}"),
                    }
                }
            }
            Role::Inactive | Role::Locked(_) => {}
        }
        false
    }

    /// Asks a manager for a certificate for a new key, issued for the role the cluster holds
    /// for this node, and keeps it in `identity` (the caller saves it).
    async fn renew_certificate(&self, identity: &mut Identity) -> Result<()> {
        let (key_pem, csr) = ca::node_key_and_csr().map_err(internal)?;
        let req = NodeCertReq {
            node_id: identity.node_id.clone(),
            csr,
        };
        let mut last = None;
        for addr in &identity.managers {
            match self
                .transport
                .post::<_, NodeCertResp>(addr, PATH_NODE_CERT, &req, CALL_TIMEOUT)
                .await
            {
                Ok(resp) => {
                    let cert = NodeCert {
                        ca_pem: resp.ca_cert,
                        cert_pem: resp.certificate,
                        key_pem,
                    };
                    self.transport
                        .set_certificate(Some(&cert))
                        .map_err(internal)?;
                    self.show_trust_root(&cert);
                    identity.cert = Some(cert);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .map(from_transport)
            .unwrap_or_else(|| internal("no manager known")))
    }

    /// Renews this node's certificate once it is due (see `ca::renewal_due`), so that it
    /// never expires while the node runs; a failure is tried again on the next beat.
    pub(super) async fn renew_if_due(&self) {
        let now = chrono::Utc::now().timestamp();
        let due = || {
            self.transport
                .certificate()
                .is_some_and(|c| ca::renewal_due(&c.cert_pem, now, self.renew_at))
        };
        if !due() {
            return;
        }
        let _t = self.transition.lock().await;
        if !due() {
            return;
        }
        self.renew_held().await;
    }

    /// Renews this node's certificate now; the caller holds `transition`. A failure is tried
    /// again on the next beat.
    async fn renew_held(&self) {
        match self.role() {
            Role::Inactive | Role::Locked(_) => {}
            Role::Manager(m) => {
                // The running manager keeps its identity in memory; the renewed certificate
                // is what the transport presents and what `node.json` holds.
                let mut identity = self
                    .files
                    .load_identity()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| m.identity.clone());
                identity.managers = m.manager_addrs();
                match self.renew_certificate(&mut identity).await {
                    Ok(()) => {
                        tracing::info!("this node's certificate was renewed");
                        if let Err(e) = self.files.save_identity(&identity) {
                            tracing::error!("cannot keep the renewed certificate: {e}");
                        }
                    }
                    Err(e) => tracing::warn!("cannot renew this node's certificate yet: {e}"),
                }
            }
            Role::Worker(w) => {
                let mut identity = w.identity.lock().unwrap_or_else(|e| e.into_inner()).clone();
                match self.renew_certificate(&mut identity).await {
                    Ok(()) => {
                        tracing::info!("this node's certificate was renewed");
                        if let Err(e) = self.files.save_identity(&identity) {
                            tracing::error!("cannot keep the renewed certificate: {e}");
                        }
                        *w.identity.lock().unwrap_or_else(|e| e.into_inner()) = identity;
                    }
                    Err(e) => tracing::warn!("cannot renew this node's certificate yet: {e}"),
                }
            }
        }
    }

    /// `/internal/node-cert`: a certificate for a node of the cluster, for the role the
    /// cluster holds for it (a promotion or demotion changes it), valid as long as the
    /// cluster's `--cert-expiry` says.
    pub async fn internal_node_cert(&self, req: NodeCertReq) -> Result<NodeCertResp> {
        let m = self.manager()?;
        let (role, cluster_id, validity) = {
            let state = m.replica().read();
            let node = state.nodes.get(&req.node_id).ok_or_else(|| {
                ApiError::Forbidden(format!("node {} is not part of this swarm", req.node_id))
            })?;
            let c = state.cluster()?;
            (
                node.spec.role,
                c.info.id.clone(),
                node_cert_validity(&c.info.spec),
            )
        };
        let (certificate, ca_cert) =
            m.issue_node_cert(&req.csr, &req.node_id, role, &cluster_id, validity)?;
        Ok(NodeCertResp {
            certificate,
            ca_cert,
        })
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

/// Who a node-to-node call claims to come from.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// Another manager (Raft, forwarded writes).
    Manager,
    /// The node with this ID, speaking for itself (leave, tasks, status), or a manager on its
    /// behalf. Refused once the node is no longer part of the cluster.
    Node(&'a str),
    /// The node with this ID reporting in: a removed node still gets the answer that tells it
    /// it was removed (and nothing else).
    Heartbeat(&'a str),
    /// Any node of the cluster, opening a routing-mesh pipe to one of this node's tasks.
    Mesh,
}

/// Compares a presented secret with the expected one in time that does not depend on where
/// they differ; nothing matches an empty expectation.
fn same(given: &str, expected: &str) -> bool {
    tokens::matches(given, expected)
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
