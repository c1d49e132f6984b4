//! `quiver bench search` run as the real binary against an in-process
//! standalone server: q/s, latencies, no errors, recall against a
//! brute-force ground truth; refusals before the run exit non-zero.

use std::path::Path;
use std::process::Output;

use quiver_client::{CollectionSpec, Rows};
use serde_json::Value;

use super::{Server, vectors, write_fvecs};

const DIM: usize = 16;
const ROWS: usize = 2_000;
const QUERIES: usize = 50;
const K: usize = 10;

async fn bench(args: &[&str]) -> Output {
    println!("quiver bench search {}", args.join(" "));
    tokio::process::Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["bench", "search"])
        .args(args)
        .env_remove("QUIVER_ADDR")
        .env("RUST_BACKTRACE", "0")
        .output()
        .await
        .expect("run quiver bench search")
}

/// The run's one JSON object (the run must succeed).
async fn bench_json(args: &[&str]) -> Value {
    let out = bench(args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench search {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON object: {stdout}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The run must fail before searching; returns stderr.
async fn bench_fails(args: &[&str]) -> String {
    let out = bench(args).await;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "bench search {args:?} should fail");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    println!("{err}");
    assert!(out.stdout.is_empty(), "no report: {:?}", out.stdout);
    err
}

/// The ids of the `k` rows of `base` nearest to each query (L2), as .ivecs.
fn write_truth(path: &Path, base: &[f32], queries: &[f32], k: usize) {
    let mut bytes = Vec::new();
    for q in queries.chunks(DIM) {
        let mut d: Vec<(f32, usize)> = base
            .chunks(DIM)
            .enumerate()
            .map(|(i, v)| (v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(), i))
            .collect();
        d.sort_by(|a, b| a.0.total_cmp(&b.0));
        bytes.extend_from_slice(&(k as i32).to_le_bytes());
        for (_, i) in &d[..k] {
            bytes.extend_from_slice(&(*i as i32).to_le_bytes());
        }
    }
    std::fs::write(path, bytes).expect("write ivecs");
}

fn number(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_search_reports_qps_latency_and_recall() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data")).await;
    let addr = server.addr.to_string();
    let client = server.client().await;
    client
        .create_collection(&CollectionSpec::new("points", DIM))
        .await
        .expect("create");
    let base = vectors(ROWS, DIM, 11);
    client
        .insert(
            "points",
            Rows::new(DIM, base.clone()).with_ids((0..ROWS as i64).collect()),
        )
        .await
        .expect("insert");
    client.flush(&["points"]).await.expect("flush");
    let queries = vectors(QUERIES, DIM, 12);
    let (query, truth) = (dir.path().join("q.fvecs"), dir.path().join("gt.ivecs"));
    write_fvecs(&query, DIM, &queries);
    write_truth(&truth, &base, &queries, K);
    let (query, truth) = (
        query.to_str().expect("utf-8"),
        truth.to_str().expect("utf-8"),
    );

    let common = [
        "--addr",
        &addr,
        "--collection",
        "points",
        "--query",
        query,
        "--clients",
        "2",
    ];
    let run = bench_json(
        &[
            &common[..],
            &["--duration", "1", "--truth", truth, "--json"],
        ]
        .concat(),
    )
    .await;
    assert_eq!(run["collection"], "points");
    assert_eq!(run["clients"], 2);
    assert_eq!(run["errors"], 0, "{run}");
    assert_eq!(run["first_error"], Value::Null, "{run}");
    assert_eq!(run["filter"], Value::Null);
    assert_eq!(run["anns_field"], "vector");
    assert!(number(&run, "requests") > 0.0, "{run}");
    assert!(number(&run, "qps") > 0.0, "{run}");
    assert!(number(&run, "duration_s") >= 1.0, "{run}");
    let (p50, p99, p999) = (
        number(&run, "p50_ms"),
        number(&run, "p99_ms"),
        number(&run, "p999_ms"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= p999, "{run}");
    assert!(number(&run, "recall") >= 0.9, "{run}");

    // A filter and refine_k travel with every search; without --truth
    // recall is null.
    let filtered = bench_json(
        &[
            &common[..],
            &[
                "--duration",
                "0.3",
                "--filter",
                "id < 1000",
                "--refine-k",
                "3",
                "--json",
            ],
        ]
        .concat(),
    )
    .await;
    assert_eq!(filtered["errors"], 0, "{filtered}");
    assert_eq!(filtered["filter"], "id < 1000");
    assert_eq!(filtered["refine_k"], 3.0);
    assert_eq!(filtered["recall"], Value::Null);
    assert!(number(&filtered, "requests") > 0.0, "{filtered}");

    // Refused before the run: a missing collection, a bad filter, a query
    // file of another dimension, a bad flag.
    let missing = [
        "--addr",
        &addr,
        "--collection",
        "nowhere",
        "--query",
        query,
        "--duration",
        "1",
    ];
    let err = bench_fails(&missing).await;
    assert!(err.contains("nowhere"), "names the collection: {err}");
    let err = bench_fails(&[&common[..], &["--filter", "no_such_field > 1"]].concat()).await;
    assert!(err.contains("first search failed"), "{err}");
    let err = bench_fails(&[&common[..], &["--refine-k", "0.5"]].concat()).await;
    assert!(err.contains("refine_k"), "{err}");
    let other = dir.path().join("q8.fvecs");
    write_fvecs(&other, 8, &vectors(4, 8, 13));
    let other = other.to_str().expect("utf-8");
    let err = bench_fails(&["--addr", &addr, "--collection", "points", "--query", other]).await;
    assert!(err.contains("dimension"), "{err}");
    let err = bench_fails(&[&common[..], &["--duration", "0"]].concat()).await;
    assert!(err.contains("--duration"), "{err}");
    server.close().await;
}
