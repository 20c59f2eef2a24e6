//! `docker swarm init --force-new-cluster`: a manager of a cluster that lost its quorum makes
//! itself the only manager of the same cluster, with all of its state.
//!
//! The Raft side is `shoal_raft::force_new_cluster` (the log and vote are rewritten while the
//! member is stopped; it starts again as the only voter and the leader); the state's side is
//! `Command::ForceNewCluster`, written in the same step so that both happen or neither.

use super::*;

impl Daemon {
    /// Forces a new cluster out of this manager's state. Called with the transition lock held.
    pub(super) async fn force_new_cluster(
        self: &Arc<Self>,
        m: Arc<Manager>,
        req: &InitRequest,
    ) -> Result<String> {
        let mut identity = m.identity.clone();
        self.check_same_addrs(&identity, req)?;
        // Docker merges other init settings into the recovered cluster's; shoal keeps the
        // cluster's own and says so rather than dropping what was asked for.
        if req.spec != shoal_types::swarm::Spec::default() || req.auto_lock_managers {
            return Err(ApiError::invalid(
                "--force-new-cluster keeps the cluster's settings: give other swarm settings (--autolock, --task-history-limit, …) afterwards with `docker swarm update`",
            ));
        }
        tracing::warn!("forcing a new cluster: this manager becomes the only one");
        let db = m.raft.database();
        m.stop_raft().await;
        let cmd = Command::ForceNewCluster {
            node_id: identity.node_id.clone(),
        };
        let forced = shoal_raft::force_new_cluster(
            &db,
            identity.raft_id,
            &identity.advertise_addr,
            vec![Request::now(cmd)],
        );
        let forced = match forced {
            Ok(f) => f,
            Err(e) => {
                // Nothing was written: the member starts again as it was.
                let restarted = self.restart_manager(&m, identity.clone(), db).await;
                return Err(match restarted {
                    Ok(()) => internal(e),
                    Err(again) => internal(format!(
                        "{e}; and the Raft member did not start again: {again}"
                    )),
                });
            }
        };
        identity.managers = vec![identity.advertise_addr.clone()];
        if let Err(e) = self.files.save_identity(&identity) {
            tracing::warn!("cannot save the manager list: {e}");
        }
        self.restart_manager(&m, identity.clone(), db)
            .await
            .map_err(|e| {
                internal(format!(
                    "the new cluster is written but its Raft member did not start ({e}); restart the daemon"
                ))
            })?;
        let fresh = self.manager()?;
        let deadline = Duration::from_secs(10);
        if !fresh.replica().wait_applied(forced.index, deadline).await {
            return Err(ApiError::Unavailable(format!(
                "the new cluster did not start within {deadline:?}"
            )));
        }
        tracing::info!(
            term = forced.term,
            "this manager is the only one of the cluster now"
        );
        Ok(identity.node_id)
    }

    /// A new Raft member on `db` in place of `old`'s, under the same node-to-node server.
    async fn restart_manager(
        &self,
        old: &Manager,
        identity: Identity,
        db: shoal_raft::Disk,
    ) -> std::result::Result<(), String> {
        let raft = RaftNode::start(
            db,
            identity.raft_id,
            &self.cfg.timing,
            self.transport.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let m = Manager::launch(
            identity,
            Arc::new(raft),
            old.keys.clone(),
            self.cfg.timing.clone(),
            self.transport.clone(),
            old.server.clone(),
        );
        self.set_role(Role::Manager(m));
        Ok(())
    }

    /// The node keeps its addresses: other nodes know it by them. An address the request
    /// names explicitly must be the one in use.
    fn check_same_addrs(&self, identity: &Identity, req: &InitRequest) -> Result<()> {
        let listen_given = !(req.listen_addr.is_empty() || req.listen_addr == DEFAULT_LISTEN);
        if !listen_given && req.advertise_addr.is_empty() {
            return Ok(());
        }
        let (listen, advertise) = self.effective_addrs(&req.listen_addr, &req.advertise_addr)?;
        if (listen_given && listen != identity.listen_addr)
            || (!req.advertise_addr.is_empty() && advertise != identity.advertise_addr)
        {
            return Err(ApiError::invalid(format!(
                "--force-new-cluster keeps this manager's addresses (listen {}, advertise {}): leave --listen-addr and --advertise-addr out or give these",
                identity.listen_addr, identity.advertise_addr
            )));
        }
        Ok(())
    }
}
