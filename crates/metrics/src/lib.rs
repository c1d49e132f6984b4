//! Prometheus metrics of every role, through the `prometheus` crate (its
//! registry and text encoder; no hand-written exposition).
//!
//! - One registry per process ([`registry`]): every role in the process
//!   registers its metrics there, and every role's port serves all of them
//!   at `GET /metrics` ([`render`], [`route`]). In standalone that is one
//!   port for everything; in a cluster each process shows its own.
//! - Counters and histograms are updated where things happen (create them
//!   with [`counter_vec`], [`histogram`], [`histogram_vec`]).
//! - Values that are state rather than events (rows per shard, lag, a
//!   coord's term) are sampled at scrape time: a role registers a
//!   [`Sampled`] source ([`add_source`], held weakly), and each scrape
//!   resets the [`sampled_gauge_vec`]s, asks every live source to set its
//!   current values, then encodes. Label sets of things that went away
//!   (a dropped shard) vanish with the next scrape.
//! - Per-RPC counts, latencies and outcomes of every gRPC service come from
//!   one middleware ([`rpc::track`]); docs/metrics.md lists every series.
//! - Every port also answers the probes `/livez` and `/readyz` ([`health`]).

pub mod health;
pub mod protocol;
pub mod rpc;
pub mod trace;

use std::sync::{Arc, LazyLock, Weak};

use parking_lot::Mutex;
pub use prometheus::core as prometheus_core;
use prometheus::{Encoder, TextEncoder};
pub use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

/// The process's registry.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

/// Buckets for request and operation latencies, in seconds (100 µs to 30 s).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Buckets for long operations (seals, index builds, compactions), in
/// seconds (10 ms to 10 min).
pub const LONG_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Registers `c` (a metric of the same name registered before, by another
/// role of this process, is fine: callers keep their own handle in a
/// static, so each name is created once per process).
fn register<C: prometheus::core::Collector + Clone + 'static>(c: C) -> C {
    let _ = REGISTRY.register(Box::new(c.clone()));
    c
}

/// A counter with labels, registered in the process registry.
pub fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| invalid(name, e)))
}

/// A gauge, registered in the process registry.
pub fn int_gauge(name: &str, help: &str) -> IntGauge {
    register(IntGauge::new(name, help).unwrap_or_else(|e| invalid(name, e)))
}

/// A histogram, registered in the process registry.
pub fn histogram(name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(Histogram::with_opts(opts).unwrap_or_else(|e| invalid(name, e)))
}

/// A histogram with labels, registered in the process registry.
pub fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(HistogramVec::new(opts, labels).unwrap_or_else(|e| invalid(name, e)))
}

/// A metric definition is a constant of the code: a bad one is a bug found
/// by the first test that touches it.
fn invalid(name: &str, e: prometheus::Error) -> ! {
    panic!("metric {name}: {e}")
}

/// Something that sets sampled gauges to its current values at a scrape.
pub trait Sampled: Send + Sync {
    fn sample(&self);
}

struct Sources {
    sources: Vec<Weak<dyn Sampled>>,
    gauges: Vec<GaugeVec>,
}

static SOURCES: LazyLock<Mutex<Sources>> = LazyLock::new(|| {
    Mutex::new(Sources {
        sources: Vec::new(),
        gauges: Vec::new(),
    })
});

/// Adds a source sampled at every scrape while it lives.
pub fn add_source(source: Weak<dyn Sampled>) {
    SOURCES.lock().sources.push(source);
}

/// A gauge with labels whose values sources set at each scrape (reset
/// before they do), registered in the process registry.
pub fn sampled_gauge_vec(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g =
        register(GaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| invalid(name, e)));
    SOURCES.lock().gauges.push(g.clone());
    g
}

/// The process's metrics in Prometheus's text format (sources sampled
/// first; one scrape at a time).
pub fn render() -> String {
    static SCRAPE: Mutex<()> = Mutex::new(());
    // One scrape at a time: a concurrent scrape's reset cannot empty the
    // gauges halfway through this one. The source list is only locked to
    // copy it (a source's first sample may create a sampled gauge).
    let _scrape = SCRAPE.lock();
    let (gauges, live) = {
        let mut s = SOURCES.lock();
        s.sources.retain(|w| w.strong_count() > 0);
        let live: Vec<Arc<dyn Sampled>> = s.sources.iter().filter_map(Weak::upgrade).collect();
        (s.gauges.clone(), live)
    };
    for g in &gauges {
        g.reset();
    }
    process::sample();
    for source in live {
        source.sample();
    }
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&REGISTRY.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The metrics of `registry` in Prometheus's text format (for metrics a
/// caller builds per scrape, e.g. from the catalog).
pub fn encode(registry: &Registry) -> String {
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// `GET /metrics` for a role's port.
pub fn route() -> axum::Router {
    axum::Router::new().route("/metrics", axum::routing::get(|| async { text(render()) }))
}

/// `GET /metrics`, `/livez` and `/readyz` (answered by `ready`) for a
/// role's port.
pub fn routes_with_probes(ready: health::Readiness) -> axum::Router {
    route().merge(health::probes(ready))
}

/// A metrics response (Prometheus's text content type).
pub fn text(body: String) -> axum::response::Response {
    axum::response::IntoResponse::into_response((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}

mod process {
    use std::sync::LazyLock;

    use prometheus::IntGauge;

    static RESIDENT: LazyLock<IntGauge> = LazyLock::new(|| {
        super::register(
            IntGauge::new(
                "quiver_process_resident_memory_bytes",
                "Resident memory of the process",
            )
            .unwrap_or_else(|e| super::invalid("quiver_process_resident_memory_bytes", e)),
        )
    });

    static MEMORY: LazyLock<quiver_common::ResidentMemory> = LazyLock::new(Default::default);

    pub(super) fn sample() {
        RESIDENT.set(MEMORY.bytes() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Shards(Vec<(&'static str, f64)>);

    static ROWS: LazyLock<GaugeVec> =
        LazyLock::new(|| sampled_gauge_vec("quiver_test_rows", "rows", &["shard"]));

    impl Sampled for Shards {
        fn sample(&self) {
            for (shard, rows) in &self.0 {
                ROWS.with_label_values(&[shard]).set(*rows);
            }
        }
    }

    #[test]
    fn sampled_values_follow_their_sources() {
        let a: Arc<dyn Sampled> = Arc::new(Shards(vec![("0", 5.0), ("1", 7.0)]));
        add_source(Arc::downgrade(&a));
        let text = render();
        assert!(text.contains("quiver_test_rows{shard=\"0\"} 5"), "{text}");
        assert!(text.contains("quiver_test_rows{shard=\"1\"} 7"), "{text}");
        assert!(
            text.contains("quiver_process_resident_memory_bytes"),
            "{text}"
        );
        drop(a);
        let b: Arc<dyn Sampled> = Arc::new(Shards(vec![("1", 9.0)]));
        add_source(Arc::downgrade(&b));
        let text = render();
        assert!(!text.contains("quiver_test_rows{shard=\"0\"}"), "{text}");
        assert!(text.contains("quiver_test_rows{shard=\"1\"} 9"), "{text}");
    }
}
