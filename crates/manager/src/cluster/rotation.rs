//! Root CA rotation (`docker swarm ca --rotate`), as Swarm does it, without downtime.
//!
//! A rotation is recorded in the replicated state (`Cluster::root_rotation`): the new root
//! with its key sealed with the data key, and the new root cross-signed by the current one.
//! While it runs, every manager issues node certificates with the new root and hands them
//! out with the cross-signed certificate after them, so a node that trusts only the current
//! root still takes them; every node trusts the current root only. Each heartbeat answer names
//! the issuer node certificates must have: a node whose certificate another issued renews it
//! at once. The leader ends the rotation once every node of the swarm reports a certificate of
//! the new root (down nodes too, as Swarm: remove a node that will not come back): the new
//! root becomes the cluster's, with new join tokens, and nodes take it as their only trust
//! root on their next heartbeat. Managers keep the current root's key wrapped in `keys.json`
//! (`Daemon::secure_keys_at_rest`).
//!
//! This module owns who signs node certificates now and the leader's end of a rotation. It
//! does not start one (`controlapi::update_cluster` does) and builds no TLS configuration.

use super::*;
use shoal_store::{RootRotation, SealedRootCa};

/// Who issues node certificates now, and what goes with them.
pub(super) struct Signing {
    pub ca: RootCa,
    /// What a node presents after a certificate `ca` issued (the cross-signed new root during
    /// a rotation; empty otherwise).
    pub chain: String,
    /// The cluster's root: what nodes trust.
    pub root_pem: String,
}

impl Manager {
    fn open_root(&self, sealed: &SealedRootCa) -> Result<RootCa> {
        let json = self
            .keys
            .data_key
            .open(&sealed.sealed)
            .map_err(|e| internal(format!("the sealed root CA key: {e}")))?;
        serde_json::from_slice(&json).map_err(|e| internal(format!("the sealed root CA: {e}")))
    }

    /// A root CA sealed for the replicated state.
    pub(crate) fn seal_root(&self, ca: &RootCa) -> Result<SealedRootCa> {
        let json = serde_json::to_vec(ca).map_err(internal)?;
        Ok(SealedRootCa {
            cert_pem: ca.cert_pem.clone(),
            sealed: self.keys.data_key.seal(&json),
        })
    }

    /// The cluster's root CA with its key: the one a finished rotation left in the state, or
    /// (no rotation ever finished) the one this manager was given.
    pub(crate) fn current_root(&self) -> Result<RootCa> {
        let sealed = self.replica().read().cluster()?.root_ca.clone();
        match sealed {
            Some(s) => self.open_root(&s),
            None => {
                self.keys.ca.clone().ok_or_else(|| {
                    ApiError::Unavailable("this manager holds no root CA key".into())
                })
            }
        }
    }

    /// The root rotation under way, if any.
    pub(crate) fn root_rotation(&self) -> Result<Option<RootRotation>> {
        Ok(self.replica().read().cluster()?.root_rotation.clone())
    }

    pub(super) fn signing(&self) -> Result<Signing> {
        let root = self.current_root()?;
        match self.root_rotation()? {
            Some(r) => Ok(Signing {
                ca: self.open_root(&r.new_root)?,
                chain: r.cross_signed,
                root_pem: root.cert_pem,
            }),
            None => Ok(Signing {
                root_pem: root.cert_pem.clone(),
                ca: root,
                chain: String::new(),
            }),
        }
    }

    /// Issues a node certificate: the certificate with what the node presents after it, and
    /// the cluster's root.
    pub(super) fn issue_node_cert(
        &self,
        csr: &str,
        node_id: &str,
        role: NodeRole,
        cluster_id: &str,
        validity: Duration,
    ) -> Result<(String, String)> {
        let s = self.signing()?;
        let leaf =
            s.ca.issue(csr, node_id, role, cluster_id, validity)
                .map_err(|e| match e {
                    ca::CaError::Csr(_) => ApiError::Invalid(e.to_string()),
                    other => internal(other),
                })?;
        Ok((format!("{leaf}{}", s.chain), s.root_pem))
    }

    /// This manager's keys as they are now: the data key, and the cluster's current root.
    pub(super) fn keys_now(&self) -> Result<Keys> {
        let ca = self.current_root()?;
        Ok(Keys {
            data_key: self.keys.data_key.clone(),
            root_digest: ca.digest().map_err(internal)?,
            ca: Some(ca),
        })
    }

    /// What a heartbeat answer says of the root: the cluster's root certificate, and the
    /// certificate of the root that must have issued the node's (the new one while a rotation
    /// runs). Empty in a cluster made before mutual TLS.
    pub(super) fn roots_for_nodes(&self) -> (String, String) {
        let state = self.replica().read();
        let Ok(c) = state.cluster() else {
            return Default::default();
        };
        let root = c.info.tls_info.trust_root.clone();
        let issuer = c
            .root_rotation
            .as_ref()
            .map(|r| r.new_root.cert_pem.clone())
            .unwrap_or_else(|| root.clone());
        (root, issuer)
    }

    /// On the leader: ends the rotation under way once every node reports a certificate of
    /// the new root.
    async fn finish_rotation_if_converged(&self) -> Result<()> {
        let (new_root, want) = {
            let state = self.replica().read();
            let c = state.cluster()?;
            let Some(r) = &c.root_rotation else {
                return Ok(());
            };
            let want = ca::tls_info(&r.new_root.cert_pem)
                .ok_or_else(|| internal("the new root CA certificate is unreadable"))?;
            let converged = state.nodes.iter().all(|n| {
                n.description.tls_info.as_ref().is_some_and(|t| {
                    t.cert_issuer_subject == want.cert_issuer_subject
                        && t.cert_issuer_public_key == want.cert_issuer_public_key
                })
            });
            if !converged {
                return Ok(());
            }
            (r.new_root.cert_pem.clone(), want)
        };
        let der = shoal_raft::tls::cert_der(&new_root).map_err(internal)?;
        self.propose(Command::FinishRootRotation {
            new_root,
            tls_info: want,
            join_tokens: tokens::seal(&self.keys.data_key, &tokens::generate(der.as_ref())),
        })
        .await?;
        tracing::info!("root rotation finished: the new root CA is the swarm's");
        Ok(())
    }
}

/// The leader's watch over a root rotation.
pub(super) async fn root_rotation_loop(manager: std::sync::Weak<Manager>) {
    loop {
        let period = match manager.upgrade() {
            Some(m) => m.timing.node_heartbeat,
            None => return,
        };
        tokio::time::sleep((period / 2).max(Duration::from_millis(50))).await;
        let Some(m) = manager.upgrade() else { return };
        if !m.raft.is_leader() {
            continue;
        }
        if let Err(e) = m.finish_rotation_if_converged().await {
            tracing::warn!("cannot finish the root rotation yet: {e}");
        }
    }
}

impl Daemon {
    /// On a heartbeat answer: a node whose certificate was not issued by the root that must
    /// issue them now renews it at once; one whose certificate is right but which trusts
    /// another root than the cluster's takes the cluster's (a rotation finished). The answer
    /// comes over mutual TLS from a manager this node trusts. The caller holds `transition`.
    pub(super) async fn follow_root(&self, root: &str, issuer: &str) {
        if root.is_empty() || issuer.is_empty() {
            return;
        }
        let Some(cert) = self.transport.certificate() else {
            return;
        };
        if !ca::issued_by(&cert.cert_pem, &cert.ca_pem, issuer) {
            tracing::info!("root rotation: this node's certificate is renewed by the new root");
            self.renew_held().await;
            return;
        }
        if cert.ca_pem == root {
            return;
        }
        tracing::info!("root rotation finished: this node trusts the new root CA only");
        let cert = NodeCert {
            ca_pem: root.to_string(),
            ..cert
        };
        if let Err(e) = self.transport.set_certificate(Some(&cert)) {
            tracing::error!("cannot take the new root CA: {e}");
            return;
        }
        self.show_trust_root(&cert);
        let identity = match self.role() {
            Role::Worker(w) => {
                let mut identity = w.identity.lock().unwrap_or_else(|e| e.into_inner());
                identity.cert = Some(cert);
                Some(identity.clone())
            }
            Role::Manager(m) => {
                let mut identity = self.manager_identity(&m);
                identity.cert = Some(cert);
                Some(identity)
            }
            Role::Inactive | Role::Locked(_) => None,
        };
        if let Some(identity) = identity {
            if let Err(e) = self.files.save_identity(&identity) {
                tracing::error!("cannot keep the new root CA: {e}");
            }
        }
    }
}
