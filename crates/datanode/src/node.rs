//! The datanode: opens shards (taking ownership with a new epoch and replaying
//! the WAL), routes writes to their shard's writer, serves subscriptions.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;
use quiver_api::{
    CollectionInfo, DataClient, MetaClient, ShardFeed, ShardId, Subscription, WriteOp,
};
use quiver_common::{Error, HybridClock, Result, Timestamp};
use quiver_storage::{ObjectStore, Wal, WalOptions, read_mirror_cursor};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::compact::{run_compactor, run_graph_builder};
use crate::config::DataNodeConfig;
use crate::mirror::{MirrorQueue, MirrorRoutes, run_shipper};
use crate::seal::run_sealer;
use crate::shard::{Logged, Request, ShardCtx, ShardState, WriterExit, run_writer};

pub(crate) struct OpenShard {
    pub(crate) ctx: Arc<ShardCtx>,
    requests: mpsc::UnboundedSender<Request>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A datanode: the owner of some shards. Cheap to clone; clones share the node.
#[derive(Clone)]
pub struct DataNode {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: DataNodeConfig,
    store: Arc<dyn ObjectStore>,
    meta: Arc<dyn MetaClient>,
    pub(crate) shards: RwLock<HashMap<ShardId, Arc<OpenShard>>>,
    /// Serialises shard opening: two concurrent opens would fence each other.
    opening: tokio::sync::Mutex<()>,
    /// Where mirrored collections' writes are copied (none: no mirroring).
    mirror: RwLock<Option<Arc<dyn MirrorRoutes>>>,
    /// One compaction at a time on this node (bounded CPU and memory).
    compactions: Arc<tokio::sync::Semaphore>,
    /// Resident memory, for `max_memory_mib`.
    memory: quiver_common::ResidentMemory,
    shutdown: CancellationToken,
}

impl DataNode {
    pub fn new(
        config: DataNodeConfig,
        store: Arc<dyn ObjectStore>,
        meta: Arc<dyn MetaClient>,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        config.validate()?;
        let node = Self {
            inner: Arc::new(Inner {
                config,
                store,
                meta,
                shards: RwLock::new(HashMap::new()),
                opening: tokio::sync::Mutex::new(()),
                mirror: RwLock::new(None),
                compactions: Arc::new(tokio::sync::Semaphore::new(1)),
                memory: Default::default(),
                shutdown,
            }),
        };
        // Sampled at each metrics scrape while the node lives (`metrics.rs`).
        let source: std::sync::Arc<dyn quiver_metrics::Sampled> = node.inner.clone();
        quiver_metrics::add_source(Arc::downgrade(&source));
        Ok(node)
    }

    /// Enables mirroring: shards opened from now on ship their own writes
    /// to their partner collection when coord's metadata pairs them (see
    /// `mirror.rs`). Set it before opening shards.
    pub fn set_mirror_routes(&self, routes: Arc<dyn MirrorRoutes>) {
        *self.inner.mirror.write() = Some(routes);
    }

    /// [`DataNode::mirror_lag_ms`] of every mirrored collection with shards
    /// here (collection id -> ms).
    pub fn mirror_lags(&self) -> std::collections::BTreeMap<u64, u64> {
        let mut out = std::collections::BTreeMap::new();
        for (id, s) in self.inner.shards.read().iter() {
            if let Some(lag) = crate::mirror::lag_ms(&s.ctx) {
                let e = out.entry(id.collection_id).or_insert(0);
                *e = lag.max(*e);
            }
        }
        out
    }

    /// How far the mirror partner of `collection` is behind this node's
    /// shards of it: the age of the oldest write not yet shipped, in ms
    /// (the largest over its shards here; None when none is mirrored here).
    pub fn mirror_lag_ms(&self, collection: quiver_common::CollectionId) -> Option<u64> {
        self.inner
            .shards
            .read()
            .iter()
            .filter(|(id, _)| id.collection_id == collection)
            .filter_map(|(_, s)| crate::mirror::lag_ms(&s.ctx))
            .max()
    }

    /// Takes ownership of a shard: a new fencing epoch from coord, then the
    /// WAL replayed from the last sealed segment. Idempotent. If the shard's
    /// WAL later fails for good (not fenced), the node reopens the shard by
    /// itself (new epoch, replay) until that works or the node shuts down.
    pub async fn open_shard(&self, info: &CollectionInfo, shard: u32) -> Result<()> {
        Inner::open_shard(&self.inner, info, shard).await
    }

    /// Stops serving a shard (its subscribers' streams end).
    pub async fn close_shard(&self, id: ShardId) {
        self.inner.close_shard(id).await;
    }

    /// Stops serving a shard whose collection was dropped and deletes its
    /// objects (WAL, segments, indexes).
    pub async fn drop_shard(&self, id: ShardId) -> Result<()> {
        self.inner.close_shard(id).await;
        let deleted =
            quiver_storage::delete_shard_data(&self.inner.store, id.collection_id, id.shard)
                .await?;
        tracing::info!(shard = %id, objects = deleted, "dropped shard data");
        Ok(())
    }

    /// Stops every shard.
    pub async fn close(&self) {
        let ids: Vec<ShardId> = self.inner.shards.read().keys().copied().collect();
        for id in ids {
            self.inner.close_shard(id).await;
        }
    }

    fn shard(&self, id: ShardId) -> Result<Arc<OpenShard>> {
        self.inner.shard(id)
    }

    /// The shards this node serves, with the fencing epoch it holds for each.
    pub fn open_shards(&self) -> Vec<(ShardId, u64)> {
        self.inner
            .shards
            .read()
            .iter()
            .map(|(id, s)| (*id, s.ctx.wal.epoch()))
            .collect()
    }

    /// Rows and bytes of growing (not yet sealed) data of a shard.
    pub fn growing_rows(&self, id: ShardId) -> Result<usize> {
        Ok(self.shard(id)?.ctx.state.lock().growing_rows)
    }

    /// The storage of every shard open here, as its compactor last saw it.
    pub fn storage(&self) -> Vec<quiver_api::ShardStorage> {
        let mut out: Vec<quiver_api::ShardStorage> = self
            .inner
            .shards
            .read()
            .iter()
            .map(|(id, s)| quiver_api::ShardStorage {
                collection_id: id.collection_id,
                shard: id.shard,
                ..s.ctx.compaction.lock().clone()
            })
            .collect();
        out.sort_by_key(|s| (s.collection_id, s.shard));
        out
    }

    /// The fencing epoch this node holds for a shard.
    pub fn shard_epoch(&self, id: ShardId) -> Result<u64> {
        Ok(self.shard(id)?.ctx.wal.epoch())
    }
}

impl Inner {
    async fn open_shard(self: &Arc<Self>, info: &CollectionInfo, shard: u32) -> Result<()> {
        let id = ShardId {
            collection_id: info.id,
            shard,
        };
        let _opening = self.opening.lock().await;
        if self.shards.read().contains_key(&id) {
            return Ok(());
        }
        let epoch = self.meta.acquire_shard(id, self.config.node_id).await?;
        let (sealed, checkpoint) = self.meta.segments(id).await?;
        let routes = self.mirror.read().clone();
        // A mirror that shipped from this shard before: its WAL is kept from
        // the cursor, and what the partner did not get is shipped again.
        let cursor = match &routes {
            Some(_) => read_mirror_cursor(&self.store, id.collection_id, id.shard).await?,
            None => None,
        };
        let (wal, records) = Wal::open(
            self.store.clone(),
            id.collection_id,
            id.shard,
            epoch,
            cursor.map_or(checkpoint, |c| c.min(checkpoint)),
            WalOptions {
                retry_for: std::time::Duration::from_millis(self.config.wal_retry_ms),
                ..WalOptions::default()
            },
        )
        .await?;
        let mut state = ShardState::default();
        let mut floor = sealed.iter().map(|s| s.max_ts).max().unwrap_or(0);
        let now = std::time::Instant::now();
        let mut mirror = MirrorQueue {
            active: cursor.is_some(),
            cursor: cursor.unwrap_or(0),
            last_seq: wal.last_seq(),
            ..MirrorQueue::default()
        };
        for r in records {
            floor = floor.max(r.mutation.ts());
            let mutation = Arc::new(r.mutation);
            if mirror.active && r.seq > mirror.cursor && !r.replicated {
                mirror.pending.push_back((r.seq, mutation.clone()));
            }
            if r.seq > checkpoint {
                state.push_growing(Logged {
                    seq: r.seq,
                    mutation,
                    at: now,
                });
            }
        }
        tracing::info!(shard = %id, epoch, segments = sealed.len(), replayed = state.growing.len(), "shard opened");
        state.sealed = sealed;
        // Seal order is timestamp order (a compaction's output has a newer id
        // than segments sealed after its inputs).
        state.sealed.sort_by_key(|s| s.max_ts);
        state.last_ts = floor;
        let ctx = Arc::new(ShardCtx {
            id,
            info: info.clone(),
            config: self.config.clone(),
            wal,
            clock: HybridClock::with_floor(floor),
            state: parking_lot::Mutex::new(state),
            seal_wakeup: Notify::new(),
            sealed: Notify::new(),
            stalled: Default::default(),
            mirror: parking_lot::Mutex::new(mirror),
            mirror_routes: routes.clone(),
            store: self.store.clone(),
            mirror_wakeup: Notify::new(),
            compact_wakeup: Notify::new(),
            graph_wakeup: Notify::new(),
            in_flight: parking_lot::Mutex::new(Default::default()),
            compaction: parking_lot::Mutex::new(Default::default()),
            cancel: self.shutdown.child_token(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let sealer = tokio::spawn(run_sealer(
            ctx.clone(),
            self.store.clone(),
            self.meta.clone(),
        ));
        let writer = {
            let node = Arc::downgrade(self);
            let (ctx, info) = (ctx.clone(), info.clone());
            tokio::spawn(async move {
                let exit = run_writer(ctx.clone(), rx).await;
                if let (WriterExit::Failed { fenced: false }, Some(node)) = (exit, node.upgrade()) {
                    node.reopen(ctx, info).await;
                }
            })
        };
        let mut tasks = vec![writer, sealer];
        if let Some(routes) = routes {
            tasks.push(tokio::spawn(run_shipper(
                ctx.clone(),
                routes,
                self.store.clone(),
            )));
        }
        tasks.push(tokio::spawn(run_graph_builder(
            ctx.clone(),
            self.store.clone(),
            self.meta.clone(),
        )));
        tasks.push(tokio::spawn(run_compactor(
            ctx.clone(),
            self.store.clone(),
            self.meta.clone(),
            self.compactions.clone(),
        )));
        self.shards.write().insert(
            id,
            Arc::new(OpenShard {
                ctx,
                requests: tx,
                tasks,
            }),
        );
        Ok(())
    }

    async fn close_shard(&self, id: ShardId) {
        let shard = self.shards.write().remove(&id);
        if let Some(shard) = shard {
            shard.ctx.cancel.cancel();
            for t in &shard.tasks {
                t.abort();
            }
        }
    }

    fn shard(&self, id: ShardId) -> Result<Arc<OpenShard>> {
        self.shards
            .read()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::Unavailable(format!("shard {id} is not open on this datanode")))
    }

    /// After the WAL of `failed` stopped for good: stops its sealer (waits for
    /// a seal in progress, so nothing registers behind the new owner's back),
    /// then opens the shard again — a new epoch, the WAL replayed from the
    /// checkpoint — retrying with backoff until it works or the node stops.
    /// (Boxed: it calls `open_shard`, which spawns the task that calls this.)
    fn reopen(
        self: Arc<Self>,
        failed: Arc<ShardCtx>,
        info: CollectionInfo,
    ) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(self.reopen_inner(failed, info))
    }

    async fn reopen_inner(self: Arc<Self>, failed: Arc<ShardCtx>, info: CollectionInfo) {
        let id = failed.id;
        failed.cancel.cancel();
        let old = {
            let mut shards = self.shards.write();
            match shards.get(&id) {
                Some(s) if Arc::ptr_eq(&s.ctx, &failed) => shards.remove(&id),
                _ => None,
            }
        };
        let Some(old) = old else {
            return; // closed or replaced meanwhile
        };
        if let Some(sealer) = old.tasks.get(1) {
            while !sealer.is_finished() {
                tokio::select! {
                    () = failed.sealed.notified() => {}
                    () = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                }
            }
        }
        let mut backoff = std::time::Duration::from_millis(100);
        loop {
            if self.shutdown.is_cancelled() {
                return;
            }
            match Inner::open_shard(&self, &info, id.shard).await {
                Ok(()) => {
                    tracing::info!(shard = %id, "shard reopened after a WAL failure");
                    return;
                }
                Err(e) => {
                    tracing::warn!(shard = %id, error = %e, "reopening the shard failed; retrying");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = self.shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
        }
    }
}

#[async_trait]
impl DataClient for DataNode {
    async fn write(&self, shard: ShardId, op: WriteOp) -> Result<Timestamp> {
        let s = self.shard(shard)?;
        let limit = self.inner.config.max_memory_mib.saturating_mul(1 << 20);
        self.inner
            .memory
            .admit_write(limit, "datanode.max_memory_mib")?;
        let (tx, rx) = oneshot::channel();
        s.requests
            .send(Request::Write(op, tx))
            .map_err(|_| Error::Unavailable(format!("shard {shard} is closing")))?;
        rx.await.map_err(|_| {
            Error::Unavailable(format!("shard {shard} closed before the write finished"))
        })?
    }

    async fn last_ts(&self, shard: ShardId) -> Result<Timestamp> {
        Ok(self.shard(shard)?.ctx.state.lock().last_ts)
    }

    async fn flush(&self, shard: ShardId) -> Result<()> {
        let s = self.shard(shard)?;
        let (tx, rx) = oneshot::channel();
        s.requests
            .send(Request::Flush(tx))
            .map_err(|_| Error::Unavailable(format!("shard {shard} is closing")))?;
        rx.await.map_err(|_| {
            Error::Unavailable(format!("shard {shard} closed before the flush finished"))
        })?
    }
}

#[async_trait]
impl ShardFeed for DataNode {
    async fn subscribe(&self, shard: ShardId) -> Result<Subscription> {
        Ok(self.shard(shard)?.ctx.state.lock().subscribe())
    }
}
