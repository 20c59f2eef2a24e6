//! How large node-to-node messages may be, and the rules that keep the senders under those
//! sizes, so that a receiver can refuse anything larger before reading it.
//!
//! A limit on a receiver is only sound when every honest sender stays below it: a proposal is
//! refused above [`MAX_PROPOSAL_BYTES`], a batch (one Raft entry) stops growing at
//! [`MAX_BATCH_BYTES`], an append request carries entries only up to
//! [`MAX_APPEND_BYTES`] (the rest go in the next one), and snapshots travel in chunks of
//! [`SNAPSHOT_CHUNK_BYTES`]. The HTTP layer enforces the matching body limits.

/// The largest proposal, as JSON (SwarmKit refuses proposals above 1.5 MB; shoal's stack
/// writes and task batches are larger, so it takes more, but a bound all the same).
pub const MAX_PROPOSAL_BYTES: usize = 16 << 20;

/// A batch takes no more proposals once it holds this many bytes (a first proposal alone
/// may reach [`MAX_PROPOSAL_BYTES`]).
pub const MAX_BATCH_BYTES: usize = 16 << 20;

/// The largest Raft append request. An entry is at most a batch (plus its envelope), so
/// any one entry always fits; the sender splits a longer run of entries.
pub const MAX_APPEND_BYTES: usize = 64 << 20;

/// The size of a snapshot chunk's data.
pub const SNAPSHOT_CHUNK_BYTES: usize = 2 << 20;

/// The largest snapshot chunk request: the chunk's bytes go as a JSON array of numbers (up
/// to four characters a byte) beside the snapshot's metadata.
pub const MAX_SNAPSHOT_BYTES: usize = 4 * SNAPSHOT_CHUNK_BYTES + (1 << 20);

/// The largest answer read from a peer: an answer is read whole before it is decoded, so it
/// needs a bound too (a node's assignments carry its tasks' configs and secrets).
pub const MAX_ANSWER_BYTES: usize = 256 << 20;

/// The largest answer to a Raft RPC (append, vote, snapshot): small structures.
pub const MAX_RAFT_ANSWER_BYTES: usize = 64 << 10;

/// The largest error body read from a peer.
pub const MAX_ERROR_BYTES: usize = 64 << 10;

/// The size of `value` as JSON, without building the JSON.
pub fn json_size<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Serializing our own types into a counter cannot fail; if it did, say "too large".
    match serde_json::to_writer(&mut c, value) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_size_is_the_length_of_the_json() {
        let v = serde_json::json!({"a": [1, 2, 3], "b": "x\"y"});
        assert_eq!(json_size(&v), serde_json::to_vec(&v).unwrap().len());
    }

    #[test]
    fn a_whole_batch_fits_in_one_append_and_a_chunk_in_one_snapshot_request() {
        // Room for the entry's and the request's envelopes.
        const {
            assert!(MAX_PROPOSAL_BYTES + (1 << 20) < MAX_APPEND_BYTES);
            assert!(MAX_BATCH_BYTES + (1 << 20) < MAX_APPEND_BYTES);
            assert!(4 * SNAPSHOT_CHUNK_BYTES < MAX_SNAPSHOT_BYTES);
        }
    }
}
