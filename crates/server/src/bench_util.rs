//! What the engine benchmarks (`bench ingest`, `bench churn`) share: the
//! bench collection, searches and insert -> visible probes against an
//! in-process standalone server, percentiles, memory and output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use quiver_api::{CreateCollection, IndexKind};
use quiver_common::{CollectionSchema, Metric, PrimaryKey, RowBatch, Vectors};
use quiver_proxy::{Consistency, Proxy, SearchRequest};

/// The collection a benchmark writes.
pub const COLLECTION: &str = "bench";

/// Creates [`COLLECTION`]: one shard, HNSW M=16 efConstruction=200.
pub async fn create_collection(proxy: &Proxy, dim: usize, metric: Metric) -> Result<()> {
    proxy
        .create_collection(CreateCollection {
            schema: CollectionSchema::simple(COLLECTION, dim as u32),
            shards: 1,
            metric,
            index: IndexKind::Hnsw {
                m: 16,
                ef_construction: 200,
            },
            partitions: None,
        })
        .await?;
    Ok(())
}

/// The value at fraction `p` of sorted durations, in milliseconds (0 if none).
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// A line of /proc/self/status in bytes (Linux; 0 elsewhere).
pub fn proc_status_bytes(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// This process's resident memory (VmRSS).
pub fn rss_bytes() -> u64 {
    proc_status_bytes("VmRSS:")
}

/// Prints one line: the JSON object with `--json`, else the text.
pub fn report(json: bool, value: serde_json::Value, text: String) {
    let mut o = std::io::stdout().lock();
    let _ = if json {
        writeln!(o, "{value}")
    } else {
        writeln!(o, "{text}")
    };
}

/// The benchmark's data directory: `given`, or a fresh temporary one (the
/// second value says whether to remove it at the end).
pub fn data_dir(given: Option<&Path>) -> Result<(PathBuf, bool)> {
    Ok(match given {
        Some(d) => (d.to_path_buf(), false),
        None => (tempfile_dir()?, true),
    })
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("quiver-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A top-10 search of [`COLLECTION`] for one query vector.
pub fn search_request(query: Vec<f32>, consistency: Consistency) -> SearchRequest {
    SearchRequest {
        collection: COLLECTION.into(),
        queries: query,
        k: 10,
        ef: None,
        refine_k: None,
        filter: None,
        consistency,
        output_fields: vec![],
        with_vectors: false,
        anns_field: None,
        sparse: None,
    }
}

/// How a probe writes its row.
#[derive(Debug, Clone, Copy)]
pub enum ProbeWrite {
    Insert,
    Upsert,
}

/// Writes one row and measures its acknowledgement -> returned by a
/// read-your-writes search for its vector; fails if the search misses it.
pub async fn probe(
    proxy: &Proxy,
    write: ProbeWrite,
    pk: i64,
    vector: Vec<f32>,
) -> Result<Duration> {
    let rows = RowBatch {
        pks: vec![PrimaryKey::Int(pk)],
        vectors: Vectors::f32(vector.len(), vector.clone()),
        columns: vec![],
    };
    let w = match write {
        ProbeWrite::Insert => proxy.insert(COLLECTION, rows).await?,
        ProbeWrite::Upsert => proxy.upsert(COLLECTION, rows).await?,
    };
    let acked = Instant::now();
    let hits = proxy
        .search(search_request(vector, Consistency::Session(w.ts)))
        .await?;
    let took = acked.elapsed();
    if !hits
        .first()
        .is_some_and(|h| h.iter().any(|h| h.pk == PrimaryKey::Int(pk)))
    {
        bail!("row {pk} written by a probe was not returned by the next search");
    }
    Ok(took)
}

/// Eventually-consistent top-10 searches for each query (`dim` floats each),
/// sorted latencies.
pub async fn search_latencies(proxy: &Proxy, queries: &[f32], dim: usize) -> Result<Vec<Duration>> {
    let mut lat = Vec::with_capacity(queries.len() / dim.max(1));
    for q in queries.chunks_exact(dim) {
        let t = Instant::now();
        proxy
            .search(search_request(q.to_vec(), Consistency::Eventually))
            .await?;
        lat.push(t.elapsed());
    }
    lat.sort_unstable();
    Ok(lat)
}
