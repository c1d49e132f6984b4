//! Internal role interfaces. Roles never depend on each other's crates: a
//! datanode reaches coord through [`MetaClient`], a querynode follows a
//! datanode through [`ShardFeed`], the front door writes through
//! [`DataClient`] and reads through [`QueryClient`]. `quiver standalone`
//! plugs the roles' in-process implementations together; cluster mode plugs
//! network clients into the same traits.

mod alias;
mod column_plan;
mod data;
mod digest;
mod json_index;
mod meta;
mod query;
mod route;
mod storage;

pub use alias::{
    ALIAS_HISTORY, Actor, AliasAction, AliasChange, AliasEvent, AliasMeta, MirrorMeta,
};
pub use column_plan::{
    ColumnLeaf, ColumnPlan, LeafTest, Num, PlanNode, above, below, cmp_int_float, float_as_int,
};
pub use data::{DataClient, ShardEvent, ShardFeed, Subscription, WriteOp};
pub use digest::{
    BucketDigest, DIGEST_BUCKETS, DigestBuilder, DigestRequest, MAX_DIGEST_BUCKETS, RowHasher,
    ShardDigest, pk_bucket, row_hash,
};
pub use json_index::{
    JSON_CAST_TYPES, JsonPathIndex, JsonStep, is_json_path_key, json_path_key, json_path_value,
    parse_json_path,
};
pub use meta::{
    AlterTarget, CatalogClient, CollectionInfo, CollectionTimes, CompactionPlan, CompactionStatus,
    CreateCollection, DatabaseInfo, DatabaseOp, FieldIndex, INDEX_PENDING, IndexKind,
    IndexProgress, IndexSpec, MetaClient, PartitionInfo, PartitionOp, ScalarIndex, ScalarIndexKind,
    SegmentInfo, ShardId,
};
pub use query::{
    AnnsField, ColumnTerms, QueryClient, QueryResult, RowAccess, RowPredicate, ShardHit,
    ShardQuery, ShardSearch, SparseQueries,
};
pub use route::{NodeAddr, RouteTable, ShardRoute};
pub use storage::{NodeInfo, NodeReport, NodeState, ShardStorage};
