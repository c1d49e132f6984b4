//! Durability under kill -9: a writer process is killed at random points and
//! after each restart every acknowledged row must be present with identical
//! vector bytes, nothing duplicated, nothing unacknowledged half-applied and
//! deleted rows still deleted.
//!
//! `QUIVER_CRASH_ITERATIONS` sets the number of kills (default 50; raise it
//! for a longer run).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use quiver_common::PrimaryKey;
use quiver_proxy::{Consistency, SearchRequest};
use quiver_server::Standalone;
use quiver_server::crash::{COLLECTION, Model, crash_config, rows_by_key};
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

async fn recovered_rows(dir: &std::path::Path) -> (HashMap<i64, Vec<f32>>, Standalone) {
    let s = Standalone::open(crash_config(dir), CancellationToken::new())
        .await
        .expect("reopen after kill");
    let out = if s.proxy.describe(COLLECTION).is_ok() {
        rows_by_key(&s.proxy, COLLECTION)
            .await
            .expect("recovered rows")
    } else {
        HashMap::new()
    };
    (out, s)
}

#[test]
fn acknowledged_writes_survive_kill_9_at_random_points() {
    let iterations: u64 = std::env::var("QUIVER_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut dir = tempfile::Builder::new()
        .prefix("quiver-crash-")
        .tempdir()
        .expect("tempdir");
    // QUIVER_CRASH_KEEP=1 keeps the data directory (for a post-mortem).
    dir.disable_cleanup(std::env::var_os("QUIVER_CRASH_KEEP").is_some());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut model = Model::default();
    let mut kills_before_ready = 0;
    let mut compactions = 0;
    for it in 0..iterations {
        // QUIVER_BIN: run a copy of the binary (long campaigns while the tree is rebuilt).
        let bin = std::env::var_os("QUIVER_BIN")
            .unwrap_or_else(|| std::ffi::OsString::from(env!("CARGO_BIN_EXE_quiver")));
        let mut child = Command::new(bin)
            .args(["crash-writer", "--seed", &it.to_string(), "--first-op"])
            .arg((model.max_op + 1).to_string())
            .arg("--data-dir")
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            // Warnings and errors of each writer, for a post-mortem.
            .stderr(
                std::fs::File::create(dir.path().join(format!("writer-{it}.log")))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .expect("spawn writer");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        // Kill during start-up/recovery now and then, else after a random
        // number of writer events.
        let kill_after = if rng.random_bool(0.1) {
            0
        } else {
            rng.random_range(1..400)
        };
        let mut seen = 0;
        while seen < kill_after {
            match lines.next() {
                Some(Ok(line)) => {
                    model.feed(&line).expect("writer protocol");
                    seen += 1;
                }
                _ => break,
            }
        }
        if kill_after == 0 {
            kills_before_ready += 1;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        for line in lines.map_while(Result::ok) {
            model.feed(&line).expect("writer protocol");
        }
        rt.block_on(async {
            let (actual, server) = recovered_rows(dir.path()).await;
            if let Err(e) = model.check_and_resolve(&actual) {
                let kept = dir.path().to_path_buf();
                std::mem::forget(server);
                panic!("iteration {it}: {e:#} (data kept in {})", kept.display());
            }
            // Searches see the same rows, each once.
            if let Some((pk, v)) = actual.iter().next() {
                let hits = server
                    .proxy
                    .search(SearchRequest {
                        collection: COLLECTION.into(),
                        queries: v.clone(),
                        k: 50,
                        ef: Some(200),
                        refine_k: None,
                        filter: None,
                        consistency: Consistency::Strong,
                        output_fields: vec![],
                        with_vectors: false,
                        anns_field: None,
                        sparse: None,
                    })
                    .await
                    .expect("search");
                let pks: HashSet<_> = hits[0].iter().map(|h| h.pk.clone()).collect();
                assert_eq!(
                    pks.len(),
                    hits[0].len(),
                    "iteration {it}: duplicate search hits"
                );
                assert_eq!(
                    hits[0][0].pk,
                    PrimaryKey::Int(*pk),
                    "iteration {it}: exact match not first"
                );
            }
            // Whatever a kill left behind (an output never swapped in, inputs
            // swapped out but not yet deleted) is collected by the next pass.
            let id = server.coord().state().collection(COLLECTION).map(|m| m.id);
            if let Some(id) = id {
                compactions = server.coord().state().segments(id, 0).compactions;
                let objects = dir.path().join(format!("objects/segments/{id}/0"));
                let unreferenced = || {
                    let catalog: HashSet<u64> = server
                        .coord()
                        .state()
                        .segments(id, 0)
                        .segments
                        .iter()
                        .map(|s| s.id)
                        .collect();
                    std::fs::read_dir(&objects)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .filter_map(|e| {
                            let name = e.file_name().to_string_lossy().into_owned();
                            // (A put killed midway leaves a staging file the
                            // object store never lists: not counted here.)
                            let stem = name
                                .strip_suffix(".seg")
                                .or_else(|| name.strip_suffix(".idx"))?;
                            stem.parse::<u64>().ok()
                        })
                        .filter(|seg| !catalog.contains(seg))
                        .collect::<Vec<u64>>()
                };
                let left = quiver_test_util::wait_for(
                    std::time::Duration::from_secs(30),
                    "garbage collection of unreferenced segments",
                    async || unreferenced().is_empty(),
                )
                .await;
                if let Err(e) = left {
                    panic!("iteration {it}: {e}: {:?} left", unreferenced());
                }
            }
            server.close().await;
        });
    }
    eprintln!(
        "{iterations} kills ({kills_before_ready} during start-up), {} acknowledged writes, {} rows at the end, {compactions} compactions",
        model.acked,
        model.len()
    );
    assert!(compactions > 0, "no compaction ran: the kills tested none");
    assert!(
        model.acked > iterations,
        "the writer made too little progress to test anything"
    );
}
