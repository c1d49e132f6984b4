//! Quiver's coordinator: collections, aliases, the segment catalog, shard
//! ownership, datanodes and querynodes with their leases and each shard's
//! placement, and an id allocator, replicated with openraft (storage-v2) and
//! persisted on disk.
//!
//! The rules that change the metadata are pure functions over [`MetaState`]
//! (`rules::apply(state, command, log_ts)`), unit-tested without I/O; openraft
//! only orders and carries out the commands. Every change is one
//! [`MetaCommand`] proposed through one entry ([`CoordApi::propose`]: the
//! in-process [`Coord`] and the network [`CoordClient`] both implement it);
//! the typed calls ([`MetaOps`]) and the role interfaces ([`Catalog`]) are
//! written once over that trait. Retried proposals carry a [`RequestId`] and
//! apply once (`requests.rs`).
//!
//! A coord runs alone ([`Coord::open`], transport [`NoPeers`]) or as one
//! member of an N-node cluster ([`Coord::open_cluster`], transport
//! [`GrpcTransport`]; any [`RaftTransport`] can be injected). [`serve`] runs
//! the gRPC server of a coord (`quiver.coord.v1`: Raft between peers and the
//! metadata API); [`CoordClient`] is the client other processes use: it
//! follows the leader, retries inside a deadline, and keeps a local copy of
//! the metadata from a watch stream. Only the leader writes; followers answer
//! with the leader's id and address.
//!
//! On-disk layout of a coord directory:
//! - `LOCK` — flock'ed while a coord has the directory open.
//! - `raft-log` — `QVRLOG1\n`, then records `len u32 LE | crc32 u32 LE |
//!   JSON entry`; appended and fsynced before openraft is told. A torn last
//!   record (crash mid-append) is dropped on open; a bad record with data
//!   after it is reported as corruption.
//! - `raft-state.json` — vote, committed and purged log ids (temp file +
//!   fsync + rename).
//! - `snapshot.json` — `{"meta": SnapshotMeta, "state": MetaState,
//!   "requests": [[RequestId, reply], ...]}` (temp file + fsync + rename;
//!   `requests` absent in older snapshots); the log is compacted behind it.
//! - `identity.json` — `{"node_id", "incarnation", "cluster_id"}` of a
//!   cluster member (`identity.rs`: whether this coord may vote).

pub mod backup;
mod catalog;
mod command;
mod coord;
mod error;
mod identity;
mod meta;
pub mod node_admin;
mod raft;
mod remote;
mod requests;
mod rules;
mod server;
mod state;
mod wire;

pub use catalog::{Catalog, LocalNodes, collection_info, segment_info, segment_meta};
pub use command::{Actor, AliasChange, MetaCommand, MetaResponse, PartitionOp, RequestId};
pub use coord::{
    ClusterStatus, Coord, CoordOptions, DEFAULT_CATCH_UP, LeaderWatch, Members, NodeHealth, Role,
};
pub use error::{CoordError, Result, RuleError};
pub use identity::Standing;
pub use meta::{CoordApi, MetaOps, MirrorHealth, Proposed};
pub use raft::{DropRule, FaultyTransport, GrpcTransport, NoPeers, RaftTransport, TypeConfig};
pub use remote::{CoordClient, CoordClientOptions, route_of};
pub use server::{serve, serve_tls};
pub use state::{
    ALIAS_HISTORY, AliasEvent, AliasMeta, CollectionMeta, IndexKind, IndexSpec, MetaState,
    MirrorMeta, NodeMeta, NodeRole, PartitionMeta, SegmentCatalog, SegmentMeta, ShardOwner,
};
