//! The Raft database as a manager keeps it: a redb file whose log entries and snapshots are
//! sealed at rest. SwarmKit encrypts its whole Raft log with its DEK; shoal seals each entry and
//! each snapshot with what the manager gives ([`Sealer`], the cluster's data key), so a copied
//! `raft.redb` shows no spec, environment, label or token — and, under autolock, nothing opens
//! it without the operator's key. The vote, the committed and purged log IDs stay in clear:
//! they are numbers openraft needs before anything is opened, and tell nothing of the state.

use redb::Database;
use std::borrow::Cow;
use std::sync::Arc;

/// Seals and opens the values a Raft member stores. `open` answers `None` for a value that
/// this sealer did not seal (another key, damaged bytes).
pub trait Sealer: Send + Sync {
    fn seal(&self, plaintext: &[u8]) -> Vec<u8>;
    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>>;
}

/// A Raft member's database and what seals its values.
#[derive(Clone)]
pub struct Disk {
    db: Arc<Database>,
    sealer: Arc<dyn Sealer>,
}

impl std::ops::Deref for Disk {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.db
    }
}

impl Disk {
    pub(crate) fn new(db: Database, sealer: Arc<dyn Sealer>) -> Self {
        Self {
            db: Arc::new(db),
            sealer,
        }
    }

    /// The same database with another sealer (tests: a database of an earlier version).
    #[cfg(test)]
    pub(crate) fn with_sealer(&self, sealer: Arc<dyn Sealer>) -> Self {
        Self {
            db: self.db.clone(),
            sealer,
        }
    }

    /// A value (JSON) as it is stored: sealed.
    pub(crate) fn seal(&self, json: &[u8]) -> Vec<u8> {
        self.sealer.seal(json)
    }

    /// A stored value, opened. A value written before databases were sealed is JSON in clear
    /// (an object: it starts with `{`, which no sealed value does) and is read as it is; it is
    /// sealed when it is written again (entries are not: they are purged by the next snapshot).
    pub(crate) fn open<'a>(&self, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
        if stored.first() == Some(&b'{') {
            return Ok(Cow::Borrowed(stored));
        }
        self.sealer.open(stored).map(Cow::Owned).ok_or_else(|| {
            "a value of the Raft database does not open with this manager's data key".to_string()
        })
    }
}

/// A sealer for the tests of this crate: reversible, visibly not JSON, and it refuses what it
/// did not seal.
#[cfg(test)]
pub(crate) struct TestSealer;

#[cfg(test)]
impl Sealer for TestSealer {
    fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut out = b"TEST".to_vec();
        out.extend(plaintext.iter().map(|b| b ^ 0x5a));
        out
    }

    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let rest = sealed.strip_prefix(b"TEST")?;
        Some(rest.iter().map(|b| b ^ 0x5a).collect())
    }
}

#[cfg(test)]
pub(crate) fn test_sealer() -> Arc<dyn Sealer> {
    Arc::new(TestSealer)
}
