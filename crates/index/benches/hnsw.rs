//! HNSW build (10k) and search (ef 40/80/160) on the checked-in glove50-10k,
//! and an f32 scan against a quantized scan of 100k rows (glove50-10k ten
//! times over, shifted).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use quiver_common::VectorsRef;
use quiver_index::bench::read_fvecs;
use quiver_index::{HnswIndex, HnswParams, Metric, QuantizedRows, flat_search};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/glove50-10k");

fn hnsw(c: &mut Criterion) {
    let (dim, base) = read_fvecs(format!("{DATA}/base.fvecs")).expect("base");
    let (_, queries) = read_fvecs(format!("{DATA}/query.fvecs")).expect("queries");
    let params = HnswParams::default();

    let mut g = c.benchmark_group("hnsw_build_10k");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(100));
    g.measurement_time(Duration::from_secs(10));
    for threads in [1, 2] {
        g.bench_function(format!("m16_efc200_threads{threads}"), |b| {
            b.iter(|| {
                HnswIndex::build(
                    VectorsRef::f32(dim, &base),
                    Metric::L2,
                    &params,
                    threads,
                    &|_| {},
                )
                .expect("build")
            })
        });
    }
    g.finish();

    let index = HnswIndex::build(VectorsRef::f32(dim, &base), Metric::L2, &params, 2, &|_| {})
        .expect("build");
    let mut g = c.benchmark_group("hnsw_search_10k");
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(2));
    for ef in [40, 80, 160] {
        g.bench_function(format!("k10_ef{ef}"), |b| {
            let mut qs = queries.chunks_exact(dim).cycle();
            b.iter(|| {
                let q = qs.next().unwrap_or(&queries[..dim]);
                index.search(
                    black_box(VectorsRef::f32(dim, &base)),
                    black_box(q),
                    10,
                    ef,
                    None,
                )
            })
        });
    }
    g.finish();
}

fn scan(c: &mut Criterion) {
    let (dim, base) = read_fvecs(format!("{DATA}/base.fvecs")).expect("base");
    let (_, queries) = read_fvecs(format!("{DATA}/query.fvecs")).expect("queries");
    let rows: Vec<f32> = (0..10)
        .flat_map(|copy| base.iter().map(move |x| x + copy as f32 * 0.01))
        .collect();
    let v = VectorsRef::f32(dim, &rows);
    let codes = QuantizedRows::train(v, Metric::L2).expect("train");
    let mut g = c.benchmark_group("scan_100k");
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("f32_exact_k10", |b| {
        let mut qs = queries.chunks_exact(dim).cycle();
        b.iter(|| {
            let q = qs.next().unwrap_or(&queries[..dim]);
            flat_search(black_box(v), Metric::L2, black_box(q), 10, None)
        })
    });
    g.bench_function("sq8_refine_k10", |b| {
        let mut qs = queries.chunks_exact(dim).cycle();
        b.iter(|| {
            let q = qs.next().unwrap_or(&queries[..dim]);
            codes.search(black_box(v), black_box(q), 10, 0, None, 0..v.len())
        })
    });
    g.finish();
}

criterion_group!(benches, hnsw, scan);
criterion_main!(benches);
