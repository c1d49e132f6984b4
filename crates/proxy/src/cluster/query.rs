//! [`ClusterQuery`]: each shard read goes to one of the shard's replicas;
//! a failed replica is replaced by the next one at once.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use quiver_api::{
    QueryClient, QueryResult, RouteTable, ShardHit, ShardId, ShardQuery, ShardSearch,
};
use quiver_common::{Error, Result, Timestamp};
use quiver_rpc::RemoteQuery;

use super::ClusterClientConfig;
use super::pool::Pool;
use super::retry::{Attempts, retryable};

/// The querynodes of a cluster as one [`QueryClient`]. See the module docs.
pub struct ClusterQuery {
    routes: Arc<dyn RouteTable>,
    config: ClusterClientConfig,
    pool: Pool<RemoteQuery>,
    /// Where the next request starts in a shard's replica list.
    next: AtomicUsize,
}

impl ClusterQuery {
    /// Must be called inside a Tokio runtime (clients are made lazily on it).
    pub fn new(routes: Arc<dyn RouteTable>, config: ClusterClientConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            routes,
            pool: Pool::new(config.rpc.clone(), RemoteQuery::new),
            config,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on one replica after the other (starting at a rotating
    /// index) until one answers; when all failed, waits for a route change
    /// or a backoff and goes around again, until the request deadline. The
    /// answer is one replica's whole answer.
    async fn call<T, F, Fut>(&self, shard: ShardId, rpc: &'static str, f: F) -> Result<T>
    where
        F: Fn(RemoteQuery) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let mut attempts = Attempts::new(self.routes.as_ref(), &self.config, shard, rpc);
        loop {
            let version = self.routes.version();
            let route = self.routes.route(shard);
            let n = route.replicas.len();
            if n == 0 {
                attempts.failed(
                    None,
                    Error::Unavailable(format!("shard {shard} has no replica")),
                );
            }
            for i in 0..n {
                let node = &route.replicas[(first + i) % n];
                let client = self.pool.get(&node.addr)?;
                match attempts.bounded(&node.addr, f(client)).await {
                    Ok(v) => return Ok(v),
                    Err(e) if retryable(&e) => attempts.failed(Some(&node.addr), e),
                    Err(e) => return Err(e),
                }
                if attempts.expired() {
                    break;
                }
            }
            attempts.wait(version, &route).await?;
        }
    }
}

#[async_trait]
impl QueryClient for ClusterQuery {
    async fn search(&self, req: ShardSearch) -> Result<Vec<Vec<ShardHit>>> {
        let req = &req;
        self.call(req.shard, "Search", |c| async move {
            c.search(req.clone()).await
        })
        .await
    }

    async fn query(&self, req: ShardQuery) -> Result<QueryResult> {
        let req = &req;
        self.call(
            req.shard,
            "Query",
            |c| async move { c.query(req.clone()).await },
        )
        .await
    }

    async fn count(&self, shard: ShardId, guarantee_ts: Timestamp) -> Result<u64> {
        self.call(shard, "Count", |c| async move {
            c.count(shard, guarantee_ts).await
        })
        .await
    }
}
