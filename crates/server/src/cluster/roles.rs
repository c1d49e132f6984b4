//! Each cluster role as its own process: `run_*(config, shutdown)` starts the
//! role, serves until `shutdown` is cancelled, then stops it.
//!
//! Datanodes and querynodes heartbeat to coord and follow its placement
//! through the watch stream (see [`super::agent`]); the proxy reads the same
//! stream as its route table. None of them waits on coord on the data path.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use quiver_admin::AdminFront;
use quiver_api::{CatalogClient, RouteTable};
use quiver_coord::{Coord, CoordClient, CoordClientOptions};
use quiver_datanode::DataNode;
use quiver_milvus::MilvusFront;
use quiver_proxy::{ClusterClientConfig, ClusterData, ClusterQuery, Limits, Proxy};
use quiver_querynode::QueryNode;
use quiver_rpc::{DataServiceImpl, QueryServiceImpl};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use super::agent;
use super::config::{
    CoordConfig, DataNodeProcConfig, ProxyConfig, QueryNodeProcConfig, StoreConfig,
};

/// Prints the line `quiver cluster up` (and scripts) wait for.
fn announce(role: &str, id: u64, addr: &std::net::SocketAddr) {
    tracing::info!(role, id, %addr, "serving");
    println!("quiver {role} {id} listening on {addr}");
}

async fn bind(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

fn open_store(cfg: &StoreConfig) -> Result<Arc<dyn object_store::ObjectStore>> {
    quiver_storage::open_store(cfg).context("opening the object store")
}

async fn connect_coord(coords: &[String]) -> Result<CoordClient> {
    CoordClient::connect(coords.to_vec(), CoordClientOptions::default())
        .await
        .context("connecting to coord")
}

/// `quiver coord`: one member of the Raft group.
pub async fn run_coord(cfg: CoordConfig, shutdown: CancellationToken) -> Result<()> {
    let members: BTreeMap<u64, String> =
        cfg.members.iter().map(|m| (m.id, m.addr.clone())).collect();
    let listen = match &cfg.listen {
        Some(l) => l.clone(),
        None => members[&cfg.id].clone(),
    };
    let listener = bind(&listen).await?;
    let addr = listener.local_addr()?;
    let coord = Coord::open_cluster(&cfg.dir, cfg.id, members, &cfg.raft)
        .await
        .context("opening coord")?;
    let stop = shutdown.clone();
    let server = tokio::spawn(quiver_coord::serve(coord.clone(), listener, async move {
        stop.cancelled().await
    }));
    let failover = super::failover::spawn(coord.clone(), cfg.failover.clone(), shutdown.clone());
    let divergence =
        super::divergence::spawn(coord.clone(), cfg.divergence.clone(), shutdown.clone())?;
    announce("coord", cfg.id, &addr);
    shutdown.cancelled().await;
    match server.await {
        Ok(r) => r.context("coord gRPC server")?,
        Err(e) => tracing::warn!(error = %e, "coord server task"),
    }
    failover.abort();
    divergence.abort();
    coord.shutdown().await.context("stopping coord")?;
    Ok(())
}

/// `quiver datanode`: owns the shards coord gives it.
pub async fn run_datanode(cfg: DataNodeProcConfig, shutdown: CancellationToken) -> Result<()> {
    let listener = bind(&cfg.listen).await?;
    let addr = listener.local_addr()?;
    let store = open_store(&cfg.store)?;
    let coord = connect_coord(&cfg.coords).await?;
    let mut node_cfg = cfg.datanode.clone();
    node_cfg.node_id = cfg.id;
    let datanode = DataNode::new(
        node_cfg,
        store,
        Arc::new(coord.clone()),
        shutdown.child_token(),
    )?;
    let routes: Arc<dyn RouteTable> = Arc::new(coord.clone());
    datanode.set_mirror_routes(Arc::new(agent::ClusterMirror {
        coord: coord.clone(),
        data: Arc::new(ClusterData::new(routes, ClusterClientConfig::default())?),
    }));
    let node = Arc::new(datanode.clone());
    let svc = DataServiceImpl::new(node.clone(), node).with_shutdown(shutdown.clone());
    let router = Server::builder().add_service(svc.into_service());
    let server = serve(listener, shutdown.clone(), |incoming, stopped| {
        router.serve_with_incoming_shutdown(incoming, stopped)
    });
    let advertised = advertise(&cfg.listen, &addr);
    let agents = agent::spawn_datanode(
        coord,
        datanode.clone(),
        cfg.id,
        advertised,
        Duration::from_millis(cfg.heartbeat_ms),
        shutdown.clone(),
    );
    announce("datanode", cfg.id, &addr);
    shutdown.cancelled().await;
    finish(server, agents).await;
    datanode.close().await;
    Ok(())
}

/// `quiver querynode`: serves the shards coord places on it.
pub async fn run_querynode(cfg: QueryNodeProcConfig, shutdown: CancellationToken) -> Result<()> {
    let listener = bind(&cfg.listen).await?;
    let addr = listener.local_addr()?;
    let store = open_store(&cfg.store)?;
    let coord = connect_coord(&cfg.coords).await?;
    let routes: Arc<dyn RouteTable> = Arc::new(coord.clone());
    let feed = Arc::new(ClusterData::new(routes, ClusterClientConfig::default())?);
    let mut node_cfg = cfg.querynode.clone();
    node_cfg.node_id = cfg.id;
    node_cfg.cache_dir = cfg.cache_dir.clone();
    let querynode = Arc::new(QueryNode::new(
        node_cfg,
        store,
        feed,
        shutdown.child_token(),
    )?);
    let svc = QueryServiceImpl::new(querynode.clone());
    let router = Server::builder().add_service(svc.into_service());
    let server = serve(listener, shutdown.clone(), |incoming, stopped| {
        router.serve_with_incoming_shutdown(incoming, stopped)
    });
    let advertised = advertise(&cfg.listen, &addr);
    let agents = agent::spawn_querynode(
        coord,
        querynode,
        cfg.id,
        advertised,
        Duration::from_millis(cfg.heartbeat_ms),
        shutdown.clone(),
    );
    announce("querynode", cfg.id, &addr);
    shutdown.cancelled().await;
    finish(server, agents).await;
    Ok(())
}

/// `quiver proxy`: the Milvus front door of a cluster.
pub async fn run_proxy(cfg: ProxyConfig, shutdown: CancellationToken) -> Result<()> {
    let listener = bind(&cfg.listen).await?;
    let addr = listener.local_addr()?;
    let coord = connect_coord(&cfg.coords).await?;
    let routes: Arc<dyn RouteTable> = Arc::new(coord.clone());
    let client_cfg = ClusterClientConfig {
        request_deadline: Duration::from_millis(cfg.request_deadline_ms),
        ..ClusterClientConfig::default()
    };
    let data = Arc::new(ClusterData::new(routes.clone(), client_cfg.clone())?);
    let query = Arc::new(ClusterQuery::new(routes, client_cfg)?);
    // Node health for the status page: each coord's view of itself, the
    // leader's leases of datanodes and querynodes, and this proxy.
    let health = coord.clone();
    let coord_addrs = cfg.coords.clone();
    let (proxy_id, proxy_addr) = (cfg.id, addr.to_string());
    let nodes: quiver_admin::NodeHealth = Arc::new(move || {
        let (coord, coord_addrs, proxy_addr) =
            (health.clone(), coord_addrs.clone(), proxy_addr.clone());
        Box::pin(async move {
            let node =
                |role: &str, id, addr: &str, healthy, detail: String| quiver_admin::NodeStatus {
                    role: role.to_string(),
                    id,
                    addr: addr.to_string(),
                    healthy,
                    last_seen_ms: None,
                    detail,
                };
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
                    Ok(s) => node(
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
                    Err(e) => node("coord", None, a, false, e.to_string()),
                })
                .collect();
            match coord.node_health().await {
                Ok(health) => nodes.extend(health.into_iter().map(|n| {
                    quiver_admin::NodeStatus {
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
                Err(e) => nodes.push(node(
                    "datanode/querynode",
                    None,
                    "-",
                    false,
                    format!("node health unknown: {e}"),
                )),
            }
            nodes.push(node(
                "proxy",
                Some(proxy_id),
                &proxy_addr,
                true,
                "this process".into(),
            ));
            Ok(nodes)
        })
    });
    let metrics = Arc::new(quiver_admin::metrics::Metrics::default());
    let timing = time_alias_changes(coord.subscribe(), metrics.clone(), shutdown.clone());
    let catalog: Arc<dyn CatalogClient> = Arc::new(coord);
    let proxy = Arc::new(Proxy::new(
        catalog.clone(),
        data.clone(),
        query.clone(),
        Limits::default(),
    ));
    let service = MilvusFront::new(proxy, catalog.clone()).into_service();
    let admin = AdminFront::new(catalog.clone())
        .with_data_path(query, data)
        .into_service();
    // The status page (HTTP/1.1 for browsers) on the Milvus port.
    let routes = quiver_admin::StatusPage::new(catalog, nodes)
        .with_metrics(metrics)
        .routes()
        .add_service(service)
        .add_service(admin);
    let router = Server::builder().accept_http1(true).add_routes(routes);
    let server = serve(listener, shutdown.clone(), |incoming, stopped| {
        router.serve_with_incoming_shutdown(incoming, stopped)
    });
    announce("proxy", cfg.id, &addr);
    shutdown.cancelled().await;
    finish(server, vec![timing]).await;
    Ok(())
}

/// Times every alias change this proxy's metadata cache receives
/// (`quiver_alias_propagation_seconds`).
pub(crate) fn time_alias_changes(
    mut cache: tokio::sync::watch::Receiver<Arc<quiver_coord::MetaState>>,
    metrics: Arc<quiver_admin::metrics::Metrics>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let state = cache.borrow_and_update().clone();
            let now_ms = quiver_common::ts_physical_ms(quiver_common::wall_ts());
            metrics.aliases_seen(state.aliases(), now_ms);
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = cache.changed() => if changed.is_err() { return },
            }
        }
    })
}

/// The address other processes reach this node at: the configured one, with
/// the bound port when it asked for port 0.
fn advertise(listen: &str, bound: &std::net::SocketAddr) -> String {
    match listen.rsplit_once(':') {
        Some((host, "0")) => format!("{host}:{}", bound.port()),
        _ => listen.to_string(),
    }
}

/// Runs a tonic server built by `make` on `listener` until `shutdown`.
fn serve<F, Fut>(
    listener: TcpListener,
    shutdown: CancellationToken,
    make: F,
) -> JoinHandle<Result<()>>
where
    F: FnOnce(TcpIncoming, tokio_util::sync::WaitForCancellationFutureOwned) -> Fut,
    Fut: Future<Output = std::result::Result<(), tonic::transport::Error>> + Send + 'static,
{
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let fut = make(incoming, shutdown.cancelled_owned());
    tokio::spawn(async move { fut.await.context("gRPC server") })
}

async fn finish(server: JoinHandle<Result<()>>, agents: Vec<JoinHandle<()>>) {
    match server.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "gRPC server"),
        Err(e) => tracing::warn!(error = %e, "gRPC server task"),
        Ok(Ok(())) => {}
    }
    for a in agents {
        let _ = a.await;
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
