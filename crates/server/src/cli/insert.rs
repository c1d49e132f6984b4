//! `quiver insert NAME --fvecs F [--batch N]`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use quiver_client::{DataType, Rows};
use serde_json::json;

use super::{Conn, print_json};

#[derive(Debug, Args)]
pub struct InsertArgs {
    /// Collection (or alias).
    name: String,
    /// TEXMEX .fvecs file; row i gets key i unless the collection is auto-id.
    #[arg(long)]
    fvecs: PathBuf,
    /// Rows per Insert request.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    batch: u64,
    #[command(flatten)]
    conn: Conn,
}

pub(super) async fn run(args: InsertArgs) -> Result<()> {
    let client = args.conn.connect().await?;
    let info = client.describe_collection(&args.name).await?;
    let (Some(pk), Some(vector)) = (info.primary_field(), info.vector_field()) else {
        bail!(
            "collection {:?} has no primary key or no FloatVector field",
            info.name
        );
    };
    if !pk.auto_id && pk.data_type != DataType::Int64 {
        bail!(
            "collection {:?} has a {} primary key {:?}: `quiver insert` assigns Int64 keys (row numbers)",
            info.name,
            pk.data_type.as_str_name(),
            pk.name
        );
    }
    let (dim, vectors) = super::read_fvecs(&args.fvecs)?;
    let want = info.dim().unwrap_or(0);
    if dim != want {
        bail!(
            "{} holds vectors of dim {dim}, but collection {:?} has dim {want} (field {:?})",
            args.fvecs.display(),
            info.name,
            vector.name
        );
    }
    let n = vectors.len() / dim.max(1);
    if n == 0 {
        bail!("{} holds no vectors", args.fvecs.display());
    }
    let bar = if args.conn.json {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(n as u64);
        b.set_style(
            ProgressStyle::with_template("inserting {bar:40} {pos}/{len} ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
    let batch = usize::try_from(args.batch).unwrap_or(1000);
    let started = Instant::now();
    let (mut inserted, mut batches) = (0u64, 0u64);
    for (b, chunk) in vectors.chunks(batch * dim).enumerate() {
        let first = b * batch;
        let mut rows = Rows::new(dim, chunk.to_vec()).with_fields(&pk.name, &vector.name);
        if !pk.auto_id {
            rows = rows.with_ids(
                (first..first + chunk.len() / dim)
                    .map(|i| i as i64)
                    .collect(),
            );
        }
        let r = client.insert(&args.name, rows).await.with_context(|| {
            format!(
                "inserting rows {first}..{} ({inserted} rows were inserted before)",
                first + chunk.len() / dim
            )
        })?;
        inserted += r.count;
        batches += 1;
        bar.inc((chunk.len() / dim) as u64);
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let rate = inserted as f64 / secs.max(1e-9);
    if args.conn.json {
        print_json(&json!({
            "collection": info.name,
            "rows": inserted,
            "batches": batches,
            "seconds": secs,
            "rows_per_s": rate,
        }));
    } else {
        println!(
            "inserted {inserted} rows into {} in {secs:.2} s ({rate:.0} rows/s)",
            info.name
        );
    }
    Ok(())
}
