//! One shard served by this querynode: loads its sealed segments, follows
//! the shard stream, and resubscribes from scratch when the stream ends
//! (the datanode restarted or the shard moved).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use parking_lot::{Mutex, RwLock};
use quiver_api::{CollectionInfo, SegmentInfo, ShardEvent, ShardFeed, ShardId, Subscription};
use quiver_common::{Error, Result, Timestamp};
use quiver_index::HnswIndex;
use quiver_storage::{ObjectStore, fetch_segment, prune_segment_cache};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::view::{LoadedSegment, ShardView};
use crate::warm::{WarmKeys, warm_file};

/// Most stream events applied under one write lock.
const MAX_RUN: usize = 256;

fn needs_load(e: &ShardEvent) -> bool {
    matches!(e, ShardEvent::Sealed(_) | ShardEvent::Compacted { .. })
}

/// A stream event that needs segments loaded outside the view's lock.
enum Pending {
    Sealed(SegmentInfo),
    Compacted {
        inputs: Vec<u64>,
        output: Option<SegmentInfo>,
    },
}

/// A [`Pending`] event with its segments loaded, ready for the view.
enum Loaded {
    Sealed(Arc<LoadedSegment>),
    Compacted {
        inputs: Vec<u64>,
        output: Option<Arc<LoadedSegment>>,
    },
}

/// Most segment loads in flight for one shard (each holds its segment,
/// and the growing rows it takes over stay in memory until it is in the
/// view).
const MAX_LOADS: usize = 4;

/// The stream's events as [`ShardReplica::follow`] takes them: those a
/// hand-off set aside first, then the subscription's.
struct Stream<'a> {
    events: &'a mut mpsc::UnboundedReceiver<ShardEvent>,
    /// Events a hand-off took off the subscription but did not apply: the
    /// first that needs a load, and all after it.
    held: &'a mut VecDeque<ShardEvent>,
}

impl Stream<'_> {
    /// The next event that has arrived, if any.
    fn next_ready(&mut self) -> Option<ShardEvent> {
        self.held
            .pop_front()
            .or_else(|| self.events.try_recv().ok())
    }

    /// The next event that has arrived if it is a mutation or a tick (and
    /// none is held): what a hand-off applies between its runs.
    fn next_mutation(&mut self) -> Option<ShardEvent> {
        if !self.held.is_empty() {
            return None;
        }
        let e = self.events.try_recv().ok()?;
        if needs_load(&e) {
            self.held.push_back(e);
            return None;
        }
        Some(e)
    }
}

/// Segment rows a hand-off moves under the view's write lock before it
/// lets waiting searches through (about 1 ms of work).
const HAND_OFF_ROWS: usize = 8192;

/// How long a cancelled replica lets the segment loads in flight finish.
const CANCELLED_LOAD_WAIT: Duration = Duration::from_secs(10);

type Loading = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Loaded>> + Send>>;

pub(crate) struct ShardReplica {
    pub id: ShardId,
    pub info: CollectionInfo,
    pub view: RwLock<ShardView>,
    /// The timestamp up to which this replica has applied the stream.
    pub service_ts: watch::Sender<Timestamp>,
    store: Arc<dyn ObjectStore>,
    /// Where `store` keeps its objects, when on this machine: cached
    /// segment files are links to them (`fetch_segment`).
    store_dir: Option<PathBuf>,
    cache_dir: PathBuf,
    segments: Mutex<HashMap<u64, Arc<LoadedSegment>>>,
    /// The indexes the shard's segments use, as last kept in its
    /// `warm.json` (`warm.rs`): a loading segment builds them too.
    used: Mutex<WarmKeys>,
    /// [`crate::built::search_builds`] when `used` was last kept.
    kept_at: AtomicU64,
    pub cancel: CancellationToken,
    /// The task running [`Self::follow`], awaited by a drop before it
    /// deletes the shard's cached files.
    pub follower: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ShardReplica {
    pub fn new(
        info: CollectionInfo,
        shard: u32,
        store: Arc<dyn ObjectStore>,
        store_dir: Option<PathBuf>,
        cache_dir: PathBuf,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            id: ShardId {
                collection_id: info.id,
                shard,
            },
            view: RwLock::new(ShardView::new(info.clone())),
            used: Mutex::new(WarmKeys::read(&warm_file(&cache_dir, info.id, shard))),
            info,
            service_ts: watch::Sender::new(0),
            store,
            store_dir,
            cache_dir,
            segments: Mutex::new(HashMap::new()),
            kept_at: AtomicU64::new(0),
            cancel,
            follower: Mutex::new(None),
        }
    }

    async fn load_segment(&self, info: SegmentInfo) -> Result<Arc<LoadedSegment>> {
        if let Some(s) = self.segments.lock().get(&info.id) {
            return Ok(s.clone());
        }
        let (data, index_bytes) = fetch_segment(
            &self.store,
            self.store_dir.as_deref(),
            self.id.collection_id,
            self.id.shard,
            info.id,
            &self.cache_dir,
        )
        .await?;
        let (index, data) = match index_bytes {
            Some(bytes) => {
                let (index, data) = tokio::task::spawn_blocking(move || {
                    (HnswIndex::open(&bytes, data.vectors()), data)
                })
                .await
                .map_err(|e| Error::Internal(format!("index load task: {e}")))?;
                let index = index
                    .map_err(|e| Error::Corrupt(format!("index of segment {}: {e}", info.id)))?;
                (Some(index), data)
            }
            None => (None, data),
        };
        let seg = Arc::new(LoadedSegment::new(info, data, index));
        // The indexes searches will want, built before the segment serves.
        let like: Vec<Arc<LoadedSegment>> = self.segments.lock().values().cloned().collect();
        let mut used = WarmKeys::of(&like);
        used.extend(&self.used.lock());
        let collection = self.info.clone();
        let warming = seg.clone();
        tokio::task::spawn_blocking(move || {
            warming.warm(&used, &collection.scalar_indexes);
            warming.quantize(&collection);
        })
        .await
        .map_err(|e| Error::Internal(format!("index warm-up task: {e}")))?;
        self.segments.lock().insert(info.id, seg.clone());
        Ok(seg)
    }

    /// [`Self::remember`] when searches (of any shard) have built an index
    /// since it last ran, so that what a search built survives even a
    /// querynode killed before its next seal. Called as requests arrive and
    /// as filtered ones answer: a counter read when nothing was built.
    pub(crate) fn remember_search_builds(&self) {
        if self.kept_at.load(Ordering::Acquire) != crate::built::search_builds() {
            self.remember();
        }
    }

    /// Keeps the indexes the loaded segments have built (by searches
    /// since, too) in the shard's `warm.json`, when they changed. Called
    /// as segments come and go and when the replica stops; a shard with no
    /// segment loaded keeps what it had.
    pub(crate) fn remember(&self) {
        // Builds from here on are kept by the next call.
        self.kept_at
            .store(crate::built::search_builds(), Ordering::Release);
        let segs: Vec<Arc<LoadedSegment>> = self.segments.lock().values().cloned().collect();
        if segs.is_empty() {
            return;
        }
        let now = WarmKeys::of(&segs);
        let mut used = self.used.lock();
        if *used == now {
            return;
        }
        let path = warm_file(&self.cache_dir, self.id.collection_id, self.id.shard);
        match now.write(&path) {
            Ok(()) => *used = now,
            Err(e) => {
                tracing::warn!(shard = %self.id, path = %path.display(), error = %e, "could not keep the shard's index keys")
            }
        }
    }

    /// Builds a complete view from a subscription and installs it.
    pub async fn install(self: &Arc<Self>, sub: &mut Subscription) -> Result<()> {
        let mut sealed = sub.sealed.clone();
        sealed.sort_by_key(|s| s.max_ts);
        let mut loaded = Vec::with_capacity(sealed.len());
        for s in sealed {
            loaded.push(self.load_segment(s).await?);
        }
        let mut view = ShardView::new(self.info.clone());
        for seg in loaded {
            view.add_initial_segment(seg);
        }
        for m in sub.growing.drain(..) {
            view.apply(&m);
        }
        let ts = view.applied_ts;
        let live: std::collections::HashSet<u64> =
            view.sealed.iter().map(|s| s.seg.info.id).collect();
        self.segments.lock().retain(|id, _| live.contains(id));
        self.write_view(move |v| *v = view).await?;
        self.service_ts.send_modify(|t| *t = (*t).max(ts));
        // Cached files of segments compacted away meanwhile.
        let (c, s) = (self.id.collection_id, self.id.shard);
        prune_segment_cache(&self.cache_dir, c, s, |id| live.contains(&id)).await;
        self.remember();
        Ok(())
    }

    /// Loads what a stream event needs, outside the view's lock (searches
    /// and later mutations go on meanwhile).
    async fn load(self: Arc<Self>, pending: Pending) -> Result<Loaded> {
        Ok(match pending {
            Pending::Sealed(info) => Loaded::Sealed(self.load_segment(info).await?),
            Pending::Compacted { inputs, output } => Loaded::Compacted {
                inputs,
                output: match output {
                    Some(info) => Some(self.load_segment(info).await?),
                    None => None,
                },
            },
        })
    }

    /// [`Self::finish`] for a load that succeeded.
    async fn finish_loaded(
        self: &Arc<Self>,
        loaded: Result<Loaded>,
        stream: &mut Stream<'_>,
    ) -> Result<()> {
        self.finish(loaded?, stream).await
    }

    /// Puts a loaded event into the view under its write lock: a sealed
    /// segment takes over its growing rows (in runs, [`Self::hand_off`]); a
    /// compaction's output replaces its inputs, whose cached files are then
    /// deleted. Both keep the versions applied after the event (see
    /// [`ShardView::begin_hand_off`] and [`ShardView::swap`]), so mutations
    /// may run ahead of a load.
    async fn finish(self: &Arc<Self>, loaded: Loaded, stream: &mut Stream<'_>) -> Result<()> {
        match loaded {
            Loaded::Sealed(seg) => self.hand_off(seg, stream).await?,
            Loaded::Compacted { inputs, output } => {
                let ins = inputs.clone();
                if !self.write_view(move |v| v.swap(&ins, output)).await? {
                    return Err(Error::Internal(format!(
                        "compaction of segments {inputs:?} does not match this replica's view"
                    )));
                }
                self.segments.lock().retain(|id, _| !inputs.contains(id));
                let (c, s) = (self.id.collection_id, self.id.shard);
                prune_segment_cache(&self.cache_dir, c, s, |id| !inputs.contains(&id)).await;
            }
        }
        // The handed-off growing rows or the inputs were just freed.
        tokio::task::spawn_blocking(quiver_common::release_free_memory);
        self.remember();
        Ok(())
    }

    /// Hands the growing rows over to a sealed segment (see
    /// [`ShardView::begin_hand_off`]) in runs of [`HAND_OFF_ROWS`] rows, each
    /// under the view's write lock on a blocking thread (about 1 ms), so a
    /// search waits for one run, not for the whole segment (8-11 ms for
    /// 100k rows, ten times that for a million). Between runs the mutations
    /// the stream has delivered meanwhile are applied, so a write is not
    /// held up by a seal's hand-off either; the first event that needs a
    /// load is kept for the stream loop, with everything after it.
    async fn hand_off(
        self: &Arc<Self>,
        seg: Arc<LoadedSegment>,
        stream: &mut Stream<'_>,
    ) -> Result<()> {
        let mut h = self.write_blocking(move |v| v.begin_hand_off(seg)).await?;
        loop {
            let (back, done) = self
                .write_blocking(move |v| {
                    let done = v.hand_off_step(&mut h, HAND_OFF_ROWS);
                    (h, done)
                })
                .await?;
            if done {
                return Ok(());
            }
            h = back;
            let mut run = Vec::new();
            while run.len() < MAX_RUN
                && let Some(e) = stream.next_mutation()
            {
                run.push(e);
            }
            if !run.is_empty() {
                self.apply_run(run).await?;
            }
        }
    }

    /// `f` under the view's write lock, on a blocking thread.
    async fn write_blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut ShardView) -> T + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&mut me.view.write()))
            .await
            .map_err(|e| Error::Internal(format!("view update task: {e}")))
    }

    /// Changes the view under its write lock: at once when no search holds
    /// it (the common case: a mutation becomes visible without a thread
    /// hop), else on a blocking thread, since the lock then waits for the
    /// searches reading it and that must not stall the runtime.
    async fn write_view<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut ShardView) -> T + Send + 'static,
    ) -> Result<T> {
        if let Some(mut view) = self.view.try_write() {
            return Ok(f(&mut view));
        }
        self.write_blocking(f).await
    }

    /// Applies a run of stream events (mutations under one write lock) and
    /// publishes how far it got; returns the event that ends the run when
    /// it needs segments loaded first.
    async fn apply_run(self: &Arc<Self>, run: Vec<ShardEvent>) -> Result<Option<Pending>> {
        let mut ts = 0;
        let mut mutations = Vec::new();
        let mut pending = None;
        for event in run {
            match event {
                ShardEvent::Mutation(m) => {
                    ts = ts.max(m.ts());
                    mutations.push(m);
                }
                ShardEvent::Tick(t) => ts = ts.max(t),
                ShardEvent::Sealed(info) => pending = Some(Pending::Sealed(info)),
                ShardEvent::Compacted { inputs, output } => {
                    pending = Some(Pending::Compacted { inputs, output })
                }
            }
        }
        if !mutations.is_empty() {
            let applied: Vec<_> = mutations.iter().map(|m| m.ts()).collect();
            self.write_view(move |view| {
                for m in &mutations {
                    view.apply(m);
                }
            })
            .await?;
            for ts in applied {
                crate::metrics::VISIBLE.observe(crate::metrics::age_seconds(ts));
            }
        }
        self.service_ts.send_modify(|t| *t = (*t).max(ts));
        Ok(pending)
    }

    /// Follows the stream until cancelled; resubscribes when it ends.
    ///
    /// An event that needs segments loaded (a seal, a compaction) is loaded
    /// while later mutations keep being applied, so a write is visible
    /// without waiting for a segment load; loaded events go into the view
    /// one at a time, in stream order. Up to [`MAX_LOADS`] loads are in
    /// flight at once (a graph's hand-off often arrives while the seal
    /// before it still loads): only past that does the stream wait for the
    /// oldest.
    pub async fn follow(self: Arc<Self>, feed: Arc<dyn ShardFeed>, mut sub: Subscription) {
        let mut backoff = Duration::from_millis(20);
        loop {
            let mut loading: FuturesOrdered<Loading> = FuturesOrdered::new();
            let mut held = VecDeque::new();
            loop {
                let event = if let Some(e) = held.pop_front() {
                    Some(e)
                } else {
                    tokio::select! {
                        e = sub.events.recv() => e,
                        Some(done) = loading.next(), if !loading.is_empty() => {
                            let mut stream = Stream { events: &mut sub.events, held: &mut held };
                            match self.finish_loaded(done, &mut stream).await {
                                Ok(()) => continue,
                                Err(e) => tracing::warn!(shard = %self.id, error = %e, "segment load or hand-off failed; resubscribing"),
                            }
                            break;
                        }
                        () = self.cancel.cancelled() => {
                            // Loads in flight finish writing their cached files
                            // (a drop deletes them after this task ends), within
                            // a bound: a store that hangs does not hold the drop.
                            let _ = tokio::time::timeout(CANCELLED_LOAD_WAIT, async {
                                while loading.next().await.is_some() {}
                            })
                            .await;
                            self.remember();
                            return;
                        }
                    }
                };
                let Some(event) = event else { break };
                let mut stream = Stream {
                    events: &mut sub.events,
                    held: &mut held,
                };
                // What has arrived meanwhile is applied in one go, up to the
                // first event that needs segments loaded.
                let mut run = vec![event];
                while run.len() < MAX_RUN
                    && !needs_load(&run[run.len() - 1])
                    && let Some(e) = stream.next_ready()
                {
                    run.push(e);
                }
                let pending = match self.apply_run(run).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(shard = %self.id, error = %e, "applying the stream failed; resubscribing");
                        break;
                    }
                };
                let Some(pending) = pending else { continue };
                if loading.len() >= MAX_LOADS
                    && let Some(oldest) = loading.next().await
                    && let Err(e) = self.finish_loaded(oldest, &mut stream).await
                {
                    tracing::warn!(shard = %self.id, error = %e, "segment load or hand-off failed; resubscribing");
                    break;
                }
                loading.push_back(Box::pin(self.clone().load(pending)));
            }
            // The stream ended: start again from a fresh subscription.
            loop {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = self.cancel.cancelled() => {
                        self.remember();
                        return;
                    }
                }
                let attempt = match feed.subscribe(self.id).await {
                    Ok(mut s) => self.install(&mut s).await.map(|()| s),
                    Err(e) => Err(e),
                };
                match attempt {
                    Ok(s) => {
                        tracing::info!(shard = %self.id, "resubscribed to shard stream");
                        sub = s;
                        backoff = Duration::from_millis(20);
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(shard = %self.id, error = %e, "resubscribe failed");
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
        }
    }

    /// Waits until the replica has applied everything up to `ts`. A replica
    /// released meanwhile (moved to another querynode, its collection
    /// released) stops following the stream: the wait ends at once with
    /// UNAVAILABLE, so the caller asks another replica instead of waiting
    /// out its deadline.
    pub async fn wait_for(&self, ts: Timestamp, max_wait: Duration) -> Result<()> {
        let mut rx = self.service_ts.subscribe();
        let reached = tokio::time::timeout(max_wait, async {
            tokio::select! {
                r = rx.wait_for(|t| *t >= ts) => r.is_ok(),
                () = self.cancel.cancelled() => false,
            }
        })
        .await;
        match reached {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Unavailable(format!(
                "shard {} was released on this querynode (moved or released); ask another replica",
                self.id
            ))),
            Err(_) => Err(Error::DeadlineExceeded(format!(
                "shard {} did not reach guarantee timestamp {ts} within {} ms (at {})",
                self.id,
                max_wait.as_millis(),
                *self.service_ts.borrow()
            ))),
        }
    }
}
