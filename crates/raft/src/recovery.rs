//! Recovery from a lost quorum (`docker swarm init --force-new-cluster`): this member's stored
//! log becomes a one-voter cluster's, with nothing of it lost.
//!
//! openraft 0.9 has no call for this: `initialize` wants an empty log, and a membership change
//! needs the old quorum. So it is done in storage, while no Raft member runs on it, the way
//! SwarmKit rewrites its WAL: a new term is opened (a vote for this member, committed, one
//! term above every term seen), and two entries of that term are appended and marked
//! committed — a membership with this member as the only voter, then the requests the caller
//! gives (the state's side of the change). Started on that, openraft finds a committed vote
//! for itself in an effective membership where it is the only voter: it starts as the leader
//! at once, re-applies the committed log, and takes writes.
//!
//! Every entry the log holds is kept and becomes committed, including those this member never
//! learnt were committed: the commit index is written without fsync (a hint), so cutting the
//! log there could drop writes the lost majority had acknowledged. An entry that had not
//! committed only makes a write whose caller was told it failed ("it may still be applied")
//! take effect. SwarmKit drops entries above its (durable) commit index instead.

use crate::batch::Batch;
use crate::disk::Disk;
use crate::log_store::{COMMITTED, LAST_PURGED, LOG, META, VOTE};
use crate::state_machine::load_snapshot;
use crate::{Entry, LogId, NodeId, RaftOpenError, Vote};
use openraft::{BasicNode, CommittedLeaderId, EntryPayload, Membership};
use redb::ReadableTable;
use shoal_store::Request;
use std::collections::{BTreeMap, BTreeSet};

/// What [`force_new_cluster`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ForcedCluster {
    /// The new term, in which this member is the leader.
    pub term: u64,
    /// The index of the entry that carries the caller's requests: once the state has applied
    /// it, the cluster is the new one.
    pub index: u64,
}

fn storage(e: impl std::fmt::Display) -> RaftOpenError {
    RaftOpenError::Storage(format!("forcing a new cluster: {e}"))
}

/// Makes the Raft log and vote in `db` those of a cluster whose only voter is `id`, reachable at
/// `addr`, and appends `requests` to be applied right after. Only call it while no Raft member
/// runs on `db` (see [`crate::RaftNode::shutdown`], which waits for the log to be on disk).
pub fn force_new_cluster(
    db: &Disk,
    id: NodeId,
    addr: &str,
    requests: Vec<Request>,
) -> Result<ForcedCluster, RaftOpenError> {
    let snapshot = load_snapshot(db)
        .map_err(storage)?
        .and_then(|s| s.meta.last_log_id);
    let txn = db.begin_write().map_err(storage)?;
    let forced = {
        let mut log = txn.open_table(LOG).map_err(storage)?;
        let mut meta = txn.open_table(META).map_err(storage)?;
        let read = |meta: &redb::Table<&str, &[u8]>,
                    key: &str|
         -> Result<Option<Vec<u8>>, RaftOpenError> {
            Ok(meta.get(key).map_err(storage)?.map(|v| v.value().to_vec()))
        };
        let vote: Option<Vote> = match read(&meta, VOTE)? {
            Some(v) => serde_json::from_slice(&v).map_err(storage)?,
            None => None,
        };
        let purged: Option<LogId> = match read(&meta, LAST_PURGED)? {
            Some(v) => serde_json::from_slice(&v).map_err(storage)?,
            None => None,
        };
        let last_entry: Option<LogId> = match log.last().map_err(storage)? {
            Some((_, v)) => Some(
                serde_json::from_slice::<Entry>(&db.open(v.value()).map_err(storage)?)
                    .map_err(storage)?
                    .log_id,
            ),
            None => None,
        };
        let Some(last) = last_entry.max(purged).max(snapshot) else {
            return Err(RaftOpenError::Storage(
                "forcing a new cluster: this manager holds no Raft state to start it from".into(),
            ));
        };
        if last_entry < Some(last) {
            // The snapshot is ahead of the log (installed from a leader, the log not yet
            // purged): the log restarts after it, with no hole.
            log.retain_in::<u64, _>(.., |_, _| false).map_err(storage)?;
            let v = serde_json::to_vec(&Some(last)).map_err(storage)?;
            meta.insert(LAST_PURGED, v.as_slice()).map_err(storage)?;
        }
        let term = vote
            .map(|v| v.leader_id.term)
            .unwrap_or_default()
            .max(last.leader_id.term)
            + 1;
        let leader = CommittedLeaderId::new(term, id);
        let membership = Membership::new(
            vec![BTreeSet::from([id])],
            BTreeMap::from([(
                id,
                BasicNode {
                    addr: addr.to_string(),
                },
            )]),
        );
        let entries = [
            Entry {
                log_id: LogId::new(leader, last.index + 1),
                payload: EntryPayload::Membership(membership),
            },
            Entry {
                log_id: LogId::new(leader, last.index + 2),
                payload: EntryPayload::Normal(Batch { requests }),
            },
        ];
        for e in &entries {
            let v = db.seal(&serde_json::to_vec(e).map_err(storage)?);
            log.insert(e.log_id.index, v.as_slice()).map_err(storage)?;
        }
        let committed = entries[1].log_id;
        let v = serde_json::to_vec(&Vote::new_committed(term, id)).map_err(storage)?;
        meta.insert(VOTE, v.as_slice()).map_err(storage)?;
        let v = serde_json::to_vec(&Some(committed)).map_err(storage)?;
        meta.insert(COMMITTED, v.as_slice()).map_err(storage)?;
        ForcedCluster {
            term,
            index: committed.index,
        }
    };
    txn.commit().map_err(storage)?;
    Ok(forced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Transport;
    use crate::{open_database, RaftNode, Timing};
    use shoal_store::{Command, Member};
    use shoal_types::swarm::{Node, NodeRole, NodeSpec, NodeState, NodeStatus};
    use std::path::Path;
    use std::time::Duration;

    fn node(id: &str, role: NodeRole) -> Box<Node> {
        Box::new(Node {
            id: id.into(),
            spec: NodeSpec {
                role,
                ..Default::default()
            },
            status: NodeStatus {
                state: NodeState::Ready,
                ..Default::default()
            },
            ..Default::default()
        })
    }

    fn add(id: &str, raft_id: u64, role: NodeRole) -> Request {
        Request::now(Command::AddNode {
            node: node(id, role),
            member: Member {
                raft_id,
                addr: format!("127.0.0.1:{raft_id}"),
            },
        })
    }

    fn init() -> Request {
        Request::now(Command::InitCluster {
            cluster: Box::default(),
            node: node("n1", NodeRole::Manager),
            member: Member {
                raft_id: 1,
                addr: "127.0.0.1:1".into(),
            },
            ingress: Box::new(shoal_types::swarm::Network {
                id: "ingress".into(),
                ..Default::default()
            }),
        })
    }

    async fn start(dir: &Path) -> RaftNode {
        let db = open_database(dir, crate::disk::test_sealer()).unwrap();
        start_on(db).await
    }

    async fn start_on(db: crate::Disk) -> RaftNode {
        RaftNode::start(db, 1, &Timing::fast(), Transport::new())
            .await
            .unwrap()
    }

    async fn wait_leader(node: &RaftNode, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !node.is_leader() {
            assert!(tokio::time::Instant::now() < deadline, "not the leader");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn voters(node: &RaftNode) -> Vec<u64> {
        node.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }

    /// Makes `node` a cluster of one voter, and waits until it leads.
    async fn lead_alone(node: &RaftNode) {
        node.raft
            .initialize(BTreeMap::from([(
                1,
                BasicNode {
                    addr: "127.0.0.1:1".into(),
                },
            )]))
            .await
            .unwrap();
        wait_leader(node, Duration::from_secs(5)).await;
    }

    /// A one-manager cluster that grows to three voters, two of which never answer: it has
    /// lost its quorum, with a write in its log that could not commit.
    async fn cluster_without_quorum(dir: &Path) -> RaftNode {
        let node = start(dir).await;
        lead_alone(&node).await;
        for req in [
            init(),
            add("n2", 2, NodeRole::Manager),
            add("n3", 3, NodeRole::Manager),
        ] {
            node.write(req).await.unwrap().unwrap();
        }
        for id in [2, 3] {
            let addr = BasicNode {
                addr: "127.0.0.1:9".into(),
            };
            node.raft.add_learner(id, addr, false).await.unwrap();
        }
        let grow = node.raft.change_membership(
            openraft::ChangeMembers::AddVoterIds(BTreeSet::from([2, 3])),
            false,
        );
        assert!(tokio::time::timeout(Duration::from_millis(500), grow)
            .await
            .is_err());
        let stuck = node.write(add("w", 4, NodeRole::Worker));
        assert!(tokio::time::timeout(Duration::from_millis(500), stuck)
            .await
            .is_err());
        node
    }

    #[tokio::test]
    async fn a_member_without_quorum_leads_alone_with_its_whole_state_after_forcing_a_new_cluster()
    {
        let dir = tempfile::tempdir().unwrap();
        let old = cluster_without_quorum(dir.path()).await;
        let db = old.database();
        old.shutdown().await;
        let forced = force_new_cluster(
            &db,
            1,
            "127.0.0.1:1",
            vec![Request::now(Command::ForceNewCluster {
                node_id: "n1".into(),
            })],
        )
        .unwrap();
        let node = start_on(db.clone()).await;
        // The leader at once: no election needed.
        wait_leader(&node, Duration::from_millis(500)).await;
        assert_eq!(voters(&node), vec![1]);
        assert!(
            node.replica
                .wait_applied(forced.index, Duration::from_secs(5))
                .await
        );
        {
            let state = node.replica.read();
            assert_eq!(
                state.nodes.len(),
                4,
                "the write that could not commit is kept"
            );
            for id in ["n2", "n3"] {
                let n = state.nodes.get(id).unwrap();
                assert_eq!(n.spec.role, NodeRole::Worker);
                assert_eq!(n.status.state, NodeState::Down);
            }
        }
        // It takes writes, and it all survives a restart.
        node.write(add("w2", 5, NodeRole::Worker))
            .await
            .unwrap()
            .unwrap();
        node.shutdown().await;
        let again = start_on(db).await;
        wait_leader(&again, Duration::from_millis(500)).await;
        assert_eq!(voters(&again), vec![1]);
        let applied = again.replica.applied();
        assert!(applied > forced.index, "{applied}");
        assert_eq!(again.replica.read().nodes.len(), 5);
        again.shutdown().await;
    }

    #[tokio::test]
    async fn forcing_a_new_cluster_after_the_log_was_purged_behind_a_snapshot_keeps_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let old = cluster_without_quorum(dir.path()).await;
        let db = old.database();
        old.shutdown().await;
        // Only the snapshot holds the state: built here and the log purged behind it.
        {
            let node = start_on(db.clone()).await;
            node.raft.trigger().snapshot().await.unwrap();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let upto = loop {
                if let Some(s) = node.raft.metrics().borrow().snapshot {
                    break s.index;
                }
                assert!(tokio::time::Instant::now() < deadline, "no snapshot");
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            node.raft.trigger().purge_log(upto).await.unwrap();
            while node.raft.metrics().borrow().purged.map(|p| p.index) != Some(upto) {
                assert!(tokio::time::Instant::now() < deadline, "not purged");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            node.shutdown().await;
        }
        let forced = force_new_cluster(&db, 1, "127.0.0.1:1", Vec::new()).unwrap();
        let node = start_on(db).await;
        wait_leader(&node, Duration::from_millis(500)).await;
        assert!(
            node.replica
                .wait_applied(forced.index, Duration::from_secs(5))
                .await
        );
        assert_eq!(node.replica.read().nodes.len(), 4);
        node.write(add("w2", 5, NodeRole::Worker))
            .await
            .unwrap()
            .unwrap();
        node.shutdown().await;
    }

    #[test]
    fn an_empty_database_has_no_cluster_to_force() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_database(dir.path(), crate::disk::test_sealer()).unwrap();
        // The tables exist once a log store opened them; here they do not even exist.
        assert!(force_new_cluster(&db, 1, "127.0.0.1:1", Vec::new()).is_err());
    }

    /// Builds a snapshot and waits until it is there.
    async fn snapshot_now(node: &RaftNode) {
        node.raft.trigger().snapshot().await.unwrap();
        let applied = node.raft.metrics().borrow().last_applied.map(|l| l.index);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while node.raft.metrics().borrow().snapshot.map(|s| s.index) != applied {
            assert!(tokio::time::Instant::now() < deadline, "no snapshot");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn entries_and_snapshots_are_sealed_on_disk_and_a_database_in_clear_still_opens() {
        /// What an earlier version wrote: JSON in clear.
        struct Clear;
        impl crate::Sealer for Clear {
            fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
                plaintext.to_vec()
            }
            fn open(&self, _: &[u8]) -> Option<Vec<u8>> {
                None
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let holds = |what: &str| {
            let bytes = std::fs::read(dir.path().join("raft.redb")).unwrap();
            bytes.windows(what.len()).any(|w| w == what.as_bytes())
        };
        let sealed = open_database(dir.path(), crate::disk::test_sealer()).unwrap();
        let clear = sealed.with_sealer(std::sync::Arc::new(Clear));
        {
            let node = start_on(clear).await;
            lead_alone(&node).await;
            node.write(init()).await.unwrap().unwrap();
            node.write(add("in-the-snapshot", 2, NodeRole::Worker))
                .await
                .unwrap()
                .unwrap();
            snapshot_now(&node).await;
            node.write(add("in-the-log-in-clear", 3, NodeRole::Worker))
                .await
                .unwrap()
                .unwrap();
            node.shutdown().await;
        }
        assert!(holds("in-the-log-in-clear"), "the earlier version's log");

        // Opened with a sealer: the whole state is there; what is written now is sealed.
        {
            let node = start_on(sealed.clone()).await;
            wait_leader(&node, Duration::from_secs(5)).await;
            assert_eq!(node.replica.read().nodes.len(), 3);
            node.write(add("sealed-in-the-log", 4, NodeRole::Worker))
                .await
                .unwrap()
                .unwrap();
            node.shutdown().await;
        }
        assert!(!holds("sealed-in-the-log"));
        {
            let node = start_on(sealed.clone()).await;
            wait_leader(&node, Duration::from_secs(5)).await;
            assert_eq!(node.replica.read().nodes.len(), 4);
            snapshot_now(&node).await;
            node.write(add("after-a-sealed-snapshot", 5, NodeRole::Worker))
                .await
                .unwrap()
                .unwrap();
            node.shutdown().await;
        }
        assert!(!holds("after-a-sealed-snapshot"));
        let node = start_on(sealed.clone()).await;
        wait_leader(&node, Duration::from_secs(5)).await;
        assert_eq!(node.replica.read().nodes.len(), 5);
        node.shutdown().await;

        // Another key opens nothing: the member does not start on values it cannot read.
        struct Other;
        impl crate::Sealer for Other {
            fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
                plaintext.to_vec()
            }
            fn open(&self, _: &[u8]) -> Option<Vec<u8>> {
                None
            }
        }
        let other = sealed.with_sealer(std::sync::Arc::new(Other));
        let err = RaftNode::start(other, 1, &Timing::fast(), Transport::new())
            .await
            .err()
            .expect("started on a log it cannot open");
        assert!(err.to_string().contains("data key"), "{err}");
    }
}
