//! Quorum loss: two of the three coords are killed. Metadata changes must
//! fail fast with a clear "no coord quorum" status while searches and
//! inserts go on (they never need coord); after the coords return, DDL
//! works again.

use std::time::{Duration, Instant};

use anyhow::Result;
use quiver_coord::MetaOps;

use super::report::ScenarioReport;
use super::scenarios::{COLLECTION, Ctx, leader, poll};
use crate::cluster::local;

const PROBE_ALIAS: &str = "quorum_probe";

pub(super) async fn quorum_loss(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    let load = ctx.load().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victims: Vec<(u64, u32)> = ctx
        .file
        .by_role("coord")
        .take(2)
        .map(|p| (p.id, p.pid))
        .collect();
    for (id, _) in &victims {
        local::kill(&ctx.file, *id, libc::SIGKILL)?;
    }
    for (_, pid) in &victims {
        let pid = *pid;
        poll(
            Duration::from_secs(10),
            "the killed coords to exit",
            || async { (!local::running(pid)).then_some(()) },
        )
        .await?;
    }
    let t0 = Instant::now();
    let refused = ctx.coord.create_alias(PROBE_ALIAS, COLLECTION).await;
    let refused_ms = t0.elapsed().as_millis() as u64;
    // The data path goes on without coord for a while.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (id, _) in &victims {
        ctx.restart(*id).await?;
    }
    poll(Duration::from_secs(30), "a coord leader again", || {
        leader(&ctx.coord, &ctx.file)
    })
    .await?;
    // The refused create may still have committed (a write that timed out
    // "may or may not be applied"): either way the alias is there after.
    let after = async {
        match ctx.coord.create_alias(PROBE_ALIAS, COLLECTION).await {
            Ok(_) | Err(quiver_common::Error::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
        ctx.coord.drop_alias(PROBE_ALIAS).await
    }
    .await;
    let ids: Vec<u64> = victims.iter().map(|(id, _)| *id).collect();
    let fault = format!(
        "kill -9 of coords {ids:?} (two of three: no quorum), a DDL sent meanwhile, 3 s of load, then both restarted"
    );
    let mut r = ctx.finish("quorum loss", &fault, load).await?;
    r.figure("ddl_refused_ms", refused_ms);
    let message = refused.as_ref().err().map(|e| e.to_string());
    r.check(
        format!("DDL without a quorum is refused with a clear status ({message:?})"),
        message.as_deref().is_some_and(|m| m.contains("quorum")),
    );
    r.check_time(
        format!("DDL without a quorum answers within 3 s (took {refused_ms} ms)"),
        refused_ms <= 3_000,
    );
    r.check(
        format!("DDL works again once the coords return ({after:?})"),
        after.is_ok(),
    );
    r.check("0 failed searches", r.load.searches_failed == 0);
    r.check("0 failed inserts", r.load.inserts_failed == 0);
    Ok(r)
}
