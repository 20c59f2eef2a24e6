//! The manager's local replica of the cluster state, shared by the state machine (which
//! writes it) and by everything that reads: the API, and later the orchestrators.

use crate::journal::Journal;
use shoal_store::{Event, Observer, State};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

pub struct Replica {
    state: RwLock<State>,
    applied: watch::Sender<u64>,
    events: broadcast::Sender<Event>,
    /// Turns the state's change notices into Docker's cluster events.
    observer: Mutex<Observer>,
    journal: Journal,
}

impl Default for Replica {
    fn default() -> Self {
        Self::new(State::default(), 0)
    }
}

impl Replica {
    pub fn new(state: State, applied: u64) -> Self {
        Self {
            observer: Mutex::new(Observer::new(&state)),
            journal: Journal::default(),
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
        if !events.is_empty() {
            // Applies are sequential (the state machine's `&mut self`), so the state read here
            // is the one these events left.
            let messages = {
                let state = self.read();
                let mut observer = self.observer.lock().unwrap_or_else(|e| e.into_inner());
                observer.observe(&state, &events, chrono::Utc::now())
            };
            self.journal.publish(messages);
        }
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

    /// The state was replaced whole (a snapshot was installed): later events report changes
    /// from what it holds now.
    pub(crate) fn state_replaced(&self) {
        let observer = Observer::new(&self.read());
        *self.observer.lock().unwrap_or_else(|e| e.into_inner()) = observer;
    }

    /// Docker's cluster events: the recent ones, and those to come.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}
