//! Shared vocabulary of Quiver: ids, schema, timestamps, row batches and the
//! error type that crosses role boundaries.
//!
//! Nothing here does I/O. Every role crate depends on this one and on no other
//! role crate.

mod batch;
mod column;
mod database;
mod error;
mod functions;
mod memory;
mod metric;
mod schema;
mod timestamp;
mod vectors;

pub use batch::{Column, ColumnData, Mutation, PrimaryKey, RowBatch, ScalarValue, check_sparse};
pub use column::{ColumnSlice, StoredColumn, ValueRef};
pub use database::{DEFAULT_DATABASE, qualify, split_qualified, validate_qualified};
pub use error::{Error, ErrorKind, Result};
pub use memory::{ResidentMemory, release_free_memory, tune_allocator};
pub use schema::{
    CollectionSchema, ConsistencyLevel, DYNAMIC_FIELD, DataType, FieldSchema, FunctionKind,
    FunctionSchema, MAX_ARRAY_CAPACITY, MAX_DIM, MAX_VARCHAR_LENGTH, MMAP_PROPERTY, Metric,
    TTL_PROPERTY, validate_name,
};
pub use timestamp::{HybridClock, Timestamp, compose_ts, ts_logical, ts_physical_ms, wall_ts};
pub use vectors::{ElementType, VectorData, VectorSlice, Vectors, VectorsRef};

/// Identifier of a collection (assigned by coord, never reused).
pub type CollectionId = u64;
/// Identifier of a sealed segment (unique within a shard).
pub type SegmentId = u64;
/// Index of a shard within its collection (0..shard_count).
pub type ShardIndex = u32;
