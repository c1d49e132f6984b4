use std::path::PathBuf;
use std::time::Instant;

use quiver_common::VectorsRef;
use quiver_index::bench::{measure_ef, read_fvecs, read_ivecs};
use quiver_index::{HnswIndex, HnswParams, Metric};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(&args[0]);
    let sq = args.get(1).is_some_and(|s| s == "sq");
    let efs: Vec<usize> = args
        .get(2)
        .map(|s| s.split(',').map(|x| x.parse().unwrap()).collect())
        .unwrap_or(vec![80, 120, 160]);
    let (dim, mut base) = read_fvecs(dir.join("base.fvecs"))?;
    if std::env::var("HUGE").is_ok() {
        let mut v: Vec<f32> = Vec::with_capacity(base.len() + 1024 * 1024);
        let p = v.as_mut_ptr() as usize;
        let aligned = (p + (2 << 20) - 1) & !((2 << 20) - 1);
        unsafe {
            libc::madvise(
                aligned as *mut libc::c_void,
                base.len() * 4,
                libc::MADV_HUGEPAGE,
            )
        };
        v.extend_from_slice(&base);
        base = v;
    }
    let (_, queries) = read_fvecs(dir.join("query.fvecs"))?;
    let (gdim, gt) = read_ivecs(dir.join("groundtruth.ivecs"))?;
    if let Ok(t) = std::env::var("BUILD") {
        let t0 = Instant::now();
        let p = HnswParams::default();
        let v = VectorsRef::f32(dim, &base);
        let threads: usize = t.parse().unwrap_or(1);
        let i = if sq {
            HnswIndex::build_sq(v, Metric::L2, &p, threads, &|_| {})?
        } else {
            HnswIndex::build(v, Metric::L2, &p, threads, &|_| {})?
        };
        let secs = t0.elapsed().as_secs_f64();
        let e = measure_ef(
            &i,
            VectorsRef::f32(dim, &base),
            &queries,
            &gt,
            gdim,
            10,
            100,
            1,
        );
        println!(
            "build {secs:.2}s recall@ef100 {:.4} qps {:.0}",
            e.recall, e.qps
        );
        return Ok(());
    }
    let cache = dir.join(if sq { "cache-sq.idx" } else { "cache.idx" });
    let index = if let Ok(b) = std::fs::read(&cache) {
        HnswIndex::from_bytes(&b)?
    } else {
        let t = Instant::now();
        let p = HnswParams::default();
        let v = VectorsRef::f32(dim, &base);
        let i = if sq {
            HnswIndex::build_sq(v, Metric::L2, &p, 2, &|_| {})?
        } else {
            HnswIndex::build(v, Metric::L2, &p, 2, &|_| {})?
        };
        println!("build {:.1}s", t.elapsed().as_secs_f64());
        std::fs::write(&cache, i.to_bytes())?;
        i
    };
    if let Ok(t) = std::fs::read_to_string("/proc/self/smaps_rollup") {
        for l in t
            .lines()
            .filter(|l| l.contains("AnonHuge") || l.starts_with("Rss"))
        {
            println!("{l}");
        }
    }
    for _round in 0..3 {
        for &ef in &efs {
            let e = measure_ef(
                &index,
                VectorsRef::f32(dim, &base),
                &queries,
                &gt,
                gdim,
                10,
                ef,
                1,
            );
            println!(
                "ef {:4} recall {:.4} qps {:8.0} p50_us {:7.1}",
                e.ef, e.recall, e.qps, e.p50_us
            );
        }
    }
    Ok(())
}
