//! Quiver's coordinator: collections, aliases, the segment catalog, shard
//! ownership and an id allocator, replicated with openraft and persisted on
//! disk. The rules that change the metadata are pure functions
//! ([`rules`]); openraft only carries them out.

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
