//! `quiver bench churn`: a feed pipeline that rewrites the same keys round
//! after round and deletes a rotating slice of them. Per round it reports
//! memory, bytes on disk, sealed segments, search latency and write ->
//! visible latency, to show whether they stay bounded by the live data; at
//! the end it checks every key's stored vector exactly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use quiver_common::{Metric, PrimaryKey, RowBatch, Vectors};
use quiver_index::bench::read_fvecs;
use quiver_proxy::{Consistency, Proxy};
use quiver_roles::{Standalone, StandaloneConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::bench_util::{
    COLLECTION, ProbeWrite, create_collection, percentile, probe, report, rss_bytes,
    search_latencies,
};

/// A prime stride, so that a key's base row differs from round to round.
const ROUND_STRIDE: usize = 7919;
/// Keys per verification read.
const VERIFY_CHUNK: usize = 1000;

#[derive(Debug, Args)]
pub struct ChurnBenchArgs {
    /// Vectors the rows are taken from (.fvecs).
    #[arg(long)]
    base: PathBuf,
    /// Keys rewritten every round (0..N).
    #[arg(long, default_value_t = 20_000)]
    keys: usize,
    /// Rounds.
    #[arg(long, default_value_t = 30)]
    rounds: usize,
    /// Rows per upsert (and keys per delete).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Fraction of the keys deleted per round (a rotating slice; they come
    /// back with the next round's upserts).
    #[arg(long, default_value_t = 0.05)]
    deletes: f64,
    /// Searches per round (k=10, the first base vectors as queries).
    #[arg(long, default_value_t = 200)]
    searches: usize,
    /// Upsert -> visible probes per round.
    #[arg(long, default_value_t = 20)]
    probes: usize,
    #[arg(long, default_value = "l2")]
    metric: String,
    /// Data directory (default: a fresh temporary one, removed at the end).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Do not flush after each round (by default the bench flushes, as
    /// pipelines do).
    #[arg(long)]
    no_flush: bool,
}

/// The workload's shape: which vector a key has in a round, which keys a
/// round deletes.
struct Workload {
    dim: usize,
    base: Vec<f32>,
    keys: usize,
    /// Keys deleted per round.
    deleted: usize,
}

impl Workload {
    fn base_rows(&self) -> usize {
        self.base.len() / self.dim
    }

    /// The base row of `key` in round `round`.
    fn version(&self, key: usize, round: usize) -> usize {
        (key + round * ROUND_STRIDE) % self.base_rows()
    }

    fn row(&self, row: usize) -> &[f32] {
        &self.base[row * self.dim..(row + 1) * self.dim]
    }

    /// The first key of the slice round `round` deletes (it wraps).
    fn deleted_from(&self, round: usize) -> usize {
        (round * self.deleted) % self.keys
    }

    fn is_deleted(&self, key: usize, round: usize) -> bool {
        (key + self.keys - self.deleted_from(round)) % self.keys < self.deleted
    }

    fn deleted_keys(&self, round: usize) -> impl Iterator<Item = usize> + '_ {
        let from = self.deleted_from(round);
        (0..self.deleted).map(move |i| (from + i) % self.keys)
    }

    /// The `p`-th of `probes` keys spread over the keys live after `round`.
    fn probe_key(&self, round: usize, p: usize, probes: usize) -> usize {
        let live = self.keys - self.deleted;
        (self.deleted_from(round) + self.deleted + p * live / probes.max(1)) % self.keys
    }

    /// `keys` with their vectors of `round`.
    fn batch(&self, keys: &[usize], round: usize) -> RowBatch {
        let mut data = Vec::with_capacity(keys.len() * self.dim);
        for &k in keys {
            data.extend_from_slice(self.row(self.version(k, round)));
        }
        RowBatch {
            pks: keys.iter().map(|&k| PrimaryKey::Int(k as i64)).collect(),
            vectors: Vectors::f32(self.dim, data),
            columns: vec![],
        }
    }
}

/// One round's measurements.
struct Round {
    round: usize,
    upserts_total: u64,
    rss_bytes: u64,
    data_dir_bytes: u64,
    segments: usize,
    search: Vec<Duration>,
    visible: Vec<Duration>,
    secs: f64,
}

impl Round {
    fn search_p50(&self) -> f64 {
        percentile(&self.search, 0.5)
    }

    fn print(&self, json: bool) {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        let (s50, s99) = (self.search_p50(), percentile(&self.search, 0.99));
        let smax = percentile(&self.search, 1.0);
        let (v50, v99) = (
            percentile(&self.visible, 0.5),
            percentile(&self.visible, 0.99),
        );
        report(
            json,
            json!({"phase": "round", "round": self.round, "upserts_total": self.upserts_total,
                   "rss_bytes": self.rss_bytes, "data_dir_bytes": self.data_dir_bytes,
                   "segments": self.segments, "search_p50_ms": s50, "search_p99_ms": s99, "search_max_ms": smax,
                   "visible_p50_ms": v50, "visible_p99_ms": v99, "round_secs": self.secs}),
            format!(
                "round {:>3}: {} upserts, RSS {:.1} MiB, data dir {:.1} MiB, {} segments; search p50 {s50:.3} ms, p99 {s99:.3} ms, max {smax:.1} ms; visible p50 {v50:.3} ms, p99 {v99:.3} ms; {:.2} s",
                self.round,
                self.upserts_total,
                mib(self.rss_bytes),
                mib(self.data_dir_bytes),
                self.segments,
                self.secs
            ),
        );
    }
}

pub async fn run_cli(args: ChurnBenchArgs) -> Result<()> {
    let (dim, base) = read_fvecs(&args.base).context("reading --base")?;
    let metric = Metric::parse(&args.metric).map_err(|e| anyhow::anyhow!("--metric: {e}"))?;
    if base.is_empty() {
        bail!("--base holds no vectors");
    }
    if args.keys == 0 || args.rounds == 0 || args.batch == 0 {
        bail!("--keys, --rounds and --batch must be > 0");
    }
    if !(0.0..=1.0).contains(&args.deletes) {
        bail!("--deletes must be a fraction in [0, 1]");
    }
    let work = Workload {
        dim,
        keys: args.keys,
        deleted: ((args.deletes * args.keys as f64).ceil() as usize).min(args.keys),
        base,
    };
    let (data_dir, remove_data_dir) = crate::bench_util::data_dir(args.data_dir.as_deref())?;
    let server =
        Standalone::open(StandaloneConfig::new(&data_dir), CancellationToken::new()).await?;
    let result = churn(&args, &work, &server, &data_dir, metric).await;
    server.close().await;
    if remove_data_dir {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result
}

async fn churn(
    args: &ChurnBenchArgs,
    work: &Workload,
    server: &Standalone,
    data_dir: &Path,
    metric: Metric,
) -> Result<()> {
    let proxy = &server.proxy;
    create_collection(proxy, work.dim, metric).await?;
    let queries: Vec<f32> = (0..args.searches)
        .flat_map(|q| work.row(q % work.base_rows()).iter().copied())
        .collect();
    let all_keys: Vec<usize> = (0..work.keys).collect();
    let mut upserts_total = 0u64;
    let mut rounds: Vec<Round> = Vec::with_capacity(args.rounds);
    for round in 1..=args.rounds {
        let start = Instant::now();
        for keys in all_keys.chunks(args.batch) {
            proxy.upsert(COLLECTION, work.batch(keys, round)).await?;
            upserts_total += keys.len() as u64;
        }
        let deleted: Vec<PrimaryKey> = work
            .deleted_keys(round)
            .map(|k| PrimaryKey::Int(k as i64))
            .collect();
        for pks in deleted.chunks(args.batch) {
            proxy.delete(COLLECTION, pks.to_vec()).await?;
        }
        if !args.no_flush {
            proxy.flush(COLLECTION).await?;
        }
        let secs = start.elapsed().as_secs_f64();
        let search = search_latencies(proxy, &queries, work.dim).await?;
        let visible = probe_round(proxy, work, round, args.probes).await?;
        upserts_total += 2 * visible.len() as u64;
        let r = Round {
            round,
            upserts_total,
            rss_bytes: rss_bytes(),
            data_dir_bytes: dir_bytes(data_dir),
            segments: sealed_segments(server)?,
            search,
            visible,
            secs,
        };
        r.print(args.json);
        rounds.push(r);
    }
    let (Some(first), Some(last)) = (rounds.first(), rounds.last()) else {
        return Ok(());
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let (rss_ratio, disk_ratio, search_ratio) = (
        ratio(last.rss_bytes as f64, first.rss_bytes as f64),
        ratio(last.data_dir_bytes as f64, first.data_dir_bytes as f64),
        ratio(last.search_p50(), first.search_p50()),
    );
    let slowest = rounds
        .iter()
        .map(|r| percentile(&r.search, 1.0))
        .fold(0.0f64, f64::max);
    let compactions: u64 = server
        .datanode()
        .storage()
        .iter()
        .map(|s| s.compactions)
        .sum();
    let count = proxy.count(COLLECTION, Consistency::Strong).await?;
    let expected = (work.keys - work.deleted) as u64;
    let first_wrong = if count != expected {
        Some(format!("count {count}, expected {expected}"))
    } else {
        first_wrong_key(proxy, work, args.rounds).await?
    };
    let verified = first_wrong.is_none();
    report(
        args.json,
        json!({"phase": "summary", "rounds": args.rounds, "keys": work.keys, "deleted": work.deleted,
               "slowest_search_ms": slowest, "compactions": compactions,
               "upserts_total": upserts_total, "segments": last.segments,
               "rss_ratio": rss_ratio, "disk_ratio": disk_ratio, "search_p50_ratio": search_ratio,
               "count": count, "expected_count": expected, "verified": verified,
               "first_wrong": first_wrong}),
        format!(
            "after {} rounds (last / round 1): RSS x{rss_ratio:.2}, data dir x{disk_ratio:.2}, search p50 x{search_ratio:.2}; slowest search {slowest:.1} ms; {compactions} compactions; count {count} (expected {expected}); verified: {verified}",
            args.rounds
        ),
    );
    match first_wrong {
        Some(wrong) => bail!("verification failed: {wrong}"),
        None => Ok(()),
    }
}

/// Upserts `probes` live keys with another vector each and measures ack ->
/// returned by a read-your-writes search; then puts their round's vectors
/// back, so the final check holds. Sorted latencies.
async fn probe_round(
    proxy: &Proxy,
    work: &Workload,
    round: usize,
    probes: usize,
) -> Result<Vec<Duration>> {
    if work.deleted == work.keys {
        return Ok(Vec::new());
    }
    let keys: Vec<usize> = (0..probes)
        .map(|p| work.probe_key(round, p, probes))
        .collect();
    let mut lat = Vec::with_capacity(probes);
    for (p, &k) in keys.iter().enumerate() {
        let other = (work.version(k, round) + work.base_rows() / 2 + 1) % work.base_rows();
        let took = probe(
            proxy,
            ProbeWrite::Upsert,
            k as i64,
            work.row(other).to_vec(),
        )
        .await
        .with_context(|| format!("round {round}, probe {p}"))?;
        lat.push(took);
    }
    for keys in keys.chunks(VERIFY_CHUNK) {
        proxy.upsert(COLLECTION, work.batch(keys, round)).await?;
    }
    lat.sort_unstable();
    Ok(lat)
}

/// Reads every key back (Strong): a key of the last round's deleted slice
/// must be absent, every other key must hold exactly its last version.
/// Returns the first key that does not, with what was wrong.
async fn first_wrong_key(proxy: &Proxy, work: &Workload, last: usize) -> Result<Option<String>> {
    let all: Vec<usize> = (0..work.keys).collect();
    for keys in all.chunks(VERIFY_CHUNK) {
        let pks: Vec<PrimaryKey> = keys.iter().map(|&k| PrimaryKey::Int(k as i64)).collect();
        let rows = proxy
            .query(
                COLLECTION,
                Some(pks),
                None,
                keys.len(),
                vec![],
                true,
                Consistency::Strong,
            )
            .await?;
        let found: HashMap<PrimaryKey, Option<Vec<f32>>> =
            rows.into_iter().map(|h| (h.pk, h.vector)).collect();
        for &k in keys {
            let got = found.get(&PrimaryKey::Int(k as i64));
            let wrong = match (work.is_deleted(k, last), got) {
                (true, Some(_)) => Some("deleted in the last round, but returned"),
                (true, None) => None,
                (false, None) => Some("missing"),
                (false, Some(None)) => Some("returned without its vector"),
                (false, Some(Some(v))) => {
                    let want = work.row(work.version(k, last));
                    let same = v.len() == want.len()
                        && v.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits());
                    (!same).then_some("holds another vector than its last version")
                }
            };
            if let Some(what) = wrong {
                return Ok(Some(format!("key {k}: {what}")));
            }
        }
    }
    Ok(None)
}

/// Sealed segments of the collection in coord's catalog, over its shards.
fn sealed_segments(server: &Standalone) -> Result<usize> {
    let info = server.proxy.describe(COLLECTION)?;
    Ok((0..info.shards)
        .map(|shard| server.coord().segments(info.id, shard).0.len())
        .sum())
}

/// Bytes of the files under `dir`, recursively (files that vanish while it
/// walks, e.g. truncated WAL objects, count as 0).
fn dir_bytes(dir: &Path) -> u64 {
    files_bytes(dir, &mut std::collections::HashSet::new())
}

/// The sizes of the files under `dir` not in `seen` (by device and inode:
/// a querynode's cached segment is a hard link to the object's file on a
/// local store, one file on disk).
fn files_bytes(dir: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut bytes = 0;
    for e in entries.flatten() {
        bytes += match e.file_type() {
            Ok(t) if t.is_dir() => files_bytes(&e.path(), seen),
            Ok(t) if t.is_file() => e
                .metadata()
                .ok()
                .filter(|m| seen.insert((m.dev(), m.ino())))
                .map_or(0, |m| m.len()),
            _ => 0,
        };
    }
    bytes
}
