//! Coord's catalog in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use parking_lot::Mutex;
use quiver_api::{MetaClient, SegmentInfo, ShardId};
use quiver_common::{Error, Result};

/// Coord's catalog in memory: segments per shard, ids, and owner epochs
/// (a registration with an epoch that is not the shard's current one is
/// refused as `Fenced`, as coord refuses it).
#[derive(Default)]
pub struct MemMeta {
    segments: Mutex<HashMap<ShardId, (Vec<SegmentInfo>, u64)>>,
    next_id: Mutex<u64>,
    epochs: Mutex<HashMap<ShardId, u64>>,
    /// Manual compactions: the shards each still waits for.
    jobs: Mutex<BTreeMap<u64, BTreeSet<ShardId>>>,
    /// How often each job was handed to an owner (`pending_compactions`).
    handed: Mutex<HashMap<u64, u64>>,
}

impl MemMeta {
    /// A manual compaction of `shards` (as coord's RequestCompaction).
    pub fn request_compaction(&self, shards: &[ShardId]) -> u64 {
        let mut n = self.next_id.lock();
        *n += 1;
        self.jobs
            .lock()
            .insert(*n, shards.iter().copied().collect());
        *n
    }

    /// Whether every shard of manual compaction `job` finished it.
    pub fn compaction_finished(&self, job: u64) -> bool {
        self.jobs.lock().get(&job).is_none_or(BTreeSet::is_empty)
    }

    /// Fenced like coord: only the shard's current owner changes it.
    fn fence(&self, shard: ShardId, epoch: u64) -> Result<()> {
        let current = self.epochs.lock().get(&shard).copied().unwrap_or(0);
        if epoch != current {
            return Err(Error::Fenced(format!(
                "shard {shard}: epoch {epoch} is not the current owner epoch {current}"
            )));
        }
        Ok(())
    }

    /// How many times an owner was handed manual compaction `job`.
    pub fn compaction_handed(&self, job: u64) -> u64 {
        self.handed.lock().get(&job).copied().unwrap_or(0)
    }
}

#[async_trait]
impl MetaClient for MemMeta {
    async fn register_segments(
        &self,
        shard: ShardId,
        epoch: u64,
        segs: Vec<SegmentInfo>,
        checkpoint: u64,
    ) -> Result<()> {
        self.fence(shard, epoch)?;
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

    async fn compact_segments(
        &self,
        shard: ShardId,
        epoch: u64,
        inputs: Vec<u64>,
        output: Option<SegmentInfo>,
        _job: Option<u64>,
    ) -> Result<()> {
        self.fence(shard, epoch)?;
        let mut all = self.segments.lock();
        let e = all.entry(shard).or_default();
        if let Some(id) = inputs.iter().find(|id| !e.0.iter().any(|s| s.id == **id)) {
            return Err(Error::invalid(
                "inputs",
                format!("segment {id} is not registered"),
            ));
        }
        e.0.retain(|s| !inputs.contains(&s.id));
        e.0.extend(output);
        Ok(())
    }

    async fn pending_compactions(&self, shard: ShardId) -> Result<Vec<u64>> {
        let jobs: Vec<u64> = (self.jobs.lock().iter())
            .filter(|(_, shards)| shards.contains(&shard))
            .map(|(id, _)| *id)
            .collect();
        let mut handed = self.handed.lock();
        for id in &jobs {
            *handed.entry(*id).or_default() += 1;
        }
        Ok(jobs)
    }

    async fn finish_compaction(&self, shard: ShardId, epoch: u64, job: u64) -> Result<()> {
        self.fence(shard, epoch)?;
        if let Some(shards) = self.jobs.lock().get_mut(&job) {
            shards.remove(&shard);
        }
        Ok(())
    }

    async fn shard_epoch(&self, shard: ShardId) -> Result<u64> {
        Ok(self.epochs.lock().get(&shard).copied().unwrap_or(0))
    }

    async fn acquire_shard(&self, shard: ShardId, _node: u64) -> Result<u64> {
        let mut e = self.epochs.lock();
        let epoch = e.entry(shard).or_default();
        *epoch += 1;
        Ok(*epoch)
    }
}
