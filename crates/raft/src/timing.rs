//! Timings of the cluster: Raft heartbeats and elections, node heartbeats. Swarm-like defaults
//! (but faster failover), and a fast profile for tests.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// How often the Raft leader sends heartbeats to followers.
    pub raft_heartbeat: Duration,
    /// How long a follower waits without hearing from a leader before it campaigns. Each
    /// campaign adds a fresh random delay of up to a quarter of this, so survivors do not split
    /// their votes forever.
    pub election_timeout: Duration,
    /// How often a node reports to the managers; a node is down after three missed periods.
    pub node_heartbeat: Duration,
    /// Log entries between snapshots (Swarm: 10,000).
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot for slow followers (Swarm: 500).
    pub snapshot_keep: u64,
    /// A snapshot is also taken when the log holds this many bytes, whatever its length.
    pub snapshot_bytes: usize,
}

impl Timing {
    /// The defaults of a production cluster.
    pub fn standard() -> Self {
        Self {
            raft_heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            node_heartbeat: Duration::from_secs(5),
            snapshot_every: 10_000,
            snapshot_keep: 500,
            snapshot_bytes: 64 << 20,
        }
    }

    /// A fast profile for tests and benchmarks on loopback.
    pub fn fast() -> Self {
        Self {
            raft_heartbeat: Duration::from_millis(50),
            election_timeout: Duration::from_millis(300),
            node_heartbeat: Duration::from_millis(500),
            // Small, so that tests go through snapshots and installing them.
            snapshot_every: 500,
            snapshot_keep: 50,
            snapshot_bytes: 1 << 20,
        }
    }

    pub fn profile(name: &str) -> Option<Self> {
        match name {
            "standard" | "default" => Some(Self::standard()),
            "fast" => Some(Self::fast()),
            _ => None,
        }
    }

    pub(crate) fn openraft_config(&self) -> openraft::Config {
        let election = self.election_timeout.as_millis() as u64;
        openraft::Config {
            cluster_name: "shoal".into(),
            heartbeat_interval: self.raft_heartbeat.as_millis() as u64,
            election_timeout_min: election,
            election_timeout_max: election + 1,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.snapshot_keep,
            max_payload_entries: 1000,
            // The node port refuses larger snapshot requests (see `limits`).
            snapshot_max_chunk_size: crate::limits::SNAPSHOT_CHUNK_BYTES as u64,
            ..Default::default()
        }
    }
}
