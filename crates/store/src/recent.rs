//! The requests applied recently, by ID, with what applying each answered: a proposal that
//! committed but whose answer was lost (a forwarded write retried after a leader change or a
//! timeout) comes back with the same ID, and must be answered as the first time rather than
//! applied again (a create would then fail with "already exists").
//!
//! This is part of the replicated state (and of snapshots): every manager remembers the same
//! IDs, so whichever leader sees the retry answers it the same. Forgetting is deterministic
//! too, driven by the requests' own timestamps (chosen by their proposers) and a count, never
//! by a local clock, as Raft's client sessions expire in Ongaro's thesis (§6.3).

use crate::command::Response;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// How long after a newer request an ID is still remembered. A proposer retries for at most
/// a few election timeouts plus a call's timeout (seconds); a minute leaves a wide margin.
pub const REMEMBER_FOR: Duration = Duration::seconds(60);

/// The most IDs remembered, whatever their age: a bound on memory and on snapshot size
/// (about 150 bytes each) under a sustained stream of writes.
pub const REMEMBER_AT_MOST: usize = 50_000;

/// One remembered request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Remembered {
    id: String,
    at: DateTime<Utc>,
    response: Response,
}

/// Request IDs applied recently, oldest first, with their answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Vec<Remembered>", into = "Vec<Remembered>")]
pub struct RecentRequests {
    order: VecDeque<Remembered>,
    /// ID → position in `order`, counted from the first ever remembered (`forgotten` + index).
    by_id: HashMap<String, u64>,
    /// How many were forgotten from the front of `order`.
    forgotten: u64,
    /// The newest request time seen: a request older than this by [`REMEMBER_FOR`] is
    /// forgotten.
    newest: Option<DateTime<Utc>>,
}

impl From<Vec<Remembered>> for RecentRequests {
    fn from(list: Vec<Remembered>) -> Self {
        let mut r = RecentRequests::default();
        for e in list {
            r.push(e);
        }
        r
    }
}

impl From<RecentRequests> for Vec<Remembered> {
    fn from(r: RecentRequests) -> Self {
        r.order.into()
    }
}

impl RecentRequests {
    /// What the request with this ID answered, if it was applied recently.
    pub fn answer(&self, id: &str) -> Option<&Response> {
        let pos = self.by_id.get(id)?;
        let i = usize::try_from(pos.checked_sub(self.forgotten)?).ok()?;
        self.order.get(i).map(|e| &e.response)
    }

    /// Remembers that the request `id`, made at `at`, answered `response`, and forgets what
    /// is too old or too many.
    pub fn remember(&mut self, id: &str, at: DateTime<Utc>, response: Response) {
        self.push(Remembered {
            id: id.to_string(),
            at,
            response,
        });
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn push(&mut self, e: Remembered) {
        self.newest = Some(self.newest.map_or(e.at, |n| n.max(e.at)));
        let pos = self.forgotten + self.order.len() as u64;
        self.by_id.insert(e.id.clone(), pos);
        self.order.push_back(e);
        let horizon = self.newest.map(|n| n - REMEMBER_FOR);
        while let Some(front) = self.order.front() {
            let too_old = horizon.is_some_and(|h| front.at < h);
            if !too_old && self.order.len() <= REMEMBER_AT_MOST {
                break;
            }
            let pos = self.forgotten;
            if let Some(gone) = self.order.pop_front() {
                // The same ID may have been remembered again later: keep that one.
                if self.by_id.get(&gone.id) == Some(&pos) {
                    self.by_id.remove(&gone.id);
                }
            }
            self.forgotten += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Applied;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default()
    }

    fn ok(index: u64) -> Response {
        Ok(Applied { index, id: None })
    }

    #[test]
    fn an_id_is_answered_until_newer_requests_make_it_too_old() {
        let mut r = RecentRequests::default();
        r.remember("a", at(0), ok(1));
        r.remember("b", at(30), ok(2));
        assert_eq!(r.answer("a"), Some(&ok(1)));
        r.remember("c", at(61), ok(3));
        assert_eq!(r.answer("a"), None, "older than a minute before the newest");
        assert_eq!(r.answer("b"), Some(&ok(2)));
        assert_eq!(r.answer("c"), Some(&ok(3)));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn at_most_so_many_ids_are_remembered() {
        let mut r = RecentRequests::default();
        for i in 0..REMEMBER_AT_MOST + 10 {
            r.remember(&format!("r{i}"), at(0), ok(i as u64));
        }
        assert_eq!(r.len(), REMEMBER_AT_MOST);
        assert_eq!(r.answer("r0"), None);
        assert_eq!(r.answer("r9"), None);
        assert_eq!(r.answer("r10"), Some(&ok(10)));
    }

    #[test]
    fn what_is_remembered_survives_a_snapshot() {
        let mut r = RecentRequests::default();
        r.remember("a", at(0), ok(1));
        r.remember(
            "b",
            at(1),
            Err(crate::StoreError::Conflict("name taken".into())),
        );
        let json = serde_json::to_string(&r).unwrap();
        let back: RecentRequests = serde_json::from_str(&json).unwrap();
        assert_eq!(back.answer("a"), Some(&ok(1)));
        assert_eq!(back.answer("b"), r.answer("b"));
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }
}
