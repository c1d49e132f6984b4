//! What a merge saves by extending its largest input's graph: builds a
//! graph over the first `base` rows, then times a fresh build over all rows
//! against extending that graph with the rest, and the recall of each.
//!
//! `cargo run --release -p quiver-index --example extend -- DIR [base_rows] [threads] [m] [efc] [ef]`

use std::path::PathBuf;
use std::time::Instant;

use quiver_common::VectorsRef;
use quiver_index::bench::{read_fvecs, read_ivecs};
use quiver_index::{HnswIndex, HnswParams, Metric};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let dir = PathBuf::from(arg(0, "/work/shared/datasets/glove50-100k"));
    let (dim, all) = read_fvecs(dir.join("base.fvecs"))?;
    let n = all.len() / dim;
    let base_rows: usize = arg(1, &(n * 3 / 4).to_string()).parse()?;
    let threads: usize = arg(2, "2").parse()?;
    let params = HnswParams {
        m: arg(3, "16").parse()?,
        ef_construction: arg(4, "200").parse()?,
        ..Default::default()
    };
    let ef: usize = arg(5, "80").parse()?;
    let (_, queries) = read_fvecs(dir.join("query.fvecs"))?;
    let (gdim, gt) = read_ivecs(dir.join("groundtruth.ivecs"))?;
    let vectors = VectorsRef::f32(dim, &all);
    let base = HnswIndex::build(
        VectorsRef::f32(dim, &all[..base_rows * dim]),
        Metric::L2,
        &params,
        threads,
        &|_| {},
    )?;
    let t = Instant::now();
    let fresh = HnswIndex::build(vectors, Metric::L2, &params, threads, &|_| {})?;
    let fresh_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let extended = HnswIndex::extend(&base, vectors, &params, threads, &|_| {})?;
    let extend_s = t.elapsed().as_secs_f64();
    let recall = |index: &HnswIndex| {
        let nq = queries.len() / dim;
        let mut hits = 0;
        for i in 0..nq {
            let res = index.search(vectors, &queries[i * dim..(i + 1) * dim], 10, ef, None);
            let truth = &gt[i * gdim..i * gdim + 10];
            hits += res
                .iter()
                .filter(|r| truth.contains(&(r.id as i32)))
                .count();
        }
        hits as f64 / (nq * 10) as f64
    };
    println!(
        "{n} rows x {dim}, base {base_rows}, {threads} threads, m {} efc {}: fresh build {fresh_s:.1} s (recall@10 ef{ef} {:.4}); extend by {} rows {extend_s:.1} s (recall {:.4}); ratio {:.2}",
        params.m,
        params.ef_construction,
        recall(&fresh),
        n - base_rows,
        recall(&extended),
        extend_s / fresh_s
    );
    Ok(())
}
