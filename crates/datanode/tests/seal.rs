//! Sealing under a burst of writes: segments stay within the seal thresholds
//! and writers are held back while the growing data is over its bound.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use quiver_api::{
    CollectionInfo, DataClient, IndexKind, MetaClient, SegmentInfo, ShardFeed, ShardId, WriteOp,
};
use quiver_common::{CollectionSchema, Metric, PrimaryKey, Result, RowBatch};
use quiver_datanode::{DataNode, DataNodeConfig};
use tokio_util::sync::CancellationToken;

/// Coord's catalog in memory.
#[derive(Default)]
struct MemMeta {
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

const SEAL_ROWS: usize = 200;
const BATCH: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_are_bounded_and_writers_wait_for_sealing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = quiver_storage::open_local_store(dir.path()).expect("store");
    let meta = Arc::new(MemMeta::default());
    let config = DataNodeConfig {
        seal_rows: SEAL_ROWS,
        max_growing_factor: 2,
        min_index_rows: usize::MAX,
        ..DataNodeConfig::default()
    };
    let node = DataNode::new(
        config.clone(),
        store.clone(),
        meta.clone(),
        CancellationToken::new(),
    )
    .expect("node");
    let info = CollectionInfo {
        id: 1,
        schema: CollectionSchema::simple("c", 2),
        shards: 1,
        metric: Metric::L2,
        index: IndexKind::Flat,
    };
    node.open_shard(&info, 0).await.expect("open");
    let shard = ShardId {
        collection_id: 1,
        shard: 0,
    };
    let total = 4000;
    let writes = (0..total / BATCH).map(|b| {
        let node = &node;
        async move {
            let first = (b * BATCH) as i64;
            let rows = RowBatch {
                dim: 2,
                pks: (first..first + BATCH as i64).map(PrimaryKey::Int).collect(),
                vectors: vec![0.5; BATCH * 2],
                columns: vec![],
            };
            node.write(shard, WriteOp::Upsert(rows))
                .await
                .expect("write");
            // A write returns only when there was room for it.
            let growing = node.growing_rows(shard).expect("growing");
            assert!(growing <= 2 * SEAL_ROWS + BATCH, "growing {growing}");
        }
    });
    futures::future::join_all(writes).await;
    node.flush(shard).await.expect("flush");
    let (segments, checkpoint) = meta.segments(shard).await.expect("segments");
    assert!(checkpoint > 0);
    assert_eq!(segments.iter().map(|s| s.rows).sum::<u64>(), total as u64);
    for s in &segments {
        assert!(
            s.rows as usize <= 2 * SEAL_ROWS,
            "segment of {} rows",
            s.rows
        );
    }
    assert!(segments.len() >= total / (2 * SEAL_ROWS));
    assert_eq!(node.growing_rows(shard).expect("growing"), 0);

    // A subscriber starting now sees every row in sealed segments.
    let sub = node.subscribe(shard).await.expect("subscribe");
    assert_eq!(sub.sealed.len(), segments.len());
    assert!(sub.growing.is_empty());
    node.close().await;

    // Reopening replays nothing (everything is sealed) and keeps the catalog.
    let node = DataNode::new(config, store, meta.clone(), CancellationToken::new()).expect("node");
    node.open_shard(&info, 0).await.expect("reopen");
    assert_eq!(node.growing_rows(shard).expect("growing"), 0);
    node.close().await;
}
