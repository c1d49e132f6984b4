//! openraft glue: the type config, the on-disk log and state machine, and the
//! pluggable peer transport. Everything here only carries out `crate::rules`.

pub(crate) mod durable;
mod faulty;
mod grpc;
mod log_file;
mod log_raft;
mod log_store;
mod network;
mod state_machine;
#[cfg(test)]
mod tests;

use std::io::Cursor;

pub use faulty::{DropRule, FaultyTransport};
pub use grpc::GrpcTransport;
pub(crate) use grpc::MAX_MESSAGE_BYTES;
pub(crate) use log_store::{LogStore, write_restored_hard_state};
pub(crate) use network::Network;
pub use network::{NoPeers, RaftTransport};
pub(crate) use state_machine::{StateMachine, restore_snapshot, snapshot_bytes};

use crate::command::{MetaReply, MetaRequest};

openraft::declare_raft_types!(
    /// Coord's openraft type configuration (node ids are `u64`).
    pub TypeConfig:
        D = MetaRequest,
        R = MetaReply,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub(crate) type Entry = openraft::Entry<TypeConfig>;
pub(crate) type LogId = openraft::LogId<u64>;
pub(crate) type StorageError = openraft::StorageError<u64>;
