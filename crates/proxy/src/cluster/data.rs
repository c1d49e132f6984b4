//! [`ClusterData`]: writes, flushes and shard streams go to each shard's
//! current owner, retried across owner changes.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use quiver_api::{DataClient, RouteTable, ShardFeed, ShardId, Subscription, WriteOp};
use quiver_common::{Error, Result, Timestamp};
use quiver_rpc::RemoteData;

use super::ClusterClientConfig;
use super::pool::Pool;
use super::retry::{Attempts, retryable};

/// The datanodes of a cluster as one [`DataClient`] + [`ShardFeed`]. See
/// the module docs for the retry rules and why retried writes are safe.
pub struct ClusterData {
    routes: Arc<dyn RouteTable>,
    config: ClusterClientConfig,
    pool: Pool<RemoteData>,
}

impl ClusterData {
    /// Must be called inside a Tokio runtime (clients are made lazily on it).
    pub fn new(routes: Arc<dyn RouteTable>, config: ClusterClientConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            routes,
            pool: Pool::new(config.rpc.clone(), RemoteData::new),
            config,
        })
    }

    /// Runs `f` on the shard's owner until it succeeds, fails for good, or
    /// the request deadline passes. `bounded`: each attempt is cut at the
    /// deadline too.
    async fn call<T, F, Fut>(
        &self,
        shard: ShardId,
        rpc: &'static str,
        bounded: bool,
        f: F,
    ) -> Result<T>
    where
        F: Fn(RemoteData) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempts = Attempts::new(self.routes.as_ref(), &self.config, shard, rpc);
        loop {
            let version = self.routes.version();
            let route = self.routes.route(shard);
            match &route.owner {
                None => attempts.failed(
                    None,
                    Error::Unavailable(format!("shard {shard} has no owner")),
                ),
                Some(node) => {
                    let client = self.pool.get(&node.addr)?;
                    let result = match bounded {
                        true => attempts.bounded(&node.addr, f(client)).await,
                        false => f(client).await,
                    };
                    match result {
                        Ok(v) => return Ok(v),
                        Err(e) if retryable(&e) => attempts.failed(Some(&node.addr), e),
                        Err(e) => return Err(e),
                    }
                }
            }
            attempts.wait(version, &route).await?;
        }
    }
}

#[async_trait]
impl DataClient for ClusterData {
    /// Retried like every call: safe because upserts and deletes are
    /// idempotent by primary key (module docs).
    async fn write(&self, shard: ShardId, op: WriteOp) -> Result<Timestamp> {
        let op = &op;
        self.call(shard, "Write", true, |c| async move {
            c.write(shard, op.clone()).await
        })
        .await
    }

    async fn last_ts(&self, shard: ShardId) -> Result<Timestamp> {
        self.call(
            shard,
            "LastTs",
            true,
            |c| async move { c.last_ts(shard).await },
        )
        .await
    }

    async fn flush(&self, shard: ShardId) -> Result<()> {
        self.call(
            shard,
            "Flush",
            false,
            |c| async move { c.flush(shard).await },
        )
        .await
    }
}

#[async_trait]
impl ShardFeed for ClusterData {
    /// The stream of the shard's current owner. When it ends (the owner
    /// stopped or moved), the subscriber subscribes again and reaches the
    /// new owner through the route table.
    async fn subscribe(&self, shard: ShardId) -> Result<Subscription> {
        self.call(shard, "Subscribe", true, |c| async move {
            c.subscribe(shard).await
        })
        .await
    }
}
