//! What a node does with the leader's heartbeat answers (promotion, demotion, removal,
//! the manager list) and its certificate: renewed before expiry, for a new role, or for a
//! rotated root; `/internal/node-cert` on the managers.

use super::*;

impl Daemon {
    /// Applies what the leader answered to a heartbeat: promotion, demotion, manager list.
    /// Says whether the node changed role.
    pub(super) async fn on_heartbeat(self: &Arc<Self>, resp: HeartbeatResp) -> bool {
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
                    // The worker's identity first (its key in clear, as a worker keeps it),
                    // then the keys: a crash in between leaves a worker with a stale file.
                    if self.files.save_identity(&identity).is_err() {
                        return false;
                    }
                    let _ = self.files.remove_keys();
                    self.set_at_rest(None);
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
    pub(super) async fn renew_certificate(&self, identity: &mut Identity) -> Result<()> {
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
    pub(super) async fn renew_held(&self) {
        match self.role() {
            Role::Inactive | Role::Locked(_) => {}
            Role::Manager(m) => {
                // The running manager keeps its identity in memory; the renewed certificate
                // is what the transport presents and what `node.json` holds.
                let mut identity = self.manager_identity(&m);
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
}
