//! The node roles of a cluster — datanode, querynode, proxy — each built by
//! one function over [`Links`]: how the node reaches coord and its peers.
//! Production links are plain gRPC ([`Links::connect`]); the test cluster
//! plugs in links that go through fault-injection forwarders.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use quiver_admin::NodeStatus;
use quiver_api::{RouteTable, ShardId};
use quiver_coord::{Catalog, CoordApi, CoordClient, CoordClientOptions};
use quiver_datanode::DataNode;
use quiver_metrics::health::Pulse;
use quiver_proxy::{ClusterClientConfig, ClusterData, ClusterQuery};
use quiver_querynode::QueryNode;
use quiver_rpc::{ClusterTls, DataServiceImpl, QueryServiceImpl};
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::agent;
use crate::config::{DataNodeProcConfig, ProxyConfig, QueryNodeProcConfig};
use crate::front::{FrontDoor, front_door};
use crate::serve::Running;

/// How a node reaches coord (metadata, heartbeats) and the other nodes
/// (shard routes).
#[derive(Clone)]
pub struct Links {
    pub coord: CoordClient,
    pub routes: Arc<dyn RouteTable>,
    /// Cluster-internal mutual TLS (`[cluster_tls]`): the node's server
    /// requires it and its clients of peers present it. (The coord client
    /// above carries its own copy in its options.)
    pub tls: Option<ClusterTls>,
}

impl Links {
    /// Plain gRPC: a coord client over `coords`, routes from its cache.
    pub async fn connect(coords: &[String]) -> Result<Links> {
        Self::connect_tls(coords, None).await
    }

    /// gRPC, over mutual TLS with `tls`.
    pub async fn connect_tls(coords: &[String], tls: Option<ClusterTls>) -> Result<Links> {
        let options = CoordClientOptions {
            tls: tls.clone(),
            ..CoordClientOptions::default()
        };
        let coord = CoordClient::connect(coords.to_vec(), options)
            .await
            .context("connecting to coord")?;
        Ok(Links {
            routes: Arc::new(coord.clone()),
            coord,
            tls,
        })
    }

    /// Settings of this node's clients of its peers.
    fn client_config(&self) -> ClusterClientConfig {
        let mut c = ClusterClientConfig::default();
        c.rpc.tls = self.tls.clone();
        c
    }

    /// This node's internal server settings (mutual TLS when configured).
    fn server_tls(&self) -> Option<Arc<ServerConfig>> {
        self.tls.as_ref().map(ClusterTls::server_config)
    }

    fn api(&self) -> Arc<dyn CoordApi> {
        Arc::new(self.coord.clone())
    }
}

/// What a node role hands back: its server and tasks, and the datanode
/// (which needs closing) when it is one.
pub struct NodeRole {
    pub running: Running,
    pub datanode: Option<DataNode>,
}

impl NodeRole {
    /// After the role's shutdown token was cancelled: drains the server,
    /// waits for the tasks, closes a datanode's shards.
    pub async fn stop(self) {
        self.running.finish().await;
        if let Some(d) = self.datanode {
            d.close().await;
        }
    }

    /// Stops everything at once (a crash, for tests); what was made durable stays.
    pub async fn kill(self) {
        self.running.abort();
        if let Some(d) = self.datanode {
            d.close().await;
        }
    }
}

/// The address other processes reach this node at: the configured one, with
/// the bound port when it asked for port 0.
pub fn advertise(listen: &str, bound: &std::net::SocketAddr) -> String {
    match listen.rsplit_once(':') {
        Some((host, "0")) => format!("{host}:{}", bound.port()),
        _ => listen.to_string(),
    }
}

/// What a node's `/readyz` checks first: that coord acknowledges its
/// heartbeats; then that every shard placed on it is open (datanode) or
/// loaded (querynode).
const HEARTBEATS: &str = "heartbeats to coord";

/// A node's readiness: its heartbeats acknowledged (`pulse`), then every
/// shard placed on it — owned by a datanode, served by a querynode — among
/// `have` (open, loaded); `doing` names what it still does ("opening").
fn placed_ready(
    pulse: Arc<Pulse>,
    coord: CoordClient,
    id: u64,
    doing: &'static str,
    have: impl Fn() -> std::collections::HashSet<ShardId> + Send + Sync + 'static,
) -> quiver_metrics::health::Readiness {
    Arc::new(move || {
        pulse.check(HEARTBEATS)?;
        let state = coord.state();
        let placed = match state.node(id).map(|n| n.role) {
            Some(quiver_coord::NodeRole::DataNode) => state.holdings(id).0,
            Some(quiver_coord::NodeRole::QueryNode) => state.holdings(id).1,
            None => Vec::new(),
        };
        let have = have();
        let missing = (placed.iter())
            .filter(|(c, s)| {
                !have.contains(&ShardId {
                    collection_id: *c,
                    shard: *s,
                })
            })
            .count();
        match missing {
            0 => Ok(()),
            n => Err(format!(
                "{doing} {n} of the {} shards placed on it",
                placed.len()
            )),
        }
    })
}

/// `quiver datanode`: owns the shards coord gives it.
pub async fn start_datanode(
    cfg: &DataNodeProcConfig,
    links: Links,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<NodeRole> {
    let addr = advertise(
        cfg.advertise.as_deref().unwrap_or(&cfg.listen),
        &listener.local_addr()?,
    );
    let store = quiver_storage::open_store(&cfg.store).context("opening the object store")?;
    let mut node_cfg = cfg.datanode.clone();
    node_cfg.node_id = cfg.id;
    let local = matches!(cfg.store, quiver_storage::StoreConfig::Local { .. });
    node_cfg.compaction = node_cfg.compaction.for_store(local);
    let catalog = Arc::new(Catalog::new(links.api()));
    let datanode = DataNode::new(node_cfg, store, catalog, shutdown.child_token())?;
    datanode.set_mirror_routes(Arc::new(agent::ClusterMirror {
        coord: links.api(),
        data: Arc::new(ClusterData::new(
            links.routes.clone(),
            links.client_config(),
        )?),
    }));
    let node = Arc::new(datanode.clone());
    let svc = DataServiceImpl::new(node.clone(), node).with_shutdown(shutdown.clone());
    let pulse = Pulse::new(Duration::from_millis(cfg.heartbeat_ms));
    let ready = {
        let dn = datanode.clone();
        placed_ready(
            pulse.clone(),
            links.coord.clone(),
            cfg.id,
            "opening",
            move || dn.open_shards().into_iter().map(|(s, _)| s).collect(),
        )
    };
    let running = Running::serve_tls(
        crate::serve::with_metrics(Routes::new(svc.into_service()), ready),
        listener,
        true,
        links.server_tls(),
        shutdown.clone(),
    );
    let agents =
        agent::spawn_datanode(links.api(), datanode.clone(), cfg.id, addr, pulse, shutdown);
    Ok(NodeRole {
        running: running.with_tasks(agents),
        datanode: Some(datanode),
    })
}

/// `quiver querynode`: serves the shards coord places on it.
pub async fn start_querynode(
    cfg: &QueryNodeProcConfig,
    links: Links,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<NodeRole> {
    let addr = advertise(
        cfg.advertise.as_deref().unwrap_or(&cfg.listen),
        &listener.local_addr()?,
    );
    let store = quiver_storage::open_store(&cfg.store).context("opening the object store")?;
    let feed = Arc::new(ClusterData::new(
        links.routes.clone(),
        links.client_config(),
    )?);
    let mut node_cfg = cfg.querynode.clone();
    node_cfg.node_id = cfg.id;
    node_cfg.cache_dir = cfg.cache_dir.clone();
    let querynode = Arc::new(
        QueryNode::new(node_cfg, store, feed, shutdown.child_token())?
            .with_store_dir(cfg.store.local_dir().map(Into::into)),
    );
    let svc = QueryServiceImpl::new(querynode.clone());
    let pulse = Pulse::new(Duration::from_millis(cfg.heartbeat_ms));
    let ready = {
        let qn = querynode.clone();
        placed_ready(
            pulse.clone(),
            links.coord.clone(),
            cfg.id,
            "loading",
            move || qn.loaded_shards().into_iter().collect(),
        )
    };
    let running = Running::serve_tls(
        crate::serve::with_metrics(Routes::new(svc.into_service()), ready),
        listener,
        true,
        links.server_tls(),
        shutdown.clone(),
    );
    let agents = agent::spawn_querynode(links.api(), querynode, cfg.id, addr, pulse, shutdown);
    Ok(NodeRole {
        running: running.with_tasks(agents),
        datanode: None,
    })
}

/// `quiver proxy`: the front door of a cluster (Milvus API, admin API,
/// status page and metrics on one port).
pub async fn start_proxy(
    cfg: &ProxyConfig,
    links: Links,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<NodeRole> {
    let addr = listener.local_addr()?;
    // The front door's own TLS (clients of the Milvus API), not the cluster's.
    let front_tls = match &cfg.tls {
        Some(t) => Some(t.server_config(crate::tls::TLS_KEYS)?),
        None => None,
    };
    let client_cfg = ClusterClientConfig {
        request_deadline: Duration::from_millis(cfg.request_deadline_ms),
        ..links.client_config()
    };
    let data = Arc::new(ClusterData::new(links.routes.clone(), client_cfg.clone())?);
    let query = Arc::new(ClusterQuery::new(links.routes.clone(), client_cfg)?);
    let nodes = cluster_health(links.coord.clone(), cfg, addr.to_string());
    let door = FrontDoor::new(
        Arc::new(Catalog::new(links.api())),
        data,
        query,
        cfg.limits.clone(),
        nodes,
        links.coord.subscribe(),
    )
    .with_auth(cfg.auth.clone())
    .with_readiness(proxy_readiness(links.coord.clone()))
    .with_history(cfg.status_history);
    let (routes, timing) = front_door(door, shutdown.clone()).await?;
    crate::auth::warn_if_open(&cfg.auth, addr);
    let running =
        Running::serve_tls(routes, listener, true, front_tls, shutdown).with_tasks([timing]);
    Ok(NodeRole {
        running,
        datanode: None,
    })
}

/// A proxy is ready while its metadata cache follows a coord's watch stream
/// (it routes requests by that cache; DDL finds the leader on demand).
fn proxy_readiness(coord: CoordClient) -> quiver_metrics::health::Readiness {
    Arc::new(move || {
        if coord.watching() {
            Ok(())
        } else {
            Err("not following coord's metadata: no coord answers this proxy".to_string())
        }
    })
}

/// Node health for a cluster proxy's status page: each coord's view of
/// itself, the leader's leases of datanodes and querynodes, and this proxy.
fn cluster_health(
    coord: CoordClient,
    cfg: &ProxyConfig,
    proxy_addr: String,
) -> quiver_admin::NodeHealth {
    let coord_addrs = cfg.coords.clone();
    let proxy_id = cfg.id;
    Arc::new(move || {
        let (coord, coord_addrs, proxy_addr) =
            (coord.clone(), coord_addrs.clone(), proxy_addr.clone());
        Box::pin(async move {
            let mut asks = tokio::task::JoinSet::new();
            for (i, a) in coord_addrs.iter().enumerate() {
                let (coord, a) = (coord.clone(), a.clone());
                asks.spawn(async move { (i, coord.status_of(&a).await) });
            }
            let mut statuses: Vec<_> = asks.join_all().await;
            statuses.sort_by_key(|(i, _)| *i);
            let mut nodes: Vec<_> = coord_addrs
                .iter()
                .zip(statuses)
                .map(|(a, (_, s))| match s {
                    Ok(s) => node_status(
                        "coord",
                        Some(s.node_id),
                        a,
                        matches!(
                            s.role,
                            quiver_coord::Role::Leader | quiver_coord::Role::Follower
                        ),
                        format!(
                            "{}, term {}, applied {}, metadata v{}",
                            s.role, s.term, s.last_applied, s.meta_version
                        ),
                    ),
                    Err(e) => node_status("coord", None, a, false, e.to_string()),
                })
                .collect();
            match CoordApi::node_health(&coord).await {
                Ok(health) => nodes.extend(health.into_iter().map(|n| {
                    NodeStatus {
                        role: n.role.to_string(),
                        id: Some(n.id),
                        addr: n.addr,
                        healthy: n.alive,
                        last_seen_ms: n.last_seen_ms,
                        detail: if n.alive {
                            "lease held"
                        } else {
                            "lease expired"
                        }
                        .into(),
                    }
                })),
                Err(e) => nodes.push(node_status(
                    "datanode/querynode",
                    None,
                    "-",
                    false,
                    format!("node health unknown: {e}"),
                )),
            }
            nodes.push(node_status(
                "proxy",
                Some(proxy_id),
                &proxy_addr,
                true,
                "this process".into(),
            ));
            Ok(nodes)
        })
    })
}

/// One row of the status page's node table.
pub(crate) fn node_status(
    role: &str,
    id: Option<u64>,
    addr: &str,
    healthy: bool,
    detail: String,
) -> NodeStatus {
    NodeStatus {
        role: role.to_string(),
        id,
        addr: addr.to_string(),
        healthy,
        last_seen_ms: None,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::advertise;

    #[test]
    fn advertised_address_takes_the_bound_port_for_port_zero() {
        let bound = "127.0.0.1:4567".parse().expect("addr");
        assert_eq!(advertise("127.0.0.1:0", &bound), "127.0.0.1:4567");
        assert_eq!(advertise("10.0.0.1:7200", &bound), "10.0.0.1:7200");
    }
}
