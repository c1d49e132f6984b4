//! Coord state loss: a follower coord is killed, its directory deleted, and
//! it is started again empty. It must say it is not admitted (it never
//! votes with a forgotten log), metadata changes must go on, and after
//! `quiver coord add` (here `admit_coord`) it must vote again; no request
//! of the load may fail and nothing acknowledged may be lost.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use quiver_coord::MetaOps;

use super::report::ScenarioReport;
use super::scenarios::{COLLECTION, Ctx, leader, poll};
use crate::cluster::local;

const PROBE_ALIAS: &str = "coord_state_probe";

pub(super) async fn coord_state_loss(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    let load = ctx.load().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lead = poll(Duration::from_secs(10), "a coord leader", || {
        leader(&ctx.coord, &ctx.file)
    })
    .await?;
    let victim = ctx
        .file
        .by_role("coord")
        .map(|p| p.id)
        .find(|id| *id != lead)
        .context("a follower coord")?;
    let addr = ctx
        .file
        .process(victim)
        .map(|p| p.addr.clone())
        .unwrap_or_default();
    let pid = ctx.file.process(victim).map_or(0, |p| p.pid);
    local::kill(&ctx.file, victim, libc::SIGKILL)?;
    poll(
        Duration::from_secs(10),
        "the killed coord to exit",
        || async { (!local::running(pid)).then_some(()) },
    )
    .await?;
    let dir = ctx.coord_dir(victim);
    std::fs::remove_dir_all(&dir).with_context(|| format!("deleting {}", dir.display()))?;
    let t0 = Instant::now();
    ctx.restart(victim).await?;
    let coord = ctx.coord.clone();
    let standing = |addr: String| {
        let coord = coord.clone();
        async move { coord.status_of(&addr).await.ok().map(|s| s.standing) }
    };
    let said = poll(
        Duration::from_secs(30),
        "the wiped coord to say it is not admitted",
        || {
            let s = standing(addr.clone());
            async move { s.await.filter(|s| s.starts_with("not admitted")) }
        },
    )
    .await;
    let not_admitted_ms = t0.elapsed().as_millis() as u64;
    // Metadata changes go on meanwhile (two voters of three).
    let ddl = async {
        ctx.coord.create_alias(PROBE_ALIAS, COLLECTION).await?;
        ctx.coord.drop_alias(PROBE_ALIAS).await
    }
    .await;
    let t1 = Instant::now();
    let admitted = ctx.coord.admit_coord(victim).await;
    let votes = poll(
        Duration::from_secs(30),
        "the wiped coord to vote again",
        || {
            let s = standing(addr.clone());
            async move { s.await.filter(|s| s == "voter") }
        },
    )
    .await;
    let voter_ms = t1.elapsed().as_millis() as u64;
    let fault = format!(
        "kill -9 of follower coord {victim}, its directory deleted, started again empty; re-admitted with admit_coord (quiver coord add {victim})"
    );
    let mut r = ctx.finish("coord state loss", &fault, load).await?;
    r.figure("not_admitted_ms_after_restart", not_admitted_ms);
    r.figure("voter_ms_after_add", voter_ms);
    r.check(
        format!("the wiped coord does not vote and says why ({said:?})"),
        said.as_ref()
            .is_ok_and(|s| s.contains(&format!("quiver coord add {victim}"))),
    );
    r.check(
        format!("metadata changes go on while it is not admitted ({ddl:?})"),
        ddl.is_ok(),
    );
    r.check(
        format!("it votes again once re-added ({admitted:?}, {votes:?})"),
        admitted.is_ok() && votes.is_ok(),
    );
    r.check("0 failed searches", r.load.searches_failed == 0);
    r.check("0 failed inserts", r.load.inserts_failed == 0);
    Ok(r)
}

const RECOVER_ALIAS: &str = "after_recover";

/// Every coord killed and its directory deleted; the data path goes on
/// without coord; `quiver coord recover` rebuilds the directories from the
/// metadata backups in the object store, the coords start again, elect a
/// leader, and every acknowledged change (the alias of the earlier
/// scenarios among them) is there.
pub(super) async fn coord_group_recover(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    let load = ctx.load().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let coords: Vec<(u64, u32)> = ctx.file.by_role("coord").map(|p| (p.id, p.pid)).collect();
    for (id, _) in &coords {
        local::kill(&ctx.file, *id, libc::SIGKILL)?;
    }
    poll(Duration::from_secs(10), "every coord to exit", || async {
        (!coords.iter().any(|(_, pid)| local::running(*pid))).then_some(())
    })
    .await?;
    for (id, _) in &coords {
        let dir = ctx.coord_dir(*id);
        std::fs::remove_dir_all(&dir).with_context(|| format!("deleting {}", dir.display()))?;
    }
    // The data path without any coord.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t0 = Instant::now();
    let recovered = crate::cluster::recover::run(Some(ctx.dir.to_path_buf()), None, false).await;
    for (id, _) in &coords {
        ctx.restart(*id).await?;
    }
    let lead = poll(Duration::from_secs(30), "a coord leader", || {
        leader(&ctx.coord, &ctx.file)
    })
    .await;
    let ddl = ctx.coord.create_alias(RECOVER_ALIAS, COLLECTION).await;
    let serving_ms = t0.elapsed().as_millis() as u64;
    let client = super::connect(&ctx.file.proxy).await?;
    let alias = client
        .describe_alias(super::scenarios::ALIAS)
        .await
        .unwrap_or_default();
    let fault = "kill -9 of all three coords and their directories deleted; 3 s of load without coord; quiver coord recover --dir; the coords started again".to_string();
    let mut r = ctx
        .finish("every coord's directory lost", &fault, load)
        .await?;
    r.figure("recovered_and_ddl_ms", serving_ms);
    r.check(
        format!("quiver coord recover rebuilds every coord ({recovered:?})"),
        recovered.is_ok(),
    );
    r.check(
        format!("the rebuilt coords elect a leader ({lead:?}) and take DDL ({ddl:?})"),
        lead.is_ok() && ddl.is_ok(),
    );
    r.check(
        format!(
            "the acknowledged metadata is back: alias {} names {COLLECTION} (got {alias:?})",
            super::scenarios::ALIAS
        ),
        alias == COLLECTION,
    );
    r.check("0 failed searches", r.load.searches_failed == 0);
    Ok(r)
}

/// Replaces a coord under load: a fourth coord joins (`quiver cluster add
/// --role coord`: a learner until it holds the log, then a voter), then the
/// leader, one of the original three, is removed (`quiver coord remove`: it
/// steps down, the others elect). The data path must not notice.
pub(super) async fn coord_replace(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    let load = ctx.load().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t0 = Instant::now();
    let added = local::add(ctx.dir, "coord").await?;
    let added_ms = t0.elapsed().as_millis() as u64;
    ctx.reread()?;
    let lead = poll(Duration::from_secs(10), "a coord leader", || {
        leader(&ctx.coord, &ctx.file)
    })
    .await?;
    let t1 = Instant::now();
    let members = crate::cluster::coords::remove_local(ctx.dir, lead).await?;
    ctx.reread()?;
    let new_leader = poll(Duration::from_secs(30), "a new coord leader", || {
        leader(&ctx.coord, &ctx.file)
    })
    .await?;
    let removed_ms = t1.elapsed().as_millis() as u64;
    // Metadata changes go on with the new group.
    let ddl = ctx.coord.create_alias(PROBE_ALIAS, COLLECTION).await;
    let _ = ctx.coord.drop_alias(PROBE_ALIAS).await;
    let mut views = Vec::new();
    for p in ctx.file.by_role("coord") {
        if let Ok(s) = ctx.coord.status_of(&p.addr).await {
            views.push((p.id, s.standing));
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fault = format!(
        "coord {} joins (`quiver cluster add --role coord`), then the leader coord {lead} is removed (`quiver coord remove {lead}`)",
        added.id
    );
    let mut r = ctx.finish("replace a coord", &fault, load).await?;
    r.figure("added_ms", added_ms);
    r.figure("removed_until_new_leader_ms", removed_ms);
    r.figure("slowest_search_ms", r.load.max_search_ms);
    let voters: Vec<u64> = members.voters.keys().copied().collect();
    r.check(
        format!("the voters are the two originals left and the new coord ({voters:?})"),
        voters.len() == 3 && voters.contains(&added.id) && !voters.contains(&lead),
    );
    r.check(
        format!("a new leader among them (coord {new_leader})"),
        voters.contains(&new_leader),
    );
    r.check(
        format!("every coord left votes ({views:?})"),
        views.len() == 3 && views.iter().all(|(_, s)| s == "voter"),
    );
    r.check(format!("metadata changes go on ({ddl:?})"), ddl.is_ok());
    r.check("0 failed searches", r.load.searches_failed == 0);
    r.check("0 failed inserts", r.load.inserts_failed == 0);
    Ok(r)
}
