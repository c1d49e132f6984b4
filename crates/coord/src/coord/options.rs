//! Coord's tunables (part of the role's config file later).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{CoordError, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoordOptions {
    /// Build a snapshot (and compact the log) after this many new log entries.
    pub snapshot_every: u64,
    /// Log entries kept behind the last snapshot, for slow followers.
    pub keep_logs_after_snapshot: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_ms: u64,
    /// How long `open` waits for the directory lock and for leadership.
    pub open_timeout_ms: u64,
    /// How long a write or a linearizable read waits for a quorum before it
    /// fails (a leader cut off from its peers cannot commit).
    pub write_timeout_ms: u64,
    /// Timeout of a TCP connect to a peer coord (gRPC transport).
    pub peer_connect_timeout_ms: u64,
    /// A datanode or querynode is live while its last heartbeat is younger
    /// than this; a new leader also counts nodes it has not heard from yet
    /// as live for this long after it took over.
    pub node_lease_ms: u64,
    /// How often the leader checks leases and repairs the placement.
    pub placement_interval_ms: u64,
    /// How many shards may be moving between nodes at once (rebalancing
    /// after a node joins, draining; `rules::balance`).
    pub max_moves: usize,
    /// A datanode or querynode not heard from for this long, holding
    /// nothing, is forgotten (as `quiver node remove`); 0: never.
    pub forget_node_after_ms: u64,
}

impl Default for CoordOptions {
    fn default() -> Self {
        Self {
            snapshot_every: 1000,
            keep_logs_after_snapshot: 100,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_ms: 50,
            open_timeout_ms: 10_000,
            write_timeout_ms: 3_000,
            peer_connect_timeout_ms: 1_000,
            node_lease_ms: 2_000,
            placement_interval_ms: 200,
            max_moves: 2,
            forget_node_after_ms: 3_600_000,
        }
    }
}

impl CoordOptions {
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, rule: &str| {
            Err(CoordError::Config {
                field: field.into(),
                rule: rule.into(),
            })
        };
        if self.snapshot_every == 0 {
            return bad("snapshot_every", "must be at least 1");
        }
        if self.election_timeout_min_ms == 0
            || self.election_timeout_min_ms >= self.election_timeout_max_ms
        {
            return bad(
                "election_timeout_min_ms",
                "must be above 0 and below election_timeout_max_ms",
            );
        }
        if self.heartbeat_ms == 0 || self.heartbeat_ms >= self.election_timeout_min_ms {
            return bad(
                "heartbeat_ms",
                "must be above 0 and below election_timeout_min_ms",
            );
        }
        if self.write_timeout_ms == 0 {
            return bad("write_timeout_ms", "must be at least 1");
        }
        if self.peer_connect_timeout_ms == 0 {
            return bad("peer_connect_timeout_ms", "must be at least 1");
        }
        if self.placement_interval_ms == 0 {
            return bad("placement_interval_ms", "must be at least 1");
        }
        if self.max_moves == 0 {
            return bad("max_moves", "must be at least 1");
        }
        if self.node_lease_ms <= self.placement_interval_ms {
            return bad("node_lease_ms", "must be above placement_interval_ms");
        }
        Ok(())
    }

    pub(crate) fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    pub(crate) fn peer_connect_timeout(&self) -> Duration {
        Duration::from_millis(self.peer_connect_timeout_ms)
    }

    pub(crate) fn node_lease(&self) -> Duration {
        Duration::from_millis(self.node_lease_ms)
    }

    pub(crate) fn placement_interval(&self) -> Duration {
        Duration::from_millis(self.placement_interval_ms)
    }

    pub(crate) fn open_timeout(&self) -> Duration {
        Duration::from_millis(self.open_timeout_ms)
    }

    pub(crate) fn raft_config(&self) -> Result<openraft::Config> {
        let config = openraft::Config {
            cluster_name: "quiver-coord".into(),
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            heartbeat_interval: self.heartbeat_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_logs_after_snapshot,
            // Snapshot chunks travel as JSON in one gRPC message each.
            snapshot_max_chunk_size: 1024 * 1024,
            ..Default::default()
        };
        config.validate().map_err(|e| CoordError::Config {
            field: "raft".into(),
            rule: e.to_string(),
        })
    }
}
