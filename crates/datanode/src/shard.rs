//! One shard's writer: a task that takes write requests in rounds, stamps
//! them, submits them to the WAL (one group commit per round), and once they
//! are durable applies them to the growing data, streams them to subscribers
//! and acknowledges them — in timestamp order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use quiver_api::{CollectionInfo, SegmentInfo, ShardEvent, ShardId, Subscription, WriteOp};
use quiver_common::{Error, HybridClock, Mutation, Result, Timestamp};
use quiver_storage::{ObjectStore, Wal, write_mirror_cursor};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::DataNodeConfig;
use crate::mirror::{MirrorQueue, MirrorRoutes};

/// A durable mutation not yet covered by a sealed segment.
#[derive(Debug, Clone)]
pub(crate) struct Logged {
    pub seq: u64,
    pub mutation: Arc<Mutation>,
    pub at: Instant,
}

pub(crate) enum Request {
    Write(WriteOp, oneshot::Sender<Result<Timestamp>>),
    Flush(oneshot::Sender<Result<()>>),
}

/// State shared by the writer, the sealer and subscribers. Every change that
/// subscribers must see is published under this lock, so a subscription's
/// starting point and its live events never overlap or leave a gap.
#[derive(Default)]
pub(crate) struct ShardState {
    pub sealed: Vec<SegmentInfo>,
    pub growing: VecDeque<Logged>,
    pub growing_rows: usize,
    pub growing_bytes: usize,
    pub subscribers: Vec<mpsc::UnboundedSender<ShardEvent>>,
    pub last_ts: Timestamp,
    /// The WAL failed: the shard takes no more writes until it is reopened.
    pub failed: Option<String>,
    /// Flush requests waiting until the WAL is sealed up to a sequence number.
    pub flush_waiters: Vec<(u64, oneshot::Sender<Result<()>>)>,
}

impl ShardState {
    pub fn publish(&mut self, event: ShardEvent) {
        self.subscribers.retain(|s| s.send(event.clone()).is_ok());
    }

    pub fn push_growing(&mut self, logged: Logged) {
        let (rows, bytes) = mutation_size(&logged.mutation);
        self.growing_rows += rows;
        self.growing_bytes += bytes;
        self.growing.push_back(logged);
    }

    /// Drops the `n` oldest growing entries: exactly the ones a seal cut
    /// (a cut is a prefix of the deque, and only the writer appends).
    pub fn pop_sealed(&mut self, n: usize) {
        for _ in 0..n {
            if let Some(l) = self.growing.pop_front() {
                let (rows, bytes) = mutation_size(&l.mutation);
                self.growing_rows -= rows;
                self.growing_bytes -= bytes;
            }
        }
    }

    /// Sealed segments still waiting for their graph, and their rows.
    pub fn unindexed(&self) -> (usize, usize) {
        (self.sealed.iter())
            .filter(|s| s.graph_pending())
            .fold((0, 0), |(n, rows), s| (n + 1, rows + s.rows as usize))
    }

    pub fn subscribe(&mut self) -> Subscription {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.push(tx);
        Subscription {
            sealed: self.sealed.clone(),
            growing: self.growing.iter().map(|l| l.mutation.clone()).collect(),
            events: rx,
        }
    }
}

pub(crate) fn mutation_size(m: &Mutation) -> (usize, usize) {
    match m {
        Mutation::Upsert { rows, .. } => {
            // Further vector fields are columns: their vectors count too
            // (sparse ones 8 bytes an entry).
            let column_vectors: usize = (rows.columns.iter())
                .flat_map(|c| &c.values)
                .map(|v| match v {
                    quiver_common::ScalarValue::Vector(x) => x.len() * 4,
                    quiver_common::ScalarValue::Sparse(x) => x.len() * 8,
                    _ => 0,
                })
                .sum();
            let bytes = rows.vectors.byte_size() + column_vectors + rows.len() * 16;
            (rows.len(), bytes)
        }
        Mutation::Delete { pks, .. } => (pks.len(), pks.len() * 16),
    }
}

/// Everything a shard's tasks share.
pub(crate) struct ShardCtx {
    pub id: ShardId,
    pub info: CollectionInfo,
    pub config: DataNodeConfig,
    pub wal: Wal,
    pub clock: HybridClock,
    pub state: Mutex<ShardState>,
    pub seal_wakeup: Notify,
    /// Signalled after every seal (growing data shrank).
    pub sealed: Notify,
    /// Writes are waiting for sealing (logged once per stall).
    pub stalled: std::sync::atomic::AtomicBool,
    /// Own writes not yet shipped to the mirror partner (see `mirror.rs`).
    pub mirror: Mutex<MirrorQueue>,
    /// Where mirrored writes go (None: this node does not mirror).
    pub mirror_routes: Option<Arc<dyn MirrorRoutes>>,
    pub store: Arc<dyn ObjectStore>,
    /// Signalled after every round that wrote something.
    pub mirror_wakeup: Notify,
    /// Signalled after every seal (the compactor looks for work).
    pub compact_wakeup: Notify,
    /// Signalled after every seal (the graph builder looks for work).
    pub graph_wakeup: Notify,
    /// Segment ids being written and not yet registered (a seal or a
    /// compaction in flight): garbage collection never takes them.
    pub in_flight: Mutex<std::collections::HashSet<u64>>,
    /// What the compactor last saw.
    pub compaction: Mutex<quiver_api::ShardStorage>,
    pub cancel: CancellationToken,
}

/// Why a shard's writer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriterExit {
    /// Closed or shut down.
    Stopped,
    /// The WAL stopped for good; `fenced`: a newer owner took the shard.
    Failed { fenced: bool },
}

/// The writer task of one shard. Returns when the shard closes or its WAL
/// fails (then subscribers' streams end and queued writes are refused).
pub(crate) async fn run_writer(
    ctx: Arc<ShardCtx>,
    mut requests: mpsc::UnboundedReceiver<Request>,
) -> WriterExit {
    let tick = ctx.config.tick_interval();
    let mut exit = WriterExit::Stopped;
    loop {
        let first = tokio::select! {
            r = requests.recv() => match r {
                Some(r) => r,
                None => break,
            },
            () = tokio::time::sleep(tick) => {
                publish_tick(&ctx);
                continue;
            }
            () = ctx.cancel.cancelled() => break,
        };
        if !wait_for_room(&ctx).await {
            // Sealing has not made room within the stall bound: the writes
            // waiting now are refused (the client backs off and retries);
            // flushes go on, they are what makes room.
            let mut waiting = vec![first];
            while let Ok(r) = requests.try_recv() {
                waiting.push(r);
            }
            let (flushes, writes): (Vec<_>, Vec<_>) = waiting
                .into_iter()
                .partition(|r| matches!(r, Request::Flush(_)));
            refuse_overloaded(writes, &ctx);
            if !flushes.is_empty() && process_round(&ctx, flushes).await.is_some() {
                break;
            }
            continue;
        }
        let mut round = vec![first];
        // A round takes what is queued, up to the batch limit, the room left
        // under the growing bound and one segment's worth (a round can share
        // one WAL object, and a seal cut ends on an object boundary, so a
        // segment holds at most about 2 x seal_rows). The first request
        // always goes.
        let limit = ctx
            .config
            .max_batch_rows
            .min(room_rows(&ctx))
            .min(ctx.config.seal_rows);
        let mut rows = request_rows(&round[0]);
        while rows < limit {
            match requests.try_recv() {
                Ok(r) => {
                    rows += request_rows(&r);
                    round.push(r);
                }
                Err(_) => break,
            }
        }
        if let Some(fenced) = process_round(&ctx, round).await {
            exit = WriterExit::Failed { fenced };
            break;
        }
    }
    requests.close();
    let mut st = ctx.state.lock();
    st.subscribers.clear();
    for (_, w) in st.flush_waiters.drain(..) {
        let _ = w.send(Err(Error::Unavailable(format!("shard {} closed", ctx.id))));
    }
    let why = st
        .failed
        .clone()
        .unwrap_or_else(|| format!("shard {} closed", ctx.id));
    drop(st);
    // Writes queued behind the failure: refused, retryable (never acknowledged).
    let mut queued = Vec::new();
    while let Ok(r) = requests.try_recv() {
        queued.push(r);
    }
    refuse(queued, &why);
    exit
}

fn request_rows(r: &Request) -> usize {
    match r {
        Request::Write(op, _) => op.rows(),
        Request::Flush(_) => 0,
    }
}

/// Rows that fit under the growing bound now.
fn room_rows(ctx: &ShardCtx) -> usize {
    let bound = ctx
        .config
        .seal_rows
        .saturating_mul(ctx.config.max_growing_factor);
    bound.saturating_sub(ctx.state.lock().growing_rows)
}

/// Stamps and publishes a tick: nothing was written up to now.
fn publish_tick(ctx: &ShardCtx) {
    let mut st = ctx.state.lock();
    if st.failed.is_none() {
        let ts = ctx.clock.now();
        st.last_ts = ts;
        st.publish(ShardEvent::Tick(ts));
    }
}

/// Backpressure: while the growing data is over its bound, or too many
/// sealed segments wait for their graph, writes wait for the sealer or the
/// builds to catch up (those rows are scanned exactly, so searches stay
/// fast). Returns false when there is still no room after
/// `write_stall_ms`: the waiting writes are then refused, so writers see
/// a back-off code within a moment, never their deadline. Ticks go on
/// meanwhile, so replicas keep serving reads at the newest timestamp.
async fn wait_for_room(ctx: &ShardCtx) -> bool {
    let over = || over_bound(ctx).is_some();
    use std::sync::atomic::Ordering;
    let give_up = tokio::time::Instant::now() + ctx.config.write_stall();
    loop {
        let sealed = ctx.sealed.notified();
        tokio::pin!(sealed);
        sealed.as_mut().enable();
        if !over() {
            if ctx.stalled.swap(false, Ordering::Relaxed) {
                tracing::info!(shard = %ctx.id, "sealing made room; writes go on");
            }
            return true;
        }
        if !ctx.stalled.swap(true, Ordering::Relaxed) {
            let why = over_bound(ctx).unwrap_or_default();
            tracing::warn!(shard = %ctx.id, why, "writes wait for sealing or index builds (refused with Overloaded after datanode.write_stall_ms)");
        }
        ctx.seal_wakeup.notify_one();
        tokio::select! {
            () = sealed => {}
            () = tokio::time::sleep(ctx.config.tick_interval()) => publish_tick(ctx),
            () = ctx.cancel.cancelled() => return true,
        }
        if tokio::time::Instant::now() >= give_up && over() {
            return false;
        }
    }
}

/// Why the shard takes no more rows now: its growing data is over its
/// bound, or too many sealed segments wait for their graph.
fn over_bound(ctx: &ShardCtx) -> Option<String> {
    let st = ctx.state.lock();
    let f = ctx.config.max_growing_factor;
    if st.growing_rows >= ctx.config.seal_rows.saturating_mul(f)
        || st.growing_bytes >= ctx.config.seal_bytes.saturating_mul(f)
    {
        return Some(format!(
            "{} growing rows ({} MiB) wait for sealing, over datanode.max_growing_factor x seal_rows/seal_bytes",
            st.growing_rows,
            st.growing_bytes >> 20
        ));
    }
    let (segments, rows) = st.unindexed();
    let schema = &ctx.info.schema;
    let bytes = rows.saturating_mul(schema.element_type().row_bytes(schema.dim()));
    let u = ctx.config.max_unindexed_factor;
    (rows >= ctx.config.seal_rows.saturating_mul(u)
        || bytes >= ctx.config.seal_bytes.saturating_mul(u))
    .then(|| {
        format!(
            "{rows} rows ({} MiB) of {segments} sealed segments wait for their graph, over datanode.max_unindexed_factor x seal_rows/seal_bytes",
            bytes >> 20
        )
    })
}

/// Refuses writes that found no room under the growing bound.
fn refuse_overloaded(writes: Vec<Request>, ctx: &ShardCtx) {
    let why = format!(
        "shard {}: {} for {} ms (datanode.write_stall_ms): the ingest is faster than sealing and index builds; retry with backoff",
        ctx.id,
        over_bound(ctx).unwrap_or_else(|| "no room".into()),
        ctx.config.write_stall_ms
    );
    for r in writes {
        if let Request::Write(_, reply) = r {
            let _ = reply.send(Err(Error::Overloaded(why.clone())));
        }
    }
}

/// Returns `Some(fenced)` once the WAL has failed for good.
async fn process_round(ctx: &ShardCtx, round: Vec<Request>) -> Option<bool> {
    // Whether this round's own writes are owed to a mirror partner: decided
    // before they are stamped, so none written after the pairing is missed.
    let mirrored = ctx
        .mirror_routes
        .as_ref()
        .is_some_and(|r| r.partner(ctx.id.collection_id).is_some());
    let starting = {
        let q = ctx.mirror.lock();
        (mirrored && !q.active).then_some(q.last_seq)
    };
    if let Some(from) = starting {
        // The cursor object is what tells a later owner of this shard that
        // writes are owed to a partner: it must exist before any owed write
        // is acknowledged. Until it does, the round waits (retrying).
        while let Err(e) =
            write_mirror_cursor(&ctx.store, ctx.id.collection_id, ctx.id.shard, from).await
        {
            tracing::warn!(shard = %ctx.id, error = %e, "saving the mirror cursor; retrying");
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                () = ctx.cancel.cancelled() => {
                    refuse(round, &format!("shard {} closed", ctx.id));
                    return None;
                }
            }
        }
    }
    let mut pending = Vec::with_capacity(round.len());
    for req in round {
        match req {
            Request::Flush(reply) => flush_request(ctx, reply),
            Request::Write(op, reply) => {
                if let Some(why) = ctx.state.lock().failed.clone() {
                    let _ = reply.send(Err(Error::Unavailable(why)));
                    continue;
                }
                let (op, replicated) = match op {
                    WriteOp::Mirrored(inner) => (*inner, true),
                    op => (op, false),
                };
                let mutation = match op {
                    WriteOp::Upsert(mut rows) => {
                        rows.dedup_last_wins();
                        Mutation::Upsert {
                            ts: ctx.clock.now(),
                            rows,
                        }
                    }
                    WriteOp::Delete(pks) => Mutation::Delete {
                        ts: ctx.clock.now(),
                        pks,
                    },
                    WriteOp::Mirrored(_) => {
                        let _ = reply.send(Err(Error::invalid(
                            "op",
                            "a mirrored write cannot wrap another mirrored write",
                        )));
                        continue;
                    }
                };
                let durable = ctx.wal.submit_from(mutation.clone(), replicated);
                pending.push((Arc::new(mutation), replicated, durable, reply));
            }
        }
    }
    // Wait for the whole round before anything becomes visible: a WAL object
    // only ever holds entries of one round, so applying a round at once (under
    // one lock) means the growing data never holds part of a WAL object. A
    // seal cut taken between two entries of one object would otherwise register
    // that object's seq as sealed while some of its entries are not in the
    // segment — and a restart, which replays only after that seq, loses them.
    let mut outcomes = Vec::with_capacity(pending.len());
    for (mutation, replicated, durable, reply) in pending {
        outcomes.push((mutation, replicated, durable.await, reply));
    }
    let mut replies = Vec::with_capacity(outcomes.len());
    let mut wrote = false;
    let mut failure = None;
    {
        let mut st = ctx.state.lock();
        let mut mirror = ctx.mirror.lock();
        if mirrored && !mirror.active {
            mirror.start();
        }
        for (mutation, replicated, outcome, reply) in outcomes {
            match outcome {
                Ok(seq) => {
                    let ts = mutation.ts();
                    st.last_ts = ts;
                    if replicated {
                        mirror.last_seq = mirror.last_seq.max(seq);
                    } else {
                        mirror.push(seq, &mutation);
                    }
                    st.publish(ShardEvent::Mutation(mutation.clone()));
                    st.push_growing(Logged {
                        seq,
                        mutation,
                        at: Instant::now(),
                    });
                    wrote = true;
                    replies.push((reply, Ok(ts)));
                }
                // The store refuses writes for now (full, read-only, down):
                // this write is refused, the shard stays open for reads and
                // its WAL takes writes again by itself.
                Err(e) if e.is_refused() => replies.push((reply, Err(Error::from(e)))),
                Err(e) => {
                    failure = Some(e.is_fenced());
                    // Not written: a fenced write goes to the new owner, any
                    // other is retried once the shard has reopened.
                    let e = match Error::from(e) {
                        Error::Io(m) => Error::Unavailable(format!(
                            "shard {} reopens after a WAL failure ({m})",
                            ctx.id
                        )),
                        e => e,
                    };
                    if st.failed.is_none() {
                        tracing::error!(shard = %ctx.id, error = %e, "WAL write failed; shard stops taking writes");
                        st.failed = Some(format!("WAL of shard {} failed: {e}", ctx.id));
                    }
                    replies.push((reply, Err(e)));
                }
            }
        }
    }
    for (reply, result) in replies {
        let _ = reply.send(result);
    }
    if wrote {
        ctx.mirror_wakeup.notify_one();
        let st = ctx.state.lock();
        if st.growing_rows >= ctx.config.seal_rows || st.growing_bytes >= ctx.config.seal_bytes {
            ctx.seal_wakeup.notify_one();
        }
    }
    failure
}

/// Answers every request of a round that will not run (never acknowledged).
fn refuse(round: Vec<Request>, why: &str) {
    for r in round {
        match r {
            Request::Write(_, reply) => {
                let _ = reply.send(Err(Error::Unavailable(why.to_string())));
            }
            Request::Flush(reply) => {
                let _ = reply.send(Err(Error::Unavailable(why.to_string())));
            }
        }
    }
}

fn flush_request(ctx: &ShardCtx, reply: oneshot::Sender<Result<()>>) {
    let mut st = ctx.state.lock();
    match st.growing.back().map(|l| l.seq) {
        None => {
            let _ = reply.send(Ok(()));
        }
        Some(target) => {
            st.flush_waiters.push((target, reply));
            ctx.seal_wakeup.notify_one();
        }
    }
}
