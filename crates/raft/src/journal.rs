//! The cluster events this manager has seen (`docker events`, scope `swarm`): the last
//! [`HISTORY`] kept in memory for `--since`, and a broadcast to the streams open now. Every
//! manager keeps its own, fed by its own replica as it applies entries, so a follower streams
//! the same events as the leader.
//!
//! Subscribing takes the history and a receiver under one lock, and publishing appends and
//! sends under the same lock, so a stream that replays the past and then follows misses and
//! repeats nothing.

use shoal_types::events::Message;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// Events kept for replay, as many as the Docker daemon keeps (moby `daemon/events`).
pub const HISTORY: usize = 256;

/// Events waiting for a slow stream before it is told it lagged.
const BACKLOG: usize = 1024;

pub struct Journal {
    history: Mutex<VecDeque<Message>>,
    live: broadcast::Sender<Message>,
}

impl Default for Journal {
    fn default() -> Self {
        Journal {
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            live: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Journal {
    pub(crate) fn publish(&self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        for m in messages {
            if history.len() == HISTORY {
                history.pop_front();
            }
            history.push_back(m.clone());
            let _ = self.live.send(m);
        }
    }

    /// The events kept now, oldest first, and the ones published from now on.
    pub fn subscribe(&self) -> (Vec<Message>, broadcast::Receiver<Message>) {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        (history.iter().cloned().collect(), self.live.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: i64) -> Message {
        Message {
            time_nano: n,
            ..Message::default()
        }
    }

    #[test]
    fn history_keeps_the_newest_events_and_subscribers_get_what_follows() {
        let j = Journal::default();
        j.publish((0..HISTORY as i64 + 10).map(msg).collect());
        let (past, mut rx) = j.subscribe();
        assert_eq!(past.len(), HISTORY);
        assert_eq!(past[0].time_nano, 10);
        j.publish(vec![msg(1000)]);
        assert_eq!(rx.try_recv().unwrap().time_nano, 1000);
    }
}
