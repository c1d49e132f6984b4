//! Quiver's coordinator: collections, aliases, the segment catalog, shard
//! ownership and an id allocator, replicated with openraft (storage-v2) and
//! persisted on disk.
//!
//! The rules that change the metadata are pure functions over [`MetaState`]
//! (`rules::apply(state, command, log_ts)`), unit-tested without I/O; openraft
//! only orders and carries out the commands. Today a coord is a one-node
//! cluster ([`NoPeers`]); the peer transport is a trait object
//! ([`RaftTransport`]) so a gRPC transport can be plugged in for three nodes.
//!
//! On-disk layout of a coord directory:
//! - `LOCK` — flock'ed while a coord has the directory open.
//! - `raft-log` — `QVRLOG1\n`, then records `len u32 LE | crc32 u32 LE |
//!   JSON entry`; appended and fsynced before openraft is told. A torn last
//!   record (crash mid-append) is dropped on open; a bad record with data
//!   after it is reported as corruption.
//! - `raft-state.json` — vote, committed and purged log ids (temp file +
//!   fsync + rename).
//! - `snapshot.json` — `{"meta": SnapshotMeta, "state": MetaState}` (temp
//!   file + fsync + rename); the log is compacted behind it.

mod command;
mod coord;
mod error;
mod raft;
mod rules;
mod state;

pub use coord::{Coord, CoordOptions};
pub use error::{CoordError, Result, RuleError};
pub use raft::{NoPeers, RaftTransport, TypeConfig};
pub use state::{
    AliasMeta, CollectionMeta, IndexKind, IndexSpec, MetaState, SegmentCatalog, SegmentMeta,
    ShardOwner,
};
