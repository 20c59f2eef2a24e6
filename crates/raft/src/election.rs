//! The election driver. openraft 0.9 draws a node's election timeout once, when the node
//! starts: two survivors whose timeouts happen to be close campaign together every time and
//! can split their votes forever. So openraft's own election timer is switched off, and this
//! driver campaigns instead, with a fresh random delay for every campaign.
//!
//! Before it campaigns, a member asks the other voters whether they too have lost the leader
//! (a pre-vote). A member that merely lost touch for a while, such as a manager just restarted
//! that the leader has not reached again yet, is told the leader is alive and stays quiet
//! instead of raising the term and deposing a healthy leader.

use crate::network::PATH_PREVOTE;
use crate::transport::Transport;
use crate::{Raft, Timing};
use openraft::ServerState;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// When this node last heard from a leader (or last campaigned).
#[derive(Clone)]
pub(crate) struct LastContact(Arc<Mutex<Instant>>);

impl LastContact {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Mutex::new(Instant::now())))
    }

    pub(crate) fn touch(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn get(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn age(&self) -> Duration {
        self.get().elapsed()
    }
}

/// A pre-vote answer: how long ago this member last heard from a leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreVoteResp {
    pub since_leader_ms: u64,
}

/// Would a majority of voters follow a campaign now? Self counts; a voter that does not
/// answer does not.
async fn pre_vote(raft: &Raft, me: u64, timing: &Timing, transport: &Transport) -> bool {
    let membership = raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .clone();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let needed = voters.len() / 2 + 1;
    // A voter's leader lease lasts the election timeout; ask for a little more.
    let quiet = timing.election_timeout + timing.raft_heartbeat / 2;
    let calls = voters.iter().filter(|v| **v != me).filter_map(|v| {
        let addr = membership.get_node(v)?.addr.clone();
        let transport = transport.clone();
        let timeout = timing.raft_heartbeat * 2;
        Some(async move {
            transport
                .post_json::<PreVoteResp>(
                    &addr,
                    PATH_PREVOTE,
                    bytes::Bytes::from_static(b"null"),
                    timeout,
                    crate::limits::MAX_RAFT_ANSWER_BYTES,
                )
                .await
                .is_ok_and(|r| Duration::from_millis(r.since_leader_ms) >= quiet)
        })
    });
    let granted = 1 + futures::future::join_all(calls)
        .await
        .into_iter()
        .filter(|g| *g)
        .count();
    granted >= needed
}

/// The delay before the next campaign: the election timeout, one heartbeat of slack (so that
/// the voters' leader lease, which openraft sets to the election timeout, has expired), and a
/// random part of up to a quarter of the timeout drawn anew each time. A quarter (250 ms by
/// default) is a hundred times a campaign's round trip on a LAN, so two survivors rarely
/// campaign together, and when they do the next draw separates them; a half made the slowest
/// failovers half a second longer (measured: max 1533 ms over 20 kills, goal 1.5 s).
fn next_deadline(timing: &Timing) -> Duration {
    let base = timing.election_timeout + timing.raft_heartbeat;
    let jitter_ms = (timing.election_timeout.as_millis() as u64 / 4).max(1);
    base + Duration::from_millis(rand::thread_rng().gen_range(0..jitter_ms))
}

pub(crate) async fn drive(
    raft: Raft,
    me: u64,
    timing: Timing,
    contact: LastContact,
    transport: Transport,
) {
    let tick = (timing.raft_heartbeat / 4).max(Duration::from_millis(5));
    let mut deadline = next_deadline(&timing);
    let mut metrics = raft.metrics();
    loop {
        tokio::time::sleep(tick).await;
        if metrics.has_changed().is_err() {
            return; // Raft has shut down.
        }
        let (state, voters, is_voter) = {
            let m = metrics.borrow_and_update();
            let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
            let is_voter = voters.contains(&me);
            (m.state, voters.len(), is_voter)
        };
        if state == ServerState::Leader || !is_voter {
            contact.touch();
            continue;
        }
        if state == ServerState::Shutdown {
            return;
        }
        let waited = contact.get().elapsed();
        let due = if voters == 1 {
            // Alone: there is nobody to split with; campaign at once.
            state != ServerState::Candidate || waited >= timing.election_timeout
        } else {
            waited >= deadline
        };
        if due {
            deadline = next_deadline(&timing);
            if voters > 1 && !pre_vote(&raft, me, &timing, &transport).await {
                tracing::debug!(
                    node = me,
                    "pre-vote: the leader is alive elsewhere; not campaigning"
                );
                contact.touch();
                continue;
            }
            contact.touch();
            tracing::info!(node = me, "no leader heard from: campaigning");
            if raft.trigger().elect().await.is_err() {
                return;
            }
        }
    }
}
