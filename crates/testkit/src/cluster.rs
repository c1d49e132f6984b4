//! The harness: start a cluster, inject faults, kill and restart nodes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use parking_lot::RwLock;
use quiver_admin::divergence::DivergenceOptions;
use quiver_api::RouteTable;
use quiver_coord::{
    Coord, CoordApi, CoordClient, CoordClientOptions, CoordOptions, FaultyTransport, GrpcTransport,
};
use quiver_datanode::DataNodeConfig;
use quiver_querynode::QueryNodeConfig;
use quiver_roles::config::{
    ClusterTlsConfig, CoordConfig, DataNodeProcConfig, Member, ProxyConfig, QueryNodeProcConfig,
};
use quiver_roles::failover::FailoverOptions;
use quiver_roles::{CoordRole, Links, NodeRole};
use quiver_storage::StoreConfig;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::faults::Faults;
use crate::link::Link;
use crate::routes::RewriteRoutes;
use crate::tls::TestCerts;
use crate::wait::wait_for;

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Coord,
    DataNode,
    QueryNode,
    Proxy,
}

/// The shape of a cluster and the settings of its roles.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub coords: u64,
    pub datanodes: u64,
    pub querynodes: u64,
    pub coord: CoordOptions,
    pub datanode: DataNodeConfig,
    pub querynode: QueryNodeConfig,
    /// How long the proxy retries one request (another replica, a new owner).
    pub request_deadline: Duration,
    pub heartbeat: Duration,
    /// Automatic failover of mirrored aliases, run next to every coord.
    pub failover: FailoverOptions,
    /// The divergence check of mirrored aliases, run next to every coord.
    pub divergence: DivergenceOptions,
    /// Cluster-internal mutual TLS (`[cluster_tls]`): every coord, datanode
    /// and querynode port requires a client certificate of the cluster's CA.
    pub tls: bool,
}

impl ClusterSpec {
    /// Settings roomy enough for a loaded 2-core machine.
    pub fn new(coords: u64, datanodes: u64, querynodes: u64) -> Self {
        let querynode = QueryNodeConfig {
            search_threads: 1,
            ..QueryNodeConfig::default()
        };
        Self {
            coords,
            datanodes,
            querynodes,
            coord: CoordOptions {
                election_timeout_min_ms: 300,
                election_timeout_max_ms: 600,
                heartbeat_ms: 75,
                write_timeout_ms: 1_500,
                node_lease_ms: 1_500,
                placement_interval_ms: 100,
                ..CoordOptions::default()
            },
            datanode: DataNodeConfig::default(),
            querynode,
            request_deadline: Duration::from_secs(10),
            heartbeat: Duration::from_millis(200),
            failover: FailoverOptions {
                probe_every_ms: 100,
                ..FailoverOptions::default()
            },
            divergence: DivergenceOptions {
                every_ms: 500,
                settle_ms: 1_000,
                ..DivergenceOptions::default()
            },
            tls: false,
        }
    }
}

struct Slot {
    role: Role,
    /// The node's own listening address (kept across restarts).
    addr: String,
    listener: Option<TcpListener>,
    running: Option<Running>,
}

/// A running node: the production role, built by `quiver_roles`.
struct Running {
    token: CancellationToken,
    role: Started,
}

enum Started {
    Coord(CoordRole),
    Node(NodeRole),
}

impl Running {
    fn coord(&self) -> Option<&Coord> {
        match &self.role {
            Started::Coord(c) => Some(&c.coord),
            Started::Node(_) => None,
        }
    }
}

/// A running in-process cluster; see the crate docs.
pub struct Cluster {
    tmp: TempDir,
    spec: ClusterSpec,
    faults: Arc<Faults>,
    slots: BTreeMap<u64, Slot>,
    members: BTreeMap<u64, String>,
    /// (node, coord) -> the link address the node dials for that coord.
    coord_links: HashMap<(u64, u64), String>,
    /// node -> (peer -> link address), read by the node's route table.
    peer_links: HashMap<u64, Arc<RwLock<HashMap<u64, String>>>>,
    links: Vec<Link>,
    /// Set once the coords run.
    observer: Option<CoordClient>,
    proxy: u64,
    /// With `ClusterSpec::tls`: every node's identity and the harness's.
    certs: Option<TestCerts>,
}

async fn bind(addr: &str) -> Result<TcpListener> {
    // A restarted node takes its old port back; the old socket may linger.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(addr, error = %e, "rebinding");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("binding {addr}")),
        }
    }
}

fn client_options() -> CoordClientOptions {
    CoordClientOptions {
        call_timeout: Duration::from_secs(15),
        attempt_timeout: Duration::from_secs(2),
        ..CoordClientOptions::default()
    }
}

impl Cluster {
    /// Starts every node and returns once each datanode and querynode is
    /// registered and alive at the leader.
    pub async fn start(spec: ClusterSpec) -> Result<Cluster> {
        let tmp = TempDir::new()?;
        let mut slots = BTreeMap::new();
        let mut next = 1;
        let roles = [
            (Role::Coord, spec.coords),
            (Role::DataNode, spec.datanodes),
            (Role::QueryNode, spec.querynodes),
            (Role::Proxy, 1),
        ];
        for (role, n) in roles {
            for _ in 0..n {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?.to_string();
                slots.insert(
                    next,
                    Slot {
                        role,
                        addr,
                        listener: Some(listener),
                        running: None,
                    },
                );
                next += 1;
            }
        }
        let proxy = next - 1;
        let members: BTreeMap<u64, String> = slots
            .iter()
            .filter(|(_, s)| s.role == Role::Coord)
            .map(|(id, s)| (*id, s.addr.clone()))
            .collect();
        let faults = Arc::new(Faults::default());
        let certs = if spec.tls {
            Some(TestCerts::create(
                &tmp.path().join("tls"),
                slots.keys().copied(),
            )?)
        } else {
            None
        };

        // Links: every non-coord node to every coord; the proxy to every
        // datanode and querynode; every querynode to every datanode.
        let mut links = Vec::new();
        let mut coord_links = HashMap::new();
        let mut peer_links: HashMap<u64, Arc<RwLock<HashMap<u64, String>>>> = HashMap::new();
        for (&from, slot) in &slots {
            if slot.role == Role::Coord {
                continue;
            }
            for (&coord, addr) in &members {
                let link = Link::spawn(from, coord, addr.clone(), faults.clone()).await?;
                coord_links.insert((from, coord), link.addr().to_string());
                links.push(link);
            }
            let peers: Vec<(u64, String)> = slots
                .iter()
                .filter(|(id, _)| **id != from)
                .filter(|(_, s)| match slot.role {
                    Role::Proxy => matches!(s.role, Role::DataNode | Role::QueryNode),
                    // Querynodes follow shard streams; datanodes ship
                    // mirrored writes to each other.
                    Role::QueryNode | Role::DataNode => s.role == Role::DataNode,
                    Role::Coord => false,
                })
                .map(|(id, s)| (*id, s.addr.clone()))
                .collect();
            let mut table = HashMap::new();
            for (to, addr) in peers {
                let link = Link::spawn(from, to, addr, faults.clone()).await?;
                table.insert(to, link.addr().to_string());
                links.push(link);
            }
            peer_links.insert(from, Arc::new(RwLock::new(table)));
        }

        let mut cluster = Cluster {
            tmp,
            spec,
            faults,
            slots,
            members,
            coord_links,
            peer_links,
            links,
            observer: None,
            proxy,
            certs,
        };
        // Coords first, all at once (each waits for a quorum).
        let coords = cluster.ids(Role::Coord);
        let mut started = Vec::new();
        for id in &coords {
            started.push(cluster.coord_future(*id)?);
        }
        for (id, fut) in coords.iter().zip(started) {
            let running = fut.await.with_context(|| format!("starting coord {id}"))?;
            cluster.slot(*id)?.running = Some(running);
        }
        let coord_addrs = cluster.members.values().cloned().collect();
        let options = CoordClientOptions {
            tls: cluster.tls_identity(),
            ..client_options()
        };
        cluster.observer = Some(CoordClient::connect(coord_addrs, options).await?);
        for id in cluster.ids(Role::DataNode) {
            cluster.start_node(id).await?;
        }
        for id in cluster.ids(Role::QueryNode) {
            cluster.start_node(id).await?;
        }
        cluster.start_node(proxy).await?;
        let expected = cluster.ids(Role::DataNode).len() + cluster.ids(Role::QueryNode).len();
        let observer = cluster.observer().clone();
        wait_for(
            Duration::from_secs(30),
            "every node alive at the leader",
            || {
                let observer = observer.clone();
                async move {
                    CoordApi::node_health(&observer)
                        .await
                        .is_ok_and(|h| h.iter().filter(|n| n.alive).count() == expected)
                }
            },
        )
        .await?;
        Ok(cluster)
    }

    /// The faults in force; change them to cut and heal links.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The ids of the nodes of one role, ascending.
    pub fn ids(&self, role: Role) -> Vec<u64> {
        self.slots
            .iter()
            .filter(|(_, s)| s.role == role)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The proxy's Milvus gRPC address.
    pub fn proxy_addr(&self) -> String {
        self.slots
            .get(&self.proxy)
            .map(|s| s.addr.clone())
            .unwrap_or_default()
    }

    /// A Milvus-protocol client of the proxy.
    pub async fn client(&self) -> Result<quiver_client::Client> {
        Ok(quiver_client::Client::connect(&self.proxy_addr()).await?)
    }

    /// The listening address of node `id` (reached directly, not through a link).
    pub fn addr(&self, id: u64) -> Option<String> {
        self.slots.get(&id).map(|s| s.addr.clone())
    }

    /// With `ClusterSpec::tls`: the cluster CA (PEM file).
    pub fn tls_ca(&self) -> Option<&std::path::Path> {
        self.certs.as_ref().map(|c| c.ca.as_path())
    }

    /// With `ClusterSpec::tls`: a client identity of the cluster (the one
    /// the harness's observer presents).
    pub fn tls_identity(&self) -> Option<quiver_rpc::ClusterTls> {
        self.certs.as_ref().map(|c| c.harness.clone())
    }

    fn node_tls(&self, id: u64) -> (Option<ClusterTlsConfig>, Option<quiver_rpc::ClusterTls>) {
        match self.certs.as_ref().and_then(|c| c.node(id)) {
            Some((cfg, tls)) => (Some(cfg), Some(tls)),
            None => (None, None),
        }
    }

    /// A coord client that reaches every coord directly (never cut).
    pub fn observer(&self) -> &CoordClient {
        match &self.observer {
            Some(o) => o,
            None => unreachable!("Cluster::start connects the observer before returning"),
        }
    }

    /// The running coords that believe they lead.
    pub fn leaders(&self) -> Vec<u64> {
        self.slots
            .iter()
            .filter_map(|(id, s)| {
                let coord = s.running.as_ref()?.coord()?;
                coord.is_leader().then_some(*id)
            })
            .collect()
    }

    /// Whether a node is running.
    pub fn is_running(&self, id: u64) -> bool {
        self.slots.get(&id).is_some_and(|s| s.running.is_some())
    }

    /// Stops a node at once: its servers and tasks end, its in-flight calls
    /// fail; what it made durable stays.
    pub async fn kill(&mut self, id: u64) -> Result<()> {
        let running = self.slot(id)?.running.take().context("node not running")?;
        running.token.cancel();
        match running.role {
            Started::Coord(c) => c.kill().await?,
            Started::Node(n) => n.kill().await,
        }
        Ok(())
    }

    /// Restarts a stopped node on its old address, from its directory.
    pub async fn restart(&mut self, id: u64) -> Result<()> {
        if self.is_running(id) {
            bail!("node {id} is running");
        }
        if self.slot(id)?.role == Role::Coord {
            let running = self.coord_future(id)?.await?;
            self.slot(id)?.running = Some(running);
            return Ok(());
        }
        self.start_node(id).await
    }

    fn slot(&mut self, id: u64) -> Result<&mut Slot> {
        self.slots
            .get_mut(&id)
            .with_context(|| format!("no node {id}"))
    }

    fn dir(&self, what: &str, id: u64) -> std::path::PathBuf {
        self.tmp.path().join(format!("{what}-{id}"))
    }

    fn store(&self) -> StoreConfig {
        StoreConfig::Local {
            path: self.tmp.path().join("store"),
        }
    }

    fn coords_of(&self, id: u64) -> Vec<String> {
        self.members
            .keys()
            .filter_map(|c| self.coord_links.get(&(id, *c)).cloned())
            .collect()
    }

    fn routes_of(&self, id: u64, coord: &CoordClient) -> Arc<dyn RouteTable> {
        let table = self.peer_links.get(&id).cloned().unwrap_or_default();
        Arc::new(RewriteRoutes::new(Arc::new(coord.clone()), table))
    }

    fn coord_future(&mut self, id: u64) -> Result<impl Future<Output = Result<Running>> + use<>> {
        let (cluster_tls, tls) = self.node_tls(id);
        let cfg = CoordConfig {
            id,
            dir: self.dir("coord", id),
            listen: None,
            members: self
                .members
                .iter()
                .map(|(id, addr)| Member {
                    id: *id,
                    addr: addr.clone(),
                })
                .collect(),
            join: false,
            raft: self.spec.coord.clone(),
            failover: self.spec.failover.clone(),
            divergence: self.spec.divergence.clone(),
            auth: Default::default(),
            cluster_tls,
            store: Some(self.store()),
            backup_wait_ms: 2_000,
        };
        let options = self.spec.coord.clone();
        let faults = self.faults.clone();
        let slot = self.slot(id)?;
        let listener = slot.listener.take();
        let addr = slot.addr.clone();
        Ok(async move {
            let listener = match listener {
                Some(l) => l,
                None => bind(&addr).await?,
            };
            let rule: quiver_coord::DropRule = Arc::new(move |a, b| faults.blocks(a, b));
            let transport = Arc::new(FaultyTransport::new(
                id,
                GrpcTransport::new(id, &options).with_tls(tls),
                rule,
            ));
            let token = CancellationToken::new();
            let role =
                quiver_roles::start_coord(&cfg, Some(transport), listener, token.clone()).await?;
            Ok(Running {
                token,
                role: Started::Coord(role),
            })
        })
    }

    /// Starts a datanode, querynode or proxy exactly as its process does,
    /// with links that go through this node's fault-injection forwarders.
    async fn start_node(&mut self, id: u64) -> Result<()> {
        let (role, addr, listener) = {
            let slot = self.slot(id)?;
            (slot.role, slot.addr.clone(), slot.listener.take())
        };
        let listener = match listener {
            Some(l) => l,
            None => bind(&addr).await?,
        };
        let (cluster_tls, tls) = self.node_tls(id);
        // Redirects to the leader must go through this node's links too.
        let options = CoordClientOptions {
            tls: tls.clone(),
            coord_addrs: self
                .members
                .keys()
                .filter_map(|c| Some((*c, self.coord_links.get(&(id, *c))?.clone())))
                .collect(),
            ..client_options()
        };
        let coords = self.coords_of(id);
        let coord = CoordClient::connect(coords.clone(), options).await?;
        let links = Links {
            routes: self.routes_of(id, &coord),
            coord,
            tls,
        };
        let token = CancellationToken::new();
        let heartbeat_ms = u64::try_from(self.spec.heartbeat.as_millis()).unwrap_or(u64::MAX);
        let started = match role {
            Role::Coord => bail!("coords start with coord_future"),
            Role::DataNode => {
                let cfg = DataNodeProcConfig {
                    id,
                    advertise: None,
                    listen: addr,
                    coords,
                    store: self.store(),
                    heartbeat_ms,
                    datanode: self.spec.datanode.clone(),
                    auth: Default::default(),
                    cluster_tls,
                };
                quiver_roles::start_datanode(&cfg, links, listener, token.clone()).await?
            }
            Role::QueryNode => {
                let cfg = QueryNodeProcConfig {
                    id,
                    advertise: None,
                    listen: addr,
                    coords,
                    store: self.store(),
                    cache_dir: self.dir("querynode-cache", id),
                    heartbeat_ms,
                    querynode: self.spec.querynode.clone(),
                    auth: Default::default(),
                    cluster_tls,
                };
                quiver_roles::start_querynode(&cfg, links, listener, token.clone()).await?
            }
            Role::Proxy => {
                let cfg = ProxyConfig {
                    id,
                    listen: addr,
                    coords,
                    request_deadline_ms: u64::try_from(self.spec.request_deadline.as_millis())
                        .unwrap_or(u64::MAX),
                    auth: Default::default(),
                    tls: None,
                    cluster_tls,
                    limits: Default::default(),
                    status_history: Default::default(),
                };
                quiver_roles::start_proxy(&cfg, links, listener, token.clone()).await?
            }
        };
        self.slot(id)?.running = Some(Running {
            token,
            role: Started::Node(started),
        });
        Ok(())
    }

    /// Whether the leader sees `id` alive (its lease holds).
    pub async fn alive(&self, id: u64) -> bool {
        CoordApi::node_health(self.observer())
            .await
            .is_ok_and(|h| h.iter().any(|n| n.id == id && n.alive))
    }

    /// The datanode that owns each shard of `collection`, by shard.
    pub fn owners(&self, collection: &str) -> Vec<Option<u64>> {
        let state = self.observer().state();
        let Some(meta) = state.collection(collection) else {
            return Vec::new();
        };
        (0..meta.shards)
            .map(|s| state.shard_owner(meta.id, s).map(|o| o.node_id))
            .collect()
    }

    /// The querynodes serving each shard of `collection`, by shard.
    pub fn replicas(&self, collection: &str) -> Vec<Vec<u64>> {
        let state = self.observer().state();
        let Some(meta) = state.collection(collection) else {
            return Vec::new();
        };
        (0..meta.shards)
            .map(|s| state.shard_replicas(meta.id, s))
            .collect()
    }

    /// A node's role.
    pub fn role(&self, id: u64) -> Option<Role> {
        self.slots.get(&id).map(|s| s.role)
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        let ids: Vec<u64> = self.slots.keys().rev().copied().collect();
        for id in ids {
            if self.is_running(id) {
                let _ = self.kill(id).await;
            }
        }
        self.links.clear();
    }
}
