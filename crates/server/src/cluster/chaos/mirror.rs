//! The `mirror` scenario of `quiver cluster chaos`: a mirrored alias with
//! automatic failover loses every querynode of its primary under load
//! through the alias (see `mirror_failover`).

use std::time::{Duration, Instant};

use anyhow::Result;
use quiver_admin::metrics::quantile_of_buckets;
use quiver_client::CollectionSpec;
use quiver_coord::CoordClient;

use super::load::{self, DIM};
use super::report::ScenarioReport;
use super::scenarios::{Ctx, poll};
use crate::cluster::local;

/// The mirrored pair of the `mirror` scenario.
const MIRROR: &str = "mirror_live";
const MIRROR_A: &str = "mirror_a";
const MIRROR_B: &str = "mirror_b";
/// A plain alias flipped back and forth to time alias propagation.
const PROBE_ALIAS: &str = "mirror_probe";
const PROBE_CHANGES: usize = 40;

/// The querynodes serving `collection` when every shard has one.
fn served_by(coord: &CoordClient, collection: &str) -> Option<Vec<u64>> {
    let state = coord.state();
    let meta = state.collection(collection)?;
    let mut nodes = Vec::new();
    for shard in 0..meta.shards {
        let r = state.shard_replicas(meta.id, shard);
        if r.is_empty() {
            return None;
        }
        nodes.extend(r);
    }
    nodes.sort_unstable();
    nodes.dedup();
    Some(nodes)
}

fn alias_target(coord: &CoordClient, alias: &str) -> Option<String> {
    coord.state().alias(alias).map(|a| a.collection.clone())
}

/// The mirrored-alias contract: a pair on disjoint querynodes under
/// searches and inserts through the alias; every querynode of the primary
/// is killed; the alias must flip by itself, the search outage stay short,
/// nothing acknowledged go missing from the standby; after the primary's
/// querynodes return, divergence must be back to 0 within 30 s; a manual
/// failback must work with both flips in the history; and alias changes
/// must reach the proxy within 1 s (p99 of its metric).
pub(super) async fn mirror_failover(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    use quiver_client::{Actor, MirrorSpec};
    let client = super::connect(&ctx.file.proxy).await?;
    for name in [MIRROR_A, MIRROR_B] {
        let mut spec =
            CollectionSpec::new(name, DIM).with_consistency(quiver_client::ReadLevel::Bounded);
        spec.shards = Some(2);
        client.create_collection(&spec).await?;
    }
    let spec = MirrorSpec {
        alias: MIRROR.into(),
        primary: MIRROR_A.into(),
        standby: MIRROR_B.into(),
        auto_failover: true,
        max_lag_ms: Some(1000),
    };
    client
        .mirror_alias(&spec, &Actor::new("chaos", "set up"))
        .await?;
    let coord = ctx.coord.clone();
    let (on_a, on_b) = poll(
        Duration::from_secs(60),
        "the pair on disjoint querynodes",
        || {
            let coord = coord.clone();
            async move {
                let (a, b) = (served_by(&coord, MIRROR_A)?, served_by(&coord, MIRROR_B)?);
                a.iter().all(|q| !b.contains(q)).then_some((a, b))
            }
        },
    )
    .await?;
    let load = ctx.load_on(MIRROR).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let t0 = Instant::now();
    for q in &on_a {
        local::kill(&ctx.file, *q, libc::SIGKILL)?;
    }
    let flipped = poll(
        Duration::from_secs(15),
        "the alias to flip by itself",
        || {
            let coord = coord.clone();
            async move { (alias_target(&coord, MIRROR)? == MIRROR_B).then_some(()) }
        },
    )
    .await;
    let flip_ms = t0.elapsed().as_millis() as u64;
    // The load goes on through the flipped alias, then the primary's
    // querynodes come back.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for q in &on_a {
        ctx.restart(*q).await?;
    }
    let t1 = Instant::now();
    // Back apart (the primary's replicas return to its querynodes), then a
    // fresh comparison (`verify`) finds no divergent row, and the continuous
    // check says 0 too.
    let converged = poll(
        Duration::from_secs(60),
        "the pair apart again with 0 divergent rows",
        || {
            let (client, coord) = (client.clone(), coord.clone());
            async move {
                let (a, b) = (served_by(&coord, MIRROR_A)?, served_by(&coord, MIRROR_B)?);
                if a.iter().any(|q| b.contains(q)) {
                    return None;
                }
                let v = client.verify_alias(MIRROR, false, None).await.ok()?;
                if v.divergent_rows != 0 {
                    return None;
                }
                let s = client.show_alias(MIRROR).await.ok()?;
                (s.divergent_rows == Some(0)).then_some(())
            }
        },
    )
    .await;
    let converged_ms = t1.elapsed().as_millis() as u64;
    let stats = load.stop().await;
    let missing_b = load::missing(&ctx.file.proxy, MIRROR_B, &stats.acked).await?;
    let missing_a = load::missing(&ctx.file.proxy, MIRROR_A, &stats.acked).await?;

    let failback = client
        .flip_alias(
            MIRROR,
            Some(MIRROR_B),
            &Actor::new("chaos", "failback: the primary's querynodes are back"),
        )
        .await;
    let shown = client.show_alias(MIRROR).await?;
    let flips: Vec<(String, String, String)> = shown
        .history
        .iter()
        .filter(|e| e.action == "flip")
        .map(|e| (e.from.clone(), e.to.clone(), e.by.clone()))
        .collect();
    let both_flips = flips.ends_with(&[
        (
            MIRROR_A.into(),
            MIRROR_B.into(),
            "coord:auto-failover".into(),
        ),
        (MIRROR_B.into(), MIRROR_A.into(), "chaos".into()),
    ]);

    // Alias propagation: changes of a plain alias, timed by the proxy.
    // Only these changes count: earlier scenarios' alias changes (a probe
    // that committed late while coord had no quorum) are in the histogram.
    let before_text = crate::cluster::local::http_get(&ctx.file.proxy, "/metrics")
        .await
        .unwrap_or_default();
    let before =
        metric(&before_text, "quiver_alias_propagation_seconds_count").unwrap_or(0.0) as u64;
    client.create_alias(PROBE_ALIAS, MIRROR_A).await?;
    for i in 0..PROBE_CHANGES {
        let to = if i % 2 == 0 { MIRROR_B } else { MIRROR_A };
        client.alter_alias(PROBE_ALIAS, to).await?;
    }
    let proxy = ctx.file.proxy.clone();
    let wanted = before + PROBE_CHANGES as u64;
    let timed = poll(
        Duration::from_secs(10),
        "the proxy to time the changes",
        || {
            let proxy = proxy.clone();
            async move {
                let text = crate::cluster::local::http_get(&proxy, "/metrics")
                    .await
                    .ok()?;
                let count = metric(&text, "quiver_alias_propagation_seconds_count")? as u64;
                (count >= wanted).then_some(text)
            }
        },
    )
    .await;
    let (p50, p99, count) = match &timed {
        Ok(text) => {
            const NAME: &str = "quiver_alias_propagation_seconds";
            let delta = super::scrape::buckets_between(&before_text, text, NAME, &[]);
            let count = delta.last().map_or(0, |(_, c)| *c);
            (
                quantile_of_buckets(&delta, 0.5),
                quantile_of_buckets(&delta, 0.99),
                count,
            )
        }
        Err(_) => (None, None, 0),
    };

    let fault = format!(
        "mirrored alias {MIRROR} ({MIRROR_A} primary on querynodes {on_a:?}, {MIRROR_B} standby on {on_b:?}, \
         --auto-failover) under searches and inserts through the alias; kill -9 of every querynode of the primary, \
         restarted 5 s after the flip; then a manual failback and {PROBE_CHANGES} alias changes"
    );
    let mut r = ScenarioReport::new(
        "mirrored alias: kill -9 the primary's querynodes",
        &fault,
        stats,
    );
    r.missing_rows = missing_b.len();
    r.figure("flip_ms_after_kill", flip_ms);
    r.figure("search_outage_ms", r.load.longest_search_gap_ms);
    r.figure("divergence_zero_ms_after_return", converged_ms);
    r.figure("alias_propagation_p50_s", p50);
    r.figure("alias_propagation_p99_s", p99);
    r.figure("alias_changes_timed", count);
    r.check(
        format!("the alias flipped by itself ({flipped:?}, {flip_ms} ms after the kill)"),
        flipped.is_ok(),
    );
    r.check("0 failed searches", r.load.searches_failed == 0);
    r.check("0 failed inserts", r.load.inserts_failed == 0);
    r.check_time(
        format!(
            "search outage through the alias never over 5 s ({} ms)",
            r.load.longest_search_gap_ms
        ),
        r.load.longest_search_gap_ms <= 5_000,
    );
    r.check_time(
        format!(
            "search outage through the alias at most 2 s ({} ms)",
            r.load.longest_search_gap_ms
        ),
        r.load.longest_search_gap_ms <= 2_000,
    );
    r.check(
        format!(
            "0 acknowledged writes missing from the standby (missing: {})",
            missing_b.len()
        ),
        missing_b.is_empty(),
    );
    r.check(
        format!(
            "the primary has every acknowledged write after its return (missing: {})",
            missing_a.len()
        ),
        missing_a.is_empty(),
    );
    r.check(
        format!("divergence back to 0 after the return ({converged:?})"),
        converged.is_ok(),
    );
    r.check_time(
        format!("divergence back to 0 within 30 s of the return ({converged_ms} ms)"),
        converged.is_ok() && converged_ms <= 30_000,
    );
    r.check(
        format!(
            "a manual failback works ({:?})",
            failback.as_ref().map(|s| &s.target)
        ),
        failback.is_ok_and(|s| s.target == MIRROR_A),
    );
    r.check(
        format!("the history shows both flips ({flips:?})"),
        both_flips,
    );
    r.check_time(
        format!("alias changes reach the proxy within 1 s, p99 ({p99:?} s over {count} changes)"),
        p99.is_some_and(|s| s <= 1.0),
    );
    Ok(r)
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
