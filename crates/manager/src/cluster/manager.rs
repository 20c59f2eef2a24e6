//! What a manager does for the cluster: proposing (with forwarding to the leader), admitting
//! joining nodes, Raft membership changes, answering heartbeats, recording departures.

use super::*;

impl Manager {
    /// The cluster's join tokens, opened (the state keeps them sealed with the data key).
    pub fn join_tokens(&self, c: &shoal_store::Cluster) -> Result<shoal_types::swarm::JoinTokens> {
        tokens::open(&self.keys.data_key, &c.join_tokens)
            .map_err(|e| internal(format!("the cluster's join tokens: {e}")))
    }

    /// Puts together a manager around a running Raft member and starts its leader duties.
    pub(super) fn launch(
        identity: Identity,
        raft: Arc<RaftNode>,
        keys: Keys,
        timing: Timing,
        transport: Transport,
        server: AbortHandle,
    ) -> Arc<Self> {
        let manager_credential = keys.data_key.manager_credential();
        let disk_root = Mutex::new(
            keys.ca
                .as_ref()
                .map(|c| c.cert_pem.clone())
                .unwrap_or_default(),
        );
        let m = Arc::new(Manager {
            disk_root,
            identity,
            raft,
            keys,
            timing,
            transport,
            server,
            loops: Mutex::new(Vec::new()),
            liveness: Mutex::new(HashMap::new()),
            membership_lock: tokio::sync::Mutex::new(()),
            leaving: std::sync::atomic::AtomicBool::new(false),
            new_descriptions: Mutex::new(HashMap::new()),
            manager_credential,
        });
        let loops = vec![
            tokio::spawn(monitor_loop(Arc::downgrade(&m))),
            tokio::spawn(dispatch::orchestrate_loop(Arc::downgrade(&m))),
            tokio::spawn(rotation::root_rotation_loop(Arc::downgrade(&m))),
        ];
        *m.loops.lock().unwrap_or_else(|e| e.into_inner()) = loops;
        m
    }

    pub fn replica(&self) -> &Arc<Replica> {
        &self.raft.replica
    }

    pub fn node_id(&self) -> &str {
        &self.identity.node_id
    }

    /// The address of the current leader's node-to-node server.
    pub(super) fn leader_addr(&self) -> Option<String> {
        let leader = self.raft.leader()?;
        let metrics = self.raft.raft.metrics().borrow().clone();
        metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
    }

    /// Sends a node-to-node request to the leader, waiting a while for one to be elected.
    pub async fn to_leader<Req, Resp>(
        &self,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if self.raft.is_leader() {
                // Elected while waiting: the caller answers itself.
                return Err(ApiError::Unavailable(
                    "this manager is the leader now: ask again".into(),
                ));
            }
            if let Some(addr) = self.leader_addr() {
                match self.transport.post(&addr, path, req, timeout).await {
                    Ok(r) => return Ok(r),
                    Err(e) if e.is_unreachable() && Instant::now() < deadline => {}
                    Err(e) => return Err(from_transport(e)),
                }
            }
            if Instant::now() >= deadline {
                return Err(ApiError::Unavailable(
                    "the swarm has no leader right now: a majority of managers must be reachable"
                        .into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Commits a command through Raft, on the leader (forwarding to it when this manager
    /// is a follower), and returns what applying it produced.
    pub async fn propose(&self, cmd: Command) -> Result<Applied> {
        let req = Request::now(cmd);
        let started = Instant::now();
        let deadline = started + self.timing.election_timeout * 5 + Duration::from_secs(2);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let Ok(written) = tokio::time::timeout(remaining, self.raft.write(req.clone())).await
            else {
                return Err(ApiError::Unavailable(format!(
                    "the change was not committed within {:?}: a majority of managers must be reachable (it may still be applied if they come back)",
                    deadline.duration_since(started)
                )));
            };
            match written {
                Ok(r) => return r.map_err(ApiError::from),
                Err(e @ WriteError::TooLarge { .. }) => {
                    return Err(ApiError::Invalid(e.to_string()))
                }
                Err(WriteError::ForwardToLeader {
                    leader_id,
                    leader_node,
                }) => {
                    if let Some(node) = leader_node {
                        if leader_id != Some(self.raft.id) {
                            match self
                                .transport
                                .post::<_, Response>(&node.addr, PATH_PROPOSE, &req, CALL_TIMEOUT)
                                .await
                            {
                                Ok(resp) => {
                                    let applied = resp.map_err(ApiError::from)?;
                                    // Read-your-writes on this manager.
                                    self.replica()
                                        .wait_applied(applied.index, Duration::from_secs(5))
                                        .await;
                                    return Ok(applied);
                                }
                                // Not sent, or refused because it is not the leader any more.
                                Err(e)
                                    if e.is_unreachable()
                                        || matches!(
                                            e,
                                            TransportError::Remote { status: 503, .. }
                                        ) =>
                                {
                                    if Instant::now() >= deadline {
                                        return Err(ApiError::Unavailable(format!(
                                            "the swarm has no leader right now: a majority of managers must be reachable ({e})"
                                        )));
                                    }
                                }
                                Err(e) => return Err(from_transport(e)),
                            }
                        }
                    }
                }
                Err(e) => {
                    if Instant::now() >= deadline {
                        return Err(ApiError::Unavailable(format!("cannot commit: {e}")));
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(ApiError::Unavailable(
                    "the swarm has no leader right now: a majority of managers must be reachable"
                        .into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(super) fn manager_addrs(&self) -> Vec<String> {
        let metrics = self.raft.raft.metrics().borrow().clone();
        let m = metrics.membership_config.membership().clone();
        m.voter_ids()
            .filter_map(|id| m.get_node(&id).map(|n| n.addr.clone()))
            .collect()
    }

    /// The other managers' addresses: the Raft voters', and those this node was given.
    pub(super) fn manager_addrs_but_mine(&self) -> Vec<String> {
        let mut addrs = self.manager_addrs();
        for a in &self.identity.managers {
            if !addrs.contains(a) {
                addrs.push(a.clone());
            }
        }
        addrs.retain(|a| *a != self.identity.advertise_addr);
        addrs
    }

    pub(super) fn voters(&self) -> BTreeSet<u64> {
        self.raft
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }

    /// The leader admits a joining node: checks its token, gives it a fresh node ID and Raft
    /// ID (never one in use), records it, and answers with its identity and own secret (and
    /// the cluster's keys for a manager). A manager's Raft member is made a voter later, when
    /// the node asks for it with its new credential (`PATH_RAFT_JOIN`).
    pub(super) async fn admit(&self, req: JoinReq) -> Result<JoinResp> {
        let (cluster_id, role, node_id, raft_id, validity) = {
            let state = self.replica().read();
            let c = state.cluster()?;
            let known = self.join_tokens(c)?;
            // Both compared, in time that does not depend on the token's content.
            let manager = tokens::matches(&req.token, &known.manager);
            let worker = tokens::matches(&req.token, &known.worker);
            let role = match (manager, worker) {
                (true, _) => NodeRole::Manager,
                (false, true) => NodeRole::Worker,
                (false, false) => {
                    return Err(ApiError::Forbidden(
                        "A valid join token is necessary to join this cluster".into(),
                    ))
                }
            };
            let node_id = loop {
                let id = new_id();
                if state.nodes.get(&id).is_none() && !state.members.contains_key(&id) {
                    break id;
                }
            };
            let metrics = self.raft.raft.metrics().borrow().clone();
            let membership = metrics.membership_config.membership().clone();
            let taken: BTreeSet<u64> = state
                .members
                .values()
                .map(|m| m.raft_id)
                .chain(membership.nodes().map(|(id, _)| *id))
                .collect();
            let raft_id = loop {
                let r = new_raft_id();
                if !taken.contains(&r) {
                    break r;
                }
            };
            (
                c.info.id.clone(),
                role,
                node_id,
                raft_id,
                node_cert_validity(&c.info.spec),
            )
        };
        // The certificate is issued before the node is recorded: a CSR that cannot be signed
        // adds no node.
        let (certificate, ca_cert) =
            self.issue_node_cert(&req.csr, &node_id, role, &cluster_id, validity)?;
        let keys = match role {
            NodeRole::Manager => Some(self.keys_msg()?),
            NodeRole::Worker => None,
        };
        let node = Node {
            id: node_id.clone(),
            spec: NodeSpec {
                role,
                availability: req.availability.unwrap_or(NodeAvailability::Active),
                ..Default::default()
            },
            description: req.description.clone(),
            status: NodeStatus {
                state: NodeState::Ready,
                addr: host_of(&req.addr),
                ..Default::default()
            },
            manager_status: (role == NodeRole::Manager).then(|| ManagerStatus {
                leader: false,
                reachability: Reachability::Reachable,
                addr: req.addr.clone(),
            }),
            ..Default::default()
        };
        self.propose(Command::AddNode {
            node: Box::new(node),
            member: Member {
                raft_id,
                addr: req.addr.clone(),
            },
        })
        .await?;
        // Its Raft member does not run yet: the monitor must not add it before it asks.
        self.liveness
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node_id.clone(), (Instant::now(), false));
        Ok(JoinResp {
            node_secret: self.keys.data_key.node_secret(&node_id),
            node_id,
            raft_id,
            role,
            cluster_id,
            keys,
            managers: self.manager_addrs(),
            certificate,
            ca_cert,
        })
    }

    /// The leader makes a manager that joined a Raft voter, once its member runs (it asks).
    pub(super) async fn add_joined_manager(&self, node_id: &str) -> Result<()> {
        let (raft_id, addr) = {
            let state = self.replica().read();
            let n = state
                .nodes
                .get(node_id)
                .ok_or_else(|| ApiError::NotFound(format!("node {node_id} not found")))?;
            if n.spec.role != NodeRole::Manager {
                return Err(ApiError::Forbidden(format!(
                    "node {node_id} is not a manager: it cannot join the Raft group"
                )));
            }
            let member = state
                .members
                .get(node_id)
                .ok_or_else(|| ApiError::NotFound(format!("node {node_id} has no Raft member")))?;
            (member.raft_id, member.addr.clone())
        };
        self.add_voter(raft_id, &addr).await?;
        self.liveness
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node_id.to_string(), (Instant::now(), true));
        Ok(())
    }

    /// The keys a new manager gets: the data key and the cluster's current root CA.
    pub(super) fn keys_msg(&self) -> Result<KeysMsg> {
        let k = self.keys_now()?;
        Ok(KeysMsg {
            data_key: k.data_key,
            root_digest: k.root_digest,
            ca: k.ca,
        })
    }

    pub(super) async fn add_voter(&self, raft_id: u64, addr: &str) -> Result<()> {
        // Joins and promotions may race to add the same member; one membership change at a
        // time, and a member that is already a voter is left alone.
        let _one_at_a_time = self.membership_lock.lock().await;
        if self.voters().contains(&raft_id) {
            return Ok(());
        }
        self.raft
            .raft
            .add_learner(
                raft_id,
                BasicNode {
                    addr: addr.to_string(),
                },
                true,
            )
            .await
            .map_err(|e| ApiError::Unavailable(format!("cannot add the manager to Raft: {e}")))?;
        let mut ids = BTreeSet::new();
        ids.insert(raft_id);
        self.raft
            .raft
            .change_membership(openraft::ChangeMembers::AddVoterIds(ids), false)
            .await
            .map_err(|e| ApiError::Unavailable(format!("cannot make the manager a voter: {e}")))?;
        Ok(())
    }

    pub(super) async fn remove_voter(&self, raft_id: u64) -> Result<()> {
        let _one_at_a_time = self.membership_lock.lock().await;
        if !self.voters().contains(&raft_id) {
            return Ok(());
        }
        let mut ids = BTreeSet::new();
        ids.insert(raft_id);
        self.raft
            .raft
            .change_membership(openraft::ChangeMembers::RemoveVoters(ids), false)
            .await
            .map_err(|e| {
                ApiError::Unavailable(format!("cannot remove the manager from Raft: {e}"))
            })?;
        Ok(())
    }

    /// The period nodes report at (see [`heartbeat_period`]).
    pub(super) fn heartbeat_period(&self) -> Duration {
        heartbeat_period(&self.replica().read(), &self.timing)
    }

    /// The leader records a heartbeat and tells the node what the cluster wants of it.
    pub(super) fn heartbeat(&self, req: HeartbeatReq) -> HeartbeatResp {
        self.liveness
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(req.node_id.clone(), (Instant::now(), req.raft_running));
        // Read before the state is held: each reads it.
        let (root_ca, issuer_ca) = self.roots_for_nodes();
        // Only a node that is to become a manager (it runs no Raft member yet) needs the
        // keys; a running manager has them.
        let wants_keys = !req.raft_running
            && self
                .replica()
                .read()
                .nodes
                .get(&req.node_id)
                .is_some_and(|n| n.spec.role == NodeRole::Manager);
        let keys = wants_keys.then(|| self.keys_msg().ok()).flatten();
        let state = self.replica().read();
        let period = heartbeat_period(&state, &self.timing);
        if let Some(desc) = req.description {
            if state
                .nodes
                .get(&req.node_id)
                .is_some_and(|n| n.description != desc)
            {
                self.new_descriptions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(req.node_id.clone(), desc);
            }
        }
        let voters = self.voters();
        match state.nodes.get(&req.node_id) {
            Some(n) => {
                let voter = state
                    .members
                    .get(&n.id)
                    .is_some_and(|m| voters.contains(&m.raft_id));
                HeartbeatResp {
                    role: n.spec.role,
                    voter,
                    managers: self.manager_addrs(),
                    keys,
                    removed: false,
                    root_ca,
                    issuer_ca,
                    period_nanos: period.as_nanos() as u64,
                }
            }
            // A removed node learns that, and nothing else.
            None => HeartbeatResp {
                role: NodeRole::Worker,
                voter: false,
                managers: Vec::new(),
                keys: None,
                removed: true,
                root_ca: String::new(),
                issuer_ca: String::new(),
                period_nanos: 0,
            },
        }
    }

    /// A node leaves: out of Raft if it was a member, and marked down.
    pub(super) async fn release(&self, node_id: &str) -> Result<()> {
        let (raft_id, status) = {
            let state = self.replica().read();
            let n = state
                .nodes
                .get(node_id)
                .ok_or_else(|| ApiError::NotFound(format!("node {node_id} not found")))?;
            (
                state.members.get(node_id).map(|m| m.raft_id),
                n.status.clone(),
            )
        };
        if let Some(r) = raft_id {
            if self.voters().contains(&r) && r != self.raft.id {
                self.remove_voter(r).await?;
            }
        }
        self.liveness
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node_id);
        self.propose(Command::SetNodeStatus {
            id: node_id.to_string(),
            status: NodeStatus {
                state: NodeState::Down,
                message: LEFT.into(),
                ..status
            },
            manager_status: None,
            description: None,
        })
        .await?;
        Ok(())
    }

    /// Records that a node left, keeping its Raft membership for the next leader to remove.
    pub(super) async fn mark_left(&self, node_id: &str) -> Result<()> {
        let (status, ms) = {
            let state = self.replica().read();
            let n = state
                .nodes
                .get(node_id)
                .ok_or_else(|| ApiError::NotFound(format!("node {node_id} not found")))?;
            (n.status.clone(), n.manager_status.clone())
        };
        self.propose(Command::SetNodeStatus {
            id: node_id.to_string(),
            status: NodeStatus {
                state: NodeState::Down,
                message: LEFT.into(),
                ..status
            },
            manager_status: ms.map(|mut s| {
                s.reachability = Reachability::Unreachable;
                s
            }),
            description: None,
        })
        .await?;
        Ok(())
    }

    /// The leader hands leadership over and leaves the Raft group: it takes itself out of the
    /// voters, which the other voters commit; openraft then has it step down, and the others,
    /// hearing from no leader, elect one of them (openraft 0.9 has no leadership transfer;
    /// SwarmKit transfers first, then the new leader removes the old one). Refused when the
    /// other voters could not commit it (SwarmKit's `CanRemoveMember`), unless `force`.
    pub(super) async fn hand_over(&self, force: bool) -> Result<()> {
        let me = self.raft.id;
        let voters = self.voters();
        if !voters.contains(&me) {
            return Ok(());
        }
        let others: Vec<u64> = voters.iter().copied().filter(|v| *v != me).collect();
        if others.is_empty() {
            return Err(ApiError::Conflict(
                "this is the only manager: there is nobody to hand over to".into(),
            ));
        }
        if !force && !self.others_have_quorum(&others) {
            return Err(ApiError::Unavailable(
                "can't remove member from the raft: this would result in a loss of quorum".into(),
            ));
        }
        tracing::info!("handing over leadership: leaving the Raft group");
        let limit = self.timing.election_timeout * 5 + Duration::from_secs(2);
        match tokio::time::timeout(limit, self.remove_voter(me)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(ApiError::Unavailable(format!(
                "the other managers did not take this one out of the Raft group within {limit:?}"
            )))
            }
        }
        // openraft steps down once the change is applied here.
        let deadline = Instant::now() + limit;
        while self.raft.is_leader() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!("out of the Raft group: the other managers elect a leader");
        Ok(())
    }

    /// This manager leaves the Raft group, best effort (`swarm leave --force`): a leader takes
    /// itself out and has the new leader record the departure; a follower (or a leader the
    /// others could not follow) asks the leader to take it out. Should nothing work, the next
    /// leader's monitor removes a manager that left.
    pub(super) async fn leave_raft(&self) {
        self.leaving
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let req = LeaveReq {
            node_id: self.identity.node_id.clone(),
        };
        if self.raft.is_leader() {
            let others = self.manager_addrs_but_mine();
            match self.hand_over(true).await {
                Ok(()) => {
                    for addr in &others {
                        match self
                            .transport
                            .post::<_, ()>(addr, PATH_LEAVE, &req, CALL_TIMEOUT)
                            .await
                        {
                            Ok(()) => {
                                tracing::info!("{addr} recorded the departure");
                                return;
                            }
                            Err(e) => tracing::info!("{addr} did not record the departure: {e}"),
                        }
                    }
                    tracing::warn!("left the Raft group; no manager recorded the departure");
                    return;
                }
                Err(e) => tracing::warn!("cannot hand over leadership: {e}"),
            }
        }
        if self.raft.is_leader() {
            let _ = self.mark_left(&self.identity.node_id).await;
        } else if let Err(e) = self
            .to_leader::<_, ()>(PATH_LEAVE, &req, CALL_TIMEOUT)
            .await
        {
            tracing::warn!("the leader did not take this manager out of the Raft group: {e}");
        }
    }

    /// Whether the other voters `others` can commit without this manager: a majority of them
    /// reported to this leader within three heartbeat periods with their Raft member running.
    fn others_have_quorum(&self, others: &[u64]) -> bool {
        let dead_after = self.heartbeat_period() * 3;
        let now = Instant::now();
        let state = self.replica().read();
        let liveness = self.liveness.lock().unwrap_or_else(|e| e.into_inner());
        let alive = state
            .members
            .iter()
            .filter(|(_, m)| others.contains(&m.raft_id))
            .filter(|(id, _)| {
                liveness
                    .get(*id)
                    .is_some_and(|(t, running)| *running && now.duration_since(*t) < dead_after)
            })
            .count();
        alive > others.len() / 2
    }

    /// Stops the leader duties and the Raft member; the node-to-node server keeps running.
    pub(super) async fn stop_raft(&self) {
        for h in self
            .loops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            h.abort();
        }
        self.raft.shutdown().await;
    }

    pub async fn stop(&self) {
        self.stop_raft().await;
        self.server.abort();
    }
}

/// The period nodes report at: the cluster's `Dispatcher.HeartbeatPeriod` (`docker swarm
/// init/update --dispatcher-heartbeat`), or the timing profile's while there is no cluster.
pub(super) fn heartbeat_period(state: &shoal_store::State, timing: &Timing) -> Duration {
    state
        .cluster()
        .ok()
        .map(|c| c.info.spec.dispatcher.heartbeat_period)
        .filter(|p| *p > 0)
        .map_or(timing.node_heartbeat, |p| Duration::from_nanos(p as u64))
}
