//! Synchronous helpers for the `quiver bench index` command: TEXMEX vecs
//! readers and a build + search benchmark with recall against ground truth.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use quiver_common::{Metric, VectorsRef};
use serde::Serialize;

use crate::error::{IndexError, Result};
use crate::hnsw::{Construction, HnswIndex, HnswParams};

fn read_vecs<T>(path: &Path, conv: fn([u8; 4]) -> T) -> Result<(usize, Vec<T>)> {
    let bytes = std::fs::read(path).map_err(|source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |msg: String| IndexError::Format(format!("{}: {msg}", path.display()));
    let word =
        |at: usize| -> Option<[u8; 4]> { bytes.get(at..at + 4).and_then(|s| s.try_into().ok()) };
    let mut out = Vec::new();
    let (mut at, mut dim) = (0usize, None);
    while at < bytes.len() {
        let d = word(at)
            .map(i32::from_le_bytes)
            .ok_or_else(|| bad(format!("truncated record at byte {at}")))?;
        let d = usize::try_from(d)
            .ok()
            .filter(|&d| d > 0)
            .ok_or_else(|| bad(format!("bad dimension {d}")))?;
        if *dim.get_or_insert(d) != d {
            return Err(bad(format!("dimension changes to {d} at byte {at}")));
        }
        let end = at + 4 + 4 * d;
        if end > bytes.len() {
            return Err(bad(format!("truncated record at byte {at}")));
        }
        out.extend((at + 4..end).step_by(4).filter_map(word).map(conv));
        at = end;
    }
    Ok((dim.unwrap_or(0), out))
}

/// Reads a `.fvecs` file: (dimension, row-major floats).
pub fn read_fvecs(path: impl AsRef<Path>) -> Result<(usize, Vec<f32>)> {
    read_vecs(path.as_ref(), f32::from_le_bytes)
}

/// Reads an `.ivecs` file: (dimension, row-major ints).
pub fn read_ivecs(path: impl AsRef<Path>) -> Result<(usize, Vec<i32>)> {
    read_vecs(path.as_ref(), i32::from_le_bytes)
}

/// Which index `run` builds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchIndex {
    /// HNSW over the f32 vectors (they must stay resident).
    #[default]
    Hnsw,
    /// HNSW over 8-bit codes, re-ranked with the f32 vectors
    /// ([`HnswIndex::build_sq`]).
    HnswSq,
}

impl BenchIndex {
    /// `hnsw` or `hnsw_sq`.
    pub fn parse(s: &str) -> Result<BenchIndex> {
        match s.to_ascii_lowercase().as_str() {
            "hnsw" => Ok(BenchIndex::Hnsw),
            "hnsw_sq" => Ok(BenchIndex::HnswSq),
            other => Err(IndexError::InvalidArgument(format!(
                "unknown index {other:?} (hnsw or hnsw_sq)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BenchIndex::Hnsw => "hnsw",
            BenchIndex::HnswSq => "hnsw_sq",
        }
    }
}

/// What to benchmark. The build uses `threads` threads, the queries
/// `search_threads` (`threads` when None).
#[derive(Clone, Debug)]
pub struct IndexBenchConfig {
    pub index: BenchIndex,
    pub base: PathBuf,
    pub query: PathBuf,
    pub gt: PathBuf,
    pub metric: Metric,
    pub k: usize,
    pub m: usize,
    pub ef_construction: usize,
    pub efs: Vec<usize>,
    pub threads: usize,
    pub search_threads: Option<usize>,
    /// Milvus's `refine_k`: an 8-bit graph re-ranks `ceil(refine_k × k)`
    /// rows of its beam exactly (at least `max(4k, k + 32)`); `None` keeps
    /// that default. An f32 graph ignores it.
    pub refine_k: Option<f32>,
    /// Keep the graph in this file: when it exists it is loaded instead of
    /// built (it must be the same kind of index over the same rows, dim and
    /// metric), otherwise the graph built is written there. Lets search
    /// passes of two indexes alternate without rebuilding either.
    pub graph: Option<PathBuf>,
    /// How an `hnsw` graph's links are chosen (`hnsw_sq` always uses its
    /// codes).
    pub construction: Construction,
}

#[derive(Clone, Debug, Serialize)]
pub struct BuildReport {
    /// Seconds the build took (the load, when `loaded`).
    pub build_s: f64,
    /// The graph was read from [`IndexBenchConfig::graph`], not built.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub loaded: bool,
    /// What the links were chosen by, `codes` or `exact` (absent when
    /// `loaded`: a graph file does not record it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<&'static str>,
    /// Seconds coding the rows along their principal axes took after the
    /// build or load ([`HnswIndex::project`], as a querynode loading the
    /// graph does); absent when the codes were not projected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_s: Option<f64>,
    pub n: usize,
    pub dim: usize,
    /// The index's own memory (`HnswIndex::memory_bytes`: graph, and codes
    /// for `hnsw_sq`; vectors excluded).
    pub index_bytes: usize,
    pub index: BenchIndex,
    /// `index_bytes / n`.
    pub index_bytes_per_vector: f64,
    /// What must stay in memory per vector to search at full speed: the
    /// index, plus the f32 vectors for `hnsw` (every visited row is read).
    /// `hnsw_sq` reads the vectors only to re-rank `max(ef, k)` rows a
    /// query, so they can stay on disk (memory-mapped).
    pub resident_bytes_per_vector: f64,
    /// Size of one f32 vector (`4 * dim`), resident for `hnsw` only.
    pub raw_bytes_per_vector: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct EfReport {
    pub ef: usize,
    /// The threads the queries ran on, when asked apart from the build's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_threads: Option<usize>,
    /// The `refine_k` the queries asked for (absent when none was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refine_k: Option<f32>,
    pub recall: f64,
    pub qps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Builds the index `cfg.index` over `cfg.base`, then for every ef runs all queries
/// (batch size 1, on `cfg.search_threads` threads) and reports recall@k against the
/// first k ground-truth ids, queries/s (queries / wall time) and latency
/// percentiles. `progress(done, total)` reports build progress.
pub fn run(
    cfg: &IndexBenchConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
    on_build: &mut dyn FnMut(&BuildReport),
    on_ef: &mut dyn FnMut(&EfReport),
) -> Result<()> {
    let (dim, base) = read_fvecs(&cfg.base)?;
    let (qdim, queries) = read_fvecs(&cfg.query)?;
    let (gdim, gt) = read_ivecs(&cfg.gt)?;
    if dim != qdim || dim == 0 {
        return Err(IndexError::Format(format!(
            "base dim {dim} != query dim {qdim}"
        )));
    }
    let nq = queries.len() / dim;
    if gdim < cfg.k || gt.len() / gdim.max(1) < nq {
        return Err(IndexError::Format(format!(
            "ground truth has {gdim} ids per query, fewer than k or queries"
        )));
    }
    let n = base.len() / dim;
    let params = HnswParams {
        m: cfg.m,
        ef_construction: cfg.ef_construction,
        construction: cfg.construction,
        ..HnswParams::default()
    };
    let t = Instant::now();
    let base = VectorsRef::f32(dim, &base);
    let (index, loaded) = match cfg.graph.as_deref().filter(|p| p.exists()) {
        Some(path) => (load_graph(path, cfg, n, dim)?, true),
        None => {
            let build = match cfg.index {
                BenchIndex::Hnsw => HnswIndex::build,
                BenchIndex::HnswSq => HnswIndex::build_sq,
            };
            let index = build(base, cfg.metric, &params, cfg.threads, &|done| {
                progress(done, n)
            })?;
            (index, false)
        }
    };
    let build_s = t.elapsed().as_secs_f64();
    if let Some(path) = cfg.graph.as_deref().filter(|_| !loaded) {
        save_graph(path, &index)?;
    }
    // What a querynode does when it loads the graph.
    let mut index = index;
    let t = Instant::now();
    let projected = index.project(base)?;
    let project_s = projected.then(|| t.elapsed().as_secs_f64());
    let report = build_report(cfg.index, &index, build_s);
    on_build(&BuildReport {
        loaded,
        links: report.links.filter(|_| !loaded),
        project_s,
        ..report
    });
    let set = QuerySet {
        queries: &queries,
        gt: &gt,
        gdim,
        k: cfg.k,
        threads: cfg.search_threads.unwrap_or(cfg.threads),
    };
    for &ef in &cfg.efs {
        on_ef(&EfReport {
            search_threads: cfg.search_threads,
            ..measure_ef(&index, base, &set, ef, cfg.refine_k)
        });
    }
    Ok(())
}

/// A graph [`run`] wrote earlier, checked against what `cfg` asks for.
fn load_graph(path: &Path, cfg: &IndexBenchConfig, n: usize, dim: usize) -> Result<HnswIndex> {
    let bytes = std::fs::read(path).map_err(|source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let index = HnswIndex::from_bytes(&bytes)?;
    let want_sq = cfg.index == BenchIndex::HnswSq;
    if index.len() != n
        || index.dim() != dim
        || index.metric() != cfg.metric
        || index.is_quantized() != want_sq
        || index.params().0 != cfg.m
    {
        return Err(IndexError::Format(format!(
            "{}: a graph of {} rows x {} ({:?}, {}, m {}) is not the {} x {dim} {:?} {} graph of m {} asked for; \
             delete it to build again",
            path.display(),
            index.len(),
            index.dim(),
            index.metric(),
            if index.is_quantized() {
                "hnsw_sq"
            } else {
                "hnsw"
            },
            index.params().0,
            n,
            cfg.metric,
            cfg.index.name(),
            cfg.m,
        )));
    }
    Ok(index)
}

/// Writes `index` to `path` whole or not at all (a temporary file renamed).
fn save_graph(path: &Path, index: &HnswIndex) -> Result<()> {
    let io = |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, index.to_bytes()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Queries with their ground truth, run at batch size 1 on `threads` threads.
#[derive(Clone, Copy, Debug)]
pub struct QuerySet<'a> {
    /// Row-major, `dim` floats a query.
    pub queries: &'a [f32],
    /// `gdim` ids per query, nearest first.
    pub gt: &'a [i32],
    pub gdim: usize,
    /// Recall is recall@k.
    pub k: usize,
    pub threads: usize,
}

/// The rows an 8-bit graph re-ranks for `refine_k` at top-`k`
/// ([`crate::refine_k_rows`]); 0 (the index's default) for `None`.
pub fn rerank_rows(refine_k: Option<f32>, k: usize) -> usize {
    refine_k.map_or(0, |r| crate::refine_k_rows(r, k))
}

/// The build figures of `index`, built as `kind` in `build_s` seconds.
pub fn build_report(kind: BenchIndex, index: &HnswIndex, build_s: f64) -> BuildReport {
    let (n, dim) = (index.len(), index.dim());
    let per = |bytes: usize| bytes as f64 / n.max(1) as f64;
    let index_bytes = index.memory_bytes();
    let raw = 4.0 * dim as f64;
    let resident = match kind {
        BenchIndex::Hnsw => per(index_bytes) + raw,
        BenchIndex::HnswSq => per(index_bytes),
    };
    BuildReport {
        build_s,
        loaded: false,
        project_s: None,
        links: Some(if index.built_over_codes() {
            "codes"
        } else {
            "exact"
        }),
        n,
        dim,
        index_bytes,
        index: kind,
        index_bytes_per_vector: per(index_bytes),
        resident_bytes_per_vector: resident,
        raw_bytes_per_vector: raw,
    }
}

/// Runs every query of `set` once at beam width `ef` (re-ranking as deep as
/// `refine_k` asks, see [`rerank_rows`]), after a short warm-up, and scores
/// recall@k against its ground truth.
pub fn measure_ef(
    index: &HnswIndex,
    base: VectorsRef<'_>,
    set: &QuerySet<'_>,
    ef: usize,
    refine_k: Option<f32>,
) -> EfReport {
    let dim = index.dim();
    let nq = set.queries.len() / dim;
    let rerank = rerank_rows(refine_k, set.k);
    for q in set.queries.chunks_exact(dim).take(100) {
        std::hint::black_box(index.search_refined(base, q, set.k, ef, rerank, None));
    }
    let (hits, mut lat, wall) = run_queries(index, base, set, ef, rerank);
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)));
    let us = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e6);
    EfReport {
        ef,
        search_threads: None,
        refine_k,
        recall: hits as f64 / (nq * set.k).max(1) as f64,
        qps: nq as f64 / wall.as_secs_f64(),
        p50_us: us(pct(0.50)),
        p99_us: us(pct(0.99)),
    }
}

/// Runs every query once; returns (ground-truth hits, latencies, wall time).
fn run_queries(
    index: &HnswIndex,
    base: VectorsRef<'_>,
    set: &QuerySet<'_>,
    ef: usize,
    rerank: usize,
) -> (usize, Vec<Duration>, Duration) {
    let (dim, k, gdim) = (index.dim(), set.k, set.gdim);
    let nq = set.queries.len() / dim;
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let per_thread: Vec<(usize, Vec<Duration>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..set.threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let (mut hits, mut lat) = (0usize, Vec::new());
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= nq {
                            break;
                        }
                        let t = Instant::now();
                        let q = &set.queries[i * dim..(i + 1) * dim];
                        let res = index.search_refined(base, q, k, ef, rerank, None);
                        lat.push(t.elapsed());
                        let truth = &set.gt[i * gdim..i * gdim + k];
                        hits += res
                            .iter()
                            .filter(|r| truth.contains(&(r.id as i32)))
                            .count();
                    }
                    (hits, lat)
                })
            })
            .collect();
        workers.into_iter().filter_map(|w| w.join().ok()).collect()
    });
    let wall = start.elapsed();
    let hits = per_thread.iter().map(|p| p.0).sum();
    let lat = per_thread.into_iter().flat_map(|p| p.1).collect();
    (hits, lat, wall)
}
