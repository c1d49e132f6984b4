use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Datanode settings. Defaults suit a single machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataNodeConfig {
    pub node_id: u64,
    /// Seal the growing data of a shard once it holds this many rows.
    pub seal_rows: usize,
    /// ... or this many bytes of vectors.
    pub seal_bytes: usize,
    /// ... or when its oldest row is this old (milliseconds).
    pub seal_age_ms: u64,
    /// Emit a time tick when a shard has been idle this long (milliseconds).
    pub tick_interval_ms: u64,
    /// Sealed segments with fewer rows are searched exactly (no HNSW).
    pub min_index_rows: usize,
    /// Threads used to build one HNSW index.
    pub index_threads: usize,
    /// Largest number of rows one write may carry.
    pub max_batch_rows: usize,
    /// Writes to a shard wait (backpressure) while its growing data exceeds
    /// this many times `seal_rows` or `seal_bytes`: growing rows are searched
    /// exactly, so an unbounded backlog would make every search slower.
    pub max_growing_factor: usize,
    /// Writes to a shard also wait while the rows of its sealed segments
    /// still waiting for their graph (a seal hands rows off before the
    /// build; until then they are searched exactly) reach this many times
    /// `seal_rows` or `seal_bytes`: the backlog of builds is bounded like the
    /// growing data.
    pub max_unindexed_factor: usize,
    /// Longest a write waits for sealing to make room under that bound
    /// (milliseconds); then the writes waiting are refused with
    /// `Overloaded` (Milvus's rate limit: pymilvus backs off and retries)
    /// instead of running into their deadline.
    pub write_stall_ms: u64,
    /// Writes are refused with `Overloaded` while this process's resident
    /// memory is at or over this many MiB (0: no limit): growing data, WAL
    /// batches and seal buffers are what grows with the ingest.
    pub max_memory_mib: u64,
    /// How long a failing WAL put is retried before its writes are refused
    /// (milliseconds). The shard stays open for reads; its WAL probes the
    /// store and takes writes again once it can. A full or read-only disk is
    /// not retried: its writes are refused at once.
    pub wal_retry_ms: u64,
    /// Compaction and garbage collection (`[datanode.compaction]`).
    pub compaction: crate::compact::CompactionConfig,
}

impl Default for DataNodeConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            seal_rows: 100_000,
            // Growing rows are searched exactly: bound the bytes scanned per query.
            seal_bytes: 64 << 20,
            seal_age_ms: 10 * 60 * 1000,
            tick_interval_ms: 50,
            min_index_rows: 1024,
            index_threads: 2,
            max_batch_rows: 100_000,
            max_growing_factor: 2,
            max_unindexed_factor: 4,
            write_stall_ms: 1_000,
            max_memory_mib: 0,
            wal_retry_ms: 1_000,
            compaction: crate::compact::CompactionConfig::default(),
        }
    }
}

impl DataNodeConfig {
    pub fn tick_interval(&self) -> Duration {
        Duration::from_millis(self.tick_interval_ms.max(1))
    }

    pub fn write_stall(&self) -> Duration {
        Duration::from_millis(self.write_stall_ms)
    }

    pub fn seal_age(&self) -> Duration {
        Duration::from_millis(self.seal_age_ms)
    }

    pub fn validate(&self) -> quiver_common::Result<()> {
        use quiver_common::Error;
        if self.seal_rows == 0 {
            return Err(Error::invalid("datanode.seal_rows", "must be > 0"));
        }
        if self.index_threads == 0 {
            return Err(Error::invalid("datanode.index_threads", "must be > 0"));
        }
        if self.max_growing_factor == 0 {
            return Err(Error::invalid("datanode.max_growing_factor", "must be > 0"));
        }
        if self.max_unindexed_factor == 0 {
            return Err(Error::invalid(
                "datanode.max_unindexed_factor",
                "must be > 0",
            ));
        }
        if self.max_batch_rows == 0 {
            return Err(Error::invalid("datanode.max_batch_rows", "must be > 0"));
        }
        self.compaction.validate()
    }
}
