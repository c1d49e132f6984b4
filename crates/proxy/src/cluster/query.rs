//! [`ClusterQuery`]: each shard read goes to one of the shard's replicas; a
//! failed replica is replaced by the next one at once, and a replica that
//! has not answered after `hedge_after` gets company: the read also goes to
//! the next replica and the first answer wins (reads are idempotent). A
//! replica that failed, or lost a hedge, is tried last for a while, so a
//! partitioned or stopped querynode costs one read a hedge delay, not every
//! read its deadline.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use parking_lot::Mutex;
use tokio::time::Instant;

use async_trait::async_trait;
use quiver_api::{
    DigestRequest, NodeAddr, QueryClient, QueryResult, RouteTable, RowPredicate, ShardDigest,
    ShardHit, ShardId, ShardQuery, ShardSearch,
};
use quiver_common::{Error, Result, Timestamp};
use quiver_rpc::RemoteQuery;

use super::ClusterClientConfig;
use super::pool::Pool;
use super::retry::{Attempts, bounded, retryable};

/// A replica that lost a hedge stays at the back of the line this long.
const SLOW_FOR: Duration = Duration::from_secs(1);

/// The querynodes of a cluster as one [`QueryClient`]. See the module docs.
pub struct ClusterQuery {
    routes: Arc<dyn RouteTable>,
    config: ClusterClientConfig,
    pool: Pool<RemoteQuery>,
    /// Where the next request starts in a shard's replica list.
    next: AtomicUsize,
    /// Replicas (by address) tried last until the given time.
    suspects: Mutex<HashMap<String, Instant>>,
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
            suspects: Mutex::new(HashMap::new()),
        })
    }

    /// The replicas in the order to try them: rotating from `first`, those
    /// not under suspicion before those that are.
    fn order(&self, replicas: &[NodeAddr], first: usize) -> Vec<NodeAddr> {
        let n = replicas.len();
        let now = Instant::now();
        let mut suspects = self.suspects.lock();
        suspects.retain(|_, until| *until > now);
        let (mut fine, mut suspect): (Vec<NodeAddr>, Vec<NodeAddr>) = (0..n)
            .map(|i| replicas[(first + i) % n].clone())
            .partition(|node| !suspects.contains_key(&node.addr));
        fine.append(&mut suspect);
        fine
    }

    fn suspect(&self, addr: &str, period: Duration) {
        let until = Instant::now() + period;
        let mut suspects = self.suspects.lock();
        let entry = suspects.entry(addr.to_string()).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn cleared(&self, addr: &str) {
        let mut suspects = self.suspects.lock();
        if !suspects.is_empty() {
            suspects.remove(addr);
        }
    }

    /// Runs `f` on the shard's replicas (see [`Self::order`]): the next
    /// replica is started when the running ones all failed or none answered
    /// within `hedge_after`; the first answer wins and the others are
    /// cancelled. When every replica failed, waits for a route change or a
    /// backoff and goes around again, until the request deadline. The answer
    /// is one replica's whole answer.
    async fn call<T, F, Fut>(&self, shard: ShardId, rpc: &'static str, f: F) -> Result<T>
    where
        F: Fn(RemoteQuery) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let mut attempts = Attempts::new(self.routes.as_ref(), &self.config, shard, rpc);
        let deadline = attempts.deadline();
        loop {
            let version = self.routes.version();
            let route = self.routes.route(shard);
            let order = self.order(&route.replicas, first);
            if order.is_empty() {
                attempts.failed(
                    None,
                    Error::Unavailable(format!("shard {shard} has no replica")),
                );
            }
            let mut running = FuturesUnordered::new();
            let mut next = 0;
            let mut hedge = Instant::now();
            loop {
                if next < order.len() && (running.is_empty() || Instant::now() >= hedge) {
                    let node = &order[next];
                    next += 1;
                    let client = self.pool.get(&node.addr)?;
                    let addr = node.addr.clone();
                    let fut = f(client);
                    running.push(async move {
                        let r = bounded(deadline, rpc, &addr, fut).await;
                        (addr, r)
                    });
                    hedge = Instant::now() + self.config.hedge_after;
                }
                if running.is_empty() {
                    break;
                }
                let more = next < order.len();
                tokio::select! {
                    done = running.next() => {
                        let Some((addr, r)) = done else { break };
                        match r {
                            Ok(v) => {
                                self.cleared(&addr);
                                for node in &order[..next] {
                                    if node.addr != addr {
                                        self.suspect(&node.addr, SLOW_FOR);
                                    }
                                }
                                return Ok(v);
                            }
                            Err(e) if retryable(&e) => {
                                self.suspect(&addr, self.config.suspect_for);
                                attempts.failed(Some(&addr), e);
                                hedge = Instant::now();
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    () = tokio::time::sleep_until(hedge), if more => {}
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

    async fn count(
        &self,
        shard: ShardId,
        guarantee_ts: Timestamp,
        filter: Option<Arc<dyn RowPredicate>>,
    ) -> Result<u64> {
        let filter = &filter;
        self.call(shard, "Count", |c| async move {
            c.count(shard, guarantee_ts, filter.clone()).await
        })
        .await
    }

    async fn digest(&self, req: DigestRequest) -> Result<ShardDigest> {
        let req = &req;
        self.call(req.shard, "Digest", |c| async move {
            c.digest(req.clone()).await
        })
        .await
    }
}
