//! What a shard's storage looks like, as its owner reports it (compaction
//! and garbage collection figures for describe, the status page and
//! `/metrics`), and what a node reports with each heartbeat.

use std::collections::BTreeMap;

use quiver_common::{CollectionId, ShardIndex};
use serde::{Deserialize, Serialize};

/// One shard's sealed segments and their upkeep, as its owner last saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardStorage {
    pub collection_id: CollectionId,
    pub shard: ShardIndex,
    pub segments: u64,
    /// Rows in sealed segments, live or not.
    pub rows: u64,
    /// Rows that are their key's live version.
    pub live_rows: u64,
    /// Superseded or deleted rows, and tombstones nothing needs any more.
    pub dead: u64,
    pub tombstones: u64,
    /// Bytes of the shard's segment and index objects (referenced ones and
    /// garbage not yet collected).
    pub bytes: u64,
    /// Compactions the planner would run now.
    pub backlog: u64,
    /// Compactions this owner ran since it opened the shard.
    pub compactions: u64,
    /// Unreferenced objects this owner deleted.
    pub collected: u64,
    /// Wall clock (ms since the Unix epoch) of the last compaction; 0: none.
    pub last_run_ms: u64,
}

/// What a datanode or querynode tells coord with each heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// For each mirrored collection with shards here, how far its mirror
    /// partner is behind (ms: the age of the oldest unshipped write).
    pub mirror_lag_ms: BTreeMap<u64, u64>,
    /// The storage of every shard this datanode owns.
    pub storage: Vec<ShardStorage>,
}
