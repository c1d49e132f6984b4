//! Compaction and garbage collection of one shard, run by its owner.
//!
//! The compactor keeps a [`Directory`] of every key version in the shard's
//! sealed segments, plans by it ([`plan::plan`]: rewrite a segment whose dead
//! share passed `dead_ratio`, merge runs of small neighbours), writes the
//! output (live rows only, its own HNSW built at low priority), swaps inputs
//! for output in coord with one command fenced by the owner epoch, and only
//! then swaps them in the shard's sealed list and tells subscribers
//! (`ShardEvent::Compacted`), under the same lock as every other event.
//! Querynodes switch as for a seal hand-off. Garbage collection deletes the
//! segment objects nothing references once they stayed unreferenced for the
//! grace period. A crash at any point leaves the old or the new catalog and,
//! at worst, an unreferenced object the next pass removes.

mod graphs;
pub(crate) mod plan;

pub(crate) use graphs::run_graph_builder;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use quiver_api::{MetaClient, SegmentInfo, ShardEvent};
use quiver_common::{
    Error, Result, ScalarValue, SegmentId, StoredColumn, Timestamp, ValueRef, Vectors,
};
use quiver_storage::{
    MappedSegment, ObjectPath, ObjectStore, SegmentData, layout, put_segment, read_segment_keys,
};
use tokio::sync::Semaphore;

use crate::seal::{build_index, current_index};
use crate::shard::ShardCtx;
pub use plan::CompactionConfig;
use plan::{Directory, Reason, SegStats, Version};

/// The compactor task of one shard.
pub(crate) async fn run_compactor(
    ctx: Arc<ShardCtx>,
    store: Arc<dyn ObjectStore>,
    meta: Arc<dyn MetaClient>,
    limiter: Arc<Semaphore>,
) {
    let cfg = ctx.config.compaction.clone();
    let mut c = Compactor::new(ctx, store, meta);
    let grace = cfg.gc_grace();
    let mut last_plan = Instant::now() - Duration::from_millis(cfg.interval_ms);
    loop {
        // Wake for new seals, for retired objects coming due, and every second.
        let nap = c
            .retired
            .first()
            .map_or(Duration::from_secs(1), |(at, _)| {
                (*at + grace).saturating_duration_since(Instant::now())
            })
            .min(Duration::from_secs(1));
        tokio::select! {
            () = c.ctx.compact_wakeup.notified() => {}
            () = tokio::time::sleep(nap) => {}
            () = c.ctx.cancel.cancelled() => return,
        }
        let jobs = c
            .meta
            .pending_compactions(c.ctx.id)
            .await
            .unwrap_or_default();
        let due = last_plan.elapsed() >= Duration::from_millis(cfg.interval_ms);
        let changed = c.refresh().await;
        match changed {
            Ok(changed)
                if changed
                    || due
                    || !jobs.is_empty()
                    || c.stale_index().is_some()
                    || !c.expired().is_empty() =>
            {
                last_plan = Instant::now();
                let _permit = tokio::select! {
                    p = limiter.clone().acquire_owned() => p,
                    () = c.ctx.cancel.cancelled() => return,
                };
                if let Err(e) = c.compact_all(&cfg, &jobs).await {
                    tracing::warn!(shard = %c.ctx.id, error = %e, "compaction failed; will retry");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                        () = c.ctx.cancel.cancelled() => return,
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(shard = %c.ctx.id, error = %e, "reading sealed segments failed")
            }
        }
        c.delete_retired(grace).await;
        // A full sweep (a listing) at start, after compactions, and every
        // `gc_sweep_ms`: what a crash left behind, and the bytes figure.
        let sweep_due = c.last_sweep.is_none_or(|t| {
            t.elapsed() >= Duration::from_millis(cfg.gc_sweep_ms)
                || (c.sweep_soon && t.elapsed() >= grace)
        });
        if sweep_due {
            c.last_sweep = Some(Instant::now());
            c.sweep_soon = false;
            if let Err(e) = c.sweep(grace).await {
                tracing::warn!(shard = %c.ctx.id, error = %e, "garbage collection failed");
            }
        }
    }
}

struct Compactor {
    ctx: Arc<ShardCtx>,
    store: Arc<dyn ObjectStore>,
    meta: Arc<dyn MetaClient>,
    dir: Directory,
    /// Unreferenced objects, with when this owner first saw them so.
    unreferenced: HashMap<ObjectPath, Instant>,
    last_sweep: Option<Instant>,
    /// A compaction ran since the last sweep.
    sweep_soon: bool,
    /// Segments this owner swapped out, with when: deleted once `gc_grace_ms`
    /// passed (no listing needed).
    retired: Vec<(Instant, Vec<SegmentId>)>,
    /// Manual compactions under way, with the sealed segments there were
    /// when this owner first saw each.
    jobs: HashMap<u64, Vec<SegmentId>>,
}

impl Compactor {
    fn new(ctx: Arc<ShardCtx>, store: Arc<dyn ObjectStore>, meta: Arc<dyn MetaClient>) -> Self {
        Compactor {
            ctx,
            store,
            meta,
            dir: Directory::default(),
            unreferenced: HashMap::new(),
            last_sweep: None,
            sweep_soon: false,
            retired: Vec::new(),
            jobs: HashMap::new(),
        }
    }

    /// Brings the directory up to the shard's sealed list; true if it changed.
    async fn refresh(&mut self) -> Result<bool> {
        let sealed = self.ctx.state.lock().sealed.clone();
        let gone: Vec<SegmentId> = self
            .dir
            .segment_ids()
            .into_iter()
            .filter(|id| !sealed.iter().any(|s| s.id == *id))
            .collect();
        self.dir.remove(&gone);
        let mut changed = !gone.is_empty();
        for s in sealed {
            if !self.dir.knows(s.id) {
                // Only its keys: a range read, never its vectors.
                let (c, sh) = (self.ctx.id.collection_id, self.ctx.id.shard);
                let keys = read_segment_keys(&self.store, c, sh, s.id).await?;
                self.dir.add(
                    s.id,
                    s.max_ts,
                    keys.pks.iter().zip(keys.timestamps.iter().copied()),
                    keys.tombstones.iter().map(|(p, t)| (p, *t)),
                    (keys.dim * 4) as u64,
                );
                changed = true;
            }
        }
        Ok(changed)
    }

    async fn read(&self, id: SegmentId) -> Result<MappedSegment> {
        let p = layout::segment_path(self.ctx.id.collection_id, self.ctx.id.shard, id);
        let bytes = self.get(&p).await?;
        MappedSegment::from_bytes(bytes).map_err(|e| Error::Corrupt(e.to_string()))
    }

    /// The graph object of segment `id`; None (a full build then) when it
    /// cannot be read.
    async fn read_index(&self, id: SegmentId) -> Option<Vec<u8>> {
        let p = layout::index_path(self.ctx.id.collection_id, self.ctx.id.shard, id);
        self.get(&p)
            .await
            .inspect_err(|e| tracing::warn!(segment = id, error = %e, "cannot read a graph to extend; building anew"))
            .ok()
    }

    async fn get(&self, p: &ObjectPath) -> Result<Vec<u8>> {
        let unavailable = |e: object_store::Error| Error::Unavailable(format!("reading {p}: {e}"));
        let object = self.store.get(p).await.map_err(unavailable)?;
        Ok(object.bytes().await.map_err(unavailable)?.to_vec())
    }

    /// The oldest sealed segment built under another index than the
    /// collection's graph index (CreateIndex after DropIndex, or on a
    /// collection created without one): rewritten with the current index.
    /// Segments sealed before their graph ([`INDEX_PENDING`]) are the graph
    /// builder's (`graphs.rs`).
    fn stale_index(&self) -> Option<SegmentId> {
        let now = current_index(&self.ctx, self.meta.as_ref());
        // Only graph indexes are built per segment.
        now.kind.graph()?;
        let st = self.ctx.state.lock();
        (st.sealed.iter())
            .find(|s| s.index_version != now.version && !s.graph_pending())
            .map(|s| s.id)
    }

    /// The sealed segments still waiting for their graphs.
    fn graph_pending(&self) -> HashSet<SegmentId> {
        let st = self.ctx.state.lock();
        (st.sealed.iter())
            .filter(|s| s.graph_pending())
            .map(|s| s.id)
            .collect()
    }

    /// Rows written before this timestamp expired (the collection's TTL,
    /// less `expiry_margin_ms` for clocks that disagree); 0 without a TTL.
    fn expiry_cutoff(&self) -> Timestamp {
        let fresh = self.meta.collection(self.ctx.id.collection_id);
        let info = fresh.as_ref().unwrap_or(&self.ctx.info);
        match info.schema.ttl_ms() {
            Some(ttl) => {
                let now = quiver_common::ts_physical_ms(quiver_common::wall_ts());
                let margin = self.ctx.config.compaction.expiry_margin_ms;
                let before = now.saturating_sub(ttl + margin);
                quiver_common::compose_ts(before, 0)
            }
            None => 0,
        }
    }

    /// The oldest sealed segments whose every row expired: compacted away.
    fn expired(&self) -> Vec<SegmentId> {
        let cutoff = self.expiry_cutoff();
        if cutoff == 0 {
            return Vec::new();
        }
        let mut sealed = self.ctx.state.lock().sealed.clone();
        sealed.sort_by_key(|s| s.max_ts);
        sealed
            .iter()
            .take_while(|s| s.max_ts < cutoff)
            .map(|s| s.id)
            .collect()
    }

    /// Re-indexes what [`Compactor::stale_index`] finds, then runs plans
    /// until none is left; then finishes the manual `jobs`.
    async fn compact_all(&mut self, cfg: &CompactionConfig, jobs: &[u64]) -> Result<()> {
        let manual = !jobs.is_empty();
        self.jobs.retain(|job, _| jobs.contains(job));
        for &job in jobs {
            if !self.jobs.contains_key(&job) {
                self.jobs.insert(job, self.dir.segment_ids());
            }
        }
        while let Some(id) = self.stale_index() {
            if self.ctx.cancel.is_cancelled() {
                return Ok(());
            }
            // The directory knows what was sealed during the last build.
            self.refresh().await?;
            self.compact(&[id], Reason::Reindex, None).await?;
        }
        let expired = self.expired();
        if !expired.is_empty() && !self.ctx.cancel.is_cancelled() {
            self.compact(&expired, Reason::Expired, None).await?;
        }
        let mut pending: HashSet<SegmentId>;
        loop {
            // The graph builder swaps segments meanwhile (and seals add
            // some): plan on the shard's segments as they are now. A plan
            // whose inputs changed under it is planned again from here
            // (after a yield: this loop never spins a runtime thread).
            tokio::task::yield_now().await;
            self.refresh().await?;
            let mut stats = self.dir.stats();
            self.publish_stats(&stats, cfg);
            if !cfg.enabled && !manual {
                return Ok(());
            }
            // A segment waiting for its graph is not planned until it has
            // it (the builder's swap wakes the compactor again).
            pending = self.graph_pending();
            for s in &mut stats {
                s.graph_pending = pending.contains(&s.id);
            }
            let Some((inputs, reason)) = plan::plan(&stats, cfg, manual) else {
                break;
            };
            if self.ctx.cancel.is_cancelled() {
                return Ok(());
            }
            self.compact(&inputs, reason, jobs.first().copied()).await?;
        }
        // A manual compaction covers the segments there were when this
        // owner first saw it: it finishes once none of them waited for its
        // graph when the last plan was made (so each had its turn). Later
        // seals do not hold it up.
        let finished: Vec<u64> = (jobs.iter().copied())
            .filter(|job| {
                (self.jobs.get(job)).is_none_or(|c| !c.iter().any(|id| pending.contains(id)))
            })
            .collect();
        let epoch = self.ctx.wal.epoch();
        for job in finished {
            self.meta.finish_compaction(self.ctx.id, epoch, job).await?;
            self.jobs.remove(&job);
        }
        Ok(())
    }

    async fn compact(&mut self, ids: &[SegmentId], reason: Reason, job: Option<u64>) -> Result<()> {
        let started = Instant::now();
        let _timer = crate::metrics::DURATION
            .with_label_values(&["compaction"])
            .start_timer();
        let mut inputs: Vec<SegmentInfo> = {
            let st = self.ctx.state.lock();
            ids.iter()
                .filter_map(|id| st.sealed.iter().find(|s| s.id == *id).copied())
                .collect()
        };
        if inputs.len() != ids.len() {
            return Ok(()); // changed meanwhile; plan again
        }
        let now = current_index(&self.ctx, self.meta.as_ref());
        // A merge starts from the graph of its largest input that has one
        // under the current index: that input's rows go first, and if all
        // of them stay, only the other inputs' rows are inserted.
        let donor = (reason != Reason::Index)
            .then(|| graph_donor(&inputs, &now))
            .flatten();
        if let Some(i) = donor {
            let first = inputs.remove(i);
            inputs.insert(0, first);
        }
        let mut loaded = Vec::with_capacity(inputs.len());
        for s in &inputs {
            loaded.push(self.read(s.id).await?);
        }
        let output_id = self.meta.allocate_ids(1).await?;
        let (data, kept_first) = if reason == Reason::Index {
            // Only the graph is new: every row and tombstone stays.
            merge(&self.ctx, |_, _, _| true, &inputs, &loaded, output_id, 0)
        } else {
            let dir = &self.dir;
            let keep = |pk: &_, v, leaving: &_| dir.keep(pk, v, leaving);
            let expired_before = self.expiry_cutoff();
            merge(&self.ctx, keep, &inputs, &loaded, output_id, expired_before)
        };
        drop(loaded);
        let (c, s) = (self.ctx.id.collection_id, self.ctx.id.shard);
        let output = if data.pks.is_empty() && data.tombstones.is_empty() {
            None
        } else {
            let index = match now.kind.graph() {
                Some(graph) if data.pks.len() >= self.ctx.config.min_index_rows => {
                    // A seal's deferred build gets the seal's threads: the
                    // ingest's pace depends on it. Rewrites stay gentle.
                    let threads = match reason {
                        Reason::Index => self.ctx.config.index_threads,
                        _ => self.ctx.config.compaction.index_threads,
                    };
                    let base = match donor {
                        Some(_) if kept_first as u64 == inputs[0].rows => {
                            self.read_index(inputs[0].id).await
                        }
                        _ => None,
                    };
                    Some(build_index(&data, now.metric, graph, threads, base).await?)
                }
                _ => None,
            };
            let info = SegmentInfo {
                id: output_id,
                rows: data.pks.len() as u64,
                max_ts: data.max_ts,
                wal_seq: data.wal_seq,
                has_index: index.is_some(),
                index_version: now.version,
            };
            self.ctx.in_flight.lock().insert(output_id);
            let put = put_segment(&self.store, c, s, &data, index).await;
            if let Err(e) = put {
                self.ctx.in_flight.lock().remove(&output_id);
                return Err(e.into());
            }
            Some(info)
        };
        let swapped = self
            .meta
            .compact_segments(self.ctx.id, self.ctx.wal.epoch(), ids.to_vec(), output, job)
            .await;
        self.ctx.in_flight.lock().remove(&output_id);
        swapped?;
        {
            let mut st = self.ctx.state.lock();
            st.sealed.retain(|x| !ids.contains(&x.id));
            st.sealed.extend(output);
            st.sealed.sort_by_key(|x| x.max_ts);
            st.publish(ShardEvent::Compacted {
                inputs: ids.to_vec(),
                output,
            });
        }
        // Writers waiting for graphs to catch up check again.
        self.ctx.sealed.notify_waiters();
        self.retired.push((Instant::now(), ids.to_vec()));
        self.sweep_soon = true;
        if reason == Reason::Index {
            // The graph builder keeps no directory: the compactor's refresh
            // picks the output up.
            self.ctx.compact_wakeup.notify_one();
        } else {
            self.dir.remove(ids);
            if let Some(info) = &output {
                self.dir.add(
                    info.id,
                    info.max_ts,
                    data.pks.iter().zip(data.timestamps.iter().copied()),
                    data.tombstones.iter().map(|(p, t)| (p, *t)),
                    row_bytes(&data.vectors),
                );
            }
        }
        let mut stats = self.ctx.compaction.lock();
        stats.compactions += 1;
        stats.last_run_ms = now_ms();
        drop(stats);
        tracing::info!(
            shard = %self.ctx.id, ?reason, inputs = ?ids, output = ?output.map(|o| o.id),
            rows_in = inputs.iter().map(|i| i.rows).sum::<u64>(), rows_out = data.pks.len(),
            ms = started.elapsed().as_millis() as u64, "compacted"
        );
        tokio::task::spawn_blocking(quiver_common::release_free_memory);
        Ok(())
    }

    fn publish_stats(&self, stats: &[SegStats], cfg: &CompactionConfig) {
        let backlog = backlog(stats, cfg);
        let mut out = self.ctx.compaction.lock();
        out.segments = stats.len() as u64;
        out.rows = stats.iter().map(|s| s.rows).sum();
        out.live_rows = stats.iter().map(|s| s.live_rows).sum();
        out.dead = stats.iter().map(|s| s.dead()).sum();
        out.tombstones = stats.iter().map(|s| s.tombstones).sum();
        out.backlog = backlog;
    }

    /// Deletes the objects of segments this owner swapped out at least
    /// `grace` ago (ids are never reused: nothing can reference them again).
    async fn delete_retired(&mut self, grace: Duration) {
        let (c, s) = (self.ctx.id.collection_id, self.ctx.id.shard);
        let mut deleted = 0u64;
        while let Some((at, _)) = self.retired.first() {
            if at.elapsed() < grace {
                break;
            }
            let (at, ids) = self.retired.remove(0);
            let mut failed = Vec::new();
            for id in ids {
                for p in [layout::segment_path(c, s, id), layout::index_path(c, s, id)] {
                    match self.store.delete(&p).await {
                        Ok(()) => deleted += 1,
                        Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => {
                            tracing::warn!(object = %p, error = %e, "deleting garbage failed");
                            failed.push(id);
                        }
                    }
                }
            }
            if !failed.is_empty() {
                failed.dedup();
                // Retried on a later pass (a sweep also finds them).
                self.retired.push((at, failed));
                break;
            }
        }
        if deleted > 0 {
            self.ctx.compaction.lock().collected += deleted;
            tracing::debug!(shard = %self.ctx.id, objects = deleted, "retired segments deleted");
        }
    }

    /// Lists the shard's segment objects and deletes those that no catalog
    /// entry references and that stayed so for `grace` (first seen by this
    /// owner); also counts the bytes of the referenced ones. Objects being
    /// written (a seal or compaction in flight) are never candidates.
    async fn sweep(&mut self, grace: Duration) -> Result<()> {
        let id = self.ctx.id;
        let prefix = layout::segments_prefix(id.collection_id, id.shard);
        let objects: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| Error::Unavailable(format!("listing {prefix}: {e}")))?;
        // Listed, then the in-flight ids, then the catalog (a linearizable
        // read). A listed object was put after its id went in flight; if it
        // left the in-flight set before the snapshot, its registration had
        // committed, and the catalog read after the snapshot holds it. So a
        // candidate is never a segment being registered, grace or not.
        let in_flight = self.ctx.in_flight.lock().clone();
        let (catalog, _) = self.meta.segments(id).await?;
        // Only the current owner sweeps: a newer owner's segment being
        // registered is in its in-flight set, not ours. Read after the
        // listing, so no newer owner existed when the listing was taken.
        let current = self.meta.shard_epoch(id).await?;
        if current != self.ctx.wal.epoch() {
            return Err(Error::Fenced(format!(
                "shard {id}: epoch {} is not the current owner epoch {current}; not sweeping",
                self.ctx.wal.epoch()
            )));
        }
        let local: Vec<SegmentId> = self.ctx.state.lock().sealed.iter().map(|s| s.id).collect();
        let referenced = |seg: SegmentId| {
            catalog.iter().any(|s| s.id == seg) || local.contains(&seg) || in_flight.contains(&seg)
        };
        let now = Instant::now();
        let mut bytes = 0u64;
        let mut seen = HashMap::new();
        let mut deleted = 0u64;
        for o in objects {
            let Some(seg) = layout::parse_segment_id(&o.location)
                .or_else(|| layout::parse_index_id(&o.location))
            else {
                continue;
            };
            if referenced(seg) {
                bytes += o.size;
                continue;
            }
            let first = self.unreferenced.get(&o.location).copied().unwrap_or(now);
            if now.duration_since(first) >= grace {
                match self.store.delete(&o.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                    Err(e) => {
                        tracing::warn!(object = %o.location, error = %e, "deleting garbage failed");
                        seen.insert(o.location, first);
                    }
                }
            } else {
                bytes += o.size;
                seen.insert(o.location, first);
            }
        }
        // Only objects still unreferenced keep their first-seen time.
        self.unreferenced = seen;
        let mut stats = self.ctx.compaction.lock();
        stats.bytes = bytes;
        stats.collected += deleted;
        if deleted > 0 {
            tracing::info!(shard = %id, objects = deleted, "garbage collected");
        }
        Ok(())
    }
}

fn row_bytes(v: &Vectors) -> u64 {
    (v.byte_size() / v.len().max(1)) as u64
}

/// Compactions the planner would run now (each plan's inputs removed before
/// planning the next), at most 64.
fn backlog(stats: &[SegStats], cfg: &CompactionConfig) -> u64 {
    let mut left = stats.to_vec();
    let mut n = 0;
    while n < 64 {
        let Some((ids, _)) = plan::plan(&left, cfg, false) else {
            break;
        };
        left.retain(|s| !ids.contains(&s.id));
        n += 1;
    }
    n
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Which of `inputs` a merge's graph can start from: the one with the most
/// rows whose graph was built under the current index (not a quantized
/// one: its codes' ranges were learnt from its own rows).
fn graph_donor(inputs: &[SegmentInfo], now: &crate::seal::CurrentIndex) -> Option<usize> {
    let (_, _, quantized) = now.kind.graph()?;
    if quantized || inputs.len() < 2 {
        return None;
    }
    (inputs.iter().enumerate())
        .filter(|(_, s)| s.has_index && !s.graph_pending() && s.index_version == now.version)
        .max_by_key(|(i, s)| (s.rows, std::cmp::Reverse(*i)))
        .map(|(i, _)| i)
}

/// The output of compacting `inputs` (`loaded` alike; rows in input
/// order): every row that is its key's newest version, and every tombstone
/// that still hides an older row outside the inputs; original timestamps
/// kept. Rows and tombstones written before `expired_before` (0: none) are
/// left out: the collection's TTL passed for them (reads hide them
/// already). Also returns how many rows of the first input stayed.
fn merge(
    ctx: &ShardCtx,
    keep: impl Fn(&quiver_common::PrimaryKey, Version, &[SegmentId]) -> bool,
    inputs: &[SegmentInfo],
    loaded: &[MappedSegment],
    output_id: SegmentId,
    expired_before: Timestamp,
) -> (SegmentData, usize) {
    let schema = &ctx.info.schema;
    let leaving: Vec<SegmentId> = inputs.iter().map(|s| s.id).collect();
    let scalar_names: Vec<String> = schema.column_fields().map(|f| f.name.clone()).collect();
    let vectors = Vectors::with_capacity(schema.element_type(), schema.dim(), 0)
        .unwrap_or_else(|| Vectors::f32(schema.dim(), Vec::new()));
    let mut data = SegmentData::empty(
        output_id,
        schema,
        vectors,
        inputs.iter().map(|s| s.max_ts).max().unwrap_or(0),
        inputs.iter().map(|s| s.wal_seq).max().unwrap_or(0),
    );
    let mut kept_first = 0;
    for (n, (info, seg)) in inputs.iter().zip(loaded).enumerate() {
        let cols: Vec<Option<&StoredColumn>> = scalar_names
            .iter()
            .map(|n| seg.columns().iter().find(|c| &c.name == n))
            .collect();
        for row in 0..seg.len() {
            let (pk, ts) = (seg.pk(row), seg.timestamp(row));
            if ts < expired_before {
                continue;
            }
            let v = Version {
                seg: info.id,
                ts,
                tombstone: false,
            };
            if !keep(pk, v, &leaving) {
                continue;
            }
            if n == 0 {
                kept_first += 1;
            }
            data.pks.push(pk.clone());
            data.timestamps.push(ts);
            data.vectors.push_row(seg.vector(row));
            for (out, col) in data.columns.iter_mut().zip(&cols) {
                let value =
                    (col.and_then(|c| c.get(row))).map_or(ScalarValue::Null, ValueRef::to_scalar);
                out.values.push(value);
            }
        }
        for (pk, ts) in seg.tombstones() {
            if *ts < expired_before {
                continue;
            }
            let v = Version {
                seg: info.id,
                ts: *ts,
                tombstone: true,
            };
            if keep(pk, v, &leaving) {
                data.tombstones.push((pk.clone(), *ts));
            }
        }
    }
    (data, kept_first)
}
