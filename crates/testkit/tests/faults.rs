//! Faults and changes of shape injected into an in-process cluster under
//! load: a datanode cut off from coord (fenced, nothing acknowledged lost), a
//! leader coord cut off from its peers (replaced, no request fails),
//! querynodes cut off from the proxy, killed and restarted (searches keep
//! working); a querynode joining, then a querynode and a datanode drained
//! and removed (no request fails).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use parking_lot::Mutex;
use quiver_client::{Client, CollectionSpec, Rows, SearchParams};
use quiver_testkit::{Cluster, ClusterSpec, Role, missing_keys, wait_for};
use tokio::task::JoinHandle;

const DIM: usize = 8;

fn vector(i: u64) -> Vec<f32> {
    (0..DIM)
        .map(|d| ((i * 31 + d as u64) % 97) as f32 / 97.0)
        .collect()
}

async fn create(client: &Client, name: &str, shards: u32, replicas: u32) -> Result<()> {
    let mut spec = CollectionSpec::new(name, DIM);
    spec.shards = Some(shards);
    client.create_collection(&spec).await?;
    client.load_collection(name, replicas).await?;
    Ok(())
}

/// Inserts of 10 rows every 20 ms and searches back to back, through the
/// proxy, counting failures and keeping every acknowledged key.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<i64>>>,
    insert_failures: Arc<Mutex<Vec<String>>>,
    search_failures: Arc<Mutex<Vec<String>>>,
    searches: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(client: Client, collection: &str, writes: bool) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let insert_failures = Arc::new(Mutex::new(Vec::new()));
        let search_failures = Arc::new(Mutex::new(Vec::new()));
        let searches = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        if writes {
            let (stop, acked, failures, client) = (
                stop.clone(),
                acked.clone(),
                insert_failures.clone(),
                client.clone(),
            );
            let name = collection.to_string();
            tasks.push(tokio::spawn(async move {
                let mut next: i64 = 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    let ids: Vec<i64> = (next..next + 10).collect();
                    next += 10;
                    let data = ids.iter().flat_map(|i| vector(*i as u64)).collect();
                    match client
                        .insert(&name, Rows::new(DIM, data).with_ids(ids.clone()))
                        .await
                    {
                        Ok(_) => acked.lock().extend(ids),
                        Err(e) => failures.lock().push(e.to_string()),
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        let (stop2, failures, count) = (stop.clone(), search_failures.clone(), searches.clone());
        let name = collection.to_string();
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                i += 1;
                match client
                    .search(&name, &vector(i), DIM, &SearchParams::new(5))
                    .await
                {
                    Ok(_) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.lock().push(e.to_string()),
                }
            }
        }));
        Load {
            stop,
            acked,
            insert_failures,
            search_failures,
            searches,
            tasks,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().len()
    }

    fn searches(&self) -> u64 {
        self.searches.load(Ordering::Relaxed)
    }

    /// Waits until `n` more searches (and inserts, if writing) succeed.
    async fn progress(&self, what: &str) -> Result<()> {
        let (s0, a0) = (self.searches(), self.acked());
        let writes = self.tasks.len() > 1;
        wait_for(Duration::from_secs(30), what, || async {
            self.searches() >= s0 + 20 && (!writes || self.acked() >= a0 + 50)
        })
        .await
    }

    async fn stop(self) -> Result<(Vec<i64>, Vec<String>, Vec<String>)> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.context("load task")?;
        }
        let acked = std::mem::take(&mut *self.acked.lock());
        let inserts = std::mem::take(&mut *self.insert_failures.lock());
        let searches = std::mem::take(&mut *self.search_failures.lock());
        Ok((acked, inserts, searches))
    }
}

/// Every acknowledged key is readable (Strong query through the proxy).
async fn all_present(client: &Client, collection: &str, acked: &[i64]) -> Result<()> {
    let missing = missing_keys(client, collection, acked).await?;
    ensure!(
        missing == 0,
        "{missing} of {} acknowledged keys missing",
        acked.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_datanode_cut_off_from_coord_is_fenced_and_nothing_acknowledged_is_lost() -> Result<()> {
    let cluster = Cluster::start(ClusterSpec::new(3, 2, 1)).await?;
    let client = cluster.client().await?;
    create(&client, "c", 2, 1).await?;
    let owners = || cluster.owners("c");
    wait_for(Duration::from_secs(30), "both shards owned", || async {
        owners().iter().all(Option::is_some)
    })
    .await?;
    let victim = owners()[0].context("owner")?;
    let load = Load::start(client.clone(), "c", true);
    load.progress("load before the cut").await?;

    // The victim can still be reached by the proxy and the querynode, but
    // not by coord: its lease expires, coord gives its shards a new owner
    // with a newer epoch, and its own WAL writes are fenced.
    for coord in cluster.ids(Role::Coord) {
        cluster.faults().cut(victim, coord);
    }
    let moved = wait_for(
        Duration::from_secs(30),
        "the victim's shards moved",
        || async { owners().iter().all(|o| o.is_some() && *o != Some(victim)) },
    )
    .await;
    if moved.is_err() {
        eprintln!(
            "victim {victim}; owners {:?}; leaders {:?}; health {:?}",
            owners(),
            cluster.leaders(),
            quiver_coord::CoordApi::node_health(cluster.observer()).await
        );
    }
    moved?;
    load.progress("load after the move").await?;
    cluster.faults().heal();
    load.progress("load after healing").await?;
    let (acked, insert_failures, search_failures) = load.stop().await?;
    ensure!(
        insert_failures.is_empty(),
        "inserts failed: {insert_failures:?}"
    );
    ensure!(
        search_failures.is_empty(),
        "searches failed: {search_failures:?}"
    );
    all_present(&client, "c", &acked).await?;
    ensure!(
        client.count("c").await? == acked.len() as u64,
        "no extra rows"
    );
    // (Once healed, balancing may hand the victim a shard back, with a new
    // epoch: that is a join, see `nodes_join_and_drain_without_a_failed_request`.)
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_coord_cut_off_from_its_peers_is_replaced_without_failing_requests() -> Result<()>
{
    let cluster = Cluster::start(ClusterSpec::new(3, 1, 1)).await?;
    let client = cluster.client().await?;
    create(&client, "c", 1, 1).await?;
    let load = Load::start(client.clone(), "c", true);
    load.progress("load before the cut").await?;
    let leaders = cluster.leaders();
    ensure!(leaders.len() == 1, "one leader: {leaders:?}");
    let old = leaders[0];
    let coords = cluster.ids(Role::Coord);
    for peer in coords.iter().filter(|c| **c != old) {
        cluster.faults().cut(old, *peer);
    }
    wait_for(
        Duration::from_secs(30),
        "a new leader among the peers",
        || async { cluster.leaders().iter().any(|l| *l != old) },
    )
    .await?;
    // Metadata still changes (through the new leader) while the old one is
    // cut off, and the data path keeps working.
    create(&client, "d", 1, 1).await?;
    load.progress("load with the new leader").await?;
    cluster.faults().heal();
    wait_for(
        Duration::from_secs(30),
        "one leader after healing",
        || async { cluster.leaders().len() == 1 },
    )
    .await?;
    load.progress("load after healing").await?;
    let (acked, insert_failures, search_failures) = load.stop().await?;
    ensure!(
        insert_failures.is_empty(),
        "inserts failed: {insert_failures:?}"
    );
    ensure!(
        search_failures.is_empty(),
        "searches failed: {search_failures:?}"
    );
    all_present(&client, "c", &acked).await?;
    ensure!(
        client.has_collection("d").await?,
        "the DDL made during the cut is kept"
    );
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn querynodes_cut_off_killed_and_restarted_never_fail_a_search() -> Result<()> {
    let mut cluster = Cluster::start(ClusterSpec::new(1, 1, 2)).await?;
    let client = cluster.client().await?;
    create(&client, "c", 1, 2).await?;
    let q = cluster.ids(Role::QueryNode);
    let proxy = cluster.ids(Role::Proxy)[0];
    wait_for(Duration::from_secs(30), "two replicas", || async {
        cluster.replicas("c").first().is_some_and(|r| r.len() == 2)
    })
    .await?;
    let load = Load::start(client.clone(), "c", false);
    load.progress("searches before").await?;

    // The proxy cannot reach the first replica: the other one answers.
    cluster.faults().cut(proxy, q[0]);
    load.progress("searches with one replica cut off").await?;
    cluster.faults().heal();

    // Kill the second one: the first answers; restart it and cut the first:
    // the restarted one answers.
    cluster.kill(q[1]).await?;
    load.progress("searches with one replica killed").await?;
    cluster.restart(q[1]).await?;
    wait_for(
        Duration::from_secs(30),
        "the restarted querynode alive",
        || cluster.alive(q[1]),
    )
    .await?;
    wait_for(Duration::from_secs(30), "two replicas again", || async {
        cluster.replicas("c").first().is_some_and(|r| r.len() == 2)
    })
    .await?;
    cluster.faults().cut(proxy, q[0]);
    load.progress("searches served by the restarted replica")
        .await?;
    cluster.faults().heal();
    let (_, _, search_failures) = load.stop().await?;
    ensure!(
        search_failures.is_empty(),
        "searches failed: {search_failures:?}"
    );
    cluster.shutdown().await;
    Ok(())
}

/// Replicas each querynode holds.
fn held(cluster: &Cluster, collection: &str) -> std::collections::BTreeMap<u64, usize> {
    let mut out = std::collections::BTreeMap::new();
    for q in cluster.ids(Role::QueryNode) {
        out.insert(q, 0);
    }
    for nodes in cluster.replicas(collection) {
        for n in nodes {
            *out.entry(n).or_default() += 1;
        }
    }
    out
}

async fn node_state(client: &Client, id: u64) -> Result<String> {
    let nodes = client.list_nodes().await?;
    Ok(nodes
        .into_iter()
        .find(|n| n.id == id)
        .map_or_else(|| "absent".to_string(), |n| n.state))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_join_and_drain_without_a_failed_request() -> Result<()> {
    let mut cluster = Cluster::start(ClusterSpec::new(1, 2, 3)).await?;
    let client = cluster.client().await?;
    let qn = cluster.ids(Role::QueryNode);
    let dn = cluster.ids(Role::DataNode);
    // The third querynode is away while the collection is placed.
    cluster.kill(qn[2]).await?;
    wait_for(
        Duration::from_secs(30),
        "the third querynode's lease to expire",
        || async { !cluster.alive(qn[2]).await },
    )
    .await?;
    create(&client, "e", 4, 2).await?;
    wait_for(
        Duration::from_secs(30),
        "replicas on the two querynodes",
        || async { held(&cluster, "e").values().sum::<usize>() == 8 },
    )
    .await?;
    let load = Load::start(client.clone(), "e", true);
    load.progress("load before the join").await?;

    // It joins: it takes its share, one move at a time, each copy serving
    // before the one it replaces goes.
    cluster.restart(qn[2]).await?;
    wait_for(
        Duration::from_secs(60),
        "the joined querynode's share",
        || async {
            let h = held(&cluster, "e");
            h.values().sum::<usize>() == 8 && h.values().all(|n| (2..=3).contains(n))
        },
    )
    .await?;
    load.progress("load after the join").await?;

    // Drain a querynode and a datanode: everything moves off them.
    ensure!(client.drain_node(qn[0], false).await?.state == "draining");
    client.drain_node(dn[0], false).await?;
    for id in [qn[0], dn[0]] {
        wait_for(Duration::from_secs(60), "a node drained", || async {
            node_state(&client, id).await.is_ok_and(|s| s == "drained")
        })
        .await?;
    }
    ensure!(held(&cluster, "e").get(&qn[0]) == Some(&0));
    ensure!(!cluster.owners("e").contains(&Some(dn[0])));
    load.progress("load after draining").await?;

    // A live node cannot be removed; once stopped and gone it can.
    let refused = client.remove_node(qn[0]).await.expect_err("alive");
    ensure!(refused.to_string().contains("alive"), "{refused}");
    cluster.kill(qn[0]).await?;
    wait_for(
        Duration::from_secs(30),
        "the drained querynode gone",
        || async { node_state(&client, qn[0]).await.is_ok_and(|s| s == "gone") },
    )
    .await?;
    client.remove_node(qn[0]).await?;
    ensure!(node_state(&client, qn[0]).await? == "absent");
    load.progress("load after removing").await?;

    let (acked, insert_failures, search_failures) = load.stop().await?;
    ensure!(
        insert_failures.is_empty(),
        "inserts failed: {insert_failures:?}"
    );
    ensure!(
        search_failures.is_empty(),
        "searches failed: {search_failures:?}"
    );
    all_present(&client, "e", &acked).await?;
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_no_querynode_has_memory_for_says_why() -> Result<()> {
    let mut spec = ClusterSpec::new(1, 1, 2);
    // Every process is over 1 MiB resident: no querynode has room.
    spec.querynode.max_memory_mib = 1;
    let cluster = Cluster::start(spec).await?;
    let client = cluster.client().await?;
    create(&client, "big", 1, 1).await?;
    wait_for(
        Duration::from_secs(30),
        "load progress to say why",
        || async {
            let why = client.loading_progress("big").await.err();
            why.is_some_and(|e| e.to_string().contains("max_memory_mib"))
        },
    )
    .await?;
    let why = client
        .loading_progress("big")
        .await
        .err()
        .map(|e| e.to_string());
    ensure!(
        why.as_deref()
            .is_some_and(|e| e.contains("cannot be loaded in full")),
        "{why:?}"
    );
    ensure!(cluster.replicas("big").iter().all(Vec::is_empty));
    ensure!(!client.is_loaded("big").await?, "load state is Loading");
    cluster.shutdown().await;
    Ok(())
}
