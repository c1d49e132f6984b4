use super::*;
use quiver_metrics::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

const INF: f64 = f64::INFINITY;

/// A registry with the front door's request series, as the rpc middleware
/// defines them.
struct Rpc {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl Rpc {
    fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(Opts::new(REQUESTS, "h"), &["service", "method", "code"])
            .expect("counter");
        let duration = HistogramVec::new(
            HistogramOpts::new(DURATION, "h").buckets(vec![0.001, 0.01, 0.1]),
            &["service", "method"],
        )
        .expect("histogram");
        registry.register(Box::new(requests.clone())).expect("reg");
        registry.register(Box::new(duration.clone())).expect("reg");
        Self {
            registry,
            requests,
            duration,
        }
    }

    fn call(&self, service: &str, method: &str, code: &str, secs: f64) {
        self.requests
            .with_label_values(&[service, method, code])
            .inc();
        self.duration
            .with_label_values(&[service, method])
            .observe(secs);
    }

    fn counters(&self) -> Counters {
        Counters::from_families(&self.registry.gather())
    }
}

#[test]
fn counters_pick_the_front_doors_searches_inserts_and_failures() {
    let rpc = Rpc::new();
    rpc.call("MilvusService", "Search", "0", 0.0005);
    rpc.call("MilvusService", "HybridSearch", "0", 0.05);
    rpc.call("MilvusService", "Search", "100", 0.0005);
    rpc.call("MilvusService", "Insert", "0", 0.002);
    rpc.call("MilvusService", "Upsert", "0", 0.002);
    rpc.call("MilvusService", "Query", "0", 0.002);
    rpc.call("AdminService", "FlipAlias", "14", 0.002);
    // Another role's service in the same process is not the front door's.
    rpc.call("QueryService", "Search", "14", 0.002);
    let c = rpc.counters();
    assert_eq!(
        c.search,
        vec![(0.001, 2), (0.01, 2), (0.1, 3), (INF, 3)],
        "Search + HybridSearch, failed ones included"
    );
    assert_eq!(c.inserts, 2);
    let failed: Vec<_> = c
        .failed
        .iter()
        .map(|((s, code), n)| (s.as_str(), code.as_str(), *n))
        .collect();
    assert_eq!(
        failed,
        [("AdminService", "14", 1), ("MilvusService", "100", 1)]
    );
    assert_eq!(c.visible, None, "no querynode histogram in this registry");
}

#[test]
fn points_are_rates_and_p99_of_what_changed_between_reads() {
    let rpc = Rpc::new();
    let h = History::new(HistoryOptions {
        interval_ms: 1_000,
        window_ms: 3_000,
    });
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    // Before the baseline: not in any point.
    for _ in 0..50 {
        rpc.call("MilvusService", "Search", "0", 0.05);
    }
    h.record(at(0), 1_000, rpc.counters(), BTreeMap::new());
    assert_eq!(
        h.to_json()["t_ms"],
        json!([]),
        "the first read is a baseline"
    );

    for _ in 0..10 {
        rpc.call("MilvusService", "Search", "0", 0.0005);
    }
    rpc.call("MilvusService", "Insert", "0", 0.002);
    rpc.call("MilvusService", "Insert", "1100", 0.002);
    let feed = MirrorFigures {
        standby_lag_ms: Some(12),
        divergent_rows: None,
    };
    h.record(
        at(2),
        3_000,
        rpc.counters(),
        BTreeMap::from([("feed".to_string(), feed)]),
    );
    h.record(at(3), 4_000, rpc.counters(), BTreeMap::new());
    let j = h.to_json();
    assert_eq!(j["t_ms"], json!([3_000, 4_000]));
    assert_eq!(j["search_qps"], json!([5.0, 0.0]), "10 searches in 2 s");
    // All 10 in the first bucket (≤ 1 ms): interpolated within it.
    let p99 = j["search_p99_ms"][0].as_f64().expect("p99");
    assert!((p99 - 0.99).abs() < 1e-9, "{p99}");
    assert_eq!(j["search_p99_ms"][1], Value::Null, "no searches");
    assert_eq!(j["insert_qps"], json!([1.0, 0.0]));
    assert_eq!(j["visible_p99_ms"], json!([null, null]));
    assert_eq!(j["freshness_here"], false);
    assert_eq!(
        j["failed"],
        json!([{"service": "MilvusService", "code": "1100", "per_s": [0.5, 0.0]}])
    );
    assert_eq!(
        j["aliases"],
        json!([{"alias": "feed", "standby_lag_ms": [12, null], "divergent_rows": [null, null]}])
    );

    // The window keeps its last 3 points.
    for s in 4..8 {
        h.record(at(s), 1_000 * (s + 1), rpc.counters(), BTreeMap::new());
    }
    assert_eq!(h.to_json()["t_ms"], json!([6_000, 7_000, 8_000]));
}

#[test]
fn options_are_checked() {
    assert!(HistoryOptions::default().validate().is_ok());
    assert_eq!(HistoryOptions::default().capacity(), 180);
    let fast = HistoryOptions {
        interval_ms: 50,
        window_ms: 1_000,
    };
    assert!(fast.validate().is_err());
    let short = HistoryOptions {
        interval_ms: 1_000,
        window_ms: 500,
    };
    assert!(short.validate().is_err());
}

#[test]
fn histogram_families_add_up() {
    let mut sum = Vec::new();
    add_buckets(&mut sum, &vec![(1.0, 1), (INF, 2)]);
    add_buckets(&mut sum, &vec![(1.0, 3), (INF, 3)]);
    assert_eq!(sum, vec![(1.0, 4), (INF, 5)]);
    assert_eq!(
        delta(&sum, &vec![(1.0, 1), (INF, 1)]),
        vec![(1.0, 3), (INF, 4)]
    );
    assert_eq!(delta(&sum, &Vec::new()), sum, "no earlier read: all of it");
}
