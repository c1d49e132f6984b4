//! WAL append throughput with fsync on the local object store (a temp dir).
//!
//! - `batch/1000x{50,128}`: one submitter appending 1,000-row upserts; each is one durable put.
//! - `single_row/{1,64}`: single-row upserts from 1 or 64 concurrent submitters; with 64 the
//!   writer group-commits whatever queued while the previous put (and its fsyncs) ran.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quiver_common::{Mutation, PrimaryKey, RowBatch};
use quiver_storage::{Wal, WalOptions, open_local_store};

fn upsert(ts: u64, rows: usize, dim: usize) -> Mutation {
    Mutation::Upsert {
        ts,
        rows: RowBatch {
            pks: (0..rows as i64).map(PrimaryKey::Int).collect(),
            vectors: quiver_common::Vectors::f32(
                dim,
                (0..rows * dim).map(|i| i as f32 * 0.001).collect(),
            ),
            columns: vec![],
        },
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn open(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> Arc<Wal> {
    let store = open_local_store(dir).expect("store");
    let (wal, _) = rt
        .block_on(Wal::open(store, 1, 0, 1, 0, WalOptions::default()))
        .expect("open");
    Arc::new(wal)
}

fn batches(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("wal_append/batch");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for dim in [50, 128] {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = open(&rt, dir.path());
        let m = upsert(1, 1000, dim);
        g.throughput(Throughput::Elements(1000));
        g.bench_function(format!("1000x{dim}"), |b| {
            b.iter(|| rt.block_on(wal.submit(m.clone())).expect("append"))
        });
    }
    g.finish();
}

fn single_rows(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("wal_append/single_row");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for submitters in [1usize, 64] {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = open(&rt, dir.path());
        g.throughput(Throughput::Elements(submitters as u64));
        // One iteration = every submitter appends one 1-row, 128-dim upsert concurrently.
        g.bench_function(format!("{submitters}_submitters_x128"), |b| {
            b.iter_custom(|iters| {
                let wal = wal.clone();
                rt.block_on(async move {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..submitters)
                        .map(|_| {
                            let wal = wal.clone();
                            tokio::spawn(async move {
                                for i in 0..iters {
                                    wal.submit(upsert(i, 1, 128)).await.expect("append");
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("task");
                    }
                    start.elapsed()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, batches, single_rows);
criterion_main!(benches);
