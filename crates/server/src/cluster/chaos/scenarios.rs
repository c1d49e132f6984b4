//! The scenarios of `quiver cluster chaos`, run one after the other on one
//! cluster. Durations here are the lengths of the load phases (how long the
//! clients run through a fault), not waits for conditions: every condition is
//! polled with a bound.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use quiver_client::{CollectionSpec, ReadLevel, SearchParams};
use quiver_coord::{CoordClient, Role};

use super::load::{self, DIM, Load, LoadStats};
use super::report::{Report, ScenarioReport};
use crate::cluster::local::{self, ClusterFile, Shape};

pub(super) const COLLECTION: &str = "chaos";
pub(super) const ALIAS: &str = "chaos_live";
const SHAPE: Shape = Shape {
    coords: 3,
    datanodes: 2,
    querynodes: 2,
    proxies: 2,
    tls: false,
};
const ALL: [&str; 15] = [
    "leader",
    "querynode",
    "datanode",
    "sigstop",
    "coord-state",
    "coord-recover",
    "quorum",
    "disk-full",
    "flood",
    "compaction",
    "mirror",
    "restart-all",
    "coord-replace",
    "roll",
    "elastic",
];

/// Polls `cond` every 50 ms until it yields a value or `timeout` passes.
pub(super) async fn poll<T, F, Fut>(timeout: Duration, what: &str, mut cond: F) -> Result<T>
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
pub(super) async fn leader(coord: &CoordClient, file: &ClusterFile) -> Option<u64> {
    coord_views(coord, file)
        .await
        .into_iter()
        .filter(|(_, role, _)| *role == Role::Leader)
        .max_by_key(|(_, _, term)| *term)
        .map(|(id, _, _)| id)
}

pub(super) struct Ctx<'a> {
    pub(super) dir: &'a Path,
    pub(super) file: ClusterFile,
    pub(super) coord: CoordClient,
    next_id: i64,
    acked: Vec<i64>,
}

impl Ctx<'_> {
    pub(super) async fn load(&mut self) -> Result<Load> {
        self.load_on(COLLECTION).await
    }

    /// Starts the load on `collection` (or alias) with keys of its own.
    pub(super) async fn load_on(&mut self, collection: &str) -> Result<Load> {
        let l = Load::start(
            std::slice::from_ref(&self.file.proxy),
            collection,
            self.next_id,
        )
        .await?;
        self.next_id += 10_000_000;
        Ok(l)
    }

    /// Starts the load through every proxy (a client that knows them all).
    pub(super) async fn load_via_all(&mut self) -> Result<Load> {
        let proxies: Vec<String> = self.file.by_role("proxy").map(|p| p.addr.clone()).collect();
        let l = Load::start(&proxies, COLLECTION, self.next_id).await?;
        self.next_id += 10_000_000;
        Ok(l)
    }

    /// Stops the load and checks its acknowledged rows are all there.
    pub(super) async fn finish(
        &mut self,
        name: &str,
        fault: &str,
        load: Load,
    ) -> Result<ScenarioReport> {
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

    pub(super) fn reread(&mut self) -> Result<()> {
        self.file = ClusterFile::read(self.dir)?;
        Ok(())
    }

    /// The nodes serving the collection: (owners, replicas) over its shards.
    pub(super) fn placement(&self) -> (Vec<u64>, Vec<u64>) {
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

    /// Where coord `id` keeps its Raft data.
    pub(super) fn coord_dir(&self, id: u64) -> std::path::PathBuf {
        self.dir.join(format!("coord-{id}"))
    }

    pub(super) async fn restart(&mut self, id: u64) -> Result<()> {
        local::start(self.dir, id).await?;
        self.reread()
    }
}

pub async fn run_all(dir: &Path, only: &[String], keep: bool, tls: bool) -> Result<Report> {
    for o in only {
        if !ALL.contains(&o.as_str()) {
            bail!("--only: unknown scenario {o:?} (known: {})", ALL.join(", "));
        }
    }
    let started = utc_now();
    let wanted = |n: &str| only.is_empty() || only.iter().any(|o| o == n);
    // The disk-full scenario needs the object store on a small filesystem
    // from the start.
    let small_fs = match wanted("disk-full") {
        true => super::disk_full::mount(dir),
        false => Err("not run".to_string()),
    };
    let file = match local::up(dir, Shape { tls, ..SHAPE }).await {
        Ok(f) => f,
        Err(e) => {
            if let Ok(p) = &small_fs {
                super::disk_full::unmount(p);
            }
            return Err(e.context("starting the cluster"));
        }
    };
    super::set_reach(&file)?;
    let coord = CoordClient::connect(file.coords(), file.coord_options()?).await?;
    let mut ctx = Ctx {
        dir,
        file,
        coord,
        next_id: 1,
        acked: Vec::new(),
    };
    let result = run_scenarios(&mut ctx, only, &small_fs).await;
    if !keep {
        let _ = local::down(dir, Duration::from_secs(10)).await;
        if let Ok(p) = &small_fs {
            super::disk_full::unmount(p);
        }
    }
    let scenarios = result?;
    Ok(Report {
        started,
        cluster: format!(
            "{} coords, {} datanodes, {} querynodes, {} proxies on loopback (the load uses the \
             first; the roll's client knows both); collection with 2 shards, replica_number=2",
            SHAPE.coords, SHAPE.datanodes, SHAPE.querynodes, SHAPE.proxies
        ),
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

async fn run_scenarios(
    ctx: &mut Ctx<'_>,
    only: &[String],
    small_fs: &std::result::Result<std::path::PathBuf, String>,
) -> Result<Vec<ScenarioReport>> {
    let client = super::connect(&ctx.file.proxy).await?;
    // Bounded by default, as a Milvus client creates it: the default-level
    // searches of the load read at Bounded.
    let mut spec = CollectionSpec::new(COLLECTION, DIM).with_consistency(ReadLevel::Bounded);
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
    if wanted("coord-state") {
        reports.push(super::coord_state::coord_state_loss(ctx).await?);
    }
    if wanted("coord-recover") {
        reports.push(super::coord_state::coord_group_recover(ctx).await?);
    }
    if wanted("quorum") {
        reports.push(super::quorum::quorum_loss(ctx).await?);
    }
    if wanted("disk-full") {
        reports.push(super::disk_full::disk_full(ctx, small_fs).await?);
    }
    if wanted("flood") {
        reports.push(super::flood::connection_flood(ctx).await?);
    }
    if wanted("compaction") {
        reports.push(super::compaction::compaction_under_load(ctx).await?);
    }
    if wanted("mirror") {
        reports.push(super::mirror::mirror_failover(ctx).await?);
    }
    if wanted("restart-all") {
        reports.push(restart_all(ctx).await?);
    }
    if wanted("coord-replace") {
        reports.push(super::coord_state::coord_replace(ctx).await?);
    }
    if wanted("roll") {
        reports.push(super::elastic::roll(ctx).await?);
    }
    if wanted("elastic") {
        reports.push(super::elastic::grow_and_drain(ctx).await?);
    }
    Ok(reports)
}

async fn kill_leader(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    let (proxy, before) = super::scrape::before(ctx).await;
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
    super::scrape::report(&mut r, &proxy, &before).await;
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
    let (proxy, before) = super::scrape::before(ctx).await;
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
    super::scrape::report(&mut r, &proxy, &before).await;
    r.check("0 failed searches", r.load.searches_failed == 0);
    r.check("0 failed inserts", r.load.inserts_failed == 0);
    Ok(r)
}

async fn kill_datanode(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    let (proxy, before) = super::scrape::before(ctx).await;
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
    super::scrape::report(&mut r, &proxy, &before).await;
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
    let client = super::connect(&ctx.file.proxy).await?;
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

/// Proposes CreateAlias straight to the coord at `addr`; describes the answer.
async fn stale_write(addr: &str) -> String {
    use quiver_proto::coord::ProposeRequest;
    use quiver_proto::coord::coord_service_client::CoordServiceClient;
    let call = async {
        let cmd = quiver_coord::MetaCommand::CreateAlias {
            alias: "stale_write".into(),
            collection: COLLECTION.into(),
        };
        let channel = quiver_rpc::tls::endpoint(addr, super::cluster_tls())?
            .connect()
            .await?;
        let mut c = CoordServiceClient::new(channel);
        c.propose(ProposeRequest {
            command_json: serde_json::to_vec(&cmd)?,
            client_id: 0,
            seq: 0,
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
            let client = super::connect(&proxy).await.ok()?;
            client
                .search(ALIAS, &load::vector(1), DIM, &SearchParams::new(10))
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;
    let first_search_ms = t0.elapsed().as_millis() as u64;
    let client = super::connect(&ctx.file.proxy).await?;
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
