//! Quiver storage: the object-store layout, the per-shard WAL (group commit, fencing by
//! put-if-absent, torn-tail detection) and immutable segment files read through mmap.
//!
//! - [`open_local_store`]: `LocalFileSystem` with fsync on, so a successful put is durable.
//! - [`StoreConfig`] / [`open_store`]: a local directory or an S3-compatible bucket (with
//!   real conditional writes, which the WAL's fencing needs).
//! - [`Wal`]: one object per group-committed batch at `wal/<collection>/<shard>/<seq:020>.wal`.
//!   The key is the seq, not `<epoch>/<first_ts>` as design.md §2 first sketched: fencing by
//!   put-if-absent needs every epoch to compete for the same next key.
//! - [`encode_segment`] / [`MappedSegment`] / [`put_segment`] / [`fetch_segment`]: segment files
//!   at `segments/<collection>/<shard>/<id:020>.seg` (+ `.idx`), cached locally and mapped.
//!
//! All async functions need a tokio runtime; [`Wal::open`] spawns the log's writer task.

mod cleanup;
mod codec;
mod config;
mod error;
pub mod layout;
mod mirror;
mod segment;
mod store;
mod wal;

pub use cleanup::delete_shard_data;
pub use config::StoreConfig;
pub use error::{Result, StorageError};
pub use mirror::{read_mirror_cursor, write_mirror_cursor};
pub use object_store::{ObjectStore, path::Path as ObjectPath};
pub use segment::{
    MappedSegment, SegmentData, SegmentKeys, encode_segment, fetch_segment, prune_segment_cache,
    put_segment, read_segment_keys,
};
pub use store::{open_local_store, open_store};
pub use wal::{RecoveryReport, TornTail, Wal, WalOptions, WalRecord};
