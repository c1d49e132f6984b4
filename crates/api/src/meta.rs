//! What roles need from coord.

use async_trait::async_trait;
use quiver_common::{
    CollectionId, CollectionSchema, Metric, Result, SegmentId, ShardIndex, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::alias::{Actor, AliasChange, AliasMeta};

/// One shard of one collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShardId {
    pub collection_id: CollectionId,
    pub shard: ShardIndex,
}

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.collection_id, self.shard)
    }
}

/// How sealed segments of a collection are indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexKind {
    /// Exact search only.
    Flat,
    Hnsw {
        m: usize,
        ef_construction: usize,
    },
    /// No index yet (Milvus: created without one): segments are sealed
    /// without a graph, and the collection cannot be loaded until one is set.
    None,
    /// A sparse vector field's inverted index (SPARSE_INVERTED_INDEX, or
    /// SPARSE_WAND when `wand`; searched exactly either way), with the BM25
    /// parameters of a BM25 function's output in thousandths.
    Sparse {
        wand: bool,
        bm25_k1_milli: u32,
        bm25_b_milli: u32,
    },
    /// HNSW over 8-bit scalar-quantized codes, re-ranked with the vectors
    /// (Milvus HNSW_SQ, and IVF_SQ8 served by it): the segment's graph
    /// holds the codes, so the vectors need not stay in memory.
    HnswSq {
        m: usize,
        ef_construction: usize,
    },
}

impl IndexKind {
    /// The graph build parameters `(m, ef_construction, quantized)` of a
    /// kind whose sealed segments get an HNSW graph.
    pub fn graph(&self) -> Option<(usize, usize, bool)> {
        match *self {
            IndexKind::Hnsw { m, ef_construction } => Some((m, ef_construction, false)),
            IndexKind::HnswSq { m, ef_construction } => Some((m, ef_construction, true)),
            _ => None,
        }
    }

    /// The BM25 parameters of a sparse index (defaults otherwise).
    pub fn bm25(&self) -> quiver_text::Bm25 {
        match self {
            IndexKind::Sparse {
                bm25_k1_milli,
                bm25_b_milli,
                ..
            } => quiver_text::Bm25 {
                k1: *bm25_k1_milli as f32 / 1000.0,
                b: *bm25_b_milli as f32 / 1000.0,
            },
            _ => quiver_text::Bm25::default(),
        }
    }
}

/// What a data or query node needs to know about a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionInfo {
    pub id: CollectionId,
    pub schema: CollectionSchema,
    pub shards: u32,
    pub metric: Metric,
    pub index: IndexKind,
    /// Bumped by every index change (CreateIndex after DropIndex, or on a
    /// collection created without one); a segment built under another
    /// version is re-indexed by its shard's owner.
    #[serde(default)]
    pub index_version: u64,
    /// The indexes of vector fields other than the first, by field name.
    #[serde(default)]
    pub field_indexes: std::collections::BTreeMap<String, FieldIndex>,
    /// The scalar fields' declared indexes, by field name: a querynode
    /// builds them as each segment loads.
    #[serde(default)]
    pub scalar_indexes: std::collections::BTreeMap<String, ScalarIndexKind>,
}

impl CollectionInfo {
    /// The index of vector field `field` (the collection's own for its main
    /// vector field), if it has one.
    pub fn index_of(&self, field: &str) -> Option<IndexKind> {
        if field == self.schema.vector_field().name {
            Some(self.index).filter(|k| *k != IndexKind::None)
        } else {
            self.field_indexes.get(field).map(|i| i.kind)
        }
    }

    /// The metric a search of vector field `field` (None: the first) uses,
    /// or why it cannot be searched.
    pub fn metric_of(&self, field: Option<&str>) -> quiver_common::Result<Metric> {
        match field {
            None => Ok(self.metric),
            Some(f) if f == self.schema.vector_field().name => Ok(self.metric),
            Some(f) => match self.field_indexes.get(f) {
                Some(i) => Ok(i.metric),
                None if self
                    .schema
                    .field(f)
                    .is_some_and(|x| x.data_type.is_vector()) =>
                {
                    Err(quiver_common::Error::IndexNotFound(format!(
                        "there is no vector index on field {f:?} of collection {:?}",
                        self.schema.name
                    )))
                }
                None => Err(quiver_common::Error::invalid(
                    "anns_field",
                    format!("no vector field {f:?} in collection {:?}", self.schema.name),
                )),
            },
        }
    }
}

/// A sealed segment as registered in coord's catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    pub id: SegmentId,
    pub rows: u64,
    /// Every mutation of the shard with a timestamp <= `max_ts` that is not in
    /// an earlier segment is in this one (the seal cut).
    pub max_ts: u64,
    /// The last WAL sequence number the segment covers.
    pub wal_seq: u64,
    pub has_index: bool,
    /// The collection's `index_version` its index was built under, or
    /// [`INDEX_PENDING`] for a segment sealed before its graph was built.
    #[serde(default)]
    pub index_version: u64,
}

impl SegmentInfo {
    /// Sealed before the graph its collection's index calls for was built
    /// ([`INDEX_PENDING`]).
    pub fn graph_pending(&self) -> bool {
        self.index_version == INDEX_PENDING
    }
}

/// The `index_version` of a segment sealed without the graph its collection's
/// index calls for: a seal hands rows off without waiting for a build, and
/// the shard's owner builds the graph next, as a re-index. Never a
/// collection's version (those count up from 0), so every rule that compares
/// versions (re-indexing, DescribeIndex's pending rows) sees it as due; a
/// release that predates it re-indexes such a segment the same way.
pub const INDEX_PENDING: u64 = u64::MAX;

/// Coord as seen by the data path.
#[async_trait]
pub trait MetaClient: Send + Sync {
    /// Registers sealed segments and moves the shard's WAL checkpoint forward.
    /// `epoch` is the caller's fencing epoch for the shard (from
    /// `acquire_shard`); coord refuses it with `Fenced` unless it is the
    /// shard's current one.
    async fn register_segments(
        &self,
        shard: ShardId,
        epoch: u64,
        segments: Vec<SegmentInfo>,
        wal_checkpoint: u64,
    ) -> Result<()>;
    /// The live segments of a shard and its WAL checkpoint.
    async fn segments(&self, shard: ShardId) -> Result<(Vec<SegmentInfo>, u64)>;
    /// Allocates `count` unique ids; returns the first.
    async fn allocate_ids(&self, count: u64) -> Result<u64>;
    /// Makes `node_id` the owner of `shard`; returns the new fencing epoch.
    async fn acquire_shard(&self, shard: ShardId, node_id: u64) -> Result<u64>;
    /// Replaces sealed `inputs` by their compacted `output` (`None`: no
    /// input row was live) in one step; refused (`Fenced`) unless `epoch` is
    /// the shard's current one, and refused if an input is no longer
    /// registered. `job`: the manual compaction it is part of.
    async fn compact_segments(
        &self,
        shard: ShardId,
        epoch: u64,
        inputs: Vec<SegmentId>,
        output: Option<SegmentInfo>,
        job: Option<u64>,
    ) -> Result<()>;
    /// The collection as coord's metadata has it now (its current index and
    /// metric), where this client can tell; `None`: use what the shard was
    /// opened with.
    fn collection(&self, id: CollectionId) -> Option<CollectionInfo> {
        let _ = id;
        None
    }
    /// The shard's current owner epoch (0: no owner), read linearizably.
    async fn shard_epoch(&self, shard: ShardId) -> Result<u64>;
    /// Manual compactions waiting for this shard's owner, oldest first.
    async fn pending_compactions(&self, shard: ShardId) -> Result<Vec<u64>> {
        let _ = shard;
        Ok(Vec::new())
    }
    /// The owner has done what manual compaction `job` asked of `shard`.
    async fn finish_compaction(&self, shard: ShardId, epoch: u64, job: u64) -> Result<()> {
        let _ = (shard, epoch, job);
        Ok(())
    }
}

/// One compaction of a manual compaction job: inputs and output segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionPlan {
    pub shard: ShardIndex,
    pub inputs: Vec<SegmentId>,
    /// `None` when no input row was live.
    pub output: Option<SegmentId>,
}

/// A manual compaction's progress (Milvus `GetCompactionState`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionStatus {
    pub id: u64,
    pub collection_id: CollectionId,
    /// Shards whose owner has not finished yet.
    pub pending_shards: Vec<ShardIndex>,
    pub plans: Vec<CompactionPlan>,
    pub finished: bool,
}

/// What a new collection is made of (the front door fills the defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateCollection {
    pub schema: CollectionSchema,
    pub shards: u32,
    pub metric: Metric,
    pub index: IndexKind,
    /// The partitions it starts with (None: only the implicit `_default`,
    /// and no partitions can be created in it).
    pub partitions: Option<Vec<String>>,
}

/// Coord's catalog as seen by the front door: DDL goes through coord; lookups
/// come from a local cache that follows coord, so the data path never waits
/// on coord.
#[async_trait]
pub trait CatalogClient: Send + Sync {
    /// Creates the collection and makes it writable and searchable.
    async fn create_collection(&self, req: CreateCollection) -> Result<CollectionInfo>;
    async fn drop_collection(&self, name: &str) -> Result<()>;
    /// A collection by name or alias, from the local cache.
    fn collection(&self, name_or_alias: &str) -> Option<CollectionInfo>;
    fn collections(&self) -> Vec<CollectionInfo>;
    /// Allocates `count` unique ids (auto_id keys); returns the first.
    async fn allocate_ids(&self, count: u64) -> Result<u64>;
    /// Makes `alias` a second name of `collection` (a new alias).
    async fn create_alias(&self, alias: &str, collection: &str) -> Result<()>;
    /// Points an existing `alias` at `collection`.
    async fn alter_alias(&self, alias: &str, collection: &str) -> Result<()>;
    async fn drop_alias(&self, alias: &str) -> Result<()>;
    /// Every alias with the name of the collection it points at, by alias.
    fn aliases(&self) -> Vec<(String, String)>;
    /// When a collection (by name or alias) was created and last changed, if
    /// the catalog records it (front doors report it; Milvus clients key their
    /// schema caches on it).
    fn collection_times(&self, name_or_alias: &str) -> Option<CollectionTimes> {
        let _ = name_or_alias;
        None
    }
    /// Waits (a bounded time) until the local cache holds every metadata
    /// change coord acknowledged before the call, such as the segments a
    /// datanode registered for a flush: a front door that answers from its
    /// cache right after a flush then counts them. A cache that is coord's
    /// own applied state has nothing to wait for.
    async fn catch_up(&self) {}
    /// An alias with its mirror and history, from the local cache.
    fn alias(&self, alias: &str) -> Option<AliasMeta> {
        let _ = alias;
        None
    }
    /// Every datanode and querynode of the cluster, as coord's leader sees
    /// them (a standalone front door has none to show).
    async fn nodes(&self) -> Result<Vec<crate::NodeInfo>> {
        Err(quiver_common::Error::Unavailable(
            "this front door has no cluster nodes (standalone runs every role in one process)"
                .into(),
        ))
    }
    /// Starts (`draining`) or stops draining node `id`: placement puts
    /// nothing new on it and moves what it has to other nodes.
    async fn drain_node(&self, id: u64, draining: bool) -> Result<()> {
        let _ = (id, draining);
        Err(quiver_common::Error::Unavailable(
            "this front door has no cluster nodes to drain".into(),
        ))
    }
    /// Forgets node `id`, which must be gone (lease expired) and hold
    /// nothing.
    async fn forget_node(&self, id: u64) -> Result<()> {
        let _ = id;
        Err(quiver_common::Error::Unavailable(
            "this front door has no cluster nodes to remove".into(),
        ))
    }
    /// How far the mirror partner of `collection` is behind it (ms), where
    /// this front door can tell (None: unknown or not mirrored).
    async fn mirror_lag_ms(&self, collection: &str) -> Option<u64> {
        let _ = collection;
        None
    }
    /// Rows that differ between the two collections of a mirrored alias, as
    /// the divergence check last counted them (None: unknown).
    async fn divergent_rows(&self, alias: &str) -> Option<u64> {
        let _ = alias;
        None
    }
    /// A mirrored alias's (standby lag of `target`, divergent rows) — what
    /// [`CatalogClient::mirror_lag_ms`] and [`CatalogClient::divergent_rows`]
    /// say; a network catalog answers both with one call.
    async fn mirror_status(&self, alias: &str, target: &str) -> (Option<u64>, Option<u64>) {
        (
            self.mirror_lag_ms(target).await,
            self.divergent_rows(alias).await,
        )
    }
    /// An admin API alias change (mirror, flip, pin, compare-and-swap alter),
    /// recorded with `actor`; returns the alias's new epoch.
    async fn change_alias(&self, change: AliasChange, actor: Actor) -> Result<u64> {
        let _ = (change, actor);
        Err(quiver_common::Error::Unavailable(
            "this front door has no alias admin".into(),
        ))
    }
    /// Loads the collection, by name or alias (serves its reads again after a release;
    /// idempotent); `replicas` sets how many querynodes serve each shard
    /// (None keeps the number). Where there is one querynode (standalone) the
    /// number is accepted and changes nothing.
    async fn load_collection(&self, name_or_alias: &str, replicas: Option<u32>) -> Result<()>;
    /// Releases the collection: querynodes stop serving it (its memory is
    /// freed) and its reads are refused until it is loaded again. Writes
    /// still land.
    async fn release_collection(&self, name_or_alias: &str) -> Result<()>;
    /// Whether reads of the collection are served (false once released).
    fn is_loaded(&self, name_or_alias: &str) -> bool;
    /// Why a loaded collection's shards lack the replicas it asked for
    /// (cluster placement found no querynode with memory room); None when
    /// placement has nothing to report.
    fn load_problem(&self, name_or_alias: &str) -> Option<String> {
        let _ = name_or_alias;
        None
    }
    /// Sets the vector index of a collection that has none (Milvus
    /// CreateIndex; the same index again changes nothing): a new index
    /// version whose segments the shards' owners build in the background.
    async fn set_index(&self, name_or_alias: &str, index: IndexSpec) -> Result<()> {
        let _ = (name_or_alias, index);
        Err(quiver_common::Error::Unavailable(
            "this front door cannot change indexes".into(),
        ))
    }
    /// Sets the index of scalar field `field` (the same again changes
    /// nothing; another kind is refused).
    async fn set_scalar_index(
        &self,
        name_or_alias: &str,
        field: &str,
        index: ScalarIndex,
    ) -> Result<()> {
        let _ = (name_or_alias, field, index);
        Err(quiver_common::Error::Unavailable(
            "this front door cannot change indexes".into(),
        ))
    }
    /// The indexes of a collection's scalar fields, by field name.
    fn scalar_indexes(
        &self,
        name_or_alias: &str,
    ) -> std::collections::BTreeMap<String, ScalarIndex> {
        let _ = name_or_alias;
        Default::default()
    }
    /// Drops the index of vector or scalar field `field` (None: the first
    /// vector field) of a released collection (Milvus DropIndex).
    async fn drop_index(&self, name_or_alias: &str, field: Option<&str>) -> Result<()> {
        let _ = (name_or_alias, field);
        Err(quiver_common::Error::Unavailable(
            "this front door cannot change indexes".into(),
        ))
    }
    /// The name of the collection's index, and the rows of its sealed
    /// segments built under it and in all (DescribeIndex's indexed / total).
    fn index_progress(&self, name_or_alias: &str) -> Option<IndexProgress> {
        let _ = name_or_alias;
        None
    }
    /// The querynodes serving each shard of a loaded collection (by shard;
    /// empty where this catalog does not place replicas: one process).
    fn replicas(&self, name_or_alias: &str) -> Vec<Vec<u64>> {
        let _ = name_or_alias;
        Vec::new()
    }
    /// Sets and deletes properties of a collection, its vector index or
    /// one field (Milvus AlterCollection / DropCollectionProperties /
    /// AlterIndex / AlterCollectionField).
    async fn alter(
        &self,
        name_or_alias: &str,
        target: AlterTarget,
        set: std::collections::BTreeMap<String, String>,
        delete: Vec<String>,
    ) -> Result<()> {
        let _ = (name_or_alias, target, set, delete);
        Err(quiver_common::Error::Unavailable(
            "this front door cannot alter collections".into(),
        ))
    }
    /// The collection's partitions and whether any was ever dropped; None:
    /// it has only the implicit `_default` (created before partitions, or a
    /// catalog without them).
    fn partitions(&self, name_or_alias: &str) -> Option<(Vec<PartitionInfo>, bool)> {
        let _ = name_or_alias;
        None
    }
    /// Creates, drops, releases or loads partitions (rows of a dropped one
    /// are deleted by the caller first).
    async fn change_partitions(&self, name_or_alias: &str, op: PartitionOp) -> Result<()> {
        let _ = (name_or_alias, op);
        Err(quiver_common::Error::Unavailable(
            "this front door cannot change partitions".into(),
        ))
    }
    /// Renames a collection (by its own name) to `new`, a name no
    /// collection or alias has.
    async fn rename_collection(&self, old: &str, new: &str) -> Result<()> {
        let _ = (old, new);
        Err(quiver_common::Error::Unavailable(
            "this front door cannot rename collections".into(),
        ))
    }
    /// The registered querynodes (id, address); empty where this catalog
    /// does not place replicas (one process serves everything).
    fn query_nodes(&self) -> Vec<(u64, String)> {
        Vec::new()
    }
    /// Every database, the default one first; empty where this catalog
    /// has none (then only the default one exists).
    fn databases(&self) -> Vec<DatabaseInfo> {
        Vec::new()
    }
    /// Creates, drops or alters a database.
    async fn change_database(&self, op: DatabaseOp) -> Result<()> {
        let _ = op;
        Err(quiver_common::Error::Unavailable(
            "this front door cannot change databases".into(),
        ))
    }
    /// Starts a manual compaction of every shard of a collection (by name or
    /// alias); returns its id.
    async fn request_compaction(&self, name_or_alias: &str) -> Result<u64> {
        let _ = name_or_alias;
        Err(quiver_common::Error::Unavailable(
            "this front door cannot start compactions".into(),
        ))
    }
    /// The storage of every shard (segments, live and dead rows, bytes,
    /// compaction backlog and last run), as their owners last reported it.
    async fn storage(&self) -> Vec<crate::ShardStorage> {
        Vec::new()
    }
    /// A manual compaction's progress (None: unknown or long finished).
    async fn compaction(&self, id: u64) -> Result<Option<CompactionStatus>> {
        let _ = id;
        Ok(None)
    }
    /// Users, roles and grants as this front door sees them now.
    fn security(&self) -> std::sync::Arc<quiver_auth::SecurityState> {
        std::sync::Arc::default()
    }
    /// Changes users, roles or grants (passwords arrive hashed); returns
    /// once this front door's view holds the change.
    async fn change_security(&self, op: quiver_auth::SecurityOp) -> Result<()> {
        let _ = op;
        Err(quiver_common::Error::Unavailable(
            "this front door cannot change users or roles".into(),
        ))
    }
}

/// A change to a collection's partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionOp {
    /// A new partition (one that exists already: nothing to do, as Milvus).
    Create { name: String },
    /// Drops a released partition (its rows were deleted by the caller).
    Drop { name: String },
    /// Marks partitions released (reads skip them) or loaded again.
    SetReleased { names: Vec<String>, released: bool },
}

/// A change to the databases (Milvus Create/Drop/AlterDatabase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatabaseOp {
    Create {
        name: String,
        properties: std::collections::BTreeMap<String, String>,
    },
    /// Refused while the database holds collections; dropping one that
    /// does not exist changes nothing (as Milvus).
    Drop { name: String },
    /// Sets and deletes properties.
    Alter {
        name: String,
        set: std::collections::BTreeMap<String, String>,
        delete: Vec<String>,
    },
}

/// A database as the front door sees it (the default one included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    pub id: u64,
    pub name: String,
    pub created_ts: Timestamp,
    pub properties: std::collections::BTreeMap<String, String>,
}

/// What an alter of properties changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlterTarget {
    /// The collection's properties (TTL, mmap, any other key).
    Collection,
    /// The vector index's properties (`mmap.enabled`).
    Index,
    /// One field (`max_length`, `mmap.enabled`).
    Field(String),
}

/// A partition as the front door sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub id: u64,
    pub name: String,
    pub created_ts: Timestamp,
    /// Released while its collection stays loaded: reads skip it.
    pub released: bool,
}

/// A vector index as CreateIndex asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    pub kind: IndexKind,
    pub metric: Metric,
    /// Empty: the field's name.
    pub index_name: String,
    /// The vector field it is built on (empty: the first one).
    pub field: String,
}

/// The index of a vector field other than the first (searched exactly per
/// segment with its metric; see the README's "Several vector fields").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldIndex {
    pub kind: IndexKind,
    pub metric: Metric,
    pub index_name: String,
}

/// A scalar field's index, as Milvus names its kinds (CreateIndex on a
/// scalar field). Recorded, checked against the field's type and reported.
/// A querynode builds what the kind names (a term index for `==` / `in`, a
/// sorted index for ranges) as each segment loads; whatever the kinds, it
/// builds per segment what filters on any field need on their first use,
/// and a segment that loads later gets those too before it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalarIndexKind {
    Inverted,
    StlSort,
    Bitmap,
    Trie,
    Auto,
}

impl ScalarIndexKind {
    /// Milvus's `index_type` (case-insensitive); None for others.
    pub fn parse(index_type: &str) -> Option<Self> {
        Some(match index_type.to_ascii_uppercase().as_str() {
            "INVERTED" => ScalarIndexKind::Inverted,
            "STL_SORT" => ScalarIndexKind::StlSort,
            "BITMAP" => ScalarIndexKind::Bitmap,
            "TRIE" | "MARISA-TRIE" => ScalarIndexKind::Trie,
            "AUTOINDEX" | "" => ScalarIndexKind::Auto,
            _ => return None,
        })
    }

    /// Milvus's name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalarIndexKind::Inverted => "INVERTED",
            ScalarIndexKind::StlSort => "STL_SORT",
            ScalarIndexKind::Bitmap => "BITMAP",
            ScalarIndexKind::Trie => "Trie",
            ScalarIndexKind::Auto => "AUTOINDEX",
        }
    }
}

/// A scalar field's index: its name and kind; on a JSON field, the path
/// and cast it indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalarIndex {
    pub index_name: String,
    pub kind: ScalarIndexKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<crate::JsonPathIndex>,
}

impl ScalarIndex {
    /// What the collection's scalar indexes are keyed by: the field's name,
    /// or for a JSON path index its canonical path.
    pub fn key<'a>(&'a self, field: &'a str) -> &'a str {
        self.json.as_ref().map_or(field, |j| j.path.as_str())
    }
}

/// A collection's current index: its name and how far its build got.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexProgress {
    pub index_name: String,
    /// Properties set with AlterIndex (`mmap.enabled`).
    pub properties: std::collections::BTreeMap<String, String>,
    /// Rows of sealed segments built under the current index.
    pub indexed_rows: u64,
    /// Rows of all sealed segments.
    pub total_rows: u64,
    /// Sealed segments still to be built.
    pub pending_segments: u64,
}

/// Creation and last-change times of a collection, as hybrid timestamps
/// (Milvus layout, `ms << 18 | logical`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectionTimes {
    pub id: CollectionId,
    pub created: Timestamp,
    pub updated: Timestamp,
}
