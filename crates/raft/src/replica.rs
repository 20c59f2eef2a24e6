//! The manager's local replica of the cluster state, shared by the state machine (which
//! writes it) and by everything that reads: the API, and later the orchestrators.

use shoal_store::{Event, State};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

pub struct Replica {
    state: RwLock<State>,
    applied: watch::Sender<u64>,
    events: broadcast::Sender<Event>,
}

impl Default for Replica {
    fn default() -> Self {
        Self::new(State::default(), 0)
    }
}

impl Replica {
    pub fn new(state: State, applied: u64) -> Self {
        Self {
            state: RwLock::new(state),
            applied: watch::channel(applied).0,
            events: broadcast::channel(4096).0,
        }
    }

    /// Reads the state. Hold the guard briefly and never across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic inside apply would poison the lock; apply never panics on input (it
        // returns errors), so taking the inner value is sound.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The last log index applied to this replica.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    pub(crate) fn set_applied(&self, index: u64, events: Vec<Event>) {
        self.applied.send_replace(index);
        for e in events {
            let _ = self.events.send(e);
        }
    }

    /// Waits until this replica has applied `index` (a write acknowledged elsewhere), or the
    /// timeout passes. Returns whether it got there.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|a| *a >= index))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}
