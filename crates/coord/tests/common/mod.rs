//! Coords over gRPC on loopback for the cluster tests: start, kill,
//! restart on the same address and directory, drop Raft RPCs between nodes.
#![allow(dead_code)] // each test binary uses part of it

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use parking_lot::Mutex;
use quiver_common::{CollectionSchema, Metric};
use quiver_coord::{
    Coord, CoordClient, CoordClientOptions, CoordOptions, FaultyTransport, GrpcTransport,
    MetaCommand, MetaOps, Role, SegmentMeta,
};
use quiver_proto::coord as pb;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A raw `Propose` of `cmd` without a request id.
pub fn propose(cmd: &MetaCommand) -> Result<pb::ProposeRequest> {
    Ok(pb::ProposeRequest {
        command_json: serde_json::to_vec(cmd)?,
        client_id: 0,
        seq: 0,
    })
}

/// Nodes whose Raft RPCs are dropped, in both directions.
#[derive(Default)]
pub struct Faults {
    pub cut: Mutex<HashSet<u64>>,
}

impl Faults {
    pub fn blocks(&self, a: u64, b: u64) -> bool {
        let cut = self.cut.lock();
        cut.contains(&a) || cut.contains(&b)
    }
}

pub struct Running {
    pub coord: Coord,
    pub stop: oneshot::Sender<()>,
    pub server: JoinHandle<quiver_coord::Result<()>>,
}

pub struct Cluster {
    pub _tmp: TempDir,
    pub dirs: BTreeMap<u64, PathBuf>,
    pub members: BTreeMap<u64, String>,
    pub running: BTreeMap<u64, Running>,
    pub faults: Arc<Faults>,
    pub options: CoordOptions,
    /// Where running coords back metadata up (none: no backups).
    pub backup: Option<Arc<dyn object_store::ObjectStore>>,
    /// Coords started to join the running cluster (`Coord::join_cluster_with`).
    pub joined: HashSet<u64>,
}

pub fn options() -> CoordOptions {
    CoordOptions {
        // Roomy for a loaded 2-core machine, still well inside 3 s failover.
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        heartbeat_ms: 75,
        write_timeout_ms: 1_500,
        snapshot_every: 50,
        keep_logs_after_snapshot: 10,
        ..Default::default()
    }
}

pub fn client_options() -> CoordClientOptions {
    CoordClientOptions {
        call_timeout: Duration::from_secs(15),
        attempt_timeout: Duration::from_secs(3),
        ..Default::default()
    }
}

impl Cluster {
    pub async fn start(n: u64) -> Result<Cluster> {
        Self::start_with(n, None).await
    }

    /// [`Cluster::start`] with every coord backing metadata up to `backup`.
    pub async fn start_with(
        n: u64,
        backup: Option<Arc<dyn object_store::ObjectStore>>,
    ) -> Result<Cluster> {
        let tmp = TempDir::new()?;
        let mut listeners = BTreeMap::new();
        let mut members = BTreeMap::new();
        let mut dirs = BTreeMap::new();
        for id in 1..=n {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            members.insert(id, listener.local_addr()?.to_string());
            listeners.insert(id, listener);
            dirs.insert(id, tmp.path().join(format!("coord-{id}")));
        }
        let mut cluster = Cluster {
            _tmp: tmp,
            dirs,
            members,
            running: BTreeMap::new(),
            faults: Arc::new(Faults::default()),
            options: options(),
            backup,
            joined: HashSet::new(),
        };
        for (id, listener) in listeners {
            cluster.run(id, listener).await?;
        }
        Ok(cluster)
    }

    pub async fn run(&mut self, id: u64, listener: TcpListener) -> Result<()> {
        let faults = Arc::clone(&self.faults);
        let transport = Arc::new(FaultyTransport::new(
            id,
            GrpcTransport::new(id, &self.options),
            Arc::new(move |a, b| faults.blocks(a, b)),
        ));
        let coord = match self.joined.contains(&id) {
            true => Coord::join_cluster_with(&self.dirs[&id], id, &self.options, transport).await?,
            false => {
                Coord::open_cluster_with(
                    &self.dirs[&id],
                    id,
                    self.members.clone(),
                    &self.options,
                    transport,
                )
                .await?
            }
        };
        if let Some(store) = &self.backup {
            quiver_coord::backup::spawn(
                &coord,
                store.clone(),
                Duration::from_secs(5),
                tokio_util::sync::CancellationToken::new(),
            );
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(quiver_coord::serve(coord.clone(), listener, async move {
            let _ = stopped.await;
        }));
        self.running.insert(
            id,
            Running {
                coord,
                stop,
                server,
            },
        );
        Ok(())
    }

    /// Starts coord `id` (a new directory, a new address) to join the
    /// running cluster; it is a member once the leader adds it.
    pub async fn join(&mut self, id: u64) -> Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let dir = self._tmp.path().join(format!("coord-{id}"));
        self.dirs.insert(id, dir);
        self.members.insert(id, addr.clone());
        self.joined.insert(id);
        self.run(id, listener).await?;
        Ok(addr)
    }

    /// Stops a node's server and Raft node (its directory stays).
    pub async fn kill(&mut self, id: u64) -> Result<()> {
        let node = self.running.remove(&id).context("node not running")?;
        let _ = node.stop.send(());
        let server = node.server;
        let abort = server.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .is_err()
        {
            abort.abort();
        }
        node.coord.shutdown().await?;
        Ok(())
    }

    /// Restarts a killed node on its old address, from its directory.
    pub async fn restart(&mut self, id: u64) -> Result<()> {
        let addr = self.members[&id].clone();
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(&addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebinding {addr}: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).context("rebind the old address"),
            }
        };
        self.run(id, listener).await
    }

    pub fn coord(&self, id: u64) -> &Coord {
        &self.running[&id].coord
    }

    pub fn addr(&self, id: u64) -> String {
        self.members[&id].clone()
    }

    pub fn addrs(&self) -> Vec<String> {
        self.members.values().cloned().collect()
    }

    /// Waits until one node among `among` leads and every running node in
    /// `among` agrees; returns it.
    pub async fn wait_leader(&self, among: &[u64], timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let views: Vec<_> = among
                .iter()
                .filter_map(|id| self.running.get(id))
                .map(|r| r.coord.status())
                .collect();
            if let Some(leader) = views[0].leader
                && among.contains(&leader)
                && views.iter().all(|s| s.leader == Some(leader))
                && views
                    .iter()
                    .any(|s| s.node_id == leader && s.role == Role::Leader)
            {
                return Ok(leader);
            }
            if Instant::now() > deadline {
                bail!("no agreed leader among {among:?} within {timeout:?}: {views:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn shutdown(mut self) -> Result<()> {
        let ids: Vec<u64> = self.running.keys().copied().collect();
        for id in ids {
            self.kill(id).await?;
        }
        Ok(())
    }
}

pub fn seg(id: u64, wal_seq: u64) -> SegmentMeta {
    SegmentMeta {
        id,
        rows: 10,
        max_ts: 5,
        wal_seq,
        has_index: false,
        index_version: 0,
    }
}

pub async fn create(client: &CoordClient, name: &str) -> Result<u64> {
    let meta = client
        .create_collection(CollectionSchema::simple(name, 4), 1, Metric::L2, None)
        .await?;
    Ok(meta.id)
}
