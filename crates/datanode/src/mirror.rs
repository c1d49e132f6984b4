//! Mirrored collections: a shard ships its own writes — the ones clients
//! made, not the ones copied from its partner — to the partner collection's
//! shard of the same index, in WAL order.
//!
//! The shard's WAL is the durable queue: a write is acknowledged once it is
//! in this WAL, and the WAL keeps every object the partner has not received
//! (truncation stops at the mirror cursor, `mirror/<collection>/<shard>/
//! cursor`). A new owner of the shard (restart, failover) reads the WAL from
//! the cursor and ships what is missing, so a partner that was down or slow
//! catches up and nothing acknowledged is lost to it. Copies are written as
//! [`WriteOp::Mirrored`]: marked in the partner's WAL and never shipped back.
//!
//! Writes start being shipped once the collection is in a mirrored pair;
//! rows written before that are not copied (no backfill yet).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use quiver_api::{DataClient, ShardId, WriteOp};
use quiver_common::{CollectionId, Mutation, Timestamp, ts_physical_ms, wall_ts};
use quiver_storage::{ObjectStore, write_mirror_cursor};

use crate::shard::ShardCtx;

/// Where a datanode's mirrored collections are copied to.
pub trait MirrorRoutes: Send + Sync {
    /// The other collection of the mirrored pair `collection` belongs to.
    fn partner(&self, collection: CollectionId) -> Option<CollectionId>;
    /// How copies are written (any shard of any collection).
    fn data(&self) -> Arc<dyn DataClient>;
}

/// A shard's own writes not yet shipped, in WAL order.
#[derive(Debug, Default)]
pub(crate) struct MirrorQueue {
    /// Whether the collection is in a mirrored pair (otherwise nothing is
    /// queued).
    pub active: bool,
    pub pending: VecDeque<(u64, Arc<Mutation>)>,
    /// Every own write in WAL objects up to this seq was shipped.
    pub cursor: u64,
    /// The newest seq this shard's writer made durable (own or copied).
    pub last_seq: u64,
}

impl MirrorQueue {
    /// Starts owing writes to a partner: everything durable so far is not.
    pub fn start(&mut self) {
        self.active = true;
        self.cursor = self.cursor.max(self.last_seq);
    }

    pub fn push(&mut self, seq: u64, m: &Arc<Mutation>) {
        self.last_seq = self.last_seq.max(seq);
        if self.active {
            self.pending.push_back((seq, m.clone()));
        }
    }

    /// The cursor if everything queued were shipped: just before the oldest
    /// unshipped write, or the newest durable seq.
    fn reachable(&self) -> u64 {
        match self.pending.front() {
            Some((seq, _)) => seq.saturating_sub(1),
            None => self.last_seq,
        }
    }

    /// How far the partner is behind: the age of the oldest unshipped write.
    pub fn lag_ms(&self, now: Timestamp) -> u64 {
        self.pending.front().map_or(0, |(_, m)| {
            ts_physical_ms(now).saturating_sub(ts_physical_ms(m.ts()))
        })
    }

    /// WAL objects the mirror still needs (none while inactive).
    pub fn keep_from(&self) -> Option<u64> {
        self.active.then_some(self.cursor + 1)
    }
}

fn op_of(m: &Mutation) -> WriteOp {
    let inner = match m {
        Mutation::Upsert { rows, .. } => WriteOp::Upsert(rows.clone()),
        Mutation::Delete { pks, .. } => WriteOp::Delete(pks.clone()),
    };
    WriteOp::Mirrored(Box::new(inner))
}

const CURSOR_EVERY: Duration = Duration::from_millis(200);
const IDLE: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Ships the shard's own writes to its partner until the shard closes.
pub(crate) async fn run_shipper(
    ctx: Arc<ShardCtx>,
    routes: Arc<dyn MirrorRoutes>,
    store: Arc<dyn ObjectStore>,
) {
    let mut saved = ctx.mirror.lock().cursor;
    let mut last_save = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(50);
    loop {
        let partner = routes.partner(ctx.id.collection_id);
        let next = {
            let mut q = ctx.mirror.lock();
            match partner {
                None => {
                    q.active = false;
                    q.pending.clear();
                    None
                }
                Some(p) => {
                    if !q.active {
                        // Paired while idle: nothing durable so far is owed.
                        q.start();
                    }
                    if q.pending.is_empty() {
                        q.cursor = q.cursor.max(q.reachable());
                    }
                    q.pending.front().cloned().map(|e| (p, e))
                }
            }
        };
        let cursor = ctx.mirror.lock().cursor;
        if cursor != saved && last_save.elapsed() >= CURSOR_EVERY {
            match write_mirror_cursor(&store, ctx.id.collection_id, ctx.id.shard, cursor).await {
                Ok(()) => {
                    saved = cursor;
                    last_save = tokio::time::Instant::now();
                }
                Err(e) => tracing::warn!(shard = %ctx.id, error = %e, "saving the mirror cursor"),
            }
        }
        let Some((partner, (seq, mutation))) = next else {
            let wakeup = ctx.mirror_wakeup.notified();
            tokio::select! {
                () = wakeup => {}
                () = tokio::time::sleep(IDLE) => {}
                () = ctx.cancel.cancelled() => return,
            }
            continue;
        };
        let target = ShardId {
            collection_id: partner,
            shard: ctx.id.shard,
        };
        let data = routes.data();
        let shipped = tokio::select! {
            r = data.write(target, op_of(&mutation)) => r,
            () = ctx.cancel.cancelled() => return,
        };
        match shipped {
            Ok(_) => {
                backoff = Duration::from_millis(50);
                let mut q = ctx.mirror.lock();
                if q.pending
                    .front()
                    .is_some_and(|(s, m)| *s == seq && Arc::ptr_eq(m, &mutation))
                {
                    q.pending.pop_front();
                }
                q.cursor = q.cursor.max(q.reachable());
            }
            Err(e) => {
                tracing::debug!(shard = %ctx.id, partner = %target, error = %e, "shipping to the mirror partner failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = ctx.cancel.cancelled() => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// The partner's lag for a shard, in ms (None while not mirrored). A shard
/// whose pairing its shipper has not seen yet owes nothing: 0.
pub(crate) fn lag_ms(ctx: &ShardCtx) -> Option<u64> {
    {
        let q = ctx.mirror.lock();
        if q.active {
            return Some(q.lag_ms(wall_ts()));
        }
    }
    let paired = ctx
        .mirror_routes
        .as_ref()
        .is_some_and(|r| r.partner(ctx.id.collection_id).is_some());
    paired.then_some(0)
}
