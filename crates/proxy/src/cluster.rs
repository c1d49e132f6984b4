//! The front door's clients in cluster mode: one [`DataClient`] and one
//! [`QueryClient`] for every shard, which find each shard's nodes in a
//! [`RouteTable`] (coord's placement as this process sees it) and ride out a
//! node's death inside the request's deadline.
//!
//! - [`ClusterData`] sends a shard's writes, flushes, `last_ts` and
//!   subscriptions to its current owner. On a retryable failure (the node is
//!   unreachable, the shard is not open there, no owner yet, a stale owner
//!   was fenced) it waits for the route to change or a short backoff, looks
//!   the owner up again and retries, until [`ClusterClientConfig::request_deadline`];
//!   then it fails with `Unavailable` naming the shard. Other errors
//!   (bad input, unknown collection, ...) return at once.
//! - [`ClusterQuery`] tries a shard's replicas, starting at a different one
//!   for each request; a retryable failure moves on to the next replica at
//!   once; when every replica failed it waits like [`ClusterData`] and goes
//!   around again. Each answer is one replica's whole answer: attempts are
//!   never mixed.
//!
//! **Retried writes.** A write that failed as Unavailable (or timed out)
//! may still have been applied by the datanode before the failure reached
//! us (the answer was lost). Retrying it applies it a second time, with a
//! newer timestamp. Both write kinds are idempotent by primary key — an
//! upsert replaces the key's row (last write wins), a delete of a deleted
//! key does nothing — so the second application leaves the same rows, and
//! the timestamp returned (the later one) covers both. This is why the
//! proxy may retry inserts too: in Quiver an insert is an upsert.

mod data;
mod pool;
mod query;
mod retry;
mod routes;

use std::time::Duration;

use quiver_common::{Error, Result};
use quiver_rpc::ClientConfig;

pub use data::ClusterData;
pub use query::ClusterQuery;
pub use routes::StaticRoutes;

#[cfg(doc)]
use quiver_api::{DataClient, QueryClient, RouteTable};

/// How the cluster clients retry, and how they reach each node.
#[derive(Debug, Clone)]
pub struct ClusterClientConfig {
    /// How long one request may spend retrying (finding the new owner, the
    /// next replica) before it fails with Unavailable. One attempt is cut at
    /// this deadline too, except a flush (sealing may take longer: a flush
    /// attempt runs up to `rpc.flush_timeout_ms`, but none starts after it).
    pub request_deadline: Duration,
    /// First wait after every node of a shard failed; doubles up to
    /// `backoff_max`. A change of the route table ends a wait early.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A read that has no answer from its replica after this long is also
    /// sent to the next replica (a hedged read); the first answer wins. A
    /// replica that hangs (partitioned, stopped) then costs a read this
    /// delay, not its deadline.
    pub hedge_after: Duration,
    /// How long a replica that failed stays at the back of the line (tried
    /// only when the others fail).
    pub suspect_for: Duration,
    /// How each node is reached (timeouts, keep-alive).
    pub rpc: ClientConfig,
}

impl Default for ClusterClientConfig {
    fn default() -> Self {
        Self {
            request_deadline: Duration::from_secs(10),
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(500),
            hedge_after: Duration::from_millis(100),
            suspect_for: Duration::from_secs(5),
            rpc: ClientConfig::default(),
        }
    }
}

impl ClusterClientConfig {
    pub fn validate(&self) -> Result<()> {
        if self.request_deadline.is_zero() {
            return Err(Error::invalid("cluster.request_deadline", "must be > 0"));
        }
        if self.backoff_min.is_zero() || self.backoff_max < self.backoff_min {
            return Err(Error::invalid(
                "cluster.backoff_min/backoff_max",
                "need 0 < backoff_min <= backoff_max",
            ));
        }
        if self.hedge_after.is_zero() {
            return Err(Error::invalid("cluster.hedge_after", "must be > 0"));
        }
        self.rpc.validate()
    }
}
