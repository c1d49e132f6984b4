//! hnsw_rs 0.3.5 (with a simsimd L2 distance) on a TEXMEX dataset directory:
//! parallel build time, then single-thread batch-1 recall@10 / qps per ef, to
//! compare with `bench_index` (our builder and frozen search).
//!
//! `cargo run --release -p quiver-index --example compare_hnsw_rs -- DIR [ef,ef,..]`

use std::path::PathBuf;
use std::time::Instant;

use hnsw_rs::prelude::{Distance, Hnsw};
use quiver_index::bench::{read_fvecs, read_ivecs};
use quiver_index::{Metric, score};

#[derive(Default, Clone, Copy)]
struct SimdL2;

impl Distance<f32> for SimdL2 {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        score(Metric::L2, a, b)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(
        args.first()
            .map_or("/work/shared/datasets/glove50-100k", String::as_str),
    );
    let efs = args.get(1).map_or("40,80,160", String::as_str);
    let efs = efs
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<usize>, _>>()?;
    let (dim, base) = read_fvecs(dir.join("base.fvecs"))?;
    let (_, queries) = read_fvecs(dir.join("query.fvecs"))?;
    let (gdim, gt) = read_ivecs(dir.join("groundtruth.ivecs"))?;
    let n = base.len() / dim;
    let hnsw = Hnsw::<f32, SimdL2>::new(16, n, 16, 200, SimdL2);
    let data: Vec<(&[f32], usize)> = base
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| (v, i))
        .collect();
    let t = Instant::now();
    hnsw.parallel_insert_slice(&data);
    println!(
        "hnsw_rs build_s {:.2} (rayon threads {})",
        t.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    let nq = queries.len() / dim;
    for _round in 0..2 {
        for &ef in &efs {
            for q in queries.chunks_exact(dim).take(100) {
                std::hint::black_box(hnsw.search(q, 10, ef));
            }
            let (mut hits, mut lat) = (0usize, Vec::with_capacity(nq));
            let t0 = Instant::now();
            for (i, q) in queries.chunks_exact(dim).enumerate() {
                let t = Instant::now();
                let res = hnsw.search(q, 10, ef);
                lat.push(t.elapsed().as_secs_f64() * 1e6);
                let truth = &gt[i * gdim..i * gdim + 10];
                hits += res
                    .iter()
                    .filter(|r| truth.contains(&(r.d_id as i32)))
                    .count();
            }
            let wall = t0.elapsed().as_secs_f64();
            lat.sort_by(f64::total_cmp);
            println!(
                "hnsw_rs ef {ef:4} recall {:.4} qps {:8.0} p50_us {:7.1} p99_us {:7.1}",
                hits as f64 / (nq * 10) as f64,
                nq as f64 / wall,
                lat[nq / 2],
                lat[nq * 99 / 100]
            );
        }
    }
    Ok(())
}
