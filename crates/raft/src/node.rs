//! A manager's Raft member: storage, network, state machine and election driver, started
//! together and stopped together.

use crate::batch::{Batcher, WriteError};
use crate::chunks::Chunks;
use crate::disk::{Disk, Sealer};
use crate::election::{self, LastContact, PreVoteResp};
use crate::log_store::LogStore;
use crate::network::{
    AppendReq, AppendResp, NetworkFactory, SnapshotReq, SnapshotResp, VoteReq, VoteResp,
};
use crate::replica::Replica;
use crate::state_machine::StateMachine;
use crate::transport::Transport;
use crate::{NodeId, Raft, Timing};
use redb::Database;
use shoal_store::{Request, Response};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RaftOpenError {
    #[error("cannot open the Raft database {path}: {msg}")]
    Database { path: String, msg: String },
    #[error("cannot load the Raft state: {0}")]
    Storage(String),
    #[error("cannot start Raft: {0}")]
    Start(String),
}

/// Opens (or creates) the redb database that holds the log, the vote and the snapshots, its
/// entries and snapshots sealed by `sealer`.
pub fn open_database(dir: &Path, sealer: Arc<dyn Sealer>) -> Result<Disk, RaftOpenError> {
    let path = dir.join("raft.redb");
    let db = Database::create(&path).map_err(|e| RaftOpenError::Database {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    Ok(Disk::new(db, sealer))
}

pub struct RaftNode {
    pub raft: Raft,
    db: Disk,
    /// The log, to wait for its writes when the member stops.
    log: LogStore,
    batcher: Batcher,
    batcher_task: tokio::task::JoinHandle<()>,
    sizer: tokio::task::JoinHandle<()>,
    pub id: NodeId,
    pub replica: Arc<Replica>,
    contact: LastContact,
    driver: tokio::task::JoinHandle<()>,
    /// What arrived of the snapshot being received; held while a chunk is handed to
    /// openraft, so that chunks are checked and written one at a time.
    chunks: tokio::sync::Mutex<Chunks>,
}

impl RaftNode {
    /// Starts this manager's Raft member on its stored log and snapshot. A new member is not
    /// initialised: it either initialises a cluster or waits to be added by a leader.
    pub async fn start(
        db: Disk,
        id: NodeId,
        timing: &Timing,
        transport: Transport,
    ) -> Result<Self, RaftOpenError> {
        let log = LogStore::open(db.clone()).map_err(|e| RaftOpenError::Storage(e.to_string()))?;
        let log_size = log.clone();
        let log_sync = log.clone();
        let (sm, replica) =
            StateMachine::open(db.clone()).map_err(|e| RaftOpenError::Storage(e.to_string()))?;
        let config = timing
            .openraft_config()
            .validate()
            .map_err(|e| RaftOpenError::Start(e.to_string()))?;
        let raft = Raft::new(
            id,
            Arc::new(config),
            NetworkFactory {
                transport: transport.clone(),
            },
            log,
            sm,
        )
        .await
        .map_err(|e| RaftOpenError::Start(e.to_string()))?;
        // Elections are ours: see the election module.
        raft.runtime_config().elect(false);
        let contact = LastContact::new();
        let driver = tokio::spawn(election::drive(
            raft.clone(),
            id,
            timing.clone(),
            contact.clone(),
            transport,
        ));
        let (batcher, batcher_task) = Batcher::start(raft.clone());
        let sizer = tokio::spawn(snapshot_by_size(
            raft.clone(),
            log_size,
            timing.snapshot_bytes,
        ));
        Ok(Self {
            raft,
            db,
            log: log_sync,
            batcher,
            batcher_task,
            sizer,
            id,
            replica,
            contact,
            driver,
            chunks: Default::default(),
        })
    }

    pub async fn append(&self, req: AppendReq) -> AppendResp {
        self.contact.touch();
        self.raft.append_entries(req).await
    }

    /// A pre-vote from a member that wants to campaign: how long since a leader was heard.
    pub fn pre_vote(&self) -> PreVoteResp {
        let since = if self.is_leader() {
            Duration::ZERO
        } else {
            self.contact.age()
        };
        PreVoteResp {
            since_leader_ms: since.as_millis() as u64,
        }
    }

    pub async fn vote(&self, req: VoteReq) -> VoteResp {
        self.raft.vote(req).await
    }

    /// A chunk of a snapshot from the leader. Only a chunk that continues (or repeats) what
    /// arrived is handed to openraft (see [`Chunks`]).
    pub async fn snapshot(&self, req: SnapshotReq) -> SnapshotResp {
        self.contact.touch();
        let mut chunks = self.chunks.lock().await;
        let (id, offset, len, done) = (
            req.meta.snapshot_id.clone(),
            req.offset,
            req.data.len(),
            req.done,
        );
        chunks
            .check(&id, offset, len)
            .map_err(openraft::error::RaftError::APIError)?;
        let vote = req.vote;
        let resp = self.raft.install_snapshot(req).await?;
        // A chunk under an older leader's vote (lower than this member's) was not taken.
        if resp.vote <= vote {
            chunks.written(&id, offset, len, done);
        }
        Ok(resp)
    }

    /// The current leader, if this member knows one. A leader that stepped down (it took
    /// itself out of the voters) keeps its own vote until another leader reaches it, which may
    /// be never: it is not the leader for that.
    pub fn leader(&self) -> Option<NodeId> {
        let m = self.raft.metrics();
        let m = m.borrow();
        match m.current_leader {
            Some(l) if l == self.id && m.state != openraft::ServerState::Leader => None,
            other => other,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.id)
    }

    /// The database this member keeps its log, vote and snapshots in.
    pub fn database(&self) -> Disk {
        self.db.clone()
    }

    /// Proposes a command; it commits together with whatever else is proposed meanwhile.
    pub async fn write(&self, req: Request) -> Result<Response, WriteError> {
        self.batcher.write(req).await
    }

    /// Stops the member; when this returns, everything it wrote to its log is on disk.
    pub async fn shutdown(&self) {
        self.driver.abort();
        self.batcher_task.abort();
        self.sizer.abort();
        let _ = self.raft.shutdown().await;
        if let Err(e) = self.log.sync().await {
            tracing::warn!("the Raft log may not be on disk: {e}");
        }
    }
}

/// Takes a snapshot when the log holds more than `limit` bytes: with batched entries, the
/// entry-count policy alone would let the log (kept in memory) grow without bound.
async fn snapshot_by_size(raft: Raft, log: LogStore, limit: usize) {
    let pause = Duration::from_secs(2);
    let mut last: Option<tokio::time::Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let snapshot = raft.metrics().borrow().snapshot.map(|l| l.index);
        let bytes = log.bytes_after(snapshot);
        if bytes <= limit || last.is_some_and(|t| t.elapsed() < pause) {
            continue;
        }
        tracing::info!(bytes, limit, "the log is large: taking a snapshot");
        if raft.trigger().snapshot().await.is_err() {
            return;
        }
        last = Some(tokio::time::Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{SnapshotMeta, Vote};

    async fn member(dir: &Path) -> RaftNode {
        let db = open_database(dir, crate::disk::test_sealer()).unwrap();
        RaftNode::start(db, 1, &Timing::fast(), Transport::new())
            .await
            .unwrap()
    }

    fn chunk(offset: u64, data: Vec<u8>, done: bool) -> SnapshotReq {
        SnapshotReq {
            vote: Vote::new_committed(1, 2),
            meta: SnapshotMeta {
                last_log_id: Some(openraft::LogId::new(
                    openraft::CommittedLeaderId::new(1, 2),
                    7,
                )),
                last_membership: Default::default(),
                snapshot_id: "7-0".into(),
            },
            offset,
            data,
            done,
        }
    }

    #[tokio::test]
    async fn a_snapshot_chunk_at_a_huge_offset_is_refused_and_the_member_lives_on() {
        let dir = tempfile::tempdir().unwrap();
        let node = member(dir.path()).await;
        let state = serde_json::to_vec(&shoal_store::State::default()).unwrap();
        let (head, tail) = state.split_at(5);
        node.snapshot(chunk(0, head.to_vec(), false))
            .await
            .expect("the first chunk is taken");
        for offset in [u64::MAX - 2, 1 << 40, 6] {
            let refused = node.snapshot(chunk(offset, vec![0; 3], false)).await;
            assert!(
                matches!(
                    refused,
                    Err(openraft::error::RaftError::APIError(
                        openraft::error::InstallSnapshotError::SnapshotMismatch(_)
                    ))
                ),
                "offset {offset}: {refused:?}"
            );
        }
        // The member still works: the snapshot goes on where it stopped and installs.
        node.snapshot(chunk(5, tail.to_vec(), true))
            .await
            .expect("the next chunk is taken");
        assert!(
            node.replica.wait_applied(7, Duration::from_secs(5)).await,
            "the snapshot was installed"
        );
        node.shutdown().await;
    }

    async fn leader(dir: &Path) -> RaftNode {
        let node = member(dir).await;
        let members = std::collections::BTreeMap::from([(
            1,
            openraft::BasicNode {
                addr: "127.0.0.1:1".into(),
            },
        )]);
        node.raft.initialize(members).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !node.is_leader() {
            assert!(tokio::time::Instant::now() < deadline, "no leader");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        node
    }

    fn init_cluster() -> Request {
        use shoal_store::{Command, Member};
        Request::now(Command::InitCluster {
            cluster: Box::default(),
            node: Box::new(shoal_types::swarm::Node {
                id: "n1".into(),
                ..Default::default()
            }),
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

    #[tokio::test]
    async fn a_proposal_retried_with_its_request_id_commits_twice_but_applies_once() {
        let dir = tempfile::tempdir().unwrap();
        let node = leader(dir.path()).await;
        let req = init_cluster();
        let first = node.write(req.clone()).await.unwrap();
        assert!(first.is_ok(), "{first:?}");
        // The retry commits as a new entry and is answered as the first one was.
        let again = node.write(req.clone()).await.unwrap();
        assert_eq!(again, first);
        assert_eq!(node.replica.read().nodes.len(), 1);
        // A different request with the same content is a new write: refused.
        let other = node.write(init_cluster()).await.unwrap();
        assert!(other.is_err(), "{other:?}");
        node.shutdown().await;
    }
}
