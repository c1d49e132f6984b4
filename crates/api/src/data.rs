//! The write path (front door -> datanode) and the shard stream
//! (datanode -> querynodes).

use std::sync::Arc;

use async_trait::async_trait;
use quiver_common::{Mutation, PrimaryKey, Result, RowBatch, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::meta::{SegmentInfo, ShardId};

/// A write to one shard, before the datanode stamps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WriteOp {
    Upsert(RowBatch),
    Delete(Vec<PrimaryKey>),
    /// A write a mirror copies from the partner collection's shard of the
    /// same index: applied like the inner op, marked in the WAL so it is
    /// never shipped back. Only datanodes send it.
    Mirrored(Box<WriteOp>),
}

impl WriteOp {
    /// Rows (or keys) it touches.
    pub fn rows(&self) -> usize {
        match self {
            WriteOp::Upsert(b) => b.len(),
            WriteOp::Delete(pks) => pks.len(),
            WriteOp::Mirrored(op) => op.rows(),
        }
    }
}

/// What a querynode receives from a shard's owner, in timestamp order.
#[derive(Debug, Clone)]
pub enum ShardEvent {
    /// A durable mutation.
    Mutation(Arc<Mutation>),
    /// Nothing was written up to this timestamp.
    Tick(Timestamp),
    /// A segment now holds every mutation with ts <= `segment.max_ts`.
    Sealed(SegmentInfo),
    /// Sealed segments `inputs` were replaced by `output` (their live rows,
    /// `None` when none was left): swap them without touching growing data.
    Compacted {
        inputs: Vec<quiver_common::SegmentId>,
        output: Option<SegmentInfo>,
    },
}

/// A consistent starting point plus the live stream after it: load
/// `sealed`, apply `growing` in order, then apply `events`.
#[derive(Debug)]
pub struct Subscription {
    pub sealed: Vec<SegmentInfo>,
    pub growing: Vec<Arc<Mutation>>,
    pub events: mpsc::UnboundedReceiver<ShardEvent>,
}

/// The datanode as seen by the front door.
#[async_trait]
pub trait DataClient: Send + Sync {
    /// Stamps, logs durably and applies `op`; returns its timestamp once durable.
    async fn write(&self, shard: ShardId, op: WriteOp) -> Result<Timestamp>;
    /// The timestamp of the last acknowledged mutation (or tick) of the shard.
    async fn last_ts(&self, shard: ShardId) -> Result<Timestamp>;
    /// Seals the growing data of the shard now; returns once it is registered.
    async fn flush(&self, shard: ShardId) -> Result<()>;
}

/// The shard stream as seen by a querynode.
#[async_trait]
pub trait ShardFeed: Send + Sync {
    async fn subscribe(&self, shard: ShardId) -> Result<Subscription>;
}
