//! The receiving side of a snapshot's chunks: which chunk a follower takes.
//!
//! openraft writes a chunk at the offset it names, into a buffer in memory: an offset far
//! beyond what arrived would grow that buffer to the offset (a huge one aborts the process),
//! and one near `u64::MAX` overflows. A leader sends chunks in order, resending one after a
//! failure or starting over at 0, so a chunk is taken only where it continues (or repeats)
//! what arrived of the same snapshot. Anything else is refused the way openraft refuses a
//! chunk of another snapshot, which makes the leader start over.

use openraft::error::{InstallSnapshotError, SnapshotMismatch};
use openraft::SnapshotSegmentId;

/// What arrived of the snapshot being received.
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    receiving: Option<(String, u64)>,
}

impl Chunks {
    /// Whether a chunk of `len` bytes at `offset` of snapshot `id` may be written.
    pub(crate) fn check(
        &self,
        id: &str,
        offset: u64,
        len: usize,
    ) -> Result<(), InstallSnapshotError> {
        let expect = match &self.receiving {
            Some((current, received)) if current == id => *received,
            _ => 0,
        };
        let fits = offset
            .checked_add(len as u64)
            .is_some_and(|_| offset == 0 || offset <= expect);
        if fits {
            return Ok(());
        }
        Err(InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
            expect: SnapshotSegmentId {
                id: id.to_string(),
                offset: expect,
            },
            got: SnapshotSegmentId {
                id: id.to_string(),
                offset,
            },
        }))
    }

    /// Records a chunk that was written; `done` ends the snapshot.
    pub(crate) fn written(&mut self, id: &str, offset: u64, len: usize, done: bool) {
        if done {
            self.receiving = None;
            return;
        }
        let end = offset.saturating_add(len as u64);
        match &mut self.receiving {
            Some((current, received)) if current == id && offset != 0 => {
                *received = (*received).max(end);
            }
            _ => self.receiving = Some((id.to_string(), end)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chunks_in_order_resent_or_restarted_are_taken() {
        let mut c = Chunks::default();
        c.check("s1", 0, 10).unwrap();
        c.written("s1", 0, 10, false);
        c.check("s1", 10, 10).unwrap();
        // The same chunk again, after a lost answer.
        c.check("s1", 0, 10).unwrap();
        c.written("s1", 0, 10, false);
        c.check("s1", 10, 10).unwrap();
        c.written("s1", 10, 10, false);
        c.check("s1", 20, 5).unwrap();
        c.written("s1", 20, 5, true);
        c.check("s2", 0, 1).unwrap();
    }

    #[test]
    fn a_chunk_beyond_what_arrived_is_refused_as_a_mismatch() {
        let mut c = Chunks::default();
        c.written("s1", 0, 10, false);
        for offset in [11, 1 << 40, u64::MAX - 3, u64::MAX] {
            match c.check("s1", offset, 10) {
                Err(InstallSnapshotError::SnapshotMismatch(m)) => {
                    assert_eq!(m.expect.offset, 10);
                    assert_eq!(m.got.offset, offset);
                }
                other => panic!("offset {offset}: {other:?}"),
            }
        }
        // Another snapshot starts at 0.
        assert!(c.check("s2", 10, 1).is_err());
    }

    proptest! {
        /// Whatever a peer sends, a taken chunk never leaves a hole: it starts at 0 or
        /// within what arrived, and its end does not overflow.
        #[test]
        fn taken_chunks_never_leave_a_hole(
            chunks in proptest::collection::vec(
                (0u8..3, prop_oneof![0u64..64, any::<u64>()], 0usize..32, any::<bool>()),
                0..64,
            )
        ) {
            let mut c = Chunks::default();
            // What a buffer written only with taken chunks holds, per snapshot.
            let mut model: Option<(String, u64)> = None;
            for (id, offset, len, done) in chunks {
                let id = format!("s{id}");
                if c.check(&id, offset, len).is_ok() {
                    let received = match &model {
                        Some((m, r)) if *m == id => *r,
                        _ => 0,
                    };
                    prop_assert!(offset == 0 || offset <= received);
                    let end = offset.checked_add(len as u64);
                    prop_assert!(end.is_some());
                    c.written(&id, offset, len, done);
                    model = if done {
                        None
                    } else if offset == 0 || !matches!(&model, Some((m, _)) if *m == id) {
                        Some((id, end.unwrap_or(0)))
                    } else {
                        Some((id, received.max(end.unwrap_or(0))))
                    };
                }
            }
        }
    }
}
