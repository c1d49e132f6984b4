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
    /// A querynode's shards that are loaded and serve searches
    /// (collection id, shard): placement releases a moved replica's old
    /// copy only once the new one is here.
    #[serde(default)]
    pub serving: Vec<(u64, u32)>,
    /// The node's resident memory (bytes; 0: unknown).
    #[serde(default)]
    pub resident_bytes: u64,
    /// A querynode's memory limit (`querynode.max_memory_mib`, bytes; 0:
    /// none): placement gives it no replica beyond it.
    #[serde(default)]
    pub memory_limit_bytes: u64,
}

/// Where a datanode or querynode stands (`quiver node list`, `quiver
/// cluster status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Its lease holds and placement may give it work.
    Active,
    /// Being drained: it still has shards or replicas that are moving off.
    Draining,
    /// Drained: it has nothing left (safe to stop and remove).
    Drained,
    /// Its lease expired (stopped, crashed or cut off).
    Gone,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Active => "active",
            NodeState::Draining => "draining",
            NodeState::Drained => "drained",
            NodeState::Gone => "gone",
        }
    }
}

/// A datanode or querynode as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: u64,
    /// `datanode` or `querynode`.
    pub role: String,
    pub addr: String,
    pub state: NodeState,
    /// Milliseconds since coord's leader last heard from it (None: not
    /// since that coord became leader).
    pub last_seen_ms: Option<u64>,
    /// Shards it owns (datanodes).
    pub shards_owned: u32,
    /// Shard replicas it serves (querynodes).
    pub replicas: u32,
    /// Live rows of the shards it owns or serves, as their owners last
    /// reported (sealed segments).
    pub rows: u64,
    /// Its resident memory as it last reported (0: unknown).
    pub memory_bytes: u64,
}
