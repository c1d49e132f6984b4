//! bench::run and the vecs readers on the checked-in glove50-10k data.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use quiver_index::Metric;
use quiver_index::bench::{BenchIndex, IndexBenchConfig, read_fvecs, read_ivecs, run};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/glove50-10k");

/// `index` over glove50-10k: k 10, m 16, efC 100, ef 64, 2 threads.
fn config(index: BenchIndex) -> IndexBenchConfig {
    IndexBenchConfig {
        index,
        base: PathBuf::from(format!("{DATA}/base.fvecs")),
        query: PathBuf::from(format!("{DATA}/query.fvecs")),
        gt: PathBuf::from(format!("{DATA}/groundtruth.ivecs")),
        metric: Metric::L2,
        k: 10,
        m: 16,
        ef_construction: 100,
        efs: vec![64],
        threads: 2,
        search_threads: None,
        refine_k: None,
        graph: None,
        construction: quiver_index::Construction::Auto,
    }
}

#[test]
fn readers_parse_the_test_data() {
    let (dim, base) = read_fvecs(format!("{DATA}/base.fvecs")).expect("base");
    assert_eq!((dim, base.len()), (50, 500_000));
    // Rows are unit vectors.
    let norm: f32 = base[..50].iter().map(|x| x * x).sum();
    assert!((norm - 1.0).abs() < 1e-4);
    let (gdim, gt) = read_ivecs(format!("{DATA}/groundtruth.ivecs")).expect("gt");
    assert_eq!((gdim, gt.len()), (100, 10_000));
    assert!(gt.iter().all(|&id| (0..10_000).contains(&id)));
}

#[test]
fn readers_reject_bad_files() {
    let dir = std::env::temp_dir().join(format!("quiver-index-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let bytes = std::fs::read(format!("{DATA}/query.fvecs")).expect("read");
    let truncated = dir.join("truncated.fvecs");
    std::fs::write(&truncated, &bytes[..bytes.len() - 3]).expect("write");
    assert!(read_fvecs(&truncated).is_err());
    let mut mixed = bytes[..204].to_vec();
    mixed.extend_from_slice(&3i32.to_le_bytes());
    mixed.extend_from_slice(&[0u8; 12]);
    let mixed_path = dir.join("mixed.fvecs");
    std::fs::write(&mixed_path, &mixed).expect("write");
    assert!(read_fvecs(&mixed_path).is_err(), "dimension change");
    let negative = dir.join("negative.ivecs");
    std::fs::write(&negative, (-1i32).to_le_bytes()).expect("write");
    assert!(read_ivecs(&negative).is_err());
    assert!(read_fvecs(dir.join("missing.fvecs")).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_reports_build_and_recall() {
    // Built on 2 threads, queried on 1 (and the report says so).
    let cfg = IndexBenchConfig {
        efs: vec![16, 64],
        search_threads: Some(1),
        ..config(BenchIndex::Hnsw)
    };
    let last_progress = AtomicUsize::new(0);
    let (mut builds, mut efs) = (Vec::new(), Vec::new());
    run(
        &cfg,
        &|done, total| {
            assert_eq!(total, 10_000);
            last_progress.fetch_max(done, Ordering::Relaxed);
        },
        &mut |b| builds.push(b.clone()),
        &mut |e| efs.push(e.clone()),
    )
    .expect("run");
    assert_eq!(last_progress.load(Ordering::Relaxed), 10_000);
    assert_eq!(builds.len(), 1);
    assert_eq!((builds[0].n, builds[0].dim), (10_000, 50));
    assert!(builds[0].build_s > 0.0 && builds[0].index_bytes > 10_000 * 33 * 4);
    // An f32 graph needs its vectors resident.
    let b = &builds[0];
    assert_eq!(b.raw_bytes_per_vector, 200.0);
    assert_eq!(b.index_bytes_per_vector, b.index_bytes as f64 / 10_000.0);
    assert_eq!(
        b.resident_bytes_per_vector,
        b.index_bytes_per_vector + b.raw_bytes_per_vector
    );
    assert_eq!(efs.iter().map(|e| e.ef).collect::<Vec<_>>(), vec![16, 64]);
    assert!(efs[1].recall >= 0.95, "recall {}", efs[1].recall);
    assert!(efs[0].recall <= efs[1].recall);
    assert!(
        efs.iter()
            .all(|e| e.qps > 0.0 && e.p50_us > 0.0 && e.p99_us >= e.p50_us)
    );
    assert!(efs.iter().all(|e| e.search_threads == Some(1)));
    let json = serde_json::to_string(&efs[0]).expect("json");
    assert!(json.contains("\"search_threads\":1"), "{json}");
    // 10,000 rows the codes keep apart: linked over codes, unless asked not to.
    let json = serde_json::to_string(b).expect("json");
    assert!(json.contains("\"links\":\"codes\""), "{json}");
    let mut exact = Vec::new();
    let cfg = IndexBenchConfig {
        construction: quiver_index::Construction::Exact,
        efs: vec![64],
        ..cfg
    };
    run(
        &cfg,
        &|_, _| {},
        &mut |b| exact.push(b.clone()),
        &mut |_| {},
    )
    .expect("run");
    assert_eq!(exact[0].links, Some("exact"));
}

#[test]
fn run_hnsw_sq_reports_codes_resident_and_vectors_apart() {
    let cfg = config(BenchIndex::parse("HNSW_SQ").expect("parse"));
    let (mut builds, mut efs) = (Vec::new(), Vec::new());
    run(
        &cfg,
        &|_, _| {},
        &mut |b| builds.push(b.clone()),
        &mut |e| efs.push(e.clone()),
    )
    .expect("run");
    let b = &builds[0];
    assert_eq!(b.index, BenchIndex::HnswSq);
    assert_eq!(b.raw_bytes_per_vector, 200.0);
    assert_eq!(b.resident_bytes_per_vector, b.index_bytes_per_vector);
    // Graph (about 33 words a row) plus 64 bytes of padded codes.
    assert!(b.index_bytes_per_vector > 33.0 * 4.0 + 64.0);
    assert!(b.index_bytes_per_vector < 33.0 * 4.0 + 64.0 + 40.0);
    let json = serde_json::to_string(b).expect("json");
    assert!(json.contains("\"index\":\"hnsw_sq\""), "{json}");
    assert!(efs[0].recall >= 0.95, "recall {}", efs[0].recall);
    assert!(BenchIndex::parse("ivf").is_err());
    let json = serde_json::to_string(&efs[0]).expect("json");
    assert!(
        !json.contains("refine_k") && !json.contains("search_threads"),
        "no refine_k or search threads asked, none echoed: {json}"
    );
}

/// `refine_k` reaches the index: at a beam of 10 an 8-bit graph re-ranks
/// `max(4k, k + 32)` = 42 rows by default; refine_k 20 re-ranks 200, its
/// beam widened to hold them, so it finds more of the true top 10. The
/// report echoes what was asked.
#[test]
fn run_hnsw_sq_re_ranks_as_deep_as_refine_k_asks() {
    let mut cfg = IndexBenchConfig {
        m: 8,
        ef_construction: 40,
        efs: vec![10],
        ..config(BenchIndex::HnswSq)
    };
    let mut recall = |refine_k: Option<f32>| {
        cfg.refine_k = refine_k;
        let mut efs = Vec::new();
        run(&cfg, &|_, _| {}, &mut |_| {}, &mut |e| efs.push(e.clone())).expect("run");
        assert_eq!(efs.len(), 1);
        assert_eq!(efs[0].refine_k, refine_k);
        efs[0].recall
    };
    let (default, deep) = (recall(None), recall(Some(20.0)));
    assert!(
        deep > default + 0.02 && deep >= 0.97,
        "refine_k 20 recall {deep}, default {default}"
    );
    assert_eq!(quiver_index::bench::rerank_rows(Some(2.5), 10), 25);
    assert_eq!(quiver_index::bench::rerank_rows(None, 10), 0);
}

/// A graph kept in a file is written by the first run and loaded by the
/// next, which then searches exactly as the first did (same recall at
/// every ef); a file that is not the graph asked for is refused, naming
/// what it holds.
#[test]
fn a_kept_graph_is_loaded_and_searches_as_the_one_built() {
    let dir = std::env::temp_dir().join(format!("quiver-index-graph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("g.bin");
    let cfg = IndexBenchConfig {
        efs: vec![16, 64],
        graph: Some(path.clone()),
        ..config(BenchIndex::HnswSq)
    };
    let pass = |cfg: &IndexBenchConfig| {
        let (mut builds, mut efs) = (Vec::new(), Vec::new());
        run(cfg, &|_, _| {}, &mut |b| builds.push(b.clone()), &mut |e| {
            efs.push(e.clone())
        })
        .map(|()| (builds, efs))
    };
    let (built, first) = pass(&cfg).expect("build");
    assert!(!built[0].loaded && path.exists());
    let (loaded, second) = pass(&cfg).expect("load");
    assert!(loaded[0].loaded);
    assert_eq!(loaded[0].index_bytes, built[0].index_bytes);
    let recalls =
        |e: &[quiver_index::bench::EfReport]| e.iter().map(|e| e.recall).collect::<Vec<_>>();
    assert_eq!(recalls(&second), recalls(&first));
    let json = serde_json::to_string(&loaded[0]).expect("json");
    assert!(json.contains("\"loaded\":true"), "{json}");
    // A graph file does not record what its links were chosen by.
    assert_eq!((built[0].links, loaded[0].links), (Some("codes"), None));
    assert!(!json.contains("links"), "{json}");
    assert!(
        !serde_json::to_string(&built[0])
            .expect("json")
            .contains("loaded")
    );
    // The f32 kind, or another m, over the same file: refused.
    let err = pass(&IndexBenchConfig {
        index: BenchIndex::Hnsw,
        ..cfg.clone()
    })
    .expect_err("an hnsw_sq graph is not an hnsw one")
    .to_string();
    assert!(
        err.contains("hnsw_sq") && err.contains("delete it"),
        "{err}"
    );
    assert!(
        pass(&IndexBenchConfig {
            m: 8,
            ..cfg.clone()
        })
        .is_err()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
