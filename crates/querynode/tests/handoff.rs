//! A segment load never holds up the stream: while a sealed segment (or a
//! compaction's output) is fetched, later writes keep becoming visible, and
//! the hand-off that follows keeps them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use quiver_api::{
    CollectionInfo, IndexKind, QueryClient, SegmentInfo, ShardEvent, ShardFeed, ShardId,
    ShardSearch, Subscription,
};
use quiver_common::{
    CollectionSchema, Error, Metric, Mutation, PrimaryKey, Result, RowBatch, Timestamp, Vectors,
};
use quiver_querynode::{QueryNode, QueryNodeConfig};
use quiver_storage::{ObjectStore, SegmentData, put_segment};
use quiver_test_util::{FailingStore, wait_for};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct OneFeed(Mutex<Option<Subscription>>);

#[async_trait]
impl ShardFeed for OneFeed {
    async fn subscribe(&self, _shard: ShardId) -> Result<Subscription> {
        self.0
            .lock()
            .take()
            .ok_or_else(|| Error::Unavailable("subscribed already".into()))
    }
}

fn vector(pk: i64) -> [f32; 2] {
    [pk as f32, 1.0]
}

fn upsert(ts: Timestamp, pks: std::ops::Range<i64>) -> Mutation {
    Mutation::Upsert {
        ts,
        rows: RowBatch {
            vectors: Vectors::f32(2, pks.clone().flat_map(vector).collect()),
            pks: pks.map(PrimaryKey::Int).collect(),
            columns: vec![],
        },
    }
}

fn search(shard: ShardId, pk: i64, guarantee_ts: Timestamp) -> ShardSearch {
    ShardSearch {
        shard,
        queries: Arc::new(vector(pk).to_vec()),
        k: 1,
        ef: 16,
        rerank: 0,
        guarantee_ts,
        filter: None,
        output_fields: vec![],
        with_vectors: false,
        anns: None,
    }
}

fn shard() -> ShardId {
    ShardId {
        collection_id: 1,
        shard: 0,
    }
}

/// Segment `id` holding rows `pks`, written at `ts`.
fn segment(id: u64, ts: Timestamp, pks: std::ops::Range<i64>) -> (SegmentData, SegmentInfo) {
    let Mutation::Upsert { rows, .. } = upsert(ts, pks) else {
        unreachable!()
    };
    let n = rows.pks.len();
    let data = SegmentData {
        segment_id: id,
        pks: rows.pks,
        timestamps: vec![ts; n],
        vectors: rows.vectors,
        columns: vec![],
        tombstones: vec![],
        max_ts: ts,
        wal_seq: ts,
    };
    let info = SegmentInfo {
        id,
        rows: n as u64,
        max_ts: ts,
        wal_seq: ts,
        has_index: false,
        index_version: 0,
    };
    (data, info)
}

/// A querynode serving shard 0 of a flat collection over `store`, its
/// stream starting with `first` (growing); events go in through the sender.
async fn serve(
    store: Arc<dyn ObjectStore>,
    cache: std::path::PathBuf,
    first: Mutation,
) -> Result<(Arc<QueryNode>, mpsc::UnboundedSender<ShardEvent>)> {
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
    let (tx, events) = mpsc::unbounded_channel();
    let feed = OneFeed(Mutex::new(Some(Subscription {
        sealed: vec![],
        growing: vec![Arc::new(first)],
        events,
    })));
    let node = Arc::new(QueryNode::new(
        QueryNodeConfig {
            cache_dir: cache,
            ..QueryNodeConfig::default()
        },
        store,
        Arc::new(feed),
        CancellationToken::new(),
    )?);
    node.load_shard(&info, 0).await?;
    Ok((node, tx))
}

fn send(tx: &mpsc::UnboundedSender<ShardEvent>, e: ShardEvent) -> Result<()> {
    tx.send(e)
        .map_err(|_| Error::Internal("stream gone".into()))
}

async fn until_held(store: &FailingStore) -> Result<()> {
    wait_for(
        Duration::from_secs(30),
        "the segment fetch to hang",
        async || store.held_gets() > 0,
    )
    .await
    .map_err(|e| Error::Internal(e.to_string()))
}

/// A read-your-writes search for row `pk` and a count, both at `ts`, that
/// must answer while a load is held (`what` names the wait in the error).
async fn read_while_held(
    node: &QueryNode,
    pk: i64,
    ts: Timestamp,
    what: &str,
) -> Result<(PrimaryKey, u64)> {
    let answer = tokio::time::timeout(Duration::from_secs(30), async {
        let hits = node.search(search(shard(), pk, ts)).await?;
        let rows = node.count(shard(), ts, None).await?;
        Ok::<_, Error>((hits[0][0].pk.clone(), rows))
    })
    .await
    .map_err(|_| Error::DeadlineExceeded(format!("writes waited on {what}")))??;
    Ok(answer)
}

/// Waits until the shard holds `live` rows (growing, sealed).
async fn until_live(node: &QueryNode, live: (usize, usize), what: &str) -> Result<()> {
    wait_for(Duration::from_secs(30), what, async || {
        node.live_rows(shard()) == Some(live)
    })
    .await
    .map_err(|e| Error::Internal(format!("{e}: {:?}", node.live_rows(shard()))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_stay_visible_while_a_sealed_segment_loads() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(FailingStore::default());
    let shard = shard();
    // Rows 0..100 are written at ts 1, then sealed into segment 7.
    let (data, sealed) = segment(7, 1, 0..100);
    let dyn_store: Arc<dyn ObjectStore> = store.clone();
    put_segment(&dyn_store, 1, 0, &data, None).await?;
    let (node, tx) = serve(dyn_store, dir.path().join("cache"), upsert(1, 0..100)).await?;

    // The segment's fetch hangs; the seal and later writes arrive.
    store.hold_gets_under(Some("segments/"));
    send(&tx, ShardEvent::Sealed(sealed))?;
    send(&tx, ShardEvent::Mutation(Arc::new(upsert(2, 100..101))))?;
    send(
        &tx,
        ShardEvent::Mutation(Arc::new(Mutation::Delete {
            ts: 3,
            pks: vec![PrimaryKey::Int(5)],
        })),
    )?;
    until_held(&store).await?;

    // Read-your-writes reads of ts 3 answer while the load still hangs.
    let (nearest, rows) = read_while_held(&node, 100, 3, "a segment load").await?;
    assert_eq!(nearest, PrimaryKey::Int(100));
    assert_eq!(rows, 100);
    assert!(store.held_gets() > 0, "the load was still held");
    assert_eq!(
        node.live_rows(shard),
        Some((100, 0)),
        "nothing handed off yet"
    );

    // Once it loads, the segment takes over its rows and keeps the delete.
    store.hold_gets_under(None);
    until_live(&node, (1, 99), "the hand-off").await?;
    assert_eq!(node.count(shard, 3, None).await?, 100);
    let hits = node.search(search(shard, 5, 3)).await?;
    assert_ne!(hits[0][0].pk, PrimaryKey::Int(5), "a deleted row came back");
    let hits = node.search(search(shard, 42, 3)).await?;
    assert_eq!(hits[0][0].pk, PrimaryKey::Int(42));
    Ok(())
}

/// A second seal while the first still loads (at 25k rows/s a graph's
/// hand-off often follows a seal that closely) does not stop the stream
/// either: both load while writes keep becoming visible, and they go into
/// the view in stream order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_stay_visible_while_two_sealed_segments_load() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(FailingStore::default());
    let shard = shard();
    let (first, first_info) = segment(7, 1, 0..100);
    let (second, second_info) = segment(8, 2, 100..150);
    let dyn_store: Arc<dyn ObjectStore> = store.clone();
    put_segment(&dyn_store, 1, 0, &first, None).await?;
    put_segment(&dyn_store, 1, 0, &second, None).await?;
    let (node, tx) = serve(dyn_store, dir.path().join("cache"), upsert(1, 0..100)).await?;

    // Segment 7's fetch hangs; segment 8's does not.
    store.hold_gets_under(Some(quiver_storage::layout::segment_path(1, 0, 7).as_ref()));
    send(&tx, ShardEvent::Sealed(first_info))?;
    send(&tx, ShardEvent::Mutation(Arc::new(upsert(2, 100..150))))?;
    send(&tx, ShardEvent::Sealed(second_info))?;
    send(&tx, ShardEvent::Mutation(Arc::new(upsert(3, 150..151))))?;
    until_held(&store).await?;
    let (nearest, rows) = read_while_held(&node, 150, 3, "the loads").await?;
    assert_eq!(nearest, PrimaryKey::Int(150));
    assert_eq!(rows, 151);
    assert_eq!(
        node.live_rows(shard),
        Some((151, 0)),
        "segment 8 waits for segment 7 to go into the view first"
    );

    store.hold_gets_under(None);
    until_live(&node, (1, 150), "both hand-offs").await?;
    assert_eq!(node.count(shard, 3, None).await?, 151);
    for pk in [0, 99, 100, 149, 150] {
        let hits = node.search(search(shard, pk, 3)).await?;
        assert_eq!(hits[0][0].pk, PrimaryKey::Int(pk));
    }
    Ok(())
}

/// A hand-off of more rows than one run of the view's write lock (8,192)
/// applies the writes that arrive meanwhile between its runs and keeps a
/// seal that arrives meanwhile, with everything after it, for after it:
/// whichever of the two takes each event, the view ends the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_arriving_during_a_long_hand_off_keep_their_order() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(FailingStore::default());
    let shard = shard();
    let (first, first_info) = segment(7, 1, 0..100_000);
    let (mut second, mut second_info) = segment(8, 2, 100_000..100_010);
    second.tombstones = vec![(PrimaryKey::Int(5), 3)];
    second.max_ts = 3;
    second_info.max_ts = 3;
    let dyn_store: Arc<dyn ObjectStore> = store.clone();
    put_segment(&dyn_store, 1, 0, &first, None).await?;
    put_segment(&dyn_store, 1, 0, &second, None).await?;
    let (node, tx) = serve(dyn_store, dir.path().join("cache"), upsert(1, 0..100_000)).await?;

    store.hold_gets_under(Some(quiver_storage::layout::segment_path(1, 0, 7).as_ref()));
    send(&tx, ShardEvent::Sealed(first_info))?;
    until_held(&store).await?;
    store.hold_gets_under(None);
    // The writes go in once the hand-off has moved its first run (or is
    // done, if it was quicker than this test).
    wait_for(
        Duration::from_secs(30),
        "the hand-off to start",
        async || node.live_rows(shard).is_some_and(|(_, sealed)| sealed > 0),
    )
    .await
    .map_err(|e| Error::Internal(e.to_string()))?;
    send(
        &tx,
        ShardEvent::Mutation(Arc::new(upsert(2, 100_000..100_010))),
    )?;
    send(
        &tx,
        ShardEvent::Mutation(Arc::new(Mutation::Delete {
            ts: 3,
            pks: vec![PrimaryKey::Int(5)],
        })),
    )?;
    send(&tx, ShardEvent::Sealed(second_info))?;
    send(
        &tx,
        ShardEvent::Mutation(Arc::new(upsert(4, 200_000..200_001))),
    )?;

    until_live(&node, (1, 100_009), "both hand-offs").await?;
    assert_eq!(node.count(shard, 4, None).await?, 100_010);
    for pk in [0, 8_191, 8_192, 99_999, 100_000, 100_009, 200_000] {
        let hits = node.search(search(shard, pk, 4)).await?;
        assert_eq!(hits[0][0].pk, PrimaryKey::Int(pk));
    }
    let hits = node.search(search(shard, 5, 4)).await?;
    assert_ne!(hits[0][0].pk, PrimaryKey::Int(5), "a deleted row came back");
    Ok(())
}
