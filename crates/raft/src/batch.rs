//! Group commit of proposals. openraft 0.9 flushes the log once per client write and waits
//! for that flush before it takes the next one, so writes that arrive together would still be
//! committed one fsync at a time. The batcher collects every proposal waiting when the
//! previous batch leaves into one Raft entry; all of them commit with one flush and one
//! replication round, at the same log index.

use crate::limits::{json_size, MAX_BATCH_BYTES, MAX_PROPOSAL_BYTES};
use crate::{ClientWriteError, Raft, RaftError};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use shoal_store::{Request, Response};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// One Raft log payload: proposals applied in order at the same index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub requests: Vec<Request>,
}

/// Why a proposal was not committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// This member is not the leader; the leader is this one, if known.
    #[error("not the leader")]
    ForwardToLeader {
        leader_id: Option<u64>,
        leader_node: Option<BasicNode>,
    },
    /// The proposal is larger than one may be (see [`crate::limits`]).
    #[error(
        "the change is {size} bytes as JSON, more than the {max} bytes a change may hold: split it"
    )]
    TooLarge { size: usize, max: usize },
    #[error("{0}")]
    Other(String),
}

/// A proposal waiting to be batched: the request, its size as JSON, who waits for it.
type Waiter = (
    Request,
    usize,
    oneshot::Sender<Result<Response, WriteError>>,
);

/// Largest number of proposals in one entry.
const MAX_BATCH: usize = 256;
/// Batches in flight at once: the leader flushes one while the previous one replicates.
const IN_FLIGHT: usize = 4;

#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl Batcher {
    pub(crate) fn start(raft: Raft) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(raft, rx));
        (Self { tx }, task)
    }

    pub(crate) async fn write(&self, req: Request) -> Result<Response, WriteError> {
        let size = json_size(&req);
        if size > MAX_PROPOSAL_BYTES {
            return Err(WriteError::TooLarge {
                size,
                max: MAX_PROPOSAL_BYTES,
            });
        }
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((req, size, tx))
            .map_err(|_| WriteError::Other("raft has shut down".into()))?;
        rx.await
            .map_err(|_| WriteError::Other("raft has shut down".into()))?
    }
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<Waiter>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    // A proposal that did not fit in the previous batch starts the next one.
    let mut held: Option<Waiter> = None;
    loop {
        let first = match held.take() {
            Some(w) => w,
            None => match rx.recv().await {
                Some(w) => w,
                None => return,
            },
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        // Whatever queued while we waited for a slot goes into this batch, up to its size.
        let mut bytes = first.1;
        let mut waiters = vec![first];
        while waiters.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) if bytes + w.1 > MAX_BATCH_BYTES => {
                    held = Some(w);
                    break;
                }
                Ok(w) => {
                    bytes += w.1;
                    waiters.push(w);
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let (requests, txs): (Vec<_>, Vec<_>) =
                waiters.into_iter().map(|(r, _, tx)| (r, tx)).unzip();
            let n = requests.len();
            match raft.client_write(Batch { requests }).await {
                Ok(resp) => {
                    let mut results = resp.data.into_iter();
                    for tx in txs {
                        let r = results.next().ok_or_else(|| {
                            WriteError::Other(format!("a batch of {n} got fewer results"))
                        });
                        let _ = tx.send(r);
                    }
                }
                Err(e) => {
                    let e = match e {
                        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                            WriteError::ForwardToLeader {
                                leader_id: f.leader_id,
                                leader_node: f.leader_node,
                            }
                        }
                        other => WriteError::Other(other.to_string()),
                    };
                    for tx in txs {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
            }
            drop(permit);
        });
    }
}
