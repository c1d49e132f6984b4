//! Shared test helpers: coord's catalog in memory.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use quiver_api::{MetaClient, SegmentInfo, ShardId};
use quiver_common::Result;

/// Coord's catalog in memory.
#[derive(Default)]
pub struct MemMeta {
    segments: Mutex<HashMap<ShardId, (Vec<SegmentInfo>, u64)>>,
    next_id: Mutex<u64>,
    epochs: Mutex<HashMap<ShardId, u64>>,
}

#[async_trait]
impl MetaClient for MemMeta {
    async fn register_segments(
        &self,
        shard: ShardId,
        segs: Vec<SegmentInfo>,
        checkpoint: u64,
    ) -> Result<()> {
        let mut all = self.segments.lock();
        let e = all.entry(shard).or_default();
        e.0.extend(segs);
        e.1 = e.1.max(checkpoint);
        Ok(())
    }

    async fn segments(&self, shard: ShardId) -> Result<(Vec<SegmentInfo>, u64)> {
        Ok(self
            .segments
            .lock()
            .get(&shard)
            .cloned()
            .unwrap_or_default())
    }

    async fn allocate_ids(&self, count: u64) -> Result<u64> {
        let mut n = self.next_id.lock();
        *n += count;
        Ok(*n - count + 1)
    }

    async fn acquire_shard(&self, shard: ShardId, _node: u64) -> Result<u64> {
        let mut e = self.epochs.lock();
        let epoch = e.entry(shard).or_default();
        *epoch += 1;
        Ok(*epoch)
    }
}
