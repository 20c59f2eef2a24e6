//! A node joining and leaving clusters: `swarm init` (and `--force-new-cluster`),
//! `swarm join`, `swarm leave`.

use super::*;

impl Daemon {
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
            sealed_key: String::new(),
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
                join_tokens: tokens::seal(&m.keys.data_key, &tokens::generate(&root)),
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
            sealed_key: String::new(),
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
                // The Raft member starts under the assigned ID.
                let node_id = identity.node_id.clone();
                let m = self.run_manager(identity, keys, server).await?;
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
}
