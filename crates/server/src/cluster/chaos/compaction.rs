//! Compaction under load: the same keys are rewritten round after round
//! (each round flushed, so each supersedes a segment) while the scenario's
//! load searches and inserts; then a manual compaction runs to the end. No
//! request may fail, every compaction must have swapped without a gap, and
//! every rewritten key must hold its last version.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use quiver_client::{Client, Rows, Value};
use quiver_coord::CoordApi;

use super::load::DIM;
use super::report::ScenarioReport;
use super::scenarios::{COLLECTION, Ctx, poll};

/// Keys the scenario rewrites (apart from the load's).
const FIRST_KEY: i64 = 5_000_000;
const KEYS: i64 = 2_000;
const ROUNDS: u32 = 5;

/// The vector of version `v` of key `k`.
fn version(k: i64, v: u32) -> Vec<f32> {
    (0..DIM)
        .map(|d| ((k as f32) * 0.37 + d as f32 * 1.3 + v as f32 * 0.11).sin())
        .collect()
}

pub(super) async fn compaction_under_load(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    let client = super::connect(&ctx.file.proxy).await?;
    let compactions_before = compactions(ctx).await?;
    let load = ctx.load().await?;
    let t0 = Instant::now();
    let keys: Vec<i64> = (FIRST_KEY..FIRST_KEY + KEYS).collect();
    for round in 0..ROUNDS {
        for chunk in keys.chunks(500) {
            let data = chunk.iter().flat_map(|k| version(*k, round)).collect();
            client
                .upsert(COLLECTION, Rows::new(DIM, data).with_ids(chunk.to_vec()))
                .await?;
        }
        client.flush(&[COLLECTION]).await?;
    }
    let job = client.compact(COLLECTION).await?;
    let progress = poll(Duration::from_secs(120), "the manual compaction", || {
        let client = client.clone();
        async move {
            let p = client.compaction_progress(job).await.ok()?;
            p.completed.then_some(p)
        }
    })
    .await?;
    let compact_ms = t0.elapsed().as_millis() as u64;
    // A little more load over the compacted segments.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ran = compactions(ctx).await?.saturating_sub(compactions_before);
    let wrong = wrong_versions(&client, &keys, ROUNDS - 1).await?;
    let fault = format!(
        "{KEYS} keys rewritten {ROUNDS} times (each round flushed) under the load, then a manual compaction to the end"
    );
    let mut r = ctx.finish("compaction under load", &fault, load).await?;
    r.figure("compactions", ran);
    r.figure("manual_compaction_plans", progress.plans.len() as u64);
    r.figure("rewrite_and_compact_ms", compact_ms);
    r.check("0 failed searches", r.load.searches_failed == 0);
    r.check("0 failed inserts", r.load.inserts_failed == 0);
    r.check(format!("compactions ran ({ran})"), ran > 0);
    r.check(
        format!("every rewritten key holds its last version (wrong: {wrong})"),
        wrong == 0,
    );
    Ok(r)
}

/// Compactions applied to the collection's shards, as coord counts them
/// (a linearizable read: the client's cache may lag).
async fn compactions(ctx: &Ctx<'_>) -> Result<u64> {
    let state = ctx.coord.read().await?;
    let Some(meta) = state.collection(COLLECTION) else {
        return Ok(0);
    };
    Ok((0..meta.shards)
        .map(|s| state.segments(meta.id, s).compactions)
        .sum())
}

/// Keys of `keys` that are missing or do not hold version `v`.
async fn wrong_versions(client: &Client, keys: &[i64], v: u32) -> Result<usize> {
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        bail!("no keys");
    };
    let filter = format!("id >= {first} and id <= {last}");
    let rows = client
        .query(COLLECTION, &filter, &["vector"], Some(keys.len() + 1))
        .await?;
    let mut right = 0;
    for row in &rows {
        if let (Some(Value::Int(k)), Some(Value::Vector(vec))) = (row.get("id"), row.get("vector"))
            && *vec == version(*k, v)
        {
            right += 1;
        }
    }
    Ok(keys.len().saturating_sub(right))
}
