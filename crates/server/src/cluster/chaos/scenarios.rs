//! The scenarios of `quiver cluster chaos`, run one after the other on one
//! cluster. Durations here are the lengths of the load phases (how long the
//! clients run through a fault), not waits for conditions: every condition is
//! polled with a bound.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use quiver_client::{Client, CollectionSpec, SearchParams};
use quiver_coord::{CoordClient, Role};
use quiver_proxy::metrics::quantile_from_text;

use super::load::{self, DIM, Load, LoadStats};
use super::report::{Report, ScenarioReport};
use crate::cluster::local::{self, ClusterFile, Shape};

const COLLECTION: &str = "chaos";
const ALIAS: &str = "chaos_live";
const SHAPE: Shape = Shape {
    coords: 3,
    datanodes: 2,
    querynodes: 2,
    proxies: 1,
};
const ALL: [&str; 6] = [
    "leader",
    "querynode",
    "datanode",
    "sigstop",
    "mirror",
    "restart-all",
];
/// The mirrored pair of the `mirror` scenario.
const MIRROR: &str = "mirror_live";
const MIRROR_A: &str = "mirror_a";
const MIRROR_B: &str = "mirror_b";
/// A plain alias flipped back and forth to time alias propagation.
const PROBE_ALIAS: &str = "mirror_probe";
const PROBE_CHANGES: usize = 40;

/// Polls `cond` every 50 ms until it yields a value or `timeout` passes.
async fn poll<T, F, Fut>(timeout: Duration, what: &str, mut cond: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each running coord's own view: (id, role, term).
async fn coord_views(coord: &CoordClient, file: &ClusterFile) -> Vec<(u64, Role, u64)> {
    let mut views = Vec::new();
    for p in file.by_role("coord") {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(300), coord.status_of(&p.addr)).await
        {
            views.push((p.id, s.role, s.term));
        }
    }
    views
}

/// The coord that says it leads in the newest term.
async fn leader(coord: &CoordClient, file: &ClusterFile) -> Option<u64> {
    coord_views(coord, file)
        .await
        .into_iter()
        .filter(|(_, role, _)| *role == Role::Leader)
        .max_by_key(|(_, _, term)| *term)
        .map(|(id, _, _)| id)
}

struct Ctx<'a> {
    dir: &'a Path,
    file: ClusterFile,
    coord: CoordClient,
    next_id: i64,
    acked: Vec<i64>,
}

impl Ctx<'_> {
    async fn load(&mut self) -> Result<Load> {
        let l = Load::start(&self.file.proxy, COLLECTION, self.next_id).await?;
        self.next_id += 10_000_000;
        Ok(l)
    }

    /// Stops the load and checks its acknowledged rows are all there.
    async fn finish(&mut self, name: &str, fault: &str, load: Load) -> Result<ScenarioReport> {
        let stats: LoadStats = load.stop().await;
        let missing = load::missing(&self.file.proxy, COLLECTION, &stats.acked).await?;
        self.acked.extend(&stats.acked);
        let mut r = ScenarioReport::new(name, fault, stats);
        r.missing_rows = missing.len();
        r.check(
            format!("0 acknowledged rows missing (missing: {})", missing.len()),
            missing.is_empty(),
        );
        Ok(r)
    }

    fn reread(&mut self) -> Result<()> {
        self.file = ClusterFile::read(self.dir)?;
        Ok(())
    }

    /// The nodes serving the collection: (owners, replicas) over its shards.
    fn placement(&self) -> (Vec<u64>, Vec<u64>) {
        let state = self.coord.state();
        let Some(meta) = state.collection(COLLECTION) else {
            return (Vec::new(), Vec::new());
        };
        let mut owners = Vec::new();
        let mut replicas = Vec::new();
        for shard in 0..meta.shards {
            if let Some(o) = state.shard_owner(meta.id, shard) {
                owners.push(o.node_id);
            }
            replicas.extend(state.shard_replicas(meta.id, shard));
        }
        owners.sort_unstable();
        owners.dedup();
        replicas.sort_unstable();
        replicas.dedup();
        (owners, replicas)
    }

    /// Waits until every shard has an owner and `replicas` replicas.
    async fn wait_placed(&self, replicas: usize, timeout: Duration) -> Result<()> {
        let coord = self.coord.clone();
        poll(timeout, "the collection's placement", || {
            let state = coord.state();
            async move {
                let meta = state.collection(COLLECTION)?;
                (0..meta.shards)
                    .all(|s| {
                        state.shard_owner(meta.id, s).is_some()
                            && state.shard_replicas(meta.id, s).len() >= replicas
                    })
                    .then_some(())
            }
        })
        .await
    }

    async fn restart(&mut self, id: u64) -> Result<()> {
        local::start(self.dir, id).await?;
        self.reread()
    }
}

pub async fn run_all(dir: &Path, only: &[String], keep: bool) -> Result<Report> {
    for o in only {
        if !ALL.contains(&o.as_str()) {
            bail!("--only: unknown scenario {o:?} (known: {})", ALL.join(", "));
        }
    }
    let started = utc_now();
    let file = local::up(dir, SHAPE)
        .await
        .context("starting the cluster")?;
    let coord = CoordClient::connect(file.coords(), Default::default()).await?;
    let mut ctx = Ctx {
        dir,
        file,
        coord,
        next_id: 1,
        acked: Vec::new(),
    };
    let result = run_scenarios(&mut ctx, only).await;
    if !keep {
        let _ = local::down(dir, Duration::from_secs(10)).await;
    }
    let scenarios = result?;
    Ok(Report {
        started,
        cluster: "3 coords, 2 datanodes, 2 querynodes, 1 proxy on loopback; collection with \
                  2 shards, replica_number=2"
            .to_string(),
        machine: format!(
            "{} CPUs, {}, {} build",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            std::env::consts::ARCH,
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        ),
        scenarios,
    })
}

async fn run_scenarios(ctx: &mut Ctx<'_>, only: &[String]) -> Result<Vec<ScenarioReport>> {
    let client = Client::connect(&ctx.file.proxy).await?;
    let mut spec = CollectionSpec::new(COLLECTION, DIM);
    spec.shards = Some(2);
    client.create_collection(&spec).await?;
    client.load_collection(COLLECTION, 2).await?;
    client.create_alias(ALIAS, COLLECTION).await?;
    ctx.wait_placed(2, Duration::from_secs(30)).await?;

    let wanted = |n: &str| only.is_empty() || only.iter().any(|o| o == n);
    let mut reports = Vec::new();
    if wanted("leader") {
        reports.push(kill_leader(ctx).await?);
    }
    if wanted("querynode") {
        reports.push(kill_querynode(ctx).await?);
    }
    if wanted("datanode") {
        reports.push(kill_datanode(ctx).await?);
    }
    if wanted("sigstop") {
        reports.push(sigstop_leader(ctx).await?);
    }
    if wanted("mirror") {
        reports.push(mirror_failover(ctx).await?);
    }
    if wanted("restart-all") {
        reports.push(restart_all(ctx).await?);
    }
    Ok(reports)
}

async fn kill_leader(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    let load = ctx.load().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let old = poll(Duration::from_secs(10), "a coord leader", || {
        leader(&ctx.coord, &ctx.file)
    })
    .await?;
    let t0 = Instant::now();
    local::kill(&ctx.file, old, libc::SIGKILL)?;
    let new = poll(Duration::from_secs(15), "a new coord leader", || async {
        leader(&ctx.coord, &ctx.file).await.filter(|&id| id != old)
    })
    .await?;
    let new_leader_ms = t0.elapsed().as_millis() as u64;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ctx.restart(old).await?;
    let addr = ctx
        .file
        .process(old)
        .map(|p| p.addr.clone())
        .unwrap_or_default();
    let coord = ctx.coord.clone();
    poll(Duration::from_secs(15), "the old leader to rejoin", || {
        let (coord, addr) = (coord.clone(), addr.clone());
        async move {
            let s = coord.status_of(&addr).await.ok()?;
            (s.role == Role::Follower).then_some(())
        }
    })
    .await?;
    let fault = format!(
        "kill -9 of the leader coord (id {old}); coord {new} took over; the old one restarted as a follower"
    );
    let mut r = ctx.finish("kill -9 leader coord", &fault, load).await?;
    r.figure("new_leader_ms", new_leader_ms);
    r.check("0 failed searches", r.load.searches_failed == 0);
    r.check("0 failed inserts", r.load.inserts_failed == 0);
    r.check_time(
        format!("a new leader within 3 s (took {new_leader_ms} ms)"),
        new_leader_ms <= 3000,
    );
    Ok(r)
}

async fn kill_querynode(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    let load = ctx.load().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, replicas) = ctx.placement();
    let Some(&victim) = replicas.first() else {
        bail!("no querynode serves the collection");
    };
    local::kill(&ctx.file, victim, libc::SIGKILL)?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    ctx.restart(victim).await?;
    let t0 = Instant::now();
    ctx.wait_placed(2, Duration::from_secs(30)).await?;
    let replaced_ms = t0.elapsed().as_millis() as u64;
    let fault = format!(
        "kill -9 of querynode {victim} (one of the two replicas), 5 s of load on the other, then restarted"
    );
    let mut r = ctx.finish("kill -9 querynode", &fault, load).await?;
    r.figure("two_replicas_again_ms_after_restart", replaced_ms);
    r.check("0 failed searches", r.load.searches_failed == 0);
    r.check("0 failed inserts", r.load.inserts_failed == 0);
    Ok(r)
}

async fn kill_datanode(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    let load = ctx.load().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (owners, _) = ctx.placement();
    let Some(&victim) = owners.first() else {
        bail!("no datanode owns the collection's shards");
    };
    let t0 = Instant::now();
    local::kill(&ctx.file, victim, libc::SIGKILL)?;
    let coord = ctx.coord.clone();
    poll(Duration::from_secs(30), "the shards to move", || {
        let coord = coord.clone();
        async move {
            let state = coord.state();
            let meta = state.collection(COLLECTION)?;
            (0..meta.shards)
                .all(|s| {
                    state
                        .shard_owner(meta.id, s)
                        .is_some_and(|o| o.node_id != victim)
                })
                .then_some(())
        }
    })
    .await?;
    let moved_ms = t0.elapsed().as_millis() as u64;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ctx.restart(victim).await?;
    let fault = format!(
        "kill -9 of datanode {victim} (owner of shards); coord moved them to the other datanode, which replayed the WAL; then restarted"
    );
    let mut r = ctx.finish("kill -9 datanode", &fault, load).await?;
    r.figure("shards_moved_ms", moved_ms);
    r.check_time(
        format!(
            "inserts fail for at most 5 s (longest outage {} ms)",
            r.load.longest_insert_outage_ms
        ),
        r.load.longest_insert_outage_ms <= 5000,
    );
    r.check("0 failed searches", r.load.searches_failed == 0);
    Ok(r)
}

async fn sigstop_leader(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    let load = ctx.load().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let old = poll(Duration::from_secs(10), "a coord leader", || {
        leader(&ctx.coord, &ctx.file)
    })
    .await?;
    let old_addr = ctx
        .file
        .process(old)
        .map(|p| p.addr.clone())
        .unwrap_or_default();
    // Every sample: which coords say they lead, in which term.
    let mut leaders_by_term: BTreeMap<u64, std::collections::BTreeSet<u64>> = BTreeMap::new();
    let mut sample = |views: Vec<(u64, Role, u64)>| {
        for (id, role, term) in views {
            if role == Role::Leader {
                leaders_by_term.entry(term).or_default().insert(id);
            }
        }
    };
    sample(coord_views(&ctx.coord, &ctx.file).await);
    local::kill(&ctx.file, old, libc::SIGSTOP)?;
    let paused = Instant::now();
    let client = Client::connect(&ctx.file.proxy).await?;
    let mut ddl_ok = None;
    while paused.elapsed() < Duration::from_secs(10) {
        sample(coord_views(&ctx.coord, &ctx.file).await);
        if ddl_ok.is_none() && paused.elapsed() > Duration::from_secs(2) {
            // Metadata changes go on without the paused leader.
            ddl_ok = Some(client.create_alias("chaos_during_pause", COLLECTION).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    local::kill(&ctx.file, old, libc::SIGCONT)?;
    // Straight to the stale leader, without following redirects.
    let stale_write = stale_write(&old_addr).await;
    let t0 = Instant::now();
    let mut stepped_down_ms = None;
    while t0.elapsed() < Duration::from_secs(5) {
        let views = coord_views(&ctx.coord, &ctx.file).await;
        if stepped_down_ms.is_none()
            && views
                .iter()
                .any(|(id, role, _)| *id == old && *role == Role::Follower)
        {
            stepped_down_ms = Some(t0.elapsed().as_millis() as u64);
        }
        sample(views);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let aliases = client.list_aliases(None).await.unwrap_or_default();
    let fault = format!(
        "SIGSTOP of the leader coord (id {old}) for 10 s, then SIGCONT; a write sent straight to it after SIGCONT"
    );
    let mut r = ctx
        .finish("SIGSTOP leader coord 10 s", &fault, load)
        .await?;
    let two = leaders_by_term.values().any(|ids| ids.len() > 1);
    r.figure(
        "leaders_by_term",
        serde_json::to_value(&leaders_by_term).unwrap_or_default(),
    );
    r.check("never two leaders in one term", !two);
    r.check(
        format!("DDL while the leader is paused succeeds ({ddl_ok:?})"),
        matches!(ddl_ok, Some(Ok(()))),
    );
    r.check(
        format!("the stale leader's write is refused ({stale_write})"),
        !stale_write.starts_with("accepted") && !aliases.iter().any(|a| a == "stale_write"),
    );
    r.check(
        format!("the stale leader steps down ({stepped_down_ms:?} ms after SIGCONT)"),
        stepped_down_ms.is_some(),
    );
    r.check("0 failed searches", r.load.searches_failed == 0);
    r.check("0 failed inserts", r.load.inserts_failed == 0);
    Ok(r)
}

/// Sends CreateAlias straight to the coord at `addr`; describes the answer.
async fn stale_write(addr: &str) -> String {
    use quiver_proto::coord::AliasRequest;
    use quiver_proto::coord::coord_service_client::CoordServiceClient;
    let call = async {
        let mut c = CoordServiceClient::connect(format!("http://{addr}")).await?;
        c.create_alias(AliasRequest {
            alias: "stale_write".into(),
            collection: COLLECTION.into(),
        })
        .await
        .map_err(anyhow::Error::from)
    };
    match tokio::time::timeout(Duration::from_secs(10), call).await {
        Ok(Ok(_)) => "accepted".to_string(),
        Ok(Err(e)) => format!("refused: {}", e.to_string().lines().next().unwrap_or("")),
        Err(_) => "refused: no answer in 10 s".to_string(),
    }
}

async fn restart_all(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    let pids: Vec<u64> = ctx.file.processes.iter().map(|p| p.id).collect();
    for id in &pids {
        local::kill(&ctx.file, *id, libc::SIGKILL)?;
    }
    let t0 = Instant::now();
    let file = ctx.file.clone();
    poll(Duration::from_secs(10), "every process to die", || {
        let file = file.clone();
        async move { (!file.processes.iter().any(|p| local::running(p.pid))).then_some(()) }
    })
    .await?;
    for id in &pids {
        ctx.restart(*id).await?;
    }
    let proxy = ctx.file.proxy.clone();
    let first_search = poll(Duration::from_secs(60), "a first search", || {
        let proxy = proxy.clone();
        async move {
            let client = Client::connect(&proxy).await.ok()?;
            client
                .search(ALIAS, &load::vector(1), DIM, &SearchParams::new(10))
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;
    let first_search_ms = t0.elapsed().as_millis() as u64;
    let client = Client::connect(&ctx.file.proxy).await?;
    let alias = client.describe_alias(ALIAS).await.unwrap_or_default();
    let missing = load::missing(&ctx.file.proxy, COLLECTION, &ctx.acked).await?;
    let mut r = ScenarioReport::new(
        "restart every process",
        "kill -9 of all 8 processes at once, then each started again",
        LoadStats::default(),
    );
    r.missing_rows = missing.len();
    r.figure("first_search_ms", first_search_ms);
    r.figure("rows_checked", ctx.acked.len());
    r.check(
        format!("a first search succeeds after the restart ({first_search:?})"),
        first_search.is_ok(),
    );
    r.check_time(
        format!("first search within 30 s (took {first_search_ms} ms)"),
        first_search_ms <= 30_000,
    );
    r.check(
        format!("alias {ALIAS} still names {COLLECTION} (got {alias:?})"),
        alias == COLLECTION,
    );
    r.check(
        format!(
            "every row acknowledged in the earlier scenarios is back ({} of {} missing)",
            missing.len(),
            ctx.acked.len()
        ),
        missing.is_empty(),
    );
    Ok(r)
}

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

/// The body of `GET path` on `addr` (HTTP/1.1, the proxy's status port).
async fn http_get(addr: &str, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let call = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        anyhow::Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    let text = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .context("GET timed out")??;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("no HTTP header in the answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_string())
}

/// The mirrored-alias contract: a pair on disjoint querynodes under
/// searches and inserts through the alias; every querynode of the primary
/// is killed; the alias must flip by itself, the search outage stay short,
/// nothing acknowledged go missing from the standby; after the primary's
/// querynodes return, divergence must be back to 0 within 30 s; a manual
/// failback must work with both flips in the history; and alias changes
/// must reach the proxy within 1 s (p99 of its metric).
async fn mirror_failover(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    use quiver_client::{Actor, MirrorSpec};
    let client = Client::connect(&ctx.file.proxy).await?;
    for name in [MIRROR_A, MIRROR_B] {
        let mut spec = CollectionSpec::new(name, DIM);
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
    let load = Load::start(&ctx.file.proxy, MIRROR, ctx.next_id).await?;
    ctx.next_id += 10_000_000;
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
    let before = propagation_count(&ctx.file.proxy).await.unwrap_or(0);
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
                let text = http_get(&proxy, "/metrics").await.ok()?;
                let count = metric(&text, "quiver_alias_propagation_seconds_count")? as u64;
                (count >= wanted).then_some(text)
            }
        },
    )
    .await;
    let (p50, p99, count) = match &timed {
        Ok(text) => (
            quantile_from_text(text, "quiver_alias_propagation_seconds", 0.5),
            quantile_from_text(text, "quiver_alias_propagation_seconds", 0.99),
            metric(text, "quiver_alias_propagation_seconds_count").unwrap_or(0.0) as u64,
        ),
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

async fn propagation_count(proxy: &str) -> Option<u64> {
    let text = http_get(proxy, "/metrics").await.ok()?;
    metric(&text, "quiver_alias_propagation_seconds_count").map(|v| v as u64)
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The current UTC time as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
