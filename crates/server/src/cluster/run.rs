//! Each cluster role as its own process: `run_*(config, shutdown)` binds the
//! role's port, starts it with `quiver_roles` over plain gRPC links, prints
//! the line `quiver cluster up` waits for, serves until `shutdown` is
//! cancelled, then stops it.

use anyhow::{Context, Result};
use std::future::Future;

use quiver_roles::config::{
    ClusterTlsConfig, CoordConfig, DataNodeProcConfig, ProxyConfig, QueryNodeProcConfig,
};
use quiver_roles::{Links, NodeRole};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Prints the line `quiver cluster up` (and scripts) wait for.
fn announce(role: &str, id: u64, addr: &std::net::SocketAddr) {
    tracing::info!(role, id, %addr, "serving");
    println!("quiver {role} {id} listening on {addr}");
}

async fn bind(addr: &str) -> Result<TcpListener> {
    quiver_roles::bind(addr, quiver_roles::BIND_PATIENCE).await
}

/// `quiver coord`: one member of the Raft group.
pub async fn run_coord(cfg: CoordConfig, shutdown: CancellationToken) -> Result<()> {
    let listen = match &cfg.listen {
        Some(l) => l.clone(),
        None => cfg
            .members
            .iter()
            .find(|m| m.id == cfg.id)
            .map(|m| m.addr.clone())
            .context("members: must contain this coord's id")?,
    };
    quiver_roles::auth::warn_internal_open("coord", &cfg.auth, cfg.cluster_tls.is_some());
    let listener = bind(&listen).await?;
    let role = quiver_roles::start_coord(&cfg, None, listener, shutdown.clone()).await?;
    announce("coord", cfg.id, &role.addr);
    shutdown.cancelled().await;
    role.stop().await
}

/// Runs a node role until `shutdown`: binds `listen`, connects to
/// `coords` (retrying until one answers), starts the role with `start`, announces it, waits, stops it.
async fn run_node<F, Fut>(
    role: &str,
    id: u64,
    listen: &str,
    coords: &[String],
    tls: Option<&ClusterTlsConfig>,
    shutdown: CancellationToken,
    start: F,
) -> Result<()>
where
    F: FnOnce(Links, TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = Result<NodeRole>>,
{
    // Bad TLS files fail the start, before the port is bound.
    let tls = quiver_roles::tls::load_cluster_tls(tls)?;
    let listener = bind(listen).await?;
    let addr = listener.local_addr()?;
    // Coords may start after this node (pods of every role start together):
    // wait for them, however long, rather than exit and be restarted.
    let links = loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            connected = Links::connect_tls(coords, tls.clone()) => match connected {
                Ok(links) => break links,
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "no coord reachable yet; retrying"),
            },
        }
    };
    let node = start(links, listener, shutdown.clone()).await?;
    announce(role, id, &addr);
    shutdown.cancelled().await;
    node.stop().await;
    Ok(())
}

/// `quiver datanode`: owns the shards coord gives it.
pub async fn run_datanode(cfg: DataNodeProcConfig, shutdown: CancellationToken) -> Result<()> {
    let (id, listen, coords) = (cfg.id, cfg.listen.clone(), cfg.coords.clone());
    let tls = cfg.cluster_tls.clone();
    quiver_roles::auth::warn_internal_open("datanode", &cfg.auth, tls.is_some());
    run_node(
        "datanode",
        id,
        &listen,
        &coords,
        tls.as_ref(),
        shutdown,
        move |links, l, s| async move { quiver_roles::start_datanode(&cfg, links, l, s).await },
    )
    .await
}

/// `quiver querynode`: serves the shards coord places on it.
pub async fn run_querynode(cfg: QueryNodeProcConfig, shutdown: CancellationToken) -> Result<()> {
    let (id, listen, coords) = (cfg.id, cfg.listen.clone(), cfg.coords.clone());
    let tls = cfg.cluster_tls.clone();
    quiver_roles::auth::warn_internal_open("querynode", &cfg.auth, tls.is_some());
    run_node(
        "querynode",
        id,
        &listen,
        &coords,
        tls.as_ref(),
        shutdown,
        move |links, l, s| async move { quiver_roles::start_querynode(&cfg, links, l, s).await },
    )
    .await
}

/// `quiver proxy`: the Milvus front door of a cluster.
pub async fn run_proxy(cfg: ProxyConfig, shutdown: CancellationToken) -> Result<()> {
    let (id, listen, coords) = (cfg.id, cfg.listen.clone(), cfg.coords.clone());
    let tls = cfg.cluster_tls.clone();
    quiver_roles::auth::warn_internal_open("proxy", &cfg.auth, tls.is_some());
    run_node(
        "proxy",
        id,
        &listen,
        &coords,
        tls.as_ref(),
        shutdown,
        move |links, l, s| async move { quiver_roles::start_proxy(&cfg, links, l, s).await },
    )
    .await
}
