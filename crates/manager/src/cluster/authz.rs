//! Who may make a node-to-node call: the peer's certificate first, then the bearer
//! credential that backs it (see [`Daemon::authorize`]).

use super::*;

impl Daemon {
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
    pub(super) fn authorize_peer(
        &self,
        peer: Option<&PeerIdentity>,
        caller: Caller<'_>,
    ) -> Result<()> {
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

    pub(super) fn authorize_bearer(&self, bearer: Option<&str>, caller: Caller<'_>) -> Result<()> {
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
