//! One request's attempts: which failures are worth another try, the wait
//! between rounds (a route change or a backoff), the request's deadline.

use std::future::Future;
use std::time::Duration;

use quiver_api::{RouteTable, ShardId, ShardRoute};
use quiver_common::{Error, ErrorKind, Result};
use tokio::time::Instant;

use super::ClusterClientConfig;

/// Whether another node (or the same one later) may succeed where this
/// failure happened: the node is unreachable or does not serve the shard
/// (yet), it was fenced by a newer owner, or it did not answer in time.
pub(crate) fn retryable(e: &Error) -> bool {
    match e.kind() {
        ErrorKind::Unavailable | ErrorKind::Fenced | ErrorKind::DeadlineExceeded => true,
        ErrorKind::InvalidArgument
        | ErrorKind::CollectionNotFound
        | ErrorKind::NotLoaded
        | ErrorKind::AlreadyExists
        | ErrorKind::IndexNotFound
        | ErrorKind::PartitionNotFound
        | ErrorKind::DatabaseNotFound
        | ErrorKind::AliasNotFound
        | ErrorKind::AliasExists
        | ErrorKind::NameConflict
        | ErrorKind::FieldNameInvalid
        | ErrorKind::StateConflict
        | ErrorKind::NoSpace
        | ErrorKind::Overloaded
        | ErrorKind::Corrupt
        | ErrorKind::Io
        | ErrorKind::Internal => false,
    }
}

/// Runs one attempt of `rpc` to `addr`, cut at `deadline`.
pub(crate) async fn bounded<T>(
    deadline: Instant,
    rpc: &str,
    addr: &str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::DeadlineExceeded(format!(
            "{rpc} to {addr}: cut at the request deadline"
        ))),
    }
}

pub(crate) struct Attempts<'a> {
    routes: &'a dyn RouteTable,
    shard: ShardId,
    rpc: &'static str,
    started: Instant,
    deadline: Instant,
    backoff: Duration,
    backoff_max: Duration,
    tries: u32,
    last: Option<Error>,
}

impl<'a> Attempts<'a> {
    pub(crate) fn new(
        routes: &'a dyn RouteTable,
        config: &ClusterClientConfig,
        shard: ShardId,
        rpc: &'static str,
    ) -> Self {
        let started = Instant::now();
        Self {
            routes,
            shard,
            rpc,
            started,
            deadline: started + config.request_deadline,
            backoff: config.backoff_min,
            backoff_max: config.backoff_max,
            tries: 0,
            last: None,
        }
    }

    pub(crate) fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Runs one attempt, cut at the request's deadline.
    pub(crate) async fn bounded<T>(
        &self,
        addr: &str,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        bounded(self.deadline, self.rpc, addr, fut).await
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Records a retryable failure of one attempt.
    pub(crate) fn failed(&mut self, addr: Option<&str>, e: Error) {
        self.tries += 1;
        tracing::debug!(
            shard = %self.shard,
            rpc = self.rpc,
            addr = addr.unwrap_or("-"),
            error = %e,
            "attempt failed; retrying"
        );
        self.last = Some(e);
    }

    /// After every node of `tried` failed: waits until the shard's route
    /// differs from `tried` (the table moved past `version`) or the backoff
    /// passed. Fails with Unavailable naming the shard once the deadline is
    /// reached.
    pub(crate) async fn wait(&mut self, mut version: u64, tried: &ShardRoute) -> Result<()> {
        if self.expired() {
            return Err(self.give_up());
        }
        let until = (Instant::now() + self.backoff).min(self.deadline);
        self.backoff = (self.backoff * 2).min(self.backoff_max);
        loop {
            tokio::select! {
                v = self.routes.changed(version) => {
                    if self.routes.route(self.shard) != *tried {
                        break;
                    }
                    version = v; // another shard moved: keep waiting
                }
                () = tokio::time::sleep_until(until) => break,
            }
        }
        if self.expired() {
            return Err(self.give_up());
        }
        Ok(())
    }

    fn give_up(&mut self) -> Error {
        let last = match self.last.take() {
            Some(e) => e.to_string(),
            None => "no attempt".into(),
        };
        Error::Unavailable(format!(
            "shard {}: {} failed for {} ms ({} attempts); last error: {last}",
            self.shard,
            self.rpc,
            self.started.elapsed().as_millis(),
            self.tries
        ))
    }
}
