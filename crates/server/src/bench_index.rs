//! `quiver bench index`: the index alone over TEXMEX files.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use quiver_common::Metric;
use quiver_index::Construction;
use quiver_index::bench::{BenchIndex, BuildReport, EfReport, IndexBenchConfig, run};

#[derive(Debug, Args)]
pub struct IndexBenchArgs {
    /// Base vectors (.fvecs).
    #[arg(long)]
    base: PathBuf,
    /// Query vectors (.fvecs).
    #[arg(long)]
    query: PathBuf,
    /// Ground-truth neighbour ids (.ivecs, nearest first).
    #[arg(long)]
    gt: PathBuf,
    /// hnsw (over the f32 vectors) or hnsw_sq (over 8-bit codes, re-ranked
    /// with the f32 vectors).
    #[arg(long, default_value = "hnsw")]
    index: String,
    /// l2, ip or cosine.
    #[arg(long, default_value = "l2")]
    metric: String,
    #[arg(long, default_value_t = 10)]
    k: usize,
    #[arg(long, default_value_t = 16)]
    m: usize,
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// Comma-separated search beam widths.
    #[arg(long, value_delimiter = ',', default_value = "40,80,160")]
    ef: Vec<usize>,
    /// Threads for the build and for the queries (batch size 1 each).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Threads for the queries only (default: --threads), e.g. a build on
    /// 2 threads measured on 1.
    #[arg(long)]
    search_threads: Option<usize>,
    /// Milvus's refine_k (>= 1): hnsw_sq re-ranks ceil(refine_k x k) rows of
    /// its beam exactly instead of max(4k, k+32); hnsw ignores it.
    #[arg(long)]
    refine_k: Option<f32>,
    /// Keep the graph in this file: loaded when it exists (instead of a
    /// build; the report then says `loaded`), written after the build when
    /// it does not. For search passes that alternate with another index's.
    #[arg(long)]
    graph: Option<PathBuf>,
    /// Choose an hnsw graph's links by exact f32 distances, not by
    /// temporary 8-bit codes (the default when the codes keep the rows
    /// apart; see crates/index/README.md).
    #[arg(long)]
    exact_links: bool,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run_cli(args: IndexBenchArgs) -> Result<()> {
    let metric = Metric::parse(&args.metric).map_err(|e| anyhow::anyhow!("--metric: {e}"))?;
    let index = BenchIndex::parse(&args.index).map_err(|e| anyhow::anyhow!("--index: {e}"))?;
    if args.k == 0
        || args.m < 2
        || args.ef_construction == 0
        || args.threads == 0
        || args.search_threads == Some(0)
    {
        anyhow::bail!(
            "--k, --ef-construction, --threads and --search-threads must be > 0 and --m >= 2"
        );
    }
    if args.ef.is_empty() || args.ef.contains(&0) {
        anyhow::bail!("--ef needs one or more positive values");
    }
    if let Some(r) = args.refine_k.filter(|r| !(r.is_finite() && *r >= 1.0)) {
        anyhow::bail!("--refine-k must be a number >= 1, got {r}");
    }
    let cfg = IndexBenchConfig {
        index,
        base: args.base,
        query: args.query,
        gt: args.gt,
        metric,
        k: args.k,
        m: args.m,
        ef_construction: args.ef_construction,
        efs: args.ef,
        threads: args.threads,
        search_threads: args.search_threads,
        refine_k: args.refine_k,
        graph: args.graph,
        construction: if args.exact_links {
            Construction::Exact
        } else {
            Construction::Auto
        },
    };
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template(&format!(
                "building {} {{bar:40}} {{pos}}/{{len}} ({{per_sec}}, eta {{eta}})",
                index.name()
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
    let out = std::io::stdout();
    let json = args.json;
    let refine = match args.refine_k {
        Some(r) => format!(
            "refine_k {r}: at least {} rows re-ranked a query (hnsw_sq)\n",
            quiver_index::bench::rerank_rows(Some(r), args.k)
        ),
        None => String::new(),
    };
    let mut on_build = |b: &BuildReport| {
        bar.finish_and_clear();
        let mut o = out.lock();
        if json {
            let _ = writeln!(o, "{}", serde_json::to_string(b).unwrap_or_default());
        } else {
            let raw = match b.index {
                BenchIndex::Hnsw => "resident",
                BenchIndex::HnswSq => "read only to re-rank",
            };
            let _ = writeln!(
                o,
                "{} {} {} x {} in {:.2} s{} (index {:.1} MiB)\n\
                 bytes per vector: {:.1} resident (index {:.1}; f32 vector {:.0}, {raw})\n{refine}\n\
                 {:>6} {:>8} {:>10} {:>9} {:>9}",
                if b.loaded { "loaded" } else { "built" },
                b.index.name(),
                b.n,
                b.dim,
                b.build_s,
                b.links
                    .map(|l| format!(", links by {l} distances"))
                    .unwrap_or_default(),
                b.index_bytes as f64 / (1 << 20) as f64,
                b.resident_bytes_per_vector,
                b.index_bytes_per_vector,
                b.raw_bytes_per_vector,
                "ef",
                "recall",
                "qps",
                "p50_us",
                "p99_us"
            );
        }
    };
    let mut on_ef = |e: &EfReport| {
        let mut o = out.lock();
        if json {
            let _ = writeln!(o, "{}", serde_json::to_string(e).unwrap_or_default());
        } else {
            let _ = writeln!(
                o,
                "{:>6} {:>8.4} {:>10.0} {:>9.1} {:>9.1}",
                e.ef, e.recall, e.qps, e.p50_us, e.p99_us
            );
        }
    };
    run(
        &cfg,
        &|done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
        &mut on_build,
        &mut on_ef,
    )
    .context("index benchmark")
}
