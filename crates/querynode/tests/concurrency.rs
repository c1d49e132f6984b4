//! Searches and the stream that feeds a shard run at the same time: many
//! searches over a growing set large enough to be scanned in parallel must
//! never stop the stream from being applied (nor each other from answering).
//! The querynode once deadlocked here: a search holding the view lock waited
//! on its parallel scan, the scan pool took up another whole search, which
//! queued for the same lock behind the stream's pending write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use quiver_api::{
    CollectionInfo, IndexKind, QueryClient, ShardEvent, ShardFeed, ShardId, ShardSearch,
    Subscription,
};
use quiver_common::{
    CollectionSchema, Error, Metric, Mutation, PrimaryKey, Result, RowBatch, Timestamp, Vectors,
};
use quiver_querynode::{QueryNode, QueryNodeConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Rows of the growing set: above the querynode's parallel-scan threshold.
const GROWING_ROWS: i64 = 40_000;
/// Mutations the stream applies while the searches run.
const STREAMED: u64 = 300;

/// Hands out one subscription (later ones fail, as a datanode that is gone).
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

fn upsert(ts: Timestamp, pks: std::ops::Range<i64>) -> Arc<Mutation> {
    Arc::new(Mutation::Upsert {
        ts,
        rows: RowBatch {
            vectors: Vectors::f32(2, pks.clone().flat_map(|p| [p as f32, 0.0]).collect()),
            pks: pks.map(PrimaryKey::Int).collect(),
            columns: vec![],
        },
    })
}

fn search(shard: ShardId, guarantee_ts: Timestamp) -> ShardSearch {
    ShardSearch {
        shard,
        queries: Arc::new(vec![100.0, 0.0, 20_000.0, 0.0]),
        k: 10,
        ef: 16,
        rerank: 0,
        guarantee_ts,
        filter: None,
        output_fields: vec![],
        with_vectors: false,
        anns: None,
    }
}

/// A querynode serving shard 0 of a 2-d collection fed by one
/// subscription that starts with `growing`; returns it, the stream's
/// sender, and the shard.
async fn serve(
    dir: &std::path::Path,
    growing: Arc<Mutation>,
    search_threads: usize,
    max_wait_ms: u64,
) -> Result<(Arc<QueryNode>, mpsc::UnboundedSender<ShardEvent>, ShardId)> {
    let store = quiver_storage::open_local_store(&dir.join("objects"))?;
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
    let (tx, events) = mpsc::unbounded_channel();
    let feed = OneFeed(Mutex::new(Some(Subscription {
        sealed: vec![],
        growing: vec![growing],
        events,
    })));
    let node = Arc::new(QueryNode::new(
        QueryNodeConfig {
            cache_dir: dir.join("cache"),
            search_threads,
            max_wait_ms,
            ..QueryNodeConfig::default()
        },
        store,
        Arc::new(feed),
        CancellationToken::new(),
    )?);
    node.load_shard(&info, 0).await?;
    Ok((node, tx, shard))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_over_a_large_growing_set_never_block_the_stream() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (node, tx, shard) = serve(dir.path(), upsert(1, 0..GROWING_ROWS), 2, 30_000).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let searchers: Vec<_> = (0..16)
        .map(|_| {
            let (node, stop, answered) = (node.clone(), stop.clone(), answered.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let hits = node.search(search(shard, 0)).await?;
                    assert_eq!(hits.len(), 2, "one hit list per query");
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, Error>(())
            })
        })
        .collect();

    // The stream goes on while they search, one small upsert at a time.
    let base = GROWING_ROWS + 1_000;
    for ts in 2..2 + STREAMED {
        let pk = base + ts as i64;
        tx.send(ShardEvent::Mutation(upsert(ts, pk..pk + 1)))
            .map_err(|_| Error::Internal("the replica stopped following".into()))?;
        tokio::task::yield_now().await;
    }
    let last = 1 + STREAMED;
    // Strong reads of the last write: they wait until the stream applied it.
    let hits = tokio::time::timeout(Duration::from_secs(60), node.search(search(shard, last)))
        .await
        .map_err(|_| Error::DeadlineExceeded("the stream was never applied".into()))??;
    assert_eq!(hits.len(), 2);
    let rows = node.count(shard, last, None).await?;
    assert_eq!(rows, GROWING_ROWS as u64 + STREAMED);

    stop.store(true, Ordering::Relaxed);
    for s in searchers {
        tokio::time::timeout(Duration::from_secs(60), s)
            .await
            .map_err(|_| Error::DeadlineExceeded("a search never answered".into()))?
            .map_err(|e| Error::Internal(format!("searcher: {e}")))??;
    }
    assert!(
        answered.load(Ordering::Relaxed) > 0,
        "searches ran meanwhile"
    );
    Ok(())
}

/// A search waiting for its guarantee timestamp on a replica that is
/// released meanwhile (moved to another querynode) ends at once with
/// UNAVAILABLE, so the proxy asks another replica: it once waited out the
/// whole request deadline (the released replica stops following the
/// stream, so its timestamp never comes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_waiting_on_a_released_replica_ends_at_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // The stream's sender stays alive: no event comes, none ends it.
    let (node, _tx, shard) = serve(dir.path(), upsert(1, 0..10), 1, 60_000).await?;
    // A guarantee timestamp the stream has not reached.
    let waiting = {
        let node = node.clone();
        tokio::spawn(async move { node.search(search(shard, 1_000)).await })
    };
    quiver_test_util::wait_for(Duration::from_secs(10), "the search to wait", async || {
        node.waiting(shard) == 1
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?;
    node.release_shard(shard);
    let out = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .map_err(|_| Error::DeadlineExceeded("the search outlived its replica".into()))?
        .map_err(|e| Error::Internal(e.to_string()))?;
    match out {
        Err(e) => assert!(e.to_string().contains("released"), "{e}"),
        Ok(_) => panic!("a search of a released replica answered"),
    }
    Ok(())
}
