//! The querynode: loads and releases shard replicas and runs searches off
//! the network runtime.
//!
//! A request runs on a blocking thread (at most `search_threads` at once)
//! and holds its shard's view lock for reading; a large scan inside it fans
//! out over the scan pool (rayon). Requests never run *on* the scan pool: a
//! rayon thread waiting on a join runs other queued jobs, and a request
//! taken up that way would wait for the same view lock behind a pending
//! writer (the stream applying a mutation) while the request that holds it
//! waits for the join — a deadlock, found by `tests/pymilvus/overload.py`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;
use quiver_api::{
    CollectionInfo, DigestRequest, MAX_DIGEST_BUCKETS, QueryClient, QueryResult, RowPredicate,
    ShardDigest, ShardFeed, ShardHit, ShardId, ShardQuery, ShardSearch,
};
use quiver_common::{Error, Result, Timestamp};
use quiver_storage::ObjectStore;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::QueryNodeConfig;
use crate::replica::ShardReplica;
use crate::search::{Depth, Projection};
use crate::view::ShardView;

pub struct QueryNode {
    config: QueryNodeConfig,
    store: Arc<dyn ObjectStore>,
    /// [`QueryNode::with_store_dir`].
    store_dir: Option<PathBuf>,
    feed: Arc<dyn ShardFeed>,
    shards: Arc<RwLock<HashMap<ShardId, Arc<ShardReplica>>>>,
    /// Samples the replicas at each metrics scrape (`metrics.rs`).
    _metrics: Arc<dyn quiver_metrics::Sampled>,
    /// Runs the chunks of large scans in parallel (never whole requests).
    scan_pool: Arc<rayon::ThreadPool>,
    /// Requests running at once.
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
}

/// Subscriptions a shard load tries past the first before it gives up.
const LOAD_ATTEMPTS: u64 = 4;

/// The most [`ShardView::search_work`] (vector components read) a search
/// may cost to run without a thread hand-off: ~0.1–0.3 ms on one core. It
/// covers graph searches at ef 80, M 16 of up to four segments at 50
/// dimensions or one at 128, and exact scans of ~10,000 growing rows at 50.
/// Past that the hand-off (~0.1 ms) is a small part of the search, and an
/// async worker held longer delays the writes and searches queued on it
/// (`quiver bench ingest` at 25k rows/s with 4× this: batch p50 ~1 ms
/// higher, within the spread of runs on a 2-core VM).
const INLINE_WORK: usize = 1 << 19;

impl QueryNode {
    pub fn new(
        config: QueryNodeConfig,
        store: Arc<dyn ObjectStore>,
        feed: Arc<dyn ShardFeed>,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        config.validate()?;
        std::fs::create_dir_all(&config.cache_dir)?;
        crate::path_cache::PATHS.set_budget(config.json_path_cache_mib.saturating_mul(1 << 20));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.search_threads)
            .thread_name(|i| format!("quiver-scan-{i}"))
            .build()
            .map_err(|e| Error::Internal(format!("scan pool: {e}")))?;
        let shards = Arc::new(RwLock::new(HashMap::new()));
        let metrics: Arc<dyn quiver_metrics::Sampled> = Arc::new(crate::metrics::Replicas {
            node: config.node_id.to_string(),
            shards: Arc::downgrade(&shards),
        });
        quiver_metrics::add_source(Arc::downgrade(&metrics));
        Ok(Self {
            slots: Arc::new(Semaphore::new(config.search_threads)),
            config,
            store,
            store_dir: None,
            feed,
            shards,
            _metrics: metrics,
            scan_pool: Arc::new(pool),
            shutdown,
        })
    }

    /// Tells the node that its store keeps objects as files under `dir`
    /// (`StoreConfig::local_dir`): cached segment files are then hard links
    /// to them, not copies (`quiver_storage::fetch_segment`).
    pub fn with_store_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.store_dir = dir;
        self
    }

    /// Loads a shard: its sealed segments, then its growing data, then follows
    /// the stream. Returns once the shard is searchable. Idempotent.
    pub async fn load_shard(&self, info: &CollectionInfo, shard: u32) -> Result<()> {
        let id = ShardId {
            collection_id: info.id,
            shard,
        };
        if self.shards.read().contains_key(&id) {
            return Ok(());
        }
        let replica = Arc::new(ShardReplica::new(
            info.clone(),
            shard,
            self.store.clone(),
            self.store_dir.clone(),
            self.config.cache_dir.clone(),
            self.shutdown.child_token(),
        ));
        // A compaction may swap (and collect) segments between the
        // subscription and their fetch: subscribe again for the new list.
        let mut attempt = 0;
        let sub = loop {
            let mut sub = self.feed.subscribe(id).await?;
            match replica.install(&mut sub).await {
                Ok(()) => break sub,
                Err(e) if attempt < LOAD_ATTEMPTS => {
                    attempt += 1;
                    tracing::info!(shard = %id, error = %e, attempt, "loading the shard failed; subscribing again");
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let mut shards = self.shards.write();
        if shards.contains_key(&id) {
            replica.cancel.cancel();
            return Ok(());
        }
        shards.insert(id, replica.clone());
        let task = tokio::spawn(replica.clone().follow(self.feed.clone(), sub));
        *replica.follower.lock() = Some(task);
        Ok(())
    }

    /// Its memory limit for placement (`max_memory_mib`, bytes; 0: none).
    pub fn memory_limit_bytes(&self) -> u64 {
        self.config.max_memory_mib.saturating_mul(1 << 20)
    }

    /// The shards this node serves.
    pub fn loaded_shards(&self) -> Vec<ShardId> {
        self.shards.read().keys().copied().collect()
    }

    /// The live rows of shard `id` here: `(growing, in sealed segments)`.
    pub fn live_rows(&self, id: ShardId) -> Option<(usize, usize)> {
        let replica = self.shards.read().get(&id).cloned()?;
        let view = replica.view.read();
        let sealed = view.sealed.iter().map(|s| s.live()).sum();
        Some((view.growing.live, sealed))
    }

    /// Requests waiting for their guarantee timestamp on shard `id`.
    pub fn waiting(&self, id: ShardId) -> usize {
        (self.shards.read().get(&id)).map_or(0, |r| r.service_ts.receiver_count())
    }

    pub fn release_shard(&self, id: ShardId) {
        if let Some(r) = self.shards.write().remove(&id) {
            r.cancel.cancel();
        }
    }

    /// Releases a shard whose collection was dropped and deletes its cached
    /// segment files, once its replica has stopped (a segment load in
    /// flight would otherwise write files after the deletion).
    pub async fn drop_shard(&self, id: ShardId) -> Result<()> {
        let replica = self.shards.write().remove(&id);
        if let Some(r) = replica {
            r.cancel.cancel();
            let task = r.follower.lock().take();
            if let Some(task) = task {
                let _ = task.await;
            }
        }
        let dir = self
            .config
            .cache_dir
            .join(id.collection_id.to_string())
            .join(id.shard.to_string());
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn replica(&self, id: ShardId) -> Result<Arc<ShardReplica>> {
        self.shards.read().get(&id).cloned().ok_or_else(|| {
            Error::Unavailable(format!("shard {id} is not loaded on this querynode"))
        })
    }

    async fn ready(&self, id: ShardId, ts: Timestamp) -> Result<Arc<ShardReplica>> {
        let r = self.replica(id)?;
        r.wait_for(ts, Duration::from_millis(self.config.max_wait_ms))
            .await?;
        // What earlier searches built, kept for a restart (`warm.rs`).
        r.remember_search_builds();
        Ok(r)
    }

    /// Runs a request once one of the request slots is free; `f` gets the
    /// scan pool for its parallel parts. The slot is held until `f` returns,
    /// even when the caller gave up meanwhile. A `cheap` request (at most
    /// [`INLINE_WORK`] for a search) runs on this task's thread: handing it
    /// to a blocking thread and back costs two thread wake-ups, ~0.1 ms on
    /// a small machine, as much as a whole graph search of 100k rows.
    /// Others run on a blocking thread, so that they never hold up the
    /// async workers.
    async fn run_request<T: Send + 'static>(
        &self,
        cheap: bool,
        f: impl FnOnce(&rayon::ThreadPool) -> T + Send + 'static,
    ) -> Result<T> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Unavailable("querynode is shutting down".into()))?;
        if cheap {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&self.scan_pool)));
            drop(slot);
            return out.map_err(|_| Error::Internal("search task panicked".into()));
        }
        let pool = self.scan_pool.clone();
        tokio::task::spawn_blocking(move || {
            let out = f(&pool);
            drop(slot);
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("search task: {e}")))
    }

    /// A search of a ready replica (the body of [`QueryClient::search`]).
    async fn search_on(
        &self,
        r: Arc<ShardReplica>,
        req: ShardSearch,
    ) -> Result<Vec<Vec<ShardHit>>> {
        if let Some(a) = &req.anns {
            let sparse_field = (r.info.schema.field(&a.name))
                .is_some_and(|f| f.data_type == quiver_common::DataType::SparseFloatVector);
            if sparse_field != a.sparse.is_some() {
                return Err(Error::invalid(
                    "anns_field",
                    format!(
                        "field {:?} is searched with {} queries",
                        a.name,
                        if sparse_field { "sparse" } else { "dense" }
                    ),
                ));
            }
        }
        if let Some(a) = req.anns.clone()
            && let Some(queries) = a.sparse.clone()
        {
            return self
                .run_request(false, move |pool| {
                    let view = r.view.read();
                    let proj = Projection {
                        fields: &req.output_fields,
                        with_vectors: req.with_vectors,
                    };
                    let filter = req.filter.as_deref();
                    (0..queries.queries.len())
                        .map(|q| {
                            view.search_sparse(pool, &a.name, &queries, q, req.k, filter, &proj)
                        })
                        .collect()
                })
                .await;
        }
        let dim = match &req.anns {
            None => r.info.schema.dim(),
            Some(a) => match r.info.schema.field(&a.name) {
                Some(f) if f.data_type.is_vector() => f.dim.unwrap_or(0) as usize,
                _ => {
                    return Err(Error::invalid(
                        "anns_field",
                        format!("no vector field {:?} in the collection", a.name),
                    ));
                }
            },
        };
        if dim == 0 || !req.queries.len().is_multiple_of(dim) {
            return Err(Error::invalid(
                "data",
                format!("query vectors must have dim {dim}"),
            ));
        }
        let nq = req.queries.len() / dim;
        let depth = Depth {
            k: req.k,
            ef: req.ef,
            rerank: req.rerank,
        };
        let cheap = req.anns.is_none()
            && inline_ok(&r.view, |v| {
                v.search_work(nq, depth, req.filter.is_some()) <= INLINE_WORK
            });
        self.run_request(cheap, move |pool| {
            let view = r.view.read();
            let proj = Projection {
                fields: &req.output_fields,
                with_vectors: req.with_vectors,
            };
            let filter = req.filter.as_deref();
            req.queries
                .chunks_exact(dim)
                .map(|q| match &req.anns {
                    None => view.search_one(pool, q, depth, filter, &proj),
                    Some(a) => view.search_column(pool, &a.name, a.metric, q, req.k, filter, &proj),
                })
                .collect()
        })
        .await
    }
}

/// What a filtered request built is kept for a restart as soon as it has
/// answered (`warm.rs`), so a querynode killed before its next request
/// still warms it; [`QueryNode::ready`] catches builds of other shards.
fn keep_builds<T>(replica: Option<Arc<ShardReplica>>, out: T) -> T {
    if let Some(r) = replica {
        r.remember_search_builds();
    }
    out
}

/// Whether a request `cheap` judges small may run on the async task: not
/// while a write holds the shard's view or waits for it (the lock lets no
/// new reader in then), which would hold the async worker for as long.
fn inline_ok(view: &RwLock<ShardView>, cheap: impl FnOnce(&ShardView) -> bool) -> bool {
    view.try_read().is_some_and(|v| cheap(&v))
}

#[async_trait]
impl QueryClient for QueryNode {
    async fn search(&self, req: ShardSearch) -> Result<Vec<Vec<ShardHit>>> {
        let r = self.ready(req.shard, req.guarantee_ts).await?;
        let builds = req.filter.is_some().then(|| r.clone());
        let out = self.search_on(r, req).await;
        keep_builds(builds, out)
    }

    async fn query(&self, req: ShardQuery) -> Result<QueryResult> {
        let r = self.ready(req.shard, req.guarantee_ts).await?;
        let builds = req.filter.is_some().then(|| r.clone());
        // By key: a hash lookup (and the filter tested) a key.
        let cheap =
            req.pks.as_ref().is_some_and(|p| p.len() <= 1024) && inline_ok(&r.view, |_| true);
        let out = self
            .run_request(cheap, move |_| {
                let view = r.view.read();
                let proj = Projection {
                    fields: &req.output_fields,
                    with_vectors: req.with_vectors,
                };
                view.query(req.pks.as_deref(), req.filter.as_deref(), req.limit, &proj)
            })
            .await;
        keep_builds(builds, out)
    }

    async fn count(
        &self,
        shard: ShardId,
        guarantee_ts: Timestamp,
        filter: Option<Arc<dyn RowPredicate>>,
    ) -> Result<u64> {
        let r = self.ready(shard, guarantee_ts).await?;
        let Some(filter) = filter else {
            let cheap = inline_ok(&r.view, |_| true);
            return self
                .run_request(cheap, move |_| r.view.read().live_rows() as u64)
                .await;
        };
        let builds = Some(r.clone());
        let out = self
            .run_request(false, move |_| {
                r.view.read().count_matching(filter.as_ref()) as u64
            })
            .await;
        keep_builds(builds, out)
    }

    async fn digest(&self, req: DigestRequest) -> Result<ShardDigest> {
        if req.buckets == 0 || req.buckets > MAX_DIGEST_BUCKETS {
            return Err(Error::invalid(
                "buckets",
                format!("must be 1..={MAX_DIGEST_BUCKETS}"),
            ));
        }
        let r = self.ready(req.shard, req.guarantee_ts).await?;
        self.run_request(false, move |_| r.view.read().digest(&req))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use quiver_api::IndexKind;

    use super::*;
    use crate::scan_tests::info;

    #[test]
    fn a_request_runs_inline_only_while_no_write_holds_or_awaits_the_view() {
        let view = Arc::new(RwLock::new(ShardView::new(info(IndexKind::Flat))));
        assert!(inline_ok(&view, |v| v.live_rows() == 0));
        assert!(!inline_ok(&view, |_| false), "too costly");
        // A write holds the view.
        let held = view.write();
        assert!(!inline_ok(&view, |_| true));
        drop(held);
        // A write waits behind a reader: no new reader gets in.
        let reader = view.read();
        let (tx, rx) = mpsc::channel();
        let writer = std::thread::spawn({
            let view = view.clone();
            move || {
                tx.send(()).ok();
                drop(view.write());
            }
        });
        rx.recv().ok();
        while !view.is_locked_exclusive() {
            std::thread::yield_now();
        }
        assert!(!inline_ok(&view, |_| true));
        drop(reader);
        writer.join().ok();
        assert!(inline_ok(&view, |_| true));
    }
}
