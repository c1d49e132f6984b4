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
use quiver_storage::{ObjectStore, Wal, WalOptions};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::DataNodeConfig;
use crate::seal::run_sealer;
use crate::shard::{Logged, Request, ShardCtx, ShardState, run_writer};

struct OpenShard {
    ctx: Arc<ShardCtx>,
    requests: mpsc::UnboundedSender<Request>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A datanode: the owner of some shards.
pub struct DataNode {
    config: DataNodeConfig,
    store: Arc<dyn ObjectStore>,
    meta: Arc<dyn MetaClient>,
    shards: RwLock<HashMap<ShardId, Arc<OpenShard>>>,
    /// Serialises shard opening: two concurrent opens would fence each other.
    opening: tokio::sync::Mutex<()>,
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
        Ok(Self {
            config,
            store,
            meta,
            shards: RwLock::new(HashMap::new()),
            opening: tokio::sync::Mutex::new(()),
            shutdown,
        })
    }

    /// Takes ownership of a shard: a new fencing epoch from coord, then the
    /// WAL replayed from the last sealed segment. Idempotent.
    pub async fn open_shard(&self, info: &CollectionInfo, shard: u32) -> Result<()> {
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
        let (wal, records) = Wal::open(
            self.store.clone(),
            id.collection_id,
            id.shard,
            epoch,
            checkpoint,
            WalOptions::default(),
        )
        .await?;
        let mut state = ShardState::default();
        let mut floor = sealed.iter().map(|s| s.max_ts).max().unwrap_or(0);
        let now = std::time::Instant::now();
        for r in records {
            floor = floor.max(r.mutation.ts());
            state.push_growing(Logged {
                seq: r.seq,
                mutation: Arc::new(r.mutation),
                at: now,
            });
        }
        tracing::info!(shard = %id, epoch, segments = sealed.len(), replayed = state.growing.len(), "shard opened");
        state.sealed = sealed;
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
            cancel: self.shutdown.child_token(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(run_writer(ctx.clone(), rx)),
            tokio::spawn(run_sealer(
                ctx.clone(),
                self.store.clone(),
                self.meta.clone(),
            )),
        ];
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

    /// Stops serving a shard (its subscribers' streams end).
    pub async fn close_shard(&self, id: ShardId) {
        let shard = self.shards.write().remove(&id);
        if let Some(shard) = shard {
            shard.ctx.cancel.cancel();
            for t in &shard.tasks {
                t.abort();
            }
        }
    }

    /// Stops serving a shard whose collection was dropped and deletes its
    /// objects (WAL, segments, indexes).
    pub async fn drop_shard(&self, id: ShardId) -> Result<()> {
        self.close_shard(id).await;
        let deleted =
            quiver_storage::delete_shard_data(&self.store, id.collection_id, id.shard).await?;
        tracing::info!(shard = %id, objects = deleted, "dropped shard data");
        Ok(())
    }

    /// Stops every shard.
    pub async fn close(&self) {
        let ids: Vec<ShardId> = self.shards.read().keys().copied().collect();
        for id in ids {
            self.close_shard(id).await;
        }
    }

    fn shard(&self, id: ShardId) -> Result<Arc<OpenShard>> {
        self.shards
            .read()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::Unavailable(format!("shard {id} is not open on this datanode")))
    }

    /// Rows and bytes of growing (not yet sealed) data of a shard.
    pub fn growing_rows(&self, id: ShardId) -> Result<usize> {
        Ok(self.shard(id)?.ctx.state.lock().growing_rows)
    }
}

#[async_trait]
impl DataClient for DataNode {
    async fn write(&self, shard: ShardId, op: WriteOp) -> Result<Timestamp> {
        let s = self.shard(shard)?;
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
