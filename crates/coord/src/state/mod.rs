//! The metadata coord replicates: collections, aliases, the segment catalog,
//! shard ownership, the registered nodes with each shard's replicas, and the
//! id allocator. Plain serde data; only the rules in
//! [`crate::rules`] change it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use quiver_auth::SecurityState;

mod alias;

pub(crate) use alias::decode_state;
pub use alias::{AliasRecord, MirrorRecord};
pub use quiver_api::{ALIAS_HISTORY, AliasEvent, AliasMeta, MirrorMeta};
use quiver_common::{CollectionId, CollectionSchema, Metric, SegmentId, ShardIndex, Timestamp};
use serde::{Deserialize, Serialize};

/// Kind and build parameters of a vector index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexKind {
    Hnsw {
        m: u32,
        ef_construction: u32,
    },
    Flat,
    /// No index: the collection cannot be loaded until one is set.
    None,
    /// A sparse vector field's inverted index (SPARSE_INVERTED_INDEX, or
    /// SPARSE_WAND when `wand`), with the BM25 parameters of a BM25
    /// function's output in thousandths.
    Sparse {
        wand: bool,
        bm25_k1_milli: u32,
        bm25_b_milli: u32,
    },
    /// HNSW over 8-bit scalar-quantized codes (HNSW_SQ).
    HnswSq {
        m: u32,
        ef_construction: u32,
    },
}

/// The index of a collection's vector field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSpec {
    pub kind: IndexKind,
    /// The vector field the index is built on.
    pub field_name: String,
    /// Defaults to the field name when empty.
    pub index_name: String,
}

impl IndexSpec {
    /// "No index" on `field_name`.
    pub fn none(field_name: impl Into<String>) -> Self {
        Self {
            kind: IndexKind::None,
            field_name: field_name.into(),
            index_name: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionMeta {
    pub id: CollectionId,
    pub name: String,
    pub schema: CollectionSchema,
    pub shards: u32,
    pub metric: Metric,
    pub index: IndexSpec,
    /// Bumped by every index change; segments built under another version
    /// are re-indexed by their shard's owner (0 for collections older than
    /// the field: their segments are 0 too).
    #[serde(default)]
    pub index_version: u64,
    pub created_ts: Timestamp,
    pub updated_ts: Timestamp,
    pub loaded: bool,
    /// Released by a user (ReleaseCollection) and not loaded since: its
    /// reads are refused. Unlike `!loaded` this is never true of a
    /// collection nobody released (standalone never set `loaded` before
    /// releases existed).
    #[serde(default)]
    pub released: bool,
    /// How many querynodes serve each shard while loaded (Milvus's
    /// `replica_number`; at least 1).
    #[serde(default = "one")]
    pub replica_number: u32,
    /// The collection's partitions, in creation order. Empty for a
    /// collection created before partitions existed: it has the one
    /// partition `_default`, whose id is the collection's.
    #[serde(default)]
    pub partitions: Vec<PartitionMeta>,
    /// How many partitions were dropped: their rows may remain in storage,
    /// so reads then keep to the live partitions' ids.
    #[serde(default)]
    pub partitions_dropped: u64,
    /// Properties of the vector index (AlterIndex: `mmap.enabled`).
    #[serde(default)]
    pub index_properties: std::collections::BTreeMap<String, String>,
    /// The indexes of vector fields other than the first, by field name
    /// (`index` is the first's); loading needs one on every vector field.
    #[serde(default)]
    pub field_indexes: std::collections::BTreeMap<String, FieldIndexMeta>,
    /// The indexes of scalar fields, by field name (`rules/scalar_index.rs`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub scalar_indexes: std::collections::BTreeMap<String, quiver_api::ScalarIndex>,
    /// Why a loaded collection's shards lack querynodes to serve them
    /// (placement found none with room: `querynode.max_memory_mib`); None
    /// while every shard has its replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unplaced: Option<String>,
}

/// The index of a vector field other than the first: searched exactly per
/// segment with its metric (no graph is built for it yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldIndexMeta {
    pub index: IndexSpec,
    pub metric: Metric,
}

/// A database other than the default one (which always exists and is not
/// recorded). Its collections and aliases are named `db.name`
/// (`quiver_common::qualify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseMeta {
    pub id: u64,
    pub name: String,
    pub created_ts: Timestamp,
    pub properties: BTreeMap<String, String>,
}

/// One partition of a collection (Milvus's partitions: rows carry the
/// partition id in a hidden column the front door fills).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    pub id: u64,
    pub name: String,
    pub created_ts: Timestamp,
    /// Released by ReleasePartitions while its collection stays loaded:
    /// reads naming it are refused, reads naming none skip it.
    pub released: bool,
}

fn one() -> u32 {
    1
}

/// What a registered node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeRole {
    /// Owns shards: writes, WAL, sealing.
    DataNode,
    /// Serves searches and queries of shard replicas.
    QueryNode,
}

impl NodeRole {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::DataNode => "datanode",
            NodeRole::QueryNode => "querynode",
        }
    }
}

impl std::fmt::Display for NodeRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A datanode or querynode known to coord (registered by its first heartbeat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMeta {
    pub id: u64,
    pub role: NodeRole,
    /// `host:port` of the node's internal gRPC endpoint.
    pub addr: String,
    /// Being drained (`quiver node drain`): placement puts nothing new on it
    /// and moves what it has elsewhere, each move made before it breaks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
}

/// A sealed segment registered by a shard's datanode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub id: u64,
    pub rows: u64,
    pub max_ts: Timestamp,
    /// The highest WAL sequence number the segment covers.
    pub wal_seq: u64,
    pub has_index: bool,
    /// The collection's `index_version` its index was built under.
    #[serde(default)]
    pub index_version: u64,
}

/// The segments of one shard, sorted by id, and the WAL checkpoint they cover.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentCatalog {
    pub segments: Vec<SegmentMeta>,
    /// The highest WAL seq covered by registered segments; only moves forward.
    pub wal_checkpoint: u64,
    /// Compactions applied to this shard so far.
    #[serde(default)]
    pub compactions: u64,
    /// When the last one was applied (hybrid timestamp of its log entry).
    #[serde(default)]
    pub last_compaction_ts: Option<Timestamp>,
}

/// One compaction as applied: its input segments and the output that
/// replaced them (`None` when no input row was live any more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionPlanRecord {
    pub shard: ShardIndex,
    pub inputs: Vec<SegmentId>,
    pub output: Option<SegmentId>,
}

/// A manual compaction of a collection (Milvus `ManualCompaction`): done
/// once the owner of every shard has compacted what the shard held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionJob {
    pub id: u64,
    pub collection_id: CollectionId,
    pub requested_ts: Timestamp,
    /// Shards whose owner has not finished yet.
    pub pending: BTreeSet<ShardIndex>,
    pub plans: Vec<CompactionPlanRecord>,
    pub finished_ts: Option<Timestamp>,
}

/// The datanode that owns a shard, with its fencing epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardOwner {
    pub node_id: u64,
    pub epoch: u64,
}

/// All replicated metadata. `version` grows by one per successfully applied command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaState {
    pub(crate) version: u64,
    /// Next id the allocator hands out (0 is never an id).
    pub(crate) next_id: u64,
    pub(crate) collections: BTreeMap<CollectionId, CollectionMeta>,
    /// Collection name -> id.
    pub(crate) names: BTreeMap<String, CollectionId>,
    /// Aliases by name; their collections by id (`alias.rs`).
    pub(crate) aliases: BTreeMap<String, AliasRecord>,
    pub(crate) segments: BTreeMap<CollectionId, BTreeMap<ShardIndex, SegmentCatalog>>,
    pub(crate) owners: BTreeMap<CollectionId, BTreeMap<ShardIndex, ShardOwner>>,
    /// Registered datanodes and querynodes, by id.
    #[serde(default)]
    pub(crate) nodes: BTreeMap<u64, NodeMeta>,
    /// The querynodes serving each shard of a loaded collection, in order.
    #[serde(default)]
    pub(crate) replicas: BTreeMap<CollectionId, BTreeMap<ShardIndex, Vec<u64>>>,
    /// Replica moves under way: the node of a shard's replicas whose copy
    /// goes once the others serve (`rules/balance.rs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) leaving: BTreeMap<CollectionId, BTreeMap<ShardIndex, u64>>,
    /// Manual compactions, by id (the newest few finished ones are kept).
    #[serde(default)]
    pub(crate) compactions: BTreeMap<u64, CompactionJob>,
    /// Users, roles and grants (`quiver_auth`); data dirs written before
    /// security existed open with the built-in roles and no users.
    #[serde(default)]
    pub(crate) security: Arc<SecurityState>,
    /// The cluster's id, named by the first coord that registered
    /// (`rules/coords.rs`; none in metadata of a release before identities).
    #[serde(default)]
    pub(crate) cluster_id: Option<String>,
    /// Each coord's registered incarnation (`crate::identity`).
    #[serde(default)]
    pub(crate) coords: BTreeMap<u64, String>,
    /// Databases other than the default one, by name (none in metadata of
    /// a release before databases: every collection is the default's).
    #[serde(default)]
    pub(crate) databases: BTreeMap<String, DatabaseMeta>,
}

impl Default for MetaState {
    fn default() -> Self {
        Self {
            version: 0,
            next_id: 1,
            collections: BTreeMap::new(),
            names: BTreeMap::new(),
            aliases: BTreeMap::new(),
            segments: BTreeMap::new(),
            owners: BTreeMap::new(),
            nodes: BTreeMap::new(),
            replicas: BTreeMap::new(),
            leaving: BTreeMap::new(),
            compactions: BTreeMap::new(),
            security: Arc::default(),
            cluster_id: None,
            coords: BTreeMap::new(),
            databases: BTreeMap::new(),
        }
    }
}

impl MetaState {
    /// Databases other than the default one, by name.
    pub fn databases(&self) -> &BTreeMap<String, DatabaseMeta> {
        &self.databases
    }

    /// The cluster's id (none until a coord of a cluster registered).
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// The incarnation coord `node_id` registered.
    pub fn coord_incarnation(&self, node_id: u64) -> Option<&str> {
        self.coords.get(&node_id).map(String::as_str)
    }

    /// Users, roles and grants.
    pub fn security(&self) -> &Arc<SecurityState> {
        &self.security
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Moves the version of a state rebuilt from a backup to the next
    /// multiple of 2^32. Clients keep only a newer version than they hold,
    /// and the lost coords may have published versions past the backup
    /// (applied, not yet backed up, never acknowledged): without the step
    /// the recovered coords' next changes would reuse those numbers and
    /// every watching cache would pass them over. Every coord is rebuilt
    /// from the same backup, so they agree on it.
    pub(crate) fn recovered(&mut self) {
        self.version = ((self.version >> 32) + 1) << 32;
    }

    /// The next id the allocator will hand out.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Resolves an alias to its collection name; a collection name resolves to itself.
    pub fn resolve<'a>(&'a self, name_or_alias: &'a str) -> Option<&'a str> {
        if self.names.contains_key(name_or_alias) {
            Some(name_or_alias)
        } else {
            let target = self.aliases.get(name_or_alias)?.target;
            self.collections.get(&target).map(|c| c.name.as_str())
        }
    }

    /// The collection named `name_or_alias`, or the one that alias points to.
    pub fn collection(&self, name_or_alias: &str) -> Option<&CollectionMeta> {
        let name = self.resolve(name_or_alias)?;
        self.names.get(name).and_then(|id| self.collections.get(id))
    }

    pub fn collection_by_id(&self, id: CollectionId) -> Option<&CollectionMeta> {
        self.collections.get(&id)
    }

    /// All collections, by id.
    pub fn collections(&self) -> impl Iterator<Item = &CollectionMeta> {
        self.collections.values()
    }

    /// The segment catalog of a shard (empty if nothing was registered).
    pub fn segments(&self, collection_id: CollectionId, shard: ShardIndex) -> SegmentCatalog {
        self.segments
            .get(&collection_id)
            .and_then(|s| s.get(&shard))
            .cloned()
            .unwrap_or_default()
    }

    pub fn shard_owner(
        &self,
        collection_id: CollectionId,
        shard: ShardIndex,
    ) -> Option<ShardOwner> {
        self.owners
            .get(&collection_id)
            .and_then(|s| s.get(&shard))
            .copied()
    }

    /// Registered nodes, by id.
    pub fn nodes(&self) -> &BTreeMap<u64, NodeMeta> {
        &self.nodes
    }

    pub fn node(&self, id: u64) -> Option<&NodeMeta> {
        self.nodes.get(&id)
    }

    /// What node `id` still has: the shards it owns and the shards whose
    /// replicas it serves, as (collection, shard).
    #[allow(clippy::type_complexity)]
    pub fn holdings(
        &self,
        id: u64,
    ) -> (
        Vec<(CollectionId, ShardIndex)>,
        Vec<(CollectionId, ShardIndex)>,
    ) {
        let owned = (self.owners.iter())
            .flat_map(|(c, shards)| shards.iter().map(move |(s, o)| (*c, *s, o.node_id)))
            .filter(|(_, _, n)| *n == id)
            .map(|(c, s, _)| (c, s))
            .collect();
        let served = (self.replicas.iter())
            .flat_map(|(c, shards)| shards.iter().map(move |(s, nodes)| (*c, *s, nodes)))
            .filter(|(_, _, nodes)| nodes.contains(&id))
            .map(|(c, s, _)| (c, s))
            .collect();
        (owned, served)
    }

    /// A manual compaction by id.
    pub fn compaction(&self, id: u64) -> Option<&CompactionJob> {
        self.compactions.get(&id)
    }

    /// Manual compactions still waiting for this shard's owner, oldest first.
    pub fn pending_compactions(&self, collection_id: CollectionId, shard: ShardIndex) -> Vec<u64> {
        self.compactions
            .values()
            .filter(|j| j.collection_id == collection_id && j.pending.contains(&shard))
            .map(|j| j.id)
            .collect()
    }

    /// The replica of a shard that a move under way releases once the
    /// others serve (a record naming a node no longer among the replicas
    /// does not count).
    pub fn leaving_replica(&self, collection_id: CollectionId, shard: ShardIndex) -> Option<u64> {
        let node = *self.leaving.get(&collection_id)?.get(&shard)?;
        self.shard_replicas(collection_id, shard)
            .contains(&node)
            .then_some(node)
    }

    /// The querynodes serving a shard (empty when none or not loaded).
    pub fn shard_replicas(&self, collection_id: CollectionId, shard: ShardIndex) -> Vec<u64> {
        self.replicas
            .get(&collection_id)
            .and_then(|s| s.get(&shard))
            .cloned()
            .unwrap_or_default()
    }
}
