//! A shard whose WAL stops for good (the object store failed longer than the
//! retry budget) reopens itself: the failed write is refused (never
//! acknowledged), later writes work again under a new epoch, and nothing
//! acknowledged before is lost.

use std::sync::Arc;
use std::time::Duration;

use quiver_api::{CollectionInfo, DataClient, IndexKind, ShardFeed, ShardId, WriteOp};
use quiver_common::{CollectionSchema, Error, Metric, Mutation, PrimaryKey, RowBatch};
use quiver_datanode::{DataNode, DataNodeConfig};
use quiver_storage::ObjectStore;
use quiver_test_util::{FailingStore, MemMeta, wait_for};
use tokio_util::sync::CancellationToken;

fn rows(first: i64, n: usize) -> RowBatch {
    RowBatch {
        pks: (first..first + n as i64).map(PrimaryKey::Int).collect(),
        vectors: quiver_common::Vectors::f32(2, vec![0.25; n * 2]),
        columns: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_whose_wal_failed_reopens_itself_with_a_new_epoch() {
    let fs = Arc::new(FailingStore::default());
    let store: Arc<dyn ObjectStore> = fs.clone();
    let meta = Arc::new(MemMeta::default());
    let config = DataNodeConfig {
        wal_retry_ms: 0,
        ..DataNodeConfig::default()
    };
    let node = DataNode::new(config, store, meta, CancellationToken::new()).expect("node");
    let info = CollectionInfo {
        id: 1,
        schema: CollectionSchema::simple("c", 2),
        shards: 1,
        metric: Metric::L2,
        index: IndexKind::Flat,
    };
    let shard = ShardId {
        collection_id: 1,
        shard: 0,
    };
    node.open_shard(&info, 0).await.expect("open");
    let first_epoch = node.shard_epoch(shard).expect("epoch");
    node.write(shard, WriteOp::Upsert(rows(0, 10)))
        .await
        .expect("write before the fault");

    fs.fail_next_puts(1);
    let e = node
        .write(shard, WriteOp::Upsert(rows(100, 10)))
        .await
        .expect_err("the write whose put failed is refused");
    assert!(matches!(e, Error::Io(_) | Error::Unavailable(_)), "{e}");

    // Writes are refused (retryable) until the shard is back, then work.
    wait_for(
        Duration::from_secs(20),
        "the shard to take writes again",
        async || match node.write(shard, WriteOp::Upsert(rows(200, 10))).await {
            Ok(_) => true,
            Err(Error::Unavailable(_)) => false,
            Err(e) => panic!("shard did not come back: {e}"),
        },
    )
    .await
    .expect("the shard comes back");
    assert!(node.shard_epoch(shard).expect("epoch") > first_epoch);

    // What was acknowledged is all there; the refused write is not.
    let sub = node.subscribe(shard).await.expect("subscribe");
    let mut pks: Vec<i64> = sub
        .growing
        .iter()
        .flat_map(|m| match &**m {
            Mutation::Upsert { rows, .. } => rows.pks.clone(),
            Mutation::Delete { .. } => Vec::new(),
        })
        .filter_map(|pk| match pk {
            PrimaryKey::Int(v) => Some(v),
            PrimaryKey::Str(_) => None,
        })
        .collect();
    pks.sort_unstable();
    let expected: Vec<i64> = (0..10).chain(200..210).collect();
    assert_eq!(pks, expected);
    node.close().await;
}
