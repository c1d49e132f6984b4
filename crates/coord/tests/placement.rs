//! Node leases and placement on three coords over gRPC: fake datanodes and
//! querynodes heartbeat through `CoordClient`; shards get owners and
//! replicas, move when a node stops heartbeating, stay put across a coord
//! leader failover (grace), and the client's `RouteTable` follows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use quiver_api::{RouteTable, ShardId};
use quiver_common::{CollectionSchema, ErrorKind, Metric};
use quiver_coord::{
    Coord, CoordApi, CoordClient, CoordClientOptions, CoordError, CoordOptions, IndexKind,
    IndexSpec, MetaOps, NodeRole, Role, SegmentMeta,
};
use quiver_test_util::wait_for;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const LEASE_MS: u64 = 1_500;

struct Running {
    coord: Coord,
    stop: oneshot::Sender<()>,
    server: JoinHandle<quiver_coord::Result<()>>,
}

struct Cluster {
    _tmp: TempDir,
    members: BTreeMap<u64, String>,
    running: BTreeMap<u64, Running>,
}

fn options() -> CoordOptions {
    CoordOptions {
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        heartbeat_ms: 75,
        write_timeout_ms: 1_500,
        node_lease_ms: LEASE_MS,
        placement_interval_ms: 50,
        ..Default::default()
    }
}

impl Cluster {
    async fn start() -> Result<Cluster> {
        let tmp = TempDir::new()?;
        let mut listeners = BTreeMap::new();
        let mut members = BTreeMap::new();
        for id in 1..=3u64 {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            members.insert(id, listener.local_addr()?.to_string());
            listeners.insert(id, listener);
        }
        let mut running = BTreeMap::new();
        for (id, listener) in listeners {
            let dir: PathBuf = tmp.path().join(format!("coord-{id}"));
            let coord = Coord::open_cluster(&dir, id, members.clone(), &options()).await?;
            let (stop, stopped) = oneshot::channel::<()>();
            let server = tokio::spawn(quiver_coord::serve(coord.clone(), listener, async move {
                let _ = stopped.await;
            }));
            running.insert(
                id,
                Running {
                    coord,
                    stop,
                    server,
                },
            );
        }
        Ok(Cluster {
            _tmp: tmp,
            members,
            running,
        })
    }

    async fn kill(&mut self, id: u64) -> Result<()> {
        let node = self.running.remove(&id).context("node not running")?;
        let _ = node.stop.send(());
        let abort = node.server.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), node.server)
            .await
            .is_err()
        {
            abort.abort();
        }
        node.coord.shutdown().await?;
        Ok(())
    }

    async fn wait_leader(&self, timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let views: Vec<_> = self.running.values().map(|r| r.coord.status()).collect();
            if let Some(leader) = views[0].leader
                && views.iter().all(|s| s.leader == Some(leader))
                && views
                    .iter()
                    .any(|s| s.node_id == leader && s.role == Role::Leader)
            {
                return Ok(leader);
            }
            if Instant::now() > deadline {
                bail!("no agreed leader within {timeout:?}: {views:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn shutdown(mut self) -> Result<()> {
        let ids: Vec<u64> = self.running.keys().copied().collect();
        for id in ids {
            self.kill(id).await?;
        }
        Ok(())
    }
}

/// A fake node: heartbeats every fifth of the lease until dropped.
struct FakeNode(JoinHandle<()>);

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn fake_node(client: &CoordClient, id: u64, role: NodeRole) -> FakeNode {
    let client = client.clone();
    FakeNode(tokio::spawn(async move {
        let addr = format!("127.0.0.1:{}", 7000 + id);
        loop {
            if let Err(e) = CoordApi::heartbeat(&client, id, role, &addr, &Default::default()).await
            {
                eprintln!("heartbeat of node {id}: {e}");
            }
            tokio::time::sleep(Duration::from_millis(LEASE_MS / 5)).await;
        }
    }))
}

fn shard(collection_id: u64, shard: u32) -> ShardId {
    ShardId {
        collection_id,
        shard,
    }
}

/// (owner id, epoch) of each shard, from the client's cache.
fn owners(client: &CoordClient, c: u64, shards: u32) -> Vec<Option<(u64, u64)>> {
    let state = client.state();
    (0..shards)
        .map(|s| state.shard_owner(c, s).map(|o| (o.node_id, o.epoch)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shards_follow_live_nodes_across_node_and_leader_failures() -> Result<()> {
    let mut cluster = Cluster::start().await?;
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    let addrs: Vec<String> = cluster.members.values().cloned().collect();
    let client = CoordClient::connect(addrs, CoordClientOptions::default()).await?;
    let wait = Duration::from_secs(15);

    // A follower does not take heartbeats: it names the leader.
    let follower = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .context("follower")?;
    let err = cluster.running[&follower]
        .coord
        .heartbeat(1, NodeRole::DataNode, "127.0.0.1:7001")
        .await
        .expect_err("a follower refuses heartbeats");
    ensure!(matches!(err, CoordError::NotLeader { .. }), "{err}");

    let mut nodes = BTreeMap::new();
    for (id, role) in [
        (1, NodeRole::DataNode),
        (2, NodeRole::DataNode),
        (11, NodeRole::QueryNode),
        (12, NodeRole::QueryNode),
        (13, NodeRole::QueryNode),
    ] {
        nodes.insert(id, fake_node(&client, id, role));
    }
    wait_for(wait, "five registered nodes", || {
        let client = client.clone();
        async move { client.state().nodes().len() == 5 }
    })
    .await?;

    // A new collection gets an owner per shard, spread over the datanodes.
    let index = IndexSpec {
        kind: IndexKind::Hnsw {
            m: 16,
            ef_construction: 64,
        },
        field_name: "vector".into(),
        index_name: String::new(),
    };
    let c = client
        .create_collection(CollectionSchema::simple("a", 4), 2, Metric::L2, Some(index))
        .await?
        .id;
    let before = RouteTable::version(&client);
    let woken = {
        let client = client.clone();
        tokio::spawn(async move { client.changed(before).await })
    };
    wait_for(wait, "an owner per shard", || {
        let client = client.clone();
        async move { owners(&client, c, 2).iter().all(Option::is_some) }
    })
    .await?;
    let v = tokio::time::timeout(wait, woken).await??;
    ensure!(v > before, "changed() returns a newer version");
    let mut owned: Vec<u64> = owners(&client, c, 2)
        .iter()
        .flatten()
        .map(|o| o.0)
        .collect();
    owned.sort_unstable();
    assert_eq!(owned, vec![1, 2], "one shard per datanode");
    let route = client.route(shard(c, 0));
    let owner = route.owner.context("an owner in the route")?;
    assert_eq!(owner.addr, format!("127.0.0.1:{}", 7000 + owner.id));

    // Loaded with two replicas: two distinct querynodes per shard.
    client.set_loaded("a", true, Some(2)).await?;
    wait_for(wait, "two replicas per shard", || {
        let client = client.clone();
        async move {
            (0..2).all(|s| {
                let r = client.route(shard(c, s)).replicas;
                r.len() == 2 && r[0].id != r[1].id
            })
        }
    })
    .await?;

    // Datanode 1 stops: its shard moves to datanode 2 with a new epoch.
    let moved = owners(&client, c, 2)
        .iter()
        .position(|o| o.is_some_and(|o| o.0 == 1))
        .context("a shard on node 1")? as u32;
    let (_, old_epoch) = owners(&client, c, 2)[moved as usize].context("owner")?;
    let stopped_at = Instant::now();
    drop(nodes.remove(&1));
    wait_for(wait, "the shard of node 1 to move", || {
        let client = client.clone();
        async move {
            owners(&client, c, 2)
                .iter()
                .all(|o| o.is_some_and(|o| o.0 == 2))
        }
    })
    .await?;
    let took = stopped_at.elapsed();
    ensure!(
        took < Duration::from_millis(4 * LEASE_MS),
        "moving took {took:?}"
    );
    let (_, new_epoch) = owners(&client, c, 2)[moved as usize].context("owner")?;
    ensure!(new_epoch > old_epoch, "a move bumps the fencing epoch");

    // The deposed owner's epoch is fenced; the current one registers.
    let seg = SegmentMeta {
        id: 1,
        rows: 1,
        max_ts: 1,
        wal_seq: 1,
        has_index: false,
        index_version: 0,
    };
    let err = client
        .register_segments(c, moved, old_epoch, vec![seg.clone()], 1)
        .await
        .expect_err("a stale epoch is refused");
    assert_eq!(err.kind(), ErrorKind::Fenced, "{err}");
    client
        .register_segments(c, moved, new_epoch, vec![seg], 1)
        .await?;

    // Querynode 11 stops: every replica it held is replaced.
    drop(nodes.remove(&11));
    wait_for(wait, "querynode 11 replaced", || {
        let client = client.clone();
        async move {
            (0..2).all(|s| {
                let r = client.route(shard(c, s)).replicas;
                r.len() == 2 && r.iter().all(|n| n.id == 12 || n.id == 13)
            })
        }
    })
    .await?;
    let health = client.node_health().await?;
    let alive: BTreeMap<u64, bool> = health.iter().map(|h| (h.id, h.alive)).collect();
    assert_eq!(
        alive,
        BTreeMap::from([(1, false), (2, true), (11, false), (12, true), (13, true)])
    );

    // The leader coord dies: the new one keeps the placement of nodes that
    // keep heartbeating (grace), then goes on placing.
    let placed = (owners(&client, c, 2), client.state().shard_replicas(c, 0));
    cluster.kill(leader).await?;
    let new_leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    ensure!(new_leader != leader);
    let coord = cluster.running[&new_leader].coord.clone();
    // Node 1 counts as live during the grace, then not.
    wait_for(wait, "the grace to end on the new leader", || {
        let coord = coord.clone();
        async move {
            coord.node_health().is_ok_and(|h| {
                h.iter().any(|n| n.id == 1 && !n.alive) && h.iter().filter(|n| n.alive).count() == 3
            })
        }
    })
    .await?;
    let state = coord.state();
    let now = (
        (0..2)
            .map(|s| state.shard_owner(c, s).map(|o| (o.node_id, o.epoch)))
            .collect::<Vec<_>>(),
        state.shard_replicas(c, 0),
    );
    assert_eq!(now, placed, "a failover moves nothing");

    // Placement goes on: datanode 1 comes back, datanode 2 stops.
    nodes.insert(1, fake_node(&client, 1, NodeRole::DataNode));
    wait_for(wait, "node 1 live again", || {
        let coord = coord.clone();
        async move {
            coord
                .node_health()
                .is_ok_and(|h| h.iter().any(|n| n.id == 1 && n.alive))
        }
    })
    .await?;
    drop(nodes.remove(&2));
    wait_for(wait, "every shard on node 1", || {
        let client = client.clone();
        async move { (0..2).all(|s| client.route(shard(c, s)).owner.is_some_and(|o| o.id == 1)) }
    })
    .await?;

    // Released: the replicas go.
    client.set_loaded("a", false, None).await?;
    wait_for(wait, "replicas cleared", || {
        let client = client.clone();
        async move { (0..2).all(|s| client.route(shard(c, s)).replicas.is_empty()) }
    })
    .await?;
    drop(nodes);
    cluster.shutdown().await
}
