//! `quiver search NAME --fvecs Q --k 10 [--ef N] [--limit-queries N] [--filter EXPR]`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use quiver_client::SearchParams;
use serde_json::json;

use super::{Conn, f32_json, id_json, print_json};

/// Queries per Search request.
const QUERIES_PER_REQUEST: usize = 256;

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Collection (or alias).
    name: String,
    /// TEXMEX .fvecs file of query vectors.
    #[arg(long)]
    fvecs: PathBuf,
    /// Hits per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// HNSW beam width (default: the server's).
    #[arg(long)]
    ef: Option<usize>,
    /// Uses only the first N queries of the file.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    limit_queries: Option<u64>,
    /// A filter expression, e.g. 'id > 100'.
    #[arg(long)]
    filter: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

pub(super) async fn run(args: SearchArgs) -> Result<()> {
    let client = args.conn.connect().await?;
    let (dim, mut queries) = super::read_fvecs(&args.fvecs)?;
    if let Some(limit) = args.limit_queries {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        queries.truncate(limit.saturating_mul(dim));
    }
    if queries.is_empty() {
        bail!("{} holds no query vectors", args.fvecs.display());
    }
    let mut params = SearchParams::new(args.k);
    params.ef = args.ef;
    params.filter = args.filter.clone();
    let started = Instant::now();
    let mut next = 0usize;
    for chunk in queries.chunks(QUERIES_PER_REQUEST * dim) {
        let results = client.search(&args.name, chunk, dim, &params).await?;
        for hits in results {
            if args.conn.json {
                let hits: Vec<_> = hits
                    .iter()
                    .map(|h| json!({ "id": id_json(&h.id), "distance": f32_json(h.distance) }))
                    .collect();
                print_json(&json!({ "query": next, "hits": hits }));
            } else {
                let hits: Vec<String> = hits
                    .iter()
                    .map(|h| format!("{} ({})", h.id, h.distance))
                    .collect();
                println!("query {next}: {}", hits.join(", "));
            }
            next += 1;
        }
    }
    if !args.conn.json {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{next} queries in {secs:.3} s ({:.0} queries/s, {QUERIES_PER_REQUEST} per request)",
            next as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}
