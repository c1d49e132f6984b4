//! Builds an HNSW index on a TEXMEX dataset directory and measures recall/qps.
//!
//! `cargo run --release -p quiver-index --example bench_index -- DIR [build_threads] [m] [efc] [ef,ef,..] [query_threads]`

use std::path::PathBuf;
use std::time::Instant;

use quiver_common::VectorsRef;
use quiver_index::bench::{QuerySet, measure_ef, read_fvecs, read_ivecs};
use quiver_index::{HnswIndex, HnswParams, Metric};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let dir = PathBuf::from(arg(0, "/work/shared/datasets/glove50-100k"));
    let threads: usize = arg(1, "2").parse()?;
    let m: usize = arg(2, "16").parse()?;
    let efc: usize = arg(3, "200").parse()?;
    let efs = arg(4, "40,80,160")
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<usize>, _>>()?;
    let query_threads: usize = arg(5, "1").parse()?;
    let (dim, base) = read_fvecs(dir.join("base.fvecs"))?;
    let (_, queries) = read_fvecs(dir.join("query.fvecs"))?;
    let (gdim, gt) = read_ivecs(dir.join("groundtruth.ivecs"))?;
    let params = HnswParams {
        m,
        ef_construction: efc,
        ..Default::default()
    };
    let t = Instant::now();
    let index = HnswIndex::build(
        VectorsRef::f32(dim, &base),
        Metric::L2,
        &params,
        threads,
        &|_| {},
    )?;
    println!(
        "build_s {:.2} (threads {threads}, n {}, m {m}, efc {efc}) graph_bytes {}",
        t.elapsed().as_secs_f64(),
        index.len(),
        index.memory_bytes()
    );
    for _round in 0..2 {
        for &ef in &efs {
            let set = QuerySet {
                queries: &queries,
                gt: &gt,
                gdim,
                k: 10,
                threads: query_threads,
            };
            let e = measure_ef(&index, VectorsRef::f32(dim, &base), &set, ef, None);
            println!(
                "ef {:4} recall {:.4} qps {:8.0} p50_us {:7.1} p99_us {:7.1}",
                e.ef, e.recall, e.qps, e.p50_us, e.p99_us
            );
        }
    }
    Ok(())
}
