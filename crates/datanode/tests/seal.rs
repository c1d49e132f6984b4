//! Sealing under a burst of writes: segments stay within the seal thresholds
//! and writers are held back while the growing data is over its bound.

use std::sync::Arc;

use quiver_api::{
    CollectionInfo, DataClient, IndexKind, MetaClient, ShardEvent, ShardFeed, ShardId, WriteOp,
};
use quiver_common::{CollectionSchema, Metric, PrimaryKey, RowBatch};
use quiver_datanode::{DataNode, DataNodeConfig};
use quiver_test_util::MemMeta;
use tokio_util::sync::CancellationToken;

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
        // The seals' own bound is under test: no merging of small segments.
        compaction: quiver_datanode::CompactionConfig {
            enabled: false,
            ..Default::default()
        },
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
        index_version: 0,
        field_indexes: Default::default(),
        scalar_indexes: Default::default(),
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
                pks: (first..first + BATCH as i64).map(PrimaryKey::Int).collect(),
                vectors: quiver_common::Vectors::f32(2, vec![0.5; BATCH * 2]),
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

/// Seals cut the growing data while rounds of many small writes are being
/// applied. Every acknowledged row must be either in a registered segment or
/// in the WAL after the registered checkpoint — exactly once — so a crash at
/// any point (here: closing without a flush and reopening) loses nothing.
/// (A seal cut that ended inside a WAL object used to register that object as
/// sealed while some of its entries were only in the growing data.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_rows_are_sealed_or_replayed_exactly_once() {
    const ROUNDS: usize = 16;
    const WRITERS: usize = 256;
    const ROWS: usize = 1;
    let info = CollectionInfo {
        id: 1,
        schema: CollectionSchema::simple("c", 2),
        shards: 1,
        metric: Metric::L2,
        index: IndexKind::Flat,
        index_version: 0,
        field_indexes: Default::default(),
        scalar_indexes: Default::default(),
    };
    let shard = ShardId {
        collection_id: 1,
        shard: 0,
    };
    // CPU contention: threads preempted mid-round are what opened the window.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = quiver_storage::open_local_store(dir.path()).expect("store");
        let meta = Arc::new(MemMeta::default());
        // Tiny, odd seal thresholds: cuts land anywhere in a round.
        let config = DataNodeConfig {
            seal_rows: 5 + round,
            max_growing_factor: 64,
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
        node.open_shard(&info, 0).await.expect("open");
        let writes = (0..WRITERS).map(|w| {
            let node = &node;
            async move {
                for i in 0..4 {
                    let first = ((w * 4 + i) * ROWS) as i64;
                    let rows = RowBatch {
                        pks: (first..first + ROWS as i64).map(PrimaryKey::Int).collect(),
                        vectors: quiver_common::Vectors::f32(2, vec![0.5; ROWS * 2]),
                        columns: vec![],
                    };
                    node.write(shard, WriteOp::Upsert(rows))
                        .await
                        .expect("write");
                }
            }
        });
        futures::future::join_all(writes).await;
        let total = (WRITERS * 4 * ROWS) as u64;
        // "Crash": stop without flushing, then recover on a new node.
        node.close().await;
        drop(node);
        let node =
            DataNode::new(config, store, meta.clone(), CancellationToken::new()).expect("node");
        node.open_shard(&info, 0).await.expect("reopen");
        let (segments, _) = meta.segments(shard).await.expect("segments");
        let sealed: u64 = segments.iter().map(|s| s.rows).sum();
        let replayed = node.growing_rows(shard).expect("growing") as u64;
        assert_eq!(
            sealed + replayed,
            total,
            "round {round}: {sealed} sealed + {replayed} replayed rows for {total} acknowledged"
        );
        node.close().await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in spinners {
        s.join().expect("spinner");
    }
}

/// A datanode over `store` with shard 0 of a 2-d HNSW collection open.
async fn hnsw_shard(
    store: Arc<dyn quiver_storage::ObjectStore>,
    meta: Arc<MemMeta>,
    config: DataNodeConfig,
) -> (DataNode, CollectionInfo, ShardId) {
    let node = DataNode::new(config, store, meta, CancellationToken::new()).expect("node");
    let info = CollectionInfo {
        id: 1,
        schema: CollectionSchema::simple("c", 2),
        shards: 1,
        metric: Metric::L2,
        index: IndexKind::Hnsw {
            m: 8,
            ef_construction: 32,
        },
        index_version: 0,
        field_indexes: Default::default(),
        scalar_indexes: Default::default(),
    };
    node.open_shard(&info, 0).await.expect("open");
    let shard = ShardId {
        collection_id: 1,
        shard: 0,
    };
    (node, info, shard)
}

/// A seal never waits on a graph build: the segment is registered and
/// handed off as `INDEX_PENDING` (searched exactly meanwhile), and the
/// shard's graph builder then swaps in the same rows with their graph.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seal_hands_rows_off_first_and_their_graph_follows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = quiver_storage::open_local_store(dir.path()).expect("store");
    let meta = Arc::new(MemMeta::default());
    let config = DataNodeConfig {
        min_index_rows: 10,
        ..DataNodeConfig::default()
    };
    let (node, info, shard) = hnsw_shard(store, meta.clone(), config).await;
    let mut sub = node.subscribe(shard).await.expect("subscribe");
    let rows = RowBatch {
        pks: (0..200).map(PrimaryKey::Int).collect(),
        vectors: quiver_common::Vectors::f32(2, (0..400).map(|x| x as f32).collect()),
        columns: vec![],
    };
    node.write(shard, WriteOp::Upsert(rows))
        .await
        .expect("write");
    node.flush(shard).await.expect("flush");

    let mut next = async || {
        tokio::time::timeout(std::time::Duration::from_secs(60), sub.events.recv())
            .await
            .expect("an event within a minute")
            .expect("the stream goes on")
    };
    let sealed = loop {
        if let ShardEvent::Sealed(s) = next().await {
            break s;
        }
    };
    assert!(!sealed.has_index, "{sealed:?}");
    assert_eq!(sealed.index_version, quiver_api::INDEX_PENDING);
    assert_eq!(sealed.rows, 200);
    let (inputs, output) = loop {
        if let ShardEvent::Compacted { inputs, output } = next().await {
            break (inputs, output.expect("an output"));
        }
    };
    assert_eq!(inputs, vec![sealed.id]);
    assert!(output.has_index, "{output:?}");
    assert_eq!(output.index_version, info.index_version);
    assert_eq!((output.rows, output.max_ts), (200, sealed.max_ts));
    let (segments, _) = meta.segments(shard).await.expect("segments");
    assert_eq!(segments, vec![output]);
    node.close().await;
}

/// Writes wait while the segments waiting for their graph hold
/// `max_unindexed_factor` x `seal_rows` rows, and are refused with Overloaded
/// (naming the bound) once that lasts `write_stall_ms`; once the graphs are
/// built they go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_wait_while_too_many_segments_wait_for_their_graph() {
    let store = Arc::new(quiver_test_util::FailingStore::default());
    // Builds cannot read their segments.
    store.hold_gets_under(Some("segments/"));
    let meta = Arc::new(MemMeta::default());
    let config = DataNodeConfig {
        min_index_rows: 10,
        seal_rows: 100,
        max_unindexed_factor: 2,
        write_stall_ms: 300,
        ..DataNodeConfig::default()
    };
    let (node, _, shard) = hnsw_shard(store.clone(), meta.clone(), config).await;
    let rows = |first: i64| RowBatch {
        pks: (first..first + 100).map(PrimaryKey::Int).collect(),
        vectors: quiver_common::Vectors::f32(2, (0..200).map(|x| x as f32).collect()),
        columns: vec![],
    };
    for first in [0, 100] {
        node.write(shard, WriteOp::Upsert(rows(first)))
            .await
            .expect("write");
        node.flush(shard).await.expect("flush");
    }
    let refused = node.write(shard, WriteOp::Upsert(rows(200))).await;
    match refused {
        Err(quiver_common::Error::Overloaded(why)) => {
            assert!(why.contains("max_unindexed_factor"), "{why}")
        }
        other => panic!("a write over the bound of graphs: {other:?}"),
    }
    assert_eq!(
        node.growing_rows(shard).expect("growing"),
        0,
        "nothing kept"
    );

    store.hold_gets_under(None);
    let meta2 = meta.clone();
    quiver_test_util::wait_for(std::time::Duration::from_secs(60), "graphs", async || {
        let (segments, _) = meta2.segments(shard).await.expect("segments");
        segments.len() == 2 && segments.iter().all(|s| s.has_index)
    })
    .await
    .expect("built");
    node.write(shard, WriteOp::Upsert(rows(200)))
        .await
        .expect("a write once the graphs are built");
    node.close().await;
}

/// Graphs are built beside the compactor, not behind it: while the
/// compactor is stuck (here: reading a segment's keys hangs, as a long
/// merge would hold it), a newly sealed segment still gets its graph.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphs_are_built_while_the_compactor_is_busy() {
    let store = Arc::new(quiver_test_util::FailingStore::default());
    let meta = Arc::new(MemMeta::default());
    let config = DataNodeConfig {
        min_index_rows: 10,
        ..DataNodeConfig::default()
    };
    let (node, _, shard) = hnsw_shard(store.clone(), meta.clone(), config).await;
    let mut sub = node.subscribe(shard).await.expect("subscribe");
    let mut graph_of = async |first: i64| {
        let rows = RowBatch {
            pks: (first..first + 100).map(PrimaryKey::Int).collect(),
            vectors: quiver_common::Vectors::f32(2, (0..200).map(|x| x as f32).collect()),
            columns: vec![],
        };
        node.write(shard, WriteOp::Upsert(rows))
            .await
            .expect("write");
        node.flush(shard).await.expect("flush");
        loop {
            let event = tokio::time::timeout(std::time::Duration::from_secs(60), sub.events.recv())
                .await
                .expect("a graph within a minute")
                .expect("the stream goes on");
            if let ShardEvent::Compacted { output, .. } = event {
                let output = output.expect("an output");
                assert!(output.has_index, "{output:?}");
                break output;
            }
        }
    };
    // Ids come in order: the first seal is segment 1, its graph's segment 2.
    // The compactor reads segment 2's keys once it is swapped in: that read
    // hangs.
    let path = quiver_storage::layout::segment_path(1, 0, 2);
    store.hold_gets_under(Some(path.as_ref()));
    let first = graph_of(0).await;
    assert_eq!(first.id, 2, "ids are allocated in order");
    quiver_test_util::wait_for(
        std::time::Duration::from_secs(30),
        "the compactor stuck",
        async || store.held_gets() > 0,
    )
    .await
    .expect("held");
    let second = graph_of(100).await;
    assert_ne!(second.id, first.id);
    store.hold_gets_under(None);
    node.close().await;
}

/// Rows of graphs reused by merges so far (this process).
fn graph_rows_reused() -> f64 {
    let text = quiver_metrics::render();
    (text.lines())
        .find(|l| l.starts_with(r#"quiver_datanode_graph_rows_total{how="reused"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A merge of two segments with graphs starts from the larger one's graph
/// (its rows first, keeping their links) and inserts only the other's rows;
/// the output graph finds every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_extends_the_graph_of_its_largest_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = quiver_storage::open_local_store(dir.path()).expect("store");
    let meta = Arc::new(MemMeta::default());
    let config = DataNodeConfig {
        min_index_rows: 10,
        compaction: quiver_datanode::CompactionConfig {
            merge_small: 2,
            target_rows: 2_000,
            interval_ms: 50,
            ..Default::default()
        },
        ..DataNodeConfig::default()
    };
    let (node, _, shard) = hnsw_shard(store.clone(), meta.clone(), config).await;
    let mut sub = node.subscribe(shard).await.expect("subscribe");
    // Scattered points (a grid's ties would blur "finds itself").
    let point = |pk: i64| {
        let h = (pk as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        [
            (h >> 40) as f32 / 65_536.0,
            ((h >> 16) & 0xFF_FFFF) as f32 / 65_536.0,
        ]
    };
    let reused_before = graph_rows_reused();
    // The smaller segment first: the larger (newer) one is the donor.
    for (first, n) in [(0i64, 100i64), (100, 300)] {
        let rows = RowBatch {
            pks: (first..first + n).map(PrimaryKey::Int).collect(),
            vectors: quiver_common::Vectors::f32(2, (first..first + n).flat_map(point).collect()),
            columns: vec![],
        };
        node.write(shard, WriteOp::Upsert(rows))
            .await
            .expect("write");
        node.flush(shard).await.expect("flush");
    }
    let merged = loop {
        let event = tokio::time::timeout(std::time::Duration::from_secs(60), sub.events.recv())
            .await
            .expect("a merge within a minute")
            .expect("the stream goes on");
        if let ShardEvent::Compacted { inputs, output } = event
            && inputs.len() == 2
        {
            break output.expect("an output");
        }
    };
    assert_eq!(merged.rows, 400);
    assert!(merged.has_index, "{merged:?}");
    assert!(
        graph_rows_reused() - reused_before >= 300.0,
        "the 300-row graph was reused"
    );
    let cache = tempfile::tempdir().expect("cache");
    let (seg, index) = quiver_storage::fetch_segment(&store, None, 1, 0, merged.id, cache.path())
        .await
        .expect("fetch");
    let index = quiver_index::HnswIndex::from_bytes(&index.expect("a graph")).expect("graph");
    assert_eq!(index.len(), 400);
    let mut found = std::collections::BTreeSet::new();
    let mut itself = 0;
    for row in 0..seg.len() {
        let quiver_common::VectorSlice::F32(v) = seg.vector(row);
        let hit = index.search(seg.vectors(), v, 1, 32, None);
        itself += usize::from(hit.first().is_some_and(|h| h.id as usize == row));
        found.insert(seg.pk(row).clone());
    }
    assert_eq!(found.len(), 400, "every row once");
    assert!(itself >= 396, "{itself} of 400 rows find themselves");
    node.close().await;
}

/// A manual compaction does not finish while a segment it covers waits for
/// its graph (the compactor never plans such a segment): once the graph is
/// built, the segment gets its turn, and only then is the job done. Here the
/// first round of rows is wholly superseded by the second before either has
/// its graph, so the finished job must have dropped it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_compaction_waits_for_the_graphs_of_what_it_covers() {
    let store = Arc::new(quiver_test_util::FailingStore::default());
    let meta = Arc::new(MemMeta::default());
    let config = DataNodeConfig {
        min_index_rows: 10,
        // Only the manual compaction plans.
        compaction: quiver_datanode::CompactionConfig {
            enabled: false,
            ..Default::default()
        },
        ..DataNodeConfig::default()
    };
    // Graph builds read whole segments: held. The compactor reads only
    // their keys (ranged reads): not held.
    store.hold_whole_gets_under("segments/1/0/");
    let (node, _, shard) = hnsw_shard(store.clone(), meta.clone(), config).await;
    for round in 0..2 {
        let rows = RowBatch {
            pks: (0..100).map(PrimaryKey::Int).collect(),
            vectors: quiver_common::Vectors::f32(2, (0..200).map(|x| (x + round) as f32).collect()),
            columns: vec![],
        };
        node.write(shard, WriteOp::Upsert(rows))
            .await
            .expect("write");
        node.flush(shard).await.expect("flush");
    }
    let secs = std::time::Duration::from_secs;
    quiver_test_util::wait_for(secs(30), "a graph build held", async || {
        store.held_gets() > 0
    })
    .await
    .expect("held");
    let job = meta.request_compaction(&[shard]);
    // Handed over twice (the owner went through the job at least once), or
    // finished.
    quiver_test_util::wait_for(secs(30), "the job handed over twice", async || {
        meta.compaction_handed(job) >= 2 || meta.compaction_finished(job)
    })
    .await
    .expect("handed");
    assert!(
        !meta.compaction_finished(job),
        "finished while both segments wait for their graphs"
    );
    let (segments, _) = meta.segments(shard).await.expect("segments");
    assert_eq!(segments.len(), 2, "{segments:?}");

    store.hold_gets_under(None);
    let meta2 = meta.clone();
    quiver_test_util::wait_for(secs(60), "the job finished", async || {
        meta2.compaction_finished(job)
    })
    .await
    .expect("finished");
    let (segments, _) = meta.segments(shard).await.expect("segments");
    assert!(segments.iter().all(|s| s.has_index), "{segments:?}");
    assert_eq!(
        segments.iter().map(|s| s.rows).sum::<u64>(),
        100,
        "the superseded round was dropped: {segments:?}"
    );
    node.close().await;
}
