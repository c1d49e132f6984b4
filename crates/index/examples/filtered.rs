//! Filtered graph search on a TEXMEX set: recall against the exact
//! filtered top-10 and q/s, for filters of several shares of the rows.
//!
//! `cargo run --release -p quiver-index --example filtered -- DIR [graph file] [ef,ef,..]`

use std::path::PathBuf;
use std::time::Instant;

use quiver_common::VectorsRef;
use quiver_index::bench::read_fvecs;
use quiver_index::{FnFilter, HnswIndex, HnswParams, Metric, RowFilter, flat_search};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let dir = PathBuf::from(arg(0, "/work/shared/datasets/glove50-100k"));
    let graph = PathBuf::from(arg(1, "/tmp/filtered-graph.bin"));
    let efs = arg(2, "40,80,160")
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<usize>, _>>()?;
    let (dim, base) = read_fvecs(dir.join("base.fvecs"))?;
    let (_, queries) = read_fvecs(dir.join("query.fvecs"))?;
    let vectors = VectorsRef::f32(dim, &base);
    let n = base.len() / dim;
    let index = match std::fs::read(&graph) {
        Ok(b) => HnswIndex::from_bytes(&b)?,
        Err(_) => {
            let params = HnswParams {
                m: 16,
                ef_construction: 200,
                ..Default::default()
            };
            let index = HnswIndex::build(vectors, Metric::L2, &params, 2, &|_| {})?;
            std::fs::write(&graph, index.to_bytes())?;
            index
        }
    };
    // Categories 0..100, shuffled (a xorshift permutation of i % 100).
    let mut cat: Vec<u8> = (0..n).map(|i| (i % 100) as u8).collect();
    let mut s = 0x9e3779b97f4a7c15u64;
    for i in (1..n).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        cat.swap(i, (s % (i as u64 + 1)) as usize);
    }
    // A filter that follows the vectors: the first coordinate above its
    // median-ish threshold.
    let mut first: Vec<f32> = base.chunks_exact(dim).map(|r| r[0]).collect();
    first.sort_by(f32::total_cmp);
    let median = first[n / 2];
    let k = 10;
    let nq = queries.len() / dim;
    for (name, share) in [
        ("all", 100u8),
        ("cat<10", 10u8),
        ("cat<20", 20),
        ("cat<30", 30),
        ("cat<50", 50),
        ("cat<80", 80),
        ("x0>median", 0),
    ] {
        let allows = |id: u32| {
            if share == 0 {
                base[id as usize * dim] > median
            } else {
                cat[id as usize] < share
            }
        };
        let filter = FnFilter(allows);
        let truth: Vec<Vec<u32>> = queries
            .chunks_exact(dim)
            .map(|q| {
                flat_search(vectors, Metric::L2, q, k, Some(&filter as &dyn RowFilter))
                    .iter()
                    .map(|h| h.id)
                    .collect()
            })
            .collect();
        for &ef in &efs {
            for _round in 0..2 {
                let t = Instant::now();
                let mut found = 0;
                for (q, want) in queries.chunks_exact(dim).zip(&truth) {
                    let f = (share < 100).then_some(&filter as &dyn RowFilter);
                    let got = index.search(vectors, q, k, ef, f);
                    found += got.iter().filter(|h| want.contains(&h.id)).count();
                }
                let secs = t.elapsed().as_secs_f64();
                println!(
                    "{name:10} ef {ef:4} recall {:.4} qps {:8.0}",
                    found as f64 / (nq * k) as f64,
                    nq as f64 / secs
                );
            }
        }
    }
    Ok(())
}
