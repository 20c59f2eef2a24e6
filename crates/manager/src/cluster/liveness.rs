//! Liveness: every node's heartbeat loop, and the leader's monitor that turns heartbeats into
//! node status, manager reachability and Raft membership that follows node roles.

use super::*;

/// Every node reports to the leader once per heartbeat period. Beats keep their cadence however
/// long an answer takes, and a node that just changed role (promoted, demoted) beats at once, so
/// the leader never sees a gap that it would take for a dead node.
pub(super) async fn heartbeat_loop(daemon: std::sync::Weak<Daemon>) {
    let mut beats: u64 = 0;
    // The manager that answered last is asked first next time.
    let mut last_good: Option<String> = None;
    let mut wait = true;
    let mut started = Instant::now();
    // The certificate and trust root this node last reported.
    let mut sent_tls = None;
    // The cluster's period, as the managers last said (`Dispatcher.HeartbeatPeriod`).
    let mut told: Option<Duration> = None;
    loop {
        let period = match daemon.upgrade() {
            Some(d) => told.unwrap_or(d.cfg.timing.node_heartbeat),
            None => return,
        };
        if wait {
            // Swarm jitters heartbeats by ±10%.
            let jitter = rand::thread_rng().gen_range(0.9..1.1);
            let pause = period.mul_f64(jitter).saturating_sub(started.elapsed());
            tokio::time::sleep(pause).await;
        }
        started = Instant::now();
        wait = true;
        let Some(d) = daemon.upgrade() else { return };
        if matches!(d.role(), Role::Inactive | Role::Locked(_)) {
            continue;
        }
        d.renew_if_due().await;
        // The node describes itself on its first beat and whenever the description changed
        // (an engine started, labels changed); it looks again every tenth beat.
        beats += 1;
        let description = if beats == 1 || beats.is_multiple_of(10) {
            let mut fresh = describe(&d.cfg.engine_socket).await;
            let mut current = d.description.lock().unwrap_or_else(|e| e.into_inner());
            // The engine knows nothing of the swarm's trust root: the node's own certificate does.
            fresh.tls_info = current.tls_info.clone();
            let changed = *current != fresh;
            *current = fresh.clone();
            (beats == 1 || changed).then_some(fresh)
        } else {
            None
        };
        // A new certificate or trust root (renewal, root rotation) is reported at once: the
        // leader waits for it to end a root rotation, `docker swarm ca` shows it.
        let current = d.description();
        let description = description.or_else(|| (sent_tls != current.tls_info).then_some(current));
        let resp = match d.role() {
            Role::Inactive | Role::Locked(_) => continue,
            Role::Manager(m) if m.leaving.load(std::sync::atomic::Ordering::SeqCst) => continue,
            Role::Manager(m) => {
                let req = HeartbeatReq {
                    node_id: m.identity.node_id.clone(),
                    raft_running: true,
                    description: description.clone(),
                };
                if m.raft.is_leader() {
                    Some(m.heartbeat(req))
                } else if m.leader_addr().is_some() {
                    m.to_leader::<_, HeartbeatResp>(PATH_HEARTBEAT, &req, period)
                        .await
                        .ok()
                } else {
                    // A promoted node is not a Raft member yet and knows no leader; a
                    // demoted leader that left the Raft group hears from no leader either.
                    let managers = m.manager_addrs_but_mine();
                    beat_any(&d, &managers, &mut last_good, &req, period).await
                }
            }
            Role::Worker(w) => {
                let identity = w.identity.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let req = HeartbeatReq {
                    node_id: identity.node_id.clone(),
                    raft_running: false,
                    description: description.clone(),
                };
                beat_any(&d, &identity.managers, &mut last_good, &req, period).await
            }
        };
        if let Some(resp) = resp {
            if let Some(desc) = &description {
                sent_tls = desc.tls_info.clone();
            }
            if resp.period_nanos > 0 {
                told = Some(Duration::from_nanos(resp.period_nanos));
            }
            if d.on_heartbeat(resp).await {
                wait = false;
            }
        }
    }
}

/// Sends a heartbeat to the first manager that takes it, starting with the one that took the
/// last.
async fn beat_any(
    d: &Daemon,
    managers: &[String],
    last_good: &mut Option<String>,
    req: &HeartbeatReq,
    timeout: Duration,
) -> Option<HeartbeatResp> {
    let first = last_good.as_ref().filter(|a| managers.contains(a));
    let rest = managers.iter().filter(|a| Some(*a) != first);
    for addr in first.into_iter().chain(rest) {
        if let Ok(r) = d
            .transport
            .post::<_, HeartbeatResp>(addr, PATH_HEARTBEAT, req, timeout)
            .await
        {
            *last_good = Some(addr.clone());
            return Some(r);
        }
    }
    None
}

/// On the leader: marks nodes down or ready from their heartbeats, keeps manager
/// reachability current, and brings Raft membership in line with node roles.
pub(super) async fn monitor_loop(manager: std::sync::Weak<Manager>) {
    let mut leader_since: Option<Instant> = None;
    // The cluster's period when last looked, and after a change the old one with the time
    // until which it still counts: nodes learn a new period only at their next beat.
    let mut last_period: Option<Duration> = None;
    let mut old_period: Option<(Duration, Instant)> = None;
    loop {
        let pace = match manager.upgrade() {
            Some(m) => m.timing.node_heartbeat.min(m.heartbeat_period()),
            None => return,
        };
        tokio::time::sleep((pace / 2).max(Duration::from_millis(50))).await;
        let Some(m) = manager.upgrade() else { return };
        if !m.raft.is_leader() {
            leader_since = None;
            continue;
        }
        // The monitor looks at the profile's pace; nodes are judged by the cluster's period.
        let now = Instant::now();
        let told = m.heartbeat_period();
        if let Some(before) = last_period.filter(|p| *p != told) {
            old_period = Some((before, now + before * 3));
        }
        last_period = Some(told);
        let period = match old_period {
            Some((before, until)) if now < until => before.max(told),
            _ => told,
        };
        let since = *leader_since.get_or_insert(now);
        // After a leader change nodes get twice the usual grace (Swarm: 6 periods).
        let grace = period * 6;
        let dead_after = period * 3;
        let voters = m.voters();
        let metrics = m.raft.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let mut changes = Vec::new();
        let mut promote = Vec::new();
        let mut demote = Vec::new();
        let mut hand_over = false;
        {
            let state = m.replica().read();
            let liveness = m.liveness.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let mut descriptions =
                std::mem::take(&mut *m.new_descriptions.lock().unwrap_or_else(|e| e.into_inner()));
            for n in state.nodes.iter() {
                let member = state.members.get(&n.id);
                let raft_id = member.map(|x| x.raft_id);
                let is_me = raft_id == Some(m.raft.id);
                let seen = liveness.get(&n.id);
                let alive = is_me || seen.is_some_and(|(t, _)| now.duration_since(*t) < dead_after);
                let in_grace = now.duration_since(since) < grace;
                let left = n.status.message == LEFT;
                if left && !alive {
                    match raft_id.filter(|r| voters.contains(r)) {
                        Some(r) if !is_me => demote.push(r),
                        Some(_) => {}
                        // Out of the Raft group now: no manager status any more.
                        None if n.manager_status.is_some() => {
                            changes.push(Command::SetNodeStatus {
                                id: n.id.clone(),
                                status: n.status.clone(),
                                manager_status: None,
                                description: None,
                            })
                        }
                        None => {}
                    }
                    continue;
                }
                let state_now = if alive {
                    NodeState::Ready
                } else if in_grace && seen.is_none() {
                    n.status.state
                } else {
                    NodeState::Down
                };
                let ms = raft_id
                    .filter(|r| voters.contains(r))
                    .map(|r| ManagerStatus {
                        // Only the leader runs this: it leads, no other manager does.
                        leader: is_me,
                        reachability: if alive {
                            Reachability::Reachable
                        } else if state_now == NodeState::Down {
                            Reachability::Unreachable
                        } else {
                            n.manager_status
                                .as_ref()
                                .map(|s| s.reachability)
                                .unwrap_or(Reachability::Unknown)
                        },
                        addr: membership
                            .get_node(&r)
                            .map(|b| b.addr.clone())
                            .unwrap_or_default(),
                    });
                let current_ms = n.manager_status.clone();
                let description = descriptions.remove(&n.id);
                if n.status.state != state_now || current_ms != ms || description.is_some() {
                    changes.push(Command::SetNodeStatus {
                        id: n.id.clone(),
                        status: NodeStatus {
                            state: state_now,
                            message: String::new(),
                            addr: n.status.addr.clone(),
                        },
                        manager_status: ms,
                        description: description.map(Box::new),
                    });
                }
                if let (Some(r), Some(member)) = (raft_id, member) {
                    let voter = voters.contains(&r);
                    let runs_raft = seen.is_some_and(|(t, running)| {
                        *running && now.duration_since(*t) < dead_after
                    });
                    if n.spec.role == NodeRole::Manager && !voter && runs_raft && !left {
                        promote.push((r, member.addr.clone()));
                    }
                    if n.spec.role == NodeRole::Worker && voter && !left {
                        if is_me {
                            hand_over = true;
                        } else {
                            demote.push(r);
                        }
                    }
                }
            }
        }
        for cmd in changes {
            if let Err(e) = m.propose(cmd).await {
                tracing::warn!("cannot record a node's status: {e}");
            }
        }
        for (r, addr) in promote {
            if let Err(e) = m.add_voter(r, &addr).await {
                tracing::warn!("cannot promote raft member {r}: {e}");
            }
        }
        for r in demote {
            if let Err(e) = m.remove_voter(r).await {
                tracing::warn!("cannot demote raft member {r}: {e}");
            }
        }
        // The leader was demoted: it leaves the Raft group (the others elect a leader), and
        // becomes a worker when the new leader answers its heartbeat.
        if hand_over {
            if let Err(e) = m.hand_over(false).await {
                tracing::warn!("demoted, but cannot hand over leadership yet: {e}");
            }
        }
    }
}
