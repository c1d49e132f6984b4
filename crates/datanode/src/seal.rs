//! Sealing: the growing data of a shard, cut at a WAL sequence number, becomes
//! an immutable segment (rows in their final version, plus tombstones for keys
//! whose last operation was a delete), written to the object store and
//! registered with coord. Only then is it handed off to subscribers and
//! dropped from the growing data, so there is no gap and no duplicate.
//!
//! A seal never waits on an index build: a segment that needs a graph is
//! registered as [`INDEX_PENDING`] (searched exactly, as its growing rows
//! were) and the shard's graph builder (`compact/graphs.rs`) builds it. So
//! an ingest faster than builds fills the backlog of builds, not the growing
//! data, and the writer never stalls behind a build.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use quiver_api::{INDEX_PENDING, IndexKind, MetaClient, SegmentInfo, ShardEvent};
use quiver_common::{
    CollectionSchema, Column, Error, Metric, Mutation, PrimaryKey, Result, ScalarValue, Timestamp,
    Vectors,
};
use quiver_index::{HnswIndex, HnswParams};
use quiver_storage::{ObjectStore, SegmentData, put_segment};

use crate::shard::{Logged, ShardCtx};

/// The sealer task of one shard: seals when the growing data is big or old
/// enough, or when a flush is waiting.
pub(crate) async fn run_sealer(
    ctx: Arc<ShardCtx>,
    store: Arc<dyn ObjectStore>,
    meta: Arc<dyn MetaClient>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::select! {
            () = ctx.seal_wakeup.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = ctx.cancel.cancelled() => break,
        }
        if !should_seal(&ctx) {
            continue;
        }
        match seal_once(&ctx, &store, meta.as_ref()).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(shard = %ctx.id, error = %e, "seal failed; will retry");
                if let quiver_common::Error::NoSpace(why) = &e {
                    // A flush cannot finish before there is room: say so now
                    // rather than at the caller's deadline.
                    let waiters = std::mem::take(&mut ctx.state.lock().flush_waiters);
                    for (_, w) in waiters {
                        let _ = w.send(Err(quiver_common::Error::NoSpace(why.clone())));
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = ctx.cancel.cancelled() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                ctx.seal_wakeup.notify_one();
            }
        }
    }
}

/// The oldest growing entries, up to the seal thresholds (a segment never
/// grows past them), ending on a WAL object boundary (entries sharing a seq
/// are sealed together, since the checkpoint is a seq).
fn take_cut(ctx: &ShardCtx) -> Vec<Logged> {
    let st = ctx.state.lock();
    let (mut rows, mut bytes) = (0usize, 0usize);
    let mut cut: Vec<Logged> = Vec::new();
    for l in &st.growing {
        let full = rows >= ctx.config.seal_rows || bytes >= ctx.config.seal_bytes;
        if full && cut.last().is_some_and(|last| last.seq != l.seq) {
            break;
        }
        let (r, b) = crate::shard::mutation_size(&l.mutation);
        rows += r;
        bytes += b;
        cut.push(l.clone());
    }
    cut
}

fn should_seal(ctx: &ShardCtx) -> bool {
    let st = ctx.state.lock();
    let Some(oldest) = st.growing.front() else {
        return false;
    };
    !st.flush_waiters.is_empty()
        || st.growing_rows >= ctx.config.seal_rows
        || st.growing_bytes >= ctx.config.seal_bytes
        || oldest.at.elapsed() >= ctx.config.seal_age()
}

async fn seal_once(
    ctx: &ShardCtx,
    store: &Arc<dyn ObjectStore>,
    meta: &dyn MetaClient,
) -> Result<()> {
    let cut = take_cut(ctx);
    let (Some(first), Some(last)) = (cut.first(), cut.last()) else {
        return Ok(());
    };
    let (cut_seq, cut_ts, cut_len) = (last.seq, last.mutation.ts(), cut.len());
    let _timer = crate::metrics::DURATION
        .with_label_values(&["seal"])
        .start_timer();
    tracing::debug!(shard = %ctx.id, from = first.seq, to = cut_seq, "sealing");
    let segment_id = meta.allocate_ids(1).await?;
    let schema = ctx.info.schema.clone();
    let data = tokio::task::spawn_blocking(move || {
        build_segment_data(&schema, segment_id, &cut, cut_seq, cut_ts)
    })
    .await
    .map_err(|e| Error::Internal(format!("segment build task: {e}")))?;
    // The graph, if the collection's index needs one, is built after the
    // hand-off (the module doc).
    let now = current_index(ctx, meta);
    let index_version = match now.kind.graph() {
        Some(_) if data.pks.len() >= ctx.config.min_index_rows => INDEX_PENDING,
        _ => now.version,
    };
    let info = SegmentInfo {
        id: segment_id,
        rows: data.pks.len() as u64,
        max_ts: cut_ts,
        wal_seq: cut_seq,
        has_index: false,
        index_version,
    };
    // In flight until registered: garbage collection must not take it.
    ctx.in_flight.lock().insert(segment_id);
    let registered = async {
        put_segment(store, ctx.id.collection_id, ctx.id.shard, &data, None).await?;
        meta.register_segments(ctx.id, ctx.wal.epoch(), vec![info], cut_seq)
            .await
    }
    .await;
    ctx.in_flight.lock().remove(&segment_id);
    registered?;
    let truncate_to;
    {
        let mut st = ctx.state.lock();
        st.pop_sealed(cut_len);
        if let Some(next) = st.growing.front()
            && next.seq <= cut_seq
        {
            // Never expected: growing entries are pushed in WAL order.
            tracing::error!(shard = %ctx.id, cut_seq, next_seq = next.seq, "growing data out of WAL order after a seal");
        }
        // The WAL may only lose objects every entry of which is sealed.
        truncate_to = st
            .growing
            .front()
            .map_or(cut_seq, |next| cut_seq.min(next.seq.saturating_sub(1)));
        st.sealed.push(info);
        st.publish(ShardEvent::Sealed(info));
        let (done, waiting): (Vec<_>, Vec<_>) = st
            .flush_waiters
            .drain(..)
            .partition(|(target, _)| *target <= cut_seq);
        st.flush_waiters = waiting;
        for (_, w) in done {
            let _ = w.send(Ok(()));
        }
    }
    // ... and a mirror may still need to ship from them.
    let truncate_to = match ctx.mirror.lock().keep_from() {
        Some(keep) => truncate_to.min(keep.saturating_sub(1)),
        None => truncate_to,
    };
    ctx.sealed.notify_waiters();
    ctx.compact_wakeup.notify_one();
    ctx.graph_wakeup.notify_one();
    if should_seal(ctx) {
        ctx.seal_wakeup.notify_one();
    }
    if let Err(e) = ctx.wal.truncate(truncate_to).await {
        // Harmless: recovery starts after the checkpoint; the next seal retries.
        tracing::warn!(shard = %ctx.id, error = %e, "WAL truncation failed");
    }
    tracing::info!(shard = %ctx.id, segment = segment_id, rows = info.rows, "sealed");
    // The sealed rows and the segment's buffers were just freed: give the pages back.
    tokio::task::spawn_blocking(quiver_common::release_free_memory);
    Ok(())
}

/// A collection's index as coord has it now: the shard may have been opened
/// before a CreateIndex or DropIndex.
pub(crate) struct CurrentIndex {
    pub kind: IndexKind,
    pub metric: Metric,
    /// What segments built with it record (`SegmentInfo::index_version`).
    pub version: u64,
}

pub(crate) fn current_index(ctx: &ShardCtx, meta: &dyn MetaClient) -> CurrentIndex {
    let fresh = meta.collection(ctx.id.collection_id);
    let info = fresh.as_ref().unwrap_or(&ctx.info);
    CurrentIndex {
        kind: info.index,
        metric: info.metric,
        version: info.index_version,
    }
}

/// How long an index build runs before it offers its CPU to a waiting
/// thread (`HnswParams::yield_every`): a search that wakes next to a build
/// waits at most about this long, not a scheduler slice (measured: a
/// background re-index of 100k rows raised search p99 ×2.7 without it;
/// `tests/pymilvus/bench_reindex.py`).
const BUILD_YIELD_EVERY: std::time::Duration = std::time::Duration::from_micros(500);

/// Builds the graph of a segment; `(m, ef_construction, quantized)` from
/// [`IndexKind::graph`] (quantized: over 8-bit codes, HNSW_SQ).
pub(crate) async fn build_index(
    data: &SegmentData,
    metric: Metric,
    (m, ef_construction, quantized): (usize, usize, bool),
    threads: usize,
    base: Option<Vec<u8>>,
) -> Result<Vec<u8>> {
    let vectors = data.vectors.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let _timer = crate::metrics::DURATION
        .with_label_values(&["index_build"])
        .start_timer();
    // A thread of its own at a lower CPU priority (inherited by the build's
    // worker threads): searches and writes preempt index builds.
    std::thread::Builder::new()
        .name("quiver-index-build".into())
        .spawn(move || {
            lower_thread_priority();
            let params = HnswParams {
                m,
                ef_construction,
                yield_every: Some(BUILD_YIELD_EVERY),
                ..HnswParams::default()
            };
            // A merge's graph extends its largest input's, when that one
            // was built alike (the rows it covers come first in `vectors`).
            let base = base
                .and_then(|bytes| HnswIndex::from_bytes(&bytes).ok())
                .filter(|b| {
                    !quantized
                        && !b.is_quantized()
                        && b.metric() == metric
                        && b.params() == (m, ef_construction)
                        && b.len() <= vectors.len()
                });
            let reused = base.as_ref().map_or(0, |b| b.len());
            let rows = crate::metrics::GRAPH_ROWS.with_label_values(&["reused"]);
            rows.inc_by(reused as u64);
            let rows = crate::metrics::GRAPH_ROWS.with_label_values(&["inserted"]);
            rows.inc_by(vectors.len().saturating_sub(reused) as u64);
            let built = match &base {
                Some(b) => HnswIndex::extend(b, vectors.view(), &params, threads, &|_| {}),
                None if quantized => {
                    HnswIndex::build_sq(vectors.view(), metric, &params, threads, &|_| {})
                }
                None => HnswIndex::build(vectors.view(), metric, &params, threads, &|_| {}),
            }
            .map(|index| index.to_bytes())
            .map_err(|e| Error::Internal(format!("HNSW build: {e}")));
            let _ = tx.send(built);
        })
        .map_err(|e| Error::Internal(format!("index build thread: {e}")))?;
    rx.await
        .map_err(|_| Error::Internal("index build thread died".into()))?
}

/// Raises the calling thread's nice value (Linux: per thread, inherited by
/// threads it starts). Best effort: an error only means normal priority.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions; setpriority on our own thread id
    // only changes this thread's scheduling priority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// The final state of each key within the cut: its last upsert becomes a row,
/// its last delete a tombstone. Rows keep the order of their final writes.
pub(crate) fn build_segment_data(
    schema: &CollectionSchema,
    segment_id: u64,
    cut: &[Logged],
    cut_seq: u64,
    cut_ts: Timestamp,
) -> SegmentData {
    // (mutation index, row in batch or None for a delete)
    let mut last: HashMap<&PrimaryKey, (usize, Option<usize>)> = HashMap::new();
    for (mi, l) in cut.iter().enumerate() {
        match &*l.mutation {
            Mutation::Upsert { rows, .. } => {
                for (r, pk) in rows.pks.iter().enumerate() {
                    last.insert(pk, (mi, Some(r)));
                }
            }
            Mutation::Delete { pks, .. } => {
                for pk in pks {
                    last.insert(pk, (mi, None));
                }
            }
        }
    }
    let vectors = Vectors::with_capacity(schema.element_type(), schema.dim(), 0)
        .unwrap_or_else(|| Vectors::f32(schema.dim(), Vec::new()));
    let scalar_names: Vec<String> = schema.column_fields().map(|f| f.name.clone()).collect();
    let mut data = SegmentData::empty(segment_id, schema, vectors, cut_ts, cut_seq);
    for (mi, l) in cut.iter().enumerate() {
        match &*l.mutation {
            Mutation::Upsert { ts, rows } => {
                let cols: Vec<Option<&Column>> = scalar_names
                    .iter()
                    .map(|n| rows.columns.iter().find(|c| &c.name == n))
                    .collect();
                for (r, pk) in rows.pks.iter().enumerate() {
                    if last.get(pk) != Some(&(mi, Some(r))) {
                        continue;
                    }
                    data.pks.push(pk.clone());
                    data.timestamps.push(*ts);
                    data.vectors.push_row(rows.vector(r));
                    for (out, col) in data.columns.iter_mut().zip(&cols) {
                        let v = col
                            .and_then(|c| c.values.get(r).cloned())
                            .unwrap_or(ScalarValue::Null);
                        out.values.push(v);
                    }
                }
            }
            Mutation::Delete { ts, pks } => {
                for pk in pks {
                    if last.get(pk) == Some(&(mi, None)) {
                        data.tombstones.push((pk.clone(), *ts));
                        last.remove(pk);
                    }
                }
            }
        }
    }
    data
}
