//! Shards under a failing store. A full or failing store refuses writes
//! (never acknowledged) while the shard stays open for reads, and writes
//! resume by themselves once the store takes them. A shard whose WAL stops
//! for good (a refused batch landed after all) reopens itself under a new
//! epoch and replays it; nothing acknowledged is lost either way.

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

/// A datanode over `store` with collection `id` (2-d, one shard) open on it.
async fn open(
    config: DataNodeConfig,
    store: Arc<dyn ObjectStore>,
    meta: Arc<MemMeta>,
    id: u64,
) -> (DataNode, ShardId) {
    let node = DataNode::new(config, store, meta, CancellationToken::new()).expect("node");
    let info = CollectionInfo {
        id,
        schema: CollectionSchema::simple("c", 2),
        shards: 1,
        metric: Metric::L2,
        index: IndexKind::Flat,
        index_version: 0,
        field_indexes: Default::default(),
        scalar_indexes: Default::default(),
    };
    node.open_shard(&info, 0).await.expect("open");
    let shard = ShardId {
        collection_id: id,
        shard: 0,
    };
    (node, shard)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_whose_refused_write_landed_reopens_itself_with_a_new_epoch() {
    let fs = Arc::new(FailingStore::default());
    let store: Arc<dyn ObjectStore> = fs.clone();
    let meta = Arc::new(MemMeta::default());
    let config = DataNodeConfig {
        wal_retry_ms: 0,
        ..DataNodeConfig::default()
    };
    let (node, shard) = open(config, store, meta, 1).await;
    let first_epoch = node.shard_epoch(shard).expect("epoch");
    node.write(shard, WriteOp::Upsert(rows(0, 10)))
        .await
        .expect("write before the fault");

    // The put lands but its answer is lost: refused, though durable. The
    // next batch finds it in its seq, so the shard must replay its WAL.
    fs.lose_next_answer();
    let e = node
        .write(shard, WriteOp::Upsert(rows(100, 10)))
        .await
        .expect_err("the write whose answer was lost is refused");
    assert!(matches!(e, Error::Unavailable(_)), "{e}");

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

    // What was acknowledged is all there, and the refused write that landed
    // after all was replayed (its outcome was unknown to the client).
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
    let expected: Vec<i64> = (0..10).chain(100..110).chain(200..210).collect();
    assert_eq!(pks, expected);
    node.close().await;
}

fn pks_of(m: &Mutation) -> Vec<i64> {
    match m {
        Mutation::Upsert { rows, .. } => rows
            .pks
            .iter()
            .filter_map(|pk| match pk {
                PrimaryKey::Int(v) => Some(*v),
                PrimaryKey::Str(_) => None,
            })
            .collect(),
        Mutation::Delete { .. } => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_costs_writes_not_reads_and_heals_without_a_reopen() {
    let fs = Arc::new(FailingStore::default());
    let store: Arc<dyn ObjectStore> = fs.clone();
    let meta = Arc::new(MemMeta::default());
    let (node, shard) = open(DataNodeConfig::default(), store, meta, 2).await;
    let epoch = node.shard_epoch(shard).expect("epoch");
    node.write(shard, WriteOp::Upsert(rows(0, 10)))
        .await
        .expect("write before the disk fills");
    let mut sub = node.subscribe(shard).await.expect("subscribe");

    fs.fill_disk(true);
    for first in [100, 110] {
        let e = node
            .write(shard, WriteOp::Upsert(rows(first, 10)))
            .await
            .expect_err("a full disk refuses the write");
        assert!(matches!(e, Error::NoSpace(_)), "{e}");
    }
    let e = node.flush(shard).await.expect_err("a flush cannot seal");
    assert!(matches!(e, Error::NoSpace(_)), "{e}");
    // Reads go on: the stream keeps ticking past the refusals (a querynode's
    // service timestamp advances, so Strong searches are answered).
    let before = node.last_ts(shard).await.expect("last ts");
    let mut ticked = false;
    while !ticked {
        match tokio::time::timeout(Duration::from_secs(10), sub.events.recv()).await {
            Ok(Some(quiver_api::ShardEvent::Tick(ts))) => ticked = ts > before,
            Ok(Some(quiver_api::ShardEvent::Mutation(m))) => {
                panic!("a refused write was streamed: {:?}", pks_of(&m))
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the shard's stream ended"),
            Err(_) => panic!("no tick within 10 s while the disk is full"),
        }
    }

    fs.fill_disk(false);
    wait_for(
        Duration::from_secs(20),
        "writes to work again",
        async || match node.write(shard, WriteOp::Upsert(rows(200, 10))).await {
            Ok(_) => true,
            Err(Error::NoSpace(_)) => false,
            Err(e) => panic!("unexpected refusal: {e}"),
        },
    )
    .await
    .expect("writes resume");
    let sub = node.subscribe(shard).await.expect("subscribe");
    let mut pks: Vec<i64> = sub.growing.iter().flat_map(|m| pks_of(m)).collect();
    pks.sort_unstable();
    let expected: Vec<i64> = (0..10).chain(200..210).collect();
    assert_eq!(pks, expected, "acknowledged rows only");
    node.flush(shard)
        .await
        .expect("flush after the disk has room");
    assert_eq!(node.shard_epoch(shard).expect("epoch"), epoch, "no reopen");
    node.close().await;
}

/// Sealing that cannot keep up (here: segment puts fail, WAL puts work)
/// makes writes wait for room under the growing bound for at most
/// `write_stall_ms`; then they are refused with `Overloaded` (a back-off
/// code), never left to their deadline. Ticks go on meanwhile, and writes
/// are taken again once sealing makes room; nothing refused is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_faster_than_sealing_are_refused_with_overloaded_until_it_catches_up() {
    let fs = Arc::new(FailingStore::default());
    let store: Arc<dyn ObjectStore> = fs.clone();
    let config = DataNodeConfig {
        seal_rows: 100,
        max_growing_factor: 1,
        write_stall_ms: 100,
        min_index_rows: 1_000_000,
        ..DataNodeConfig::default()
    };
    let (node, shard) = open(config, store, Arc::new(MemMeta::default()), 3).await;
    fs.fail_puts_under(Some("segments/"));
    node.write(shard, WriteOp::Upsert(rows(0, 100)))
        .await
        .expect("the write that fills the growing bound");

    let e = node
        .write(shard, WriteOp::Upsert(rows(1_000, 50)))
        .await
        .expect_err("no room while sealing fails");
    assert!(matches!(e, Error::Overloaded(_)), "{e}");
    assert!(e.to_string().contains("write_stall_ms"), "{e}");

    // Replicas keep being told how far the shard is (reads do not stall).
    let refused_at = node.last_ts(shard).await.expect("last ts");
    wait_for(
        Duration::from_secs(20),
        "a tick after the refusal",
        async || node.last_ts(shard).await.expect("last ts") > refused_at,
    )
    .await
    .expect("ticks go on while writes are refused");

    fs.fail_puts_under(None);
    wait_for(
        Duration::from_secs(30),
        "writes to be taken again",
        async || match node.write(shard, WriteOp::Upsert(rows(2_000, 50))).await {
            Ok(_) => true,
            Err(Error::Overloaded(_)) => false,
            Err(e) => panic!("unexpected refusal: {e}"),
        },
    )
    .await
    .expect("sealing catches up and writes resume");

    let sub = node.subscribe(shard).await.expect("subscribe");
    let sealed: u64 = sub.sealed.iter().map(|s| s.rows).sum();
    let growing: Vec<i64> = sub.growing.iter().flat_map(|m| pks_of(m)).collect();
    assert_eq!(
        sealed + growing.len() as u64,
        150,
        "the 150 acknowledged rows and nothing refused"
    );
    assert!(growing.iter().all(|pk| *pk < 1_000 || *pk >= 2_000));
    node.close().await;
}

/// A datanode at its memory limit refuses writes with `Overloaded` (a
/// back-off code) naming the setting, and applies none of them.
#[tokio::test]
async fn a_datanode_at_its_memory_limit_refuses_writes_and_applies_none() {
    let config = DataNodeConfig {
        max_memory_mib: 1, // any process is over 1 MiB resident
        ..DataNodeConfig::default()
    };
    let store: Arc<dyn ObjectStore> = Arc::new(FailingStore::default());
    let (node, shard) = open(config, store, Arc::new(MemMeta::default()), 4).await;
    let e = node
        .write(shard, WriteOp::Upsert(rows(0, 10)))
        .await
        .expect_err("over the memory limit");
    assert!(matches!(e, Error::Overloaded(_)), "{e}");
    assert!(e.to_string().contains("datanode.max_memory_mib"), "{e}");
    let sub = node.subscribe(shard).await.expect("subscribe");
    assert!(
        sub.growing.is_empty() && sub.sealed.is_empty(),
        "nothing applied"
    );
    node.close().await;
}
