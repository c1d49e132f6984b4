//! Quiver storage: the object-store layout, the per-shard WAL (group commit, fencing by
//! put-if-absent, torn-tail detection) and immutable segment files read through mmap.

mod codec;
mod error;
pub mod layout;
mod segment;
mod store;
mod wal;

pub use error::{Result, StorageError};
pub use object_store::{ObjectStore, path::Path as ObjectPath};
pub use segment::{MappedSegment, SegmentData, encode_segment, fetch_segment, put_segment};
pub use store::open_local_store;
pub use wal::{RecoveryReport, TornTail, Wal, WalOptions, WalRecord};
