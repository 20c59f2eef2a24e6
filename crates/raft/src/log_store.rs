//! The Raft log and vote, durable in redb.
//!
//! openraft asks that appended entries be readable at once and that it be told later when
//! they are on disk. So the log lives twice: in memory (what readers see) and in redb, written
//! by one writer thread in submission order. The writer takes every append waiting in its queue
//! into one transaction and one fsync, which is what makes many concurrent writers fast.

use crate::disk::Disk;
use crate::{Entry, LogId, NodeId, TypeConfig, Vote};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageError, StorageIOError,
};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::oneshot;

pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

pub(crate) const VOTE: &str = "vote";
pub(crate) const COMMITTED: &str = "committed";
pub(crate) const LAST_PURGED: &str = "last_purged";

#[derive(Default)]
struct LogMem {
    entries: BTreeMap<u64, Entry>,
    /// Serialized size of each entry, and their sum: a snapshot is taken when it grows large
    /// (see `RaftNode`), so memory is bounded by bytes and not only by entry count.
    sizes: BTreeMap<u64, usize>,
    bytes: usize,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

impl LogMem {
    fn insert(&mut self, index: u64, entry: Entry, size: usize) {
        self.entries.insert(index, entry);
        if let Some(old) = self.sizes.insert(index, size) {
            self.bytes -= old;
        }
        self.bytes += size;
    }

    /// Drops entries from `index` on.
    fn truncate(&mut self, index: u64) {
        let _ = self.entries.split_off(&index);
        for (_, size) in self.sizes.split_off(&index) {
            self.bytes -= size;
        }
    }

    /// Drops entries up to `index`, inclusive.
    fn purge(&mut self, index: u64) {
        self.entries = self.entries.split_off(&(index + 1));
        let kept = self.sizes.split_off(&(index + 1));
        for size in self.sizes.values() {
            self.bytes -= size;
        }
        self.sizes = kept;
    }
}

enum Op {
    Append(Vec<(u64, Vec<u8>)>, LogFlushed<TypeConfig>),
    /// Remove entries from this index on.
    Truncate(u64, oneshot::Sender<Result<(), String>>),
    Purge(u64, Vec<u8>, oneshot::Sender<Result<(), String>>),
    Meta(
        &'static str,
        Vec<u8>,
        Option<oneshot::Sender<Result<(), String>>>,
    ),
    /// Writes nothing: answered once everything submitted before it is on disk.
    Sync(oneshot::Sender<Result<(), String>>),
}

#[derive(Clone)]
pub struct LogStore {
    mem: Arc<Mutex<LogMem>>,
    tx: mpsc::Sender<Op>,
}

fn io_err(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl ToString,
) -> StorageError<NodeId> {
    StorageIOError::new(subject, verb, openraft::AnyError::error(e.to_string())).into()
}

fn read_err(e: impl ToString) -> StorageError<NodeId> {
    io_err(ErrorSubject::Logs, ErrorVerb::Read, e)
}

impl LogStore {
    /// Loads the log from `db` and starts its writer thread.
    pub fn open(db: Disk) -> Result<Self, StorageError<NodeId>> {
        let mut mem = LogMem::default();
        {
            let txn = db.begin_write().map_err(read_err)?;
            txn.open_table(LOG).map_err(read_err)?;
            txn.open_table(META).map_err(read_err)?;
            txn.commit().map_err(read_err)?;
        }
        let txn = db.begin_read().map_err(read_err)?;
        let meta = txn.open_table(META).map_err(read_err)?;
        let get = |k: &str| -> Result<Option<Vec<u8>>, StorageError<NodeId>> {
            Ok(meta.get(k).map_err(read_err)?.map(|v| v.value().to_vec()))
        };
        if let Some(v) = get(VOTE)? {
            mem.vote = serde_json::from_slice(&v).map_err(read_err)?;
        }
        if let Some(v) = get(COMMITTED)? {
            mem.committed = serde_json::from_slice(&v).map_err(read_err)?;
        }
        if let Some(v) = get(LAST_PURGED)? {
            mem.last_purged = serde_json::from_slice(&v).map_err(read_err)?;
        }
        let log = txn.open_table(LOG).map_err(read_err)?;
        for row in log.iter().map_err(read_err)? {
            let (k, v) = row.map_err(read_err)?;
            let json = db.open(v.value()).map_err(read_err)?;
            let entry: Entry = serde_json::from_slice(&json).map_err(read_err)?;
            mem.insert(k.value(), entry, json.len());
        }
        drop(log);
        drop(meta);
        drop(txn);

        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer(db, rx))
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        Ok(Self {
            mem: Arc::new(Mutex::new(mem)),
            tx,
        })
    }

    /// Bytes of the log entries after `index` (those no snapshot covers yet).
    pub fn bytes_after(&self, index: Option<u64>) -> usize {
        let mem = self.mem();
        match index {
            None => mem.bytes,
            Some(i) => mem.sizes.range(i + 1..).map(|(_, s)| s).sum(),
        }
    }

    /// Waits until everything submitted so far is on disk (after Raft stopped, before the
    /// database is read or rewritten by anything else).
    pub async fn sync(&self) -> Result<(), StorageError<NodeId>> {
        self.send_wait(ErrorSubject::Store, Op::Sync).await
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, LogMem> {
        // A poisoned lock means a panic while holding it; the data is still consistent
        // because every critical section is a handful of map operations.
        self.mem.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, op: Op) -> Result<(), StorageError<NodeId>> {
        self.tx
            .send(op)
            .map_err(|_| io_err(ErrorSubject::Store, ErrorVerb::Write, "log writer stopped"))
    }

    async fn send_wait(
        &self,
        subject: ErrorSubject<NodeId>,
        make: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Op,
    ) -> Result<(), StorageError<NodeId>> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        rx.await
            .map_err(|_| io_err(subject.clone(), ErrorVerb::Write, "log writer stopped"))?
            .map_err(|e| io_err(subject, ErrorVerb::Write, e))
    }
}

/// The writer thread: takes every operation waiting in its queue and applies them, in order,
/// in one transaction with one fsync; then tells each submitter.
fn writer(db: Disk, rx: mpsc::Receiver<Op>) {
    const MAX_BATCH: usize = 4096;
    while let Ok(first) = rx.recv() {
        let mut ops = vec![first];
        while ops.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        // Only the commit index may go without fsync: it is a hint learnt again after a crash.
        let durable = ops.iter().any(|op| !matches!(op, Op::Meta(_, _, None)));
        let res = write_batch(&db, &ops, durable);
        for op in ops {
            match op {
                Op::Append(_, cb) => {
                    cb.log_io_completed(res.clone().map_err(std::io::Error::other))
                }
                Op::Truncate(_, done)
                | Op::Purge(_, _, done)
                | Op::Meta(_, _, Some(done))
                | Op::Sync(done) => {
                    let _ = done.send(res.clone());
                }
                Op::Meta(_, _, None) => {}
            }
        }
    }
}

/// Entries are sealed here, on the writer thread, not on Raft's.
fn write_batch(db: &Disk, ops: &[Op], durable: bool) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut txn = db.begin_write().map_err(|e| err(&e))?;
    if !durable {
        txn.set_durability(redb::Durability::None)
            .map_err(|e| err(&e))?;
    }
    {
        let mut log = txn.open_table(LOG).map_err(|e| err(&e))?;
        let mut meta = txn.open_table(META).map_err(|e| err(&e))?;
        for op in ops {
            match op {
                Op::Append(rows, _) => {
                    for (i, v) in rows {
                        log.insert(*i, db.seal(v).as_slice()).map_err(|e| err(&e))?;
                    }
                }
                Op::Truncate(from, _) => {
                    log.retain_in(*from.., |_, _| false).map_err(|e| err(&e))?;
                }
                Op::Purge(upto, last_purged, _) => {
                    meta.insert(LAST_PURGED, last_purged.as_slice())
                        .map_err(|e| err(&e))?;
                    log.retain_in(..=*upto, |_, _| false).map_err(|e| err(&e))?;
                }
                Op::Meta(key, value, _) => {
                    meta.insert(*key, value.as_slice()).map_err(|e| err(&e))?;
                }
                Op::Sync(_) => {}
            }
        }
    }
    txn.commit().map_err(|e| err(&e))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        Ok(self
            .mem()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let mem = self.mem();
        let last = mem.entries.values().next_back().map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: mem.last_purged,
            last_log_id: last.or(mem.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError<NodeId>> {
        self.mem().vote = Some(*vote);
        let v = serde_json::to_vec(vote)
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        self.send_wait(ErrorSubject::Vote, |tx| Op::Meta(VOTE, v, Some(tx)))
            .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError<NodeId>> {
        Ok(self.mem().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId>,
    ) -> Result<(), StorageError<NodeId>> {
        self.mem().committed = committed;
        let v = serde_json::to_vec(&committed)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        self.send(Op::Meta(COMMITTED, v, None))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError<NodeId>> {
        Ok(self.mem().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rows = Vec::new();
        let mut kept = Vec::new();
        for e in entries {
            let v = serde_json::to_vec(&e)
                .map_err(|err| io_err(ErrorSubject::Log(e.log_id), ErrorVerb::Write, err))?;
            kept.push((e.log_id.index, e, v.len()));
            rows.push((kept[kept.len() - 1].0, v));
        }
        {
            let mut mem = self.mem();
            for (index, e, size) in kept {
                mem.insert(index, e, size);
            }
        }
        self.send(Op::Append(rows, callback))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError<NodeId>> {
        self.mem().truncate(log_id.index);
        self.send_wait(ErrorSubject::Logs, |tx| Op::Truncate(log_id.index, tx))
            .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError<NodeId>> {
        {
            let mut mem = self.mem();
            mem.last_purged = Some(log_id);
            mem.purge(log_id.index);
        }
        let v = serde_json::to_vec(&Some(log_id))
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        self.send_wait(ErrorSubject::Logs, |tx| Op::Purge(log_id.index, v, tx))
            .await
    }
}
