//! `quiver bench ingest`: durable ingest through the whole engine (front door
//! -> datanode WAL with fsync -> querynode), at full speed or at a set rate,
//! the latency from an insert's acknowledgement to a search that returns it
//! (during the ingest, while graphs are built, and after), the latency of
//! searches during the ingest (seals and hand-offs included), how long the
//! graphs take to catch up, and the memory of a fresh process serving the
//! indexed data.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use quiver_common::{Metric, PrimaryKey, RowBatch};
use quiver_index::bench::read_fvecs;
use quiver_proxy::{Consistency, Proxy};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use quiver_roles::{Standalone, StandaloneConfig};

use crate::bench_util::{
    COLLECTION, ProbeWrite, create_collection, percentile, probe, proc_status_bytes, report,
    rss_bytes, search_latencies, search_request,
};

#[derive(Debug, Args)]
pub struct IngestBenchArgs {
    /// Vectors to ingest (.fvecs).
    #[arg(long)]
    base: PathBuf,
    /// Rows per insert.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Insert -> search probes after the ingest.
    #[arg(long, default_value_t = 500)]
    probes: usize,
    /// Rows per second to ingest at (0: as fast as inserts are acknowledged).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// During the ingest, one insert -> search probe every this many ms
    /// (0: none).
    #[arg(long, default_value_t = 20)]
    probe_every_ms: u64,
    /// During the ingest, one eventually consistent top-10 search every
    /// this many ms, its latency reported (0: none): what a reader waits
    /// while segments are sealed and handed off.
    #[arg(long, default_value_t = 10)]
    search_every_ms: u64,
    /// Data directory (default: a fresh temporary one).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, default_value = "l2")]
    metric: String,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Internal: only open the data directory, serve a few searches and
    /// report the resident memory (run in a fresh process).
    #[arg(long, hide = true)]
    serve_only: bool,
}

pub async fn run_cli(args: IngestBenchArgs) -> Result<()> {
    let (dim, base) = read_fvecs(&args.base).context("reading --base")?;
    let metric = Metric::parse(&args.metric).map_err(|e| anyhow::anyhow!("--metric: {e}"))?;
    if args.batch == 0 {
        bail!("--batch must be > 0");
    }
    let (data_dir, remove_data_dir) = crate::bench_util::data_dir(args.data_dir.as_deref())?;
    if args.serve_only {
        // Keep only the query vectors, so the report is the server's memory.
        let queries = base[..base.len().min(1000 * dim)].to_vec();
        drop(base);
        return serve_only(&data_dir, &queries, dim, args.json).await;
    }
    let server =
        Standalone::open(StandaloneConfig::new(&data_dir), CancellationToken::new()).await?;
    let proxy = server.proxy.clone();
    create_collection(&proxy, dim, metric).await?;
    let n = base.len() / dim;
    // Probes during the ingest write keys of their own, after every other.
    let stop = CancellationToken::new();
    let during = tokio::spawn(probe_during(
        proxy.clone(),
        base.clone(),
        dim,
        (n + 2 * args.probes) as i64,
        args.probe_every_ms,
        stop.clone(),
    ));
    let reads = tokio::spawn(search_during(
        proxy.clone(),
        base[..base.len().min(1000 * dim)].to_vec(),
        dim,
        args.search_every_ms,
        stop.clone(),
    ));
    let mut lat = Vec::new();
    let start = Instant::now();
    for (b, chunk) in base.chunks(args.batch * dim).enumerate() {
        let rows = chunk.len() / dim;
        let first = (b * args.batch) as i64;
        if args.rate > 0 {
            // Paced: batch b starts when the rows before it are due.
            let due = Duration::from_secs_f64((b * args.batch) as f64 / args.rate as f64);
            tokio::time::sleep_until((start + due).into()).await;
        }
        let batch = RowBatch {
            pks: (0..rows as i64)
                .map(|i| PrimaryKey::Int(first + i))
                .collect(),
            vectors: quiver_common::Vectors::f32(dim, chunk.to_vec()),
            columns: vec![],
        };
        let t = Instant::now();
        proxy.insert(COLLECTION, batch).await?;
        lat.push(t.elapsed());
    }
    let secs = start.elapsed().as_secs_f64();
    stop.cancel();
    let fresh = during.await??;
    let reads = reads.await??;
    lat.sort_unstable();
    report(
        args.json,
        json!({"phase": "ingest", "rows": n, "batch": args.batch, "rate": args.rate, "secs": secs, "rows_per_s": n as f64 / secs,
               "batch_p50_ms": percentile(&lat, 0.5), "batch_p99_ms": percentile(&lat, 0.99), "batch_max_ms": percentile(&lat, 1.0)}),
        format!(
            "ingest: {n} rows in batches of {} in {secs:.2} s = {:.0} rows/s (durable; batch p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms)",
            args.batch,
            n as f64 / secs,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0)
        ),
    );
    if !fresh.is_empty() {
        report_freshness(args.json, "during_ingest", &fresh);
    }
    if !reads.is_empty() {
        report(
            args.json,
            json!({"phase": "search_during_ingest", "searches": reads.len(),
                   "p50_ms": percentile(&reads, 0.5), "p99_ms": percentile(&reads, 0.99), "max_ms": percentile(&reads, 1.0)}),
            format!(
                "searches during the ingest (eventually consistent, top-10): {} searches, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                reads.len(),
                percentile(&reads, 0.5),
                percentile(&reads, 0.99),
                percentile(&reads, 1.0)
            ),
        );
    }

    // Right after the ingest the first segment is being sealed and indexed.
    let fresh = probe_freshness(&proxy, &base, dim, n, args.probes).await?;
    report_freshness(args.json, "while_indexing", &fresh);
    let t = Instant::now();
    proxy.flush(COLLECTION).await?;
    report(
        args.json,
        json!({"phase": "flush", "secs": t.elapsed().as_secs_f64()}),
        format!(
            "flush (seal + hand-off): {:.2} s",
            t.elapsed().as_secs_f64()
        ),
    );
    let backlog = wait_for_graphs(&server).await?;
    report(
        args.json,
        json!({"phase": "graphs", "secs_after_flush": backlog.as_secs_f64()}),
        format!(
            "every sealed segment's graph built {:.2} s after the flush",
            backlog.as_secs_f64()
        ),
    );
    let fresh = probe_freshness(&proxy, &base, dim, n + args.probes, args.probes).await?;
    report_freshness(args.json, "steady", &fresh);
    server.close().await;

    // Memory of a fresh process serving what was just written.
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["bench", "ingest", "--serve-only", "--base"])
        .arg(&args.base)
        .arg("--data-dir")
        .arg(&data_dir);
    if args.json {
        cmd.arg("--json");
    }
    let status = cmd.status()?;
    if !status.success() {
        bail!("serving process failed: {status}");
    }
    if remove_data_dir {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    Ok(())
}

/// One probe every `every_ms` until `stop`, keys from `first_pk`, vectors
/// spread over `base` (so at most a few rows share one).
async fn probe_during(
    proxy: std::sync::Arc<Proxy>,
    base: Vec<f32>,
    dim: usize,
    first_pk: i64,
    every_ms: u64,
    stop: CancellationToken,
) -> Result<Vec<Duration>> {
    let mut fresh = Vec::new();
    if every_ms == 0 {
        return Ok(fresh);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(every_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for p in 0.. {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => break,
        }
        let src = (p as usize * 7919) % (base.len() / dim).max(1);
        let vector = base[src * dim..(src + 1) * dim].to_vec();
        let took = probe(&proxy, ProbeWrite::Insert, first_pk + p, vector)
            .await
            .with_context(|| format!("probe {p} during the ingest"))?;
        fresh.push(took);
    }
    fresh.sort_unstable();
    Ok(fresh)
}

/// One eventually consistent search every `every_ms` until `stop`, queries
/// taken in turn from `queries`; sorted latencies.
async fn search_during(
    proxy: std::sync::Arc<Proxy>,
    queries: Vec<f32>,
    dim: usize,
    every_ms: u64,
    stop: CancellationToken,
) -> Result<Vec<Duration>> {
    let mut lat = Vec::new();
    let n = queries.len() / dim.max(1);
    if every_ms == 0 || n == 0 {
        return Ok(lat);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(every_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0.. {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => break,
        }
        let q = &queries[(i % n) * dim..(i % n + 1) * dim];
        let t = Instant::now();
        proxy
            .search(search_request(q.to_vec(), Consistency::Eventually))
            .await
            .with_context(|| format!("search {i} during the ingest"))?;
        lat.push(t.elapsed());
    }
    lat.sort_unstable();
    Ok(lat)
}

/// Inserts one row at a time and measures acknowledgement -> returned by a
/// read-your-writes search. Keys start at `first_pk`.
async fn probe_freshness(
    proxy: &Proxy,
    base: &[f32],
    dim: usize,
    first_pk: usize,
    probes: usize,
) -> Result<Vec<Duration>> {
    let n = base.len() / dim;
    let mut fresh = Vec::with_capacity(probes);
    for p in 0..probes {
        let src = p % n;
        let vector = base[src * dim..(src + 1) * dim].to_vec();
        let pk = (first_pk + p) as i64;
        let took = probe(proxy, ProbeWrite::Insert, pk, vector)
            .await
            .with_context(|| format!("probe {p}"))?;
        fresh.push(took);
    }
    fresh.sort_unstable();
    Ok(fresh)
}

fn report_freshness(json: bool, phase: &str, fresh: &[Duration]) {
    report(
        json,
        json!({"phase": format!("freshness_{phase}"), "probes": fresh.len(), "p50_ms": percentile(fresh, 0.5),
               "p99_ms": percentile(fresh, 0.99), "max_ms": percentile(fresh, 1.0)}),
        format!(
            "insert acknowledged -> returned by search ({phase}): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} probes)",
            percentile(fresh, 0.5),
            percentile(fresh, 0.99),
            percentile(fresh, 1.0),
            fresh.len()
        ),
    );
}

/// Waits until every sealed segment has the graph its index calls for (seals
/// hand rows off first; graphs follow); how long that took.
async fn wait_for_graphs(server: &Standalone) -> Result<Duration> {
    let t = Instant::now();
    loop {
        let state = server.coord().state();
        let meta = state
            .collection(COLLECTION)
            .context("the collection is gone")?;
        let pending = (0..meta.shards)
            .flat_map(|s| state.segments(meta.id, s).segments)
            .filter(|seg| seg.index_version != meta.index_version)
            .count();
        if pending == 0 {
            return Ok(t.elapsed());
        }
        if t.elapsed() > Duration::from_secs(3600) {
            bail!("{pending} segments still wait for their graph after an hour");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn serve_only(
    data_dir: &std::path::Path,
    base: &[f32],
    dim: usize,
    json: bool,
) -> Result<()> {
    let rss_at_start = rss_bytes();
    let server =
        Standalone::open(StandaloneConfig::new(data_dir), CancellationToken::new()).await?;
    search_latencies(&server.proxy, &base[..base.len().min(1000 * dim)], dim).await?;
    let rows = server.proxy.count(COLLECTION, Consistency::Strong).await?;
    let rss = rss_bytes();
    let raw = rows * dim as u64 * 4;
    report(
        json,
        json!({"phase": "memory", "rows": rows, "rss_bytes": rss, "rss_at_start_bytes": rss_at_start, "rss_anon_bytes": proc_status_bytes("RssAnon:"), "rss_file_bytes": proc_status_bytes("RssFile:"), "raw_vector_bytes": raw, "rss_over_raw": rss as f64 / raw.max(1) as f64}),
        format!(
            "serving {rows} rows: RSS {:.1} MiB (process at start {:.1} MiB); raw vectors {:.1} MiB (ratio {:.2})",
            rss as f64 / (1 << 20) as f64,
            rss_at_start as f64 / (1 << 20) as f64,
            raw as f64 / (1 << 20) as f64,
            rss as f64 / raw.max(1) as f64
        ),
    );
    server.close().await;
    Ok(())
}
