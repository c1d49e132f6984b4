//! The client load of a chaos scenario: sequential Strong searches without
//! pause, searches at the collection's default level every 20 ms with a
//! 100 ms client deadline (a recommendation service's budget), and inserts of
//! 10 rows every 20 ms, through the proxy, counting every failure and
//! remembering every acknowledged row.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use quiver_client::{ReadLevel, Rows, SearchParams};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const DIM: usize = 16;
const INSERT_EVERY: Duration = Duration::from_millis(20);
const ROWS_PER_INSERT: i64 = 10;
/// Errors kept per load (the first ones; the counts are complete).
const KEEP_ERRORS: usize = 10;
/// The client deadline of the default-level searches.
pub const DEADLINE: Duration = Duration::from_millis(100);
const DEADLINE_SEARCH_EVERY: Duration = Duration::from_millis(20);

/// A deterministic vector for a key.
pub fn vector(id: i64) -> Vec<f32> {
    (0..DIM)
        .map(|d| ((id as f32) * 0.37 + d as f32 * 1.3).sin())
        .collect()
}

/// What a load saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadStats {
    pub searches_ok: u64,
    pub searches_failed: u64,
    /// Slowest successful search (a retried one is slow, not failed).
    pub max_search_ms: u64,
    /// Longest time between two successful searches finishing (the search
    /// outage a client saw: includes searches that failed in between).
    pub longest_search_gap_ms: u64,
    pub inserts_ok: u64,
    pub inserts_failed: u64,
    /// Longest time from an insert failing until one succeeded again.
    pub longest_insert_outage_ms: u64,
    pub errors: Vec<String>,
    /// Calls sent again to the next proxy because theirs was gone.
    pub proxy_failovers: u64,
    /// Searches at the collection's default level with a 100 ms deadline.
    pub deadline: DeadlineStats,
    #[serde(skip)]
    pub acked: Vec<i64>,
}

/// Searches at the collection's default level under a client deadline: a
/// search that errs or misses the deadline failed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeadlineStats {
    pub ok: u64,
    pub failed: u64,
    pub p99_ms: f64,
    pub max_ms: f64,
    #[serde(skip)]
    latencies_ms: Vec<f64>,
}

impl DeadlineStats {
    fn record(&mut self, ms: f64, ok: bool) {
        if ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        self.latencies_ms.push(ms);
        self.max_ms = self.max_ms.max(ms);
    }

    fn finish(&mut self) {
        let v = &mut self.latencies_ms;
        v.sort_by(f64::total_cmp);
        if !v.is_empty() {
            let i = ((v.len() as f64 * 0.99).ceil() as usize).clamp(1, v.len()) - 1;
            self.p99_ms = (v[i] * 10.0).round() / 10.0;
        }
        self.max_ms = (self.max_ms * 10.0).round() / 10.0;
    }
}

/// The proxies a load's client knows: calls go to one; a call that fails
/// below the Milvus protocol because the proxy is gone — connection refused
/// (UNAVAILABLE), the connection closed by the proxy's graceful shutdown
/// before the request was sent (hyper's "operation was canceled",
/// CANCELLED), or the connection cut under a request the proxy did not
/// answer ("h2 protocol error") — goes again to the next one. The load's
/// inserts carry their primary keys, so one sent twice lands as the same
/// rows. A proxy's answer, even a failed one, is never retried.
#[derive(Clone)]
struct Proxies {
    clients: Arc<Vec<quiver_client::Client>>,
    current: Arc<std::sync::atomic::AtomicUsize>,
    failovers: Arc<std::sync::atomic::AtomicU64>,
}

impl Proxies {
    async fn connect(proxies: &[String]) -> anyhow::Result<Proxies> {
        let mut clients = Vec::new();
        for p in proxies {
            clients.push(super::connect(p).await?);
        }
        anyhow::ensure!(!clients.is_empty(), "no proxy to load");
        Ok(Proxies {
            clients: Arc::new(clients),
            current: Arc::default(),
            failovers: Arc::default(),
        })
    }

    async fn call<T, F, Fut>(&self, f: F) -> quiver_client::Result<T>
    where
        F: Fn(quiver_client::Client) -> Fut,
        Fut: std::future::Future<Output = quiver_client::Result<T>>,
    {
        use std::sync::atomic::Ordering;
        let n = self.clients.len();
        let first = self.current.load(Ordering::Relaxed) % n;
        let mut i = first;
        loop {
            let r = f(self.clients[i].clone()).await;
            let gone = matches!(&r, Err(quiver_client::Error::Connect { .. }))
                || matches!(&r, Err(quiver_client::Error::Grpc { status, .. })
                    if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Cancelled)
                        || status.message().contains("h2 protocol error"));
            let next = (i + 1) % n;
            if !gone || next == first {
                return r;
            }
            self.failovers.fetch_add(1, Ordering::Relaxed);
            self.current.store(next, Ordering::Relaxed);
            i = next;
        }
    }
}

pub struct Load {
    proxies: Proxies,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    stats: Arc<Mutex<LoadStats>>,
}

impl Load {
    /// Starts searching and inserting into `collection` through `proxies`
    /// (the next one when one is gone, see `Proxies`); new keys start at
    /// `first_id`.
    pub async fn start(
        proxies: &[String],
        collection: &str,
        first_id: i64,
    ) -> anyhow::Result<Load> {
        let client = Proxies::connect(proxies).await?;
        let stats = Arc::new(Mutex::new(LoadStats::default()));
        let stop = CancellationToken::new();
        let searcher = {
            let (client, stats, stop, name) = (
                client.clone(),
                stats.clone(),
                stop.clone(),
                collection.to_string(),
            );
            tokio::spawn(async move {
                let params = SearchParams::new(10).with_ef(32);
                let mut i = 0i64;
                let mut last_ok = Instant::now();
                while !stop.is_cancelled() {
                    i += 1;
                    let started = Instant::now();
                    let v = vector(i);
                    let r = client
                        .call(|c| {
                            let (name, v, params) = (&name, &v, &params);
                            async move { c.search(name, v, DIM, params).await }
                        })
                        .await;
                    let ms = started.elapsed().as_millis() as u64;
                    let mut s = stats.lock();
                    match r {
                        Ok(_) => {
                            s.searches_ok += 1;
                            s.max_search_ms = s.max_search_ms.max(ms);
                            let gap = last_ok.elapsed().as_millis() as u64;
                            s.longest_search_gap_ms = s.longest_search_gap_ms.max(gap);
                            last_ok = Instant::now();
                        }
                        Err(e) => {
                            s.searches_failed += 1;
                            if s.errors.len() < KEEP_ERRORS {
                                s.errors.push(format!("search after {ms} ms: {e}"));
                            }
                        }
                    }
                }
            })
        };
        let deadline_searcher = {
            let (client, stats, stop, name) = (
                client.clone(),
                stats.clone(),
                stop.clone(),
                collection.to_string(),
            );
            tokio::spawn(async move {
                let params = SearchParams::new(10)
                    .with_ef(32)
                    .with_level(ReadLevel::CollectionDefault);
                let mut tick = tokio::time::interval(DEADLINE_SEARCH_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut i = 0i64;
                while !stop.is_cancelled() {
                    tick.tick().await;
                    i += 1;
                    let started = Instant::now();
                    let v = vector(i);
                    let search = client.call(|c| {
                        let (name, v, params) = (&name, &v, &params);
                        async move { c.search(name, v, DIM, params).await }
                    });
                    let r = tokio::time::timeout(DEADLINE, search).await;
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    let mut s = stats.lock();
                    let error = match r {
                        Ok(Ok(_)) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(_) => Some(format!("missed the {} ms deadline", DEADLINE.as_millis())),
                    };
                    s.deadline.record(ms, error.is_none());
                    if let Some(e) = error
                        && s.errors.len() < KEEP_ERRORS
                    {
                        s.errors.push(format!("default-level search: {e}"));
                    }
                }
            })
        };
        let inserter = {
            let (client, stats, stop, name) = (
                client.clone(),
                stats.clone(),
                stop.clone(),
                collection.to_string(),
            );
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(INSERT_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut next = first_id;
                let mut failing_since: Option<Instant> = None;
                while !stop.is_cancelled() {
                    tick.tick().await;
                    let ids: Vec<i64> = (next..next + ROWS_PER_INSERT).collect();
                    next += ROWS_PER_INSERT;
                    let vectors = ids.iter().flat_map(|&id| vector(id)).collect();
                    let rows = Rows::new(DIM, vectors).with_ids(ids.clone());
                    let r = client
                        .call(|c| {
                            let (name, rows) = (&name, rows.clone());
                            async move { c.insert(name, rows).await }
                        })
                        .await;
                    let mut s = stats.lock();
                    match r {
                        Ok(_) => {
                            s.inserts_ok += 1;
                            s.acked.extend(ids);
                            if let Some(since) = failing_since.take() {
                                let ms = since.elapsed().as_millis() as u64;
                                s.longest_insert_outage_ms = s.longest_insert_outage_ms.max(ms);
                            }
                        }
                        Err(e) => {
                            s.inserts_failed += 1;
                            failing_since.get_or_insert_with(Instant::now);
                            if s.errors.len() < KEEP_ERRORS {
                                s.errors.push(format!("insert: {e}"));
                            }
                        }
                    }
                }
                if let Some(since) = failing_since {
                    let mut s = stats.lock();
                    let ms = since.elapsed().as_millis() as u64;
                    s.longest_insert_outage_ms = s.longest_insert_outage_ms.max(ms);
                }
            })
        };
        Ok(Load {
            proxies: client,
            stop,
            tasks: vec![searcher, deadline_searcher, inserter],
            stats,
        })
    }

    /// Stops the load once the requests in flight finished.
    pub async fn stop(self) -> LoadStats {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        let mut stats = self.stats.lock().clone();
        stats.deadline.finish();
        stats.proxy_failovers = self
            .proxies
            .failovers
            .load(std::sync::atomic::Ordering::Relaxed);
        stats
    }
}

/// Keys of `acked` that a Strong query through `proxy` does not find.
pub async fn missing(proxy: &str, collection: &str, acked: &[i64]) -> anyhow::Result<Vec<i64>> {
    let client = super::connect(proxy).await?;
    let mut missing = Vec::new();
    for chunk in acked.chunks(2000) {
        let list: Vec<String> = chunk.iter().map(|i| i.to_string()).collect();
        let rows = client
            .query(
                collection,
                &format!("id in [{}]", list.join(",")),
                &["id"],
                Some(chunk.len()),
            )
            .await?;
        let found: std::collections::HashSet<i64> = rows
            .iter()
            .filter_map(|r| match r.get("id") {
                Some(quiver_client::Value::Int(i)) => Some(*i),
                _ => None,
            })
            .collect();
        missing.extend(chunk.iter().filter(|i| !found.contains(i)));
    }
    Ok(missing)
}
