//! The Raft state machine: applies committed entries to the [`Replica`], and builds, stores
//! and installs snapshots (kept in redb beside the log).
//!
//! The state itself lives in memory; on restart it comes back from the last snapshot plus the
//! committed log after it, which openraft re-applies.

use crate::disk::Disk;
use crate::replica::Replica;
use crate::{Entry, LogId, NodeId, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use shoal_store::{Response, State};
use std::io::Cursor;
use std::sync::Arc;

const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_snapshot");
const APPLIED: &str = "sm_applied";
/// The last log ID of the stored snapshot, kept beside it so that it is compared without
/// reading the snapshot.
const LAST_LOG_ID: &str = "sm_last_log_id";

type Membership = StoredMembership<NodeId, BasicNode>;

fn sm_err(verb: ErrorVerb, e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::new(
        ErrorSubject::StateMachine,
        verb,
        openraft::AnyError::error(e.to_string()),
    )
    .into()
}

/// What openraft asks about the state machine besides the state itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AppliedState {
    last_applied: Option<LogId>,
    membership: Membership,
}

#[derive(Clone)]
pub struct StateMachine {
    replica: Arc<Replica>,
    db: Disk,
    applied: Arc<std::sync::Mutex<AppliedState>>,
    snapshot_seq: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct StoredSnapshot {
    pub(crate) meta: SnapshotMeta<NodeId, BasicNode>,
    pub(crate) data: Vec<u8>,
}

impl StateMachine {
    /// Restores the state from the stored snapshot, if there is one.
    pub fn open(db: Disk) -> Result<(Self, Arc<Replica>), StorageError<NodeId>> {
        {
            let txn = db.begin_write().map_err(|e| sm_err(ErrorVerb::Read, e))?;
            txn.open_table(SNAPSHOT)
                .map_err(|e| sm_err(ErrorVerb::Read, e))?;
            txn.commit().map_err(|e| sm_err(ErrorVerb::Read, e))?;
        }
        let stored = load_snapshot(&db)?;
        let (state, applied) = match stored {
            Some(s) => {
                let state: State =
                    serde_json::from_slice(&s.data).map_err(|e| sm_err(ErrorVerb::Read, e))?;
                (
                    state,
                    AppliedState {
                        last_applied: s.meta.last_log_id,
                        membership: s.meta.last_membership.clone(),
                    },
                )
            }
            None => (State::default(), AppliedState::default()),
        };
        let index = applied.last_applied.map(|l| l.index).unwrap_or(0);
        let replica = Arc::new(Replica::new(state, index));
        Ok((
            Self {
                replica: replica.clone(),
                db,
                applied: Arc::new(std::sync::Mutex::new(applied)),
                snapshot_seq: Default::default(),
            },
            replica,
        ))
    }

    fn applied(&self) -> std::sync::MutexGuard<'_, AppliedState> {
        self.applied.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save_snapshot(&self, s: &StoredSnapshot) -> Result<(), StorageError<NodeId>> {
        let bytes = serde_json::to_vec(s).map_err(|e| sm_err(ErrorVerb::Write, e))?;
        let bytes = self.db.seal(&bytes);
        let txn = self
            .db
            .begin_write()
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        {
            let mut t = txn
                .open_table(SNAPSHOT)
                .map_err(|e| sm_err(ErrorVerb::Write, e))?;
            // Never replace a snapshot with an older one: a build that finishes after its Raft
            // member was stopped and started again (`--force-new-cluster`) must not take the
            // place of the newer member's snapshot, whose log before it may be purged already.
            let stored: Option<LogId> =
                match t.get(LAST_LOG_ID).map_err(|e| sm_err(ErrorVerb::Read, e))? {
                    Some(v) => serde_json::from_slice(v.value()).unwrap_or(None),
                    None => None,
                };
            if stored > s.meta.last_log_id {
                tracing::info!(
                    "a snapshot older than the stored one was not kept: {:?} < {:?}",
                    s.meta.last_log_id,
                    stored
                );
            } else {
                let id = serde_json::to_vec(&s.meta.last_log_id)
                    .map_err(|e| sm_err(ErrorVerb::Write, e))?;
                t.insert(APPLIED, bytes.as_slice())
                    .map_err(|e| sm_err(ErrorVerb::Write, e))?;
                t.insert(LAST_LOG_ID, id.as_slice())
                    .map_err(|e| sm_err(ErrorVerb::Write, e))?;
            }
        }
        txn.commit().map_err(|e| sm_err(ErrorVerb::Write, e))
    }
}

pub(crate) fn load_snapshot(db: &Disk) -> Result<Option<StoredSnapshot>, StorageError<NodeId>> {
    let txn = db.begin_read().map_err(|e| sm_err(ErrorVerb::Read, e))?;
    let t = txn
        .open_table(SNAPSHOT)
        .map_err(|e| sm_err(ErrorVerb::Read, e))?;
    match t.get(APPLIED).map_err(|e| sm_err(ErrorVerb::Read, e))? {
        Some(v) => {
            let json = db.open(v.value()).map_err(|e| sm_err(ErrorVerb::Read, e))?;
            Ok(Some(
                serde_json::from_slice(&json).map_err(|e| sm_err(ErrorVerb::Read, e))?,
            ))
        }
        None => Ok(None),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        // Serialize under the read lock so that state and applied index agree.
        let (data, applied) = {
            let state = self.replica.read();
            let applied = self.applied().clone();
            let data = serde_json::to_vec(&*state).map_err(|e| sm_err(ErrorVerb::Read, e))?;
            (data, applied)
        };
        let seq = self
            .snapshot_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership,
            snapshot_id: format!(
                "{}-{}",
                applied.last_applied.map(|l| l.index).unwrap_or(0),
                seq
            ),
        };
        let stored = StoredSnapshot { meta, data };
        let this = self.clone();
        let stored =
            tokio::task::spawn_blocking(move || this.save_snapshot(&stored).map(|_| stored))
                .await
                .map_err(|e| sm_err(ErrorVerb::Write, e))??;
        tracing::info!(id = %stored.meta.snapshot_id, bytes = stored.data.len(), "built a snapshot");
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError<NodeId>> {
        let a = self.applied();
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Response>>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut out = Vec::new();
        let mut last = None;
        let events = {
            let mut state = self.replica.write();
            for entry in entries {
                let index = entry.log_id.index;
                last = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => out.push(Vec::new()),
                    EntryPayload::Normal(batch) => out.push(
                        batch
                            .requests
                            .iter()
                            .map(|req| state.apply(index, req))
                            .collect(),
                    ),
                    EntryPayload::Membership(m) => {
                        self.applied().membership = StoredMembership::new(Some(entry.log_id), m);
                        out.push(Vec::new());
                    }
                }
            }
            if last.is_some() {
                self.applied().last_applied = last;
            }
            state.take_events()
        };
        if let Some(l) = last {
            self.replica.set_applied(l.index, events);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let state: State = serde_json::from_slice(&data).map_err(|e| {
            StorageError::from(StorageIOError::new(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Read,
                openraft::AnyError::error(e.to_string()),
            ))
        })?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let this = self.clone();
        let stored =
            tokio::task::spawn_blocking(move || this.save_snapshot(&stored).map(|_| stored))
                .await
                .map_err(|e| sm_err(ErrorVerb::Write, e))??;
        {
            let mut s = self.replica.write();
            *s = state;
            let mut a = self.applied();
            a.last_applied = stored.meta.last_log_id;
            a.membership = stored.meta.last_membership.clone();
        }
        let index = stored.meta.last_log_id.map(|l| l.index).unwrap_or(0);
        tracing::info!(
            index,
            bytes = stored.data.len(),
            "installed a snapshot from the leader"
        );
        self.replica.state_replaced();
        self.replica.set_applied(index, Vec::new());
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let db = self.db.clone();
        let stored = tokio::task::spawn_blocking(move || load_snapshot(&db))
            .await
            .map_err(|e| sm_err(ErrorVerb::Read, e))??;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
