//! The status page's charts: a short history of this process's own metrics,
//! kept by the front door.
//!
//! A task ([`History::spawn`]) reads the process registry every
//! `interval_ms` (the same series `/metrics` exports) and turns what changed
//! since the previous read into one point: search q/s and p99 (the
//! `MilvusService` `Search` + `HybridSearch` latency histograms' bucket
//! deltas), insert calls/s (`Insert` + `Upsert`), failed front-door calls/s
//! by service and code (`quiver_rpc_requests_total` with a code other than
//! 0), insert-to-visible p99 (`quiver_querynode_visible_delay_seconds`, only
//! where a querynode runs in this process: standalone), and each mirrored
//! alias's standby lag and divergent rows (from the catalog, as
//! `/api/status` shows them). The last `window_ms` of points are kept in a
//! ring and served as columns at `GET /api/history` (docs/status-page.md).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus::proto::MetricFamily;
use quiver_api::CatalogClient;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::histogram_quantile;

/// The services a front door serves (failures of other roles' services
/// in the same process are not the front door's).
const FRONT_SERVICES: [&str; 2] = ["MilvusService", "AdminService"];
/// The Milvus RPCs counted as searches and as inserts.
const SEARCHES: [&str; 2] = ["Search", "HybridSearch"];
const INSERTS: [&str; 2] = ["Insert", "Upsert"];
const REQUESTS: &str = "quiver_rpc_requests_total";
const DURATION: &str = "quiver_rpc_request_duration_seconds";
const VISIBLE: &str = "quiver_querynode_visible_delay_seconds";
/// How long one sample waits for the catalog's mirror figures.
const MIRROR_TIMEOUT: Duration = Duration::from_secs(2);
/// The most points a history keeps, whatever the options say.
const MAX_POINTS: u64 = 100_000;

/// How often the history samples and how much it keeps (`[status_history]`,
/// `quiver standalone --status-sample-ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryOptions {
    /// Milliseconds between samples (at least 100).
    pub interval_ms: u64,
    /// Milliseconds of points kept (at least one interval).
    pub window_ms: u64,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        Self {
            interval_ms: 5_000,
            window_ms: 15 * 60 * 1000,
        }
    }
}

impl HistoryOptions {
    /// Why these options cannot be used, if they cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval_ms < 100 {
            return Err(format!(
                "status_history.interval_ms: must be at least 100 (got {})",
                self.interval_ms
            ));
        }
        if self.window_ms < self.interval_ms {
            return Err(format!(
                "status_history.window_ms: must be at least interval_ms ({}; got {})",
                self.interval_ms, self.window_ms
            ));
        }
        Ok(())
    }

    /// Points kept.
    pub fn capacity(&self) -> usize {
        (self.window_ms / self.interval_ms.max(1)).clamp(1, MAX_POINTS) as usize
    }
}

/// Cumulative buckets `(upper bound, count)` of a histogram, `+Inf` last.
type Buckets = Vec<(f64, u64)>;

/// The cumulative figures of one read of the registry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// Searches' latency buckets (seconds), summed over the search RPCs.
    pub search: Buckets,
    pub inserts: u64,
    /// Failed front-door calls by (service, code).
    pub failed: BTreeMap<(String, String), u64>,
    /// The insert-to-visible histogram (seconds), if this process has it.
    pub visible: Option<Buckets>,
}

impl Counters {
    /// The figures in `families` (a gather of a registry).
    pub fn from_families(families: &[MetricFamily]) -> Self {
        let mut c = Counters::default();
        for family in families {
            match family.name() {
                REQUESTS => {
                    for m in family.get_metric() {
                        let (service, method, code) =
                            (label(m, "service"), label(m, "method"), label(m, "code"));
                        if !FRONT_SERVICES.contains(&service) {
                            continue;
                        }
                        let n = m.get_counter().get_value() as u64;
                        if service == "MilvusService" && INSERTS.contains(&method) {
                            c.inserts += n;
                        }
                        if code != "0" {
                            *c.failed
                                .entry((service.to_string(), code.to_string()))
                                .or_default() += n;
                        }
                    }
                }
                DURATION => {
                    for m in family.get_metric() {
                        if label(m, "service") == "MilvusService"
                            && SEARCHES.contains(&label(m, "method"))
                        {
                            add_buckets(&mut c.search, &buckets(m.get_histogram()));
                        }
                    }
                }
                VISIBLE => {
                    let mut sum = Vec::new();
                    for m in family.get_metric() {
                        add_buckets(&mut sum, &buckets(m.get_histogram()));
                    }
                    c.visible = Some(sum);
                }
                _ => {}
            }
        }
        c
    }
}

fn label<'a>(m: &'a prometheus::proto::Metric, name: &str) -> &'a str {
    m.get_label()
        .iter()
        .find(|l| l.name() == name)
        .map_or("", |l| l.value())
}

fn buckets(h: &prometheus::proto::Histogram) -> Buckets {
    let mut b: Buckets = h
        .get_bucket()
        .iter()
        .map(|b| (b.upper_bound(), b.cumulative_count()))
        .filter(|(le, _)| le.is_finite())
        .collect();
    b.push((f64::INFINITY, h.get_sample_count()));
    b
}

/// Adds `b` to `sum` bucket by bucket (histograms of one family share
/// their bounds).
fn add_buckets(sum: &mut Buckets, b: &Buckets) {
    if sum.is_empty() {
        *sum = b.clone();
    } else if sum.len() == b.len() {
        for (s, x) in sum.iter_mut().zip(b) {
            s.1 += x.1;
        }
    }
}

/// What happened between two reads of the buckets (`before` empty: since
/// the start).
fn delta(now: &Buckets, before: &Buckets) -> Buckets {
    if before.len() != now.len() {
        return now.clone();
    }
    now.iter()
        .zip(before)
        .map(|(n, b)| (n.0, n.1.saturating_sub(b.1)))
        .collect()
}

fn count(b: &Buckets) -> u64 {
    b.last().map_or(0, |(_, n)| *n)
}

/// The p99 of a bucket delta in milliseconds (None: nothing observed).
fn p99_ms(b: &Buckets) -> Option<f64> {
    histogram_quantile(b, 0.99).map(|s| s * 1000.0)
}

/// A mirrored alias's figures at one sample (None: unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MirrorFigures {
    pub standby_lag_ms: Option<u64>,
    pub divergent_rows: Option<u64>,
}

/// One interval's figures.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    /// The interval's end (ms since the Unix epoch).
    t_ms: u64,
    search_qps: f64,
    search_p99_ms: Option<f64>,
    insert_qps: f64,
    visible_p99_ms: Option<f64>,
    failed: BTreeMap<(String, String), f64>,
    aliases: BTreeMap<String, MirrorFigures>,
}

struct Inner {
    /// The previous read: when, and its counters.
    last: Option<(Instant, Counters)>,
    points: VecDeque<Point>,
    /// Whether the last read found the insert-to-visible histogram.
    freshness_here: bool,
}

/// The history of one front door.
pub struct History {
    options: HistoryOptions,
    inner: Mutex<Inner>,
}

impl History {
    pub fn new(options: HistoryOptions) -> Self {
        Self {
            options,
            inner: Mutex::new(Inner {
                last: None,
                points: VecDeque::new(),
                freshness_here: false,
            }),
        }
    }

    pub fn options(&self) -> HistoryOptions {
        self.options
    }

    /// Adds a read taken at `now` (`t_ms` on the wall clock): the first
    /// read is the baseline, each later one a point of what changed since
    /// the one before.
    pub fn record(
        &self,
        now: Instant,
        t_ms: u64,
        counters: Counters,
        aliases: BTreeMap<String, MirrorFigures>,
    ) {
        let mut inner = self.inner.lock();
        inner.freshness_here = counters.visible.is_some();
        let Some((then, before)) = inner.last.take() else {
            inner.last = Some((now, counters));
            return;
        };
        let secs = now.saturating_duration_since(then).as_secs_f64().max(1e-3);
        let search = delta(&counters.search, &before.search);
        let visible = counters
            .visible
            .as_ref()
            .map(|v| delta(v, before.visible.as_ref().unwrap_or(&Vec::new())));
        let failed = counters
            .failed
            .iter()
            .map(|(k, n)| {
                let was = before.failed.get(k).copied().unwrap_or(0);
                (k.clone(), n.saturating_sub(was) as f64 / secs)
            })
            .collect();
        let point = Point {
            t_ms,
            search_qps: count(&search) as f64 / secs,
            search_p99_ms: p99_ms(&search),
            insert_qps: counters.inserts.saturating_sub(before.inserts) as f64 / secs,
            visible_p99_ms: visible.as_ref().and_then(p99_ms),
            failed,
            aliases,
        };
        inner.points.push_back(point);
        while inner.points.len() > self.options.capacity() {
            inner.points.pop_front();
        }
        inner.last = Some((now, counters));
    }

    /// Reads this process's registry and the catalog's mirror figures, and
    /// records them.
    pub async fn sample(&self, catalog: &dyn CatalogClient) {
        let aliases = mirror_figures(catalog).await;
        let counters = Counters::from_families(&quiver_metrics::registry().gather());
        self.record(Instant::now(), super::now_ms(), counters, aliases);
    }

    /// Samples every `interval_ms` until `shutdown`.
    pub fn spawn(
        self: Arc<Self>,
        catalog: Arc<dyn CatalogClient>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_millis(self.options.interval_ms.max(100)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => self.sample(catalog.as_ref()).await,
                }
            }
        })
    }

    /// The points as columns (docs/status-page.md, "GET /api/history").
    pub fn to_json(&self) -> Value {
        let inner = self.inner.lock();
        let points = &inner.points;
        let column = |f: &dyn Fn(&Point) -> Value| -> Vec<Value> { points.iter().map(f).collect() };
        let codes: BTreeSet<&(String, String)> =
            points.iter().flat_map(|p| p.failed.keys()).collect();
        let failed: Vec<Value> = codes
            .into_iter()
            .map(|k| {
                json!({
                    "service": k.0,
                    "code": k.1,
                    "per_s": column(&|p| json!(p.failed.get(k).copied().unwrap_or(0.0))),
                })
            })
            .collect();
        let names: BTreeSet<&String> = points.iter().flat_map(|p| p.aliases.keys()).collect();
        let aliases: Vec<Value> = names
            .into_iter()
            .map(|a| {
                let fig = |p: &Point| p.aliases.get(a).copied().unwrap_or_default();
                json!({
                    "alias": a,
                    "standby_lag_ms": column(&|p| json!(fig(p).standby_lag_ms)),
                    "divergent_rows": column(&|p| json!(fig(p).divergent_rows)),
                })
            })
            .collect();
        json!({
            "interval_ms": self.options.interval_ms,
            "window_ms": self.options.window_ms,
            "freshness_here": inner.freshness_here,
            "t_ms": column(&|p| json!(p.t_ms)),
            "search_qps": column(&|p| json!(p.search_qps)),
            "search_p99_ms": column(&|p| json!(p.search_p99_ms)),
            "insert_qps": column(&|p| json!(p.insert_qps)),
            "visible_p99_ms": column(&|p| json!(p.visible_p99_ms)),
            "failed": failed,
            "aliases": aliases,
        })
    }
}

/// Each mirrored alias's standby lag and divergent rows, as the catalog
/// knows them now (unknown if it does not answer in time).
async fn mirror_figures(catalog: &dyn CatalogClient) -> BTreeMap<String, MirrorFigures> {
    let mut out = BTreeMap::new();
    for (alias, target) in catalog.aliases() {
        if catalog.alias(&alias).is_none_or(|m| m.mirror.is_none()) {
            continue;
        }
        let (lag, rows) =
            tokio::time::timeout(MIRROR_TIMEOUT, catalog.mirror_status(&alias, &target))
                .await
                .unwrap_or((None, None));
        out.insert(
            alias,
            MirrorFigures {
                standby_lag_ms: lag,
                divergent_rows: rows,
            },
        );
    }
    out
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
