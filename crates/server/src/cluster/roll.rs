//! `quiver cluster roll --dir D`: restarts every running process of a local
//! cluster one at a time — SIGTERM (SIGKILL after 10 s), start again — each
//! only once the cluster is whole again: every running process answers
//! `/readyz` with 200 (a coord knows the leader, a datanode has every shard
//! it owns open, a querynode every replica placed on it loaded, a proxy
//! follows coord's metadata). Coords go first, followers before the leader;
//! then datanodes, querynodes, proxies. The same order and checks roll a
//! real deployment (docs/deploy.md, "Upgrading").

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use quiver_coord::{CoordClient, Role};

use super::local::{self, ClusterFile, Process};

/// How long one restarted process may take to make the cluster whole.
const WHOLE_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why the cluster is not whole now (None: every running process is ready).
/// A TLS cluster's ports are asked with the tools' identity (`tls`).
async fn not_whole(file: &ClusterFile, tls: Option<&tokio_rustls::TlsConnector>) -> Option<String> {
    for p in file.processes.iter().filter(|p| local::running(p.pid)) {
        if let Err(e) = local::http_get_with(&p.addr, "/readyz", tls).await {
            return Some(format!("{} {}: {e:#}", p.role, p.id));
        }
    }
    None
}

/// Waits until the cluster of `dir` is whole.
pub async fn wait_whole(dir: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let tls = ClusterFile::read(dir)?
        .tls
        .map(|t| t.connector())
        .transpose()?;
    loop {
        let file = ClusterFile::read(dir)?;
        match not_whole(&file, tls.as_ref()).await {
            None => return Ok(()),
            Some(why) if Instant::now() > deadline => {
                bail!("the cluster is not whole after {timeout:?}: {why}")
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The order processes restart in.
async fn order(file: &ClusterFile) -> Result<Vec<Process>> {
    let coord = CoordClient::connect(file.coords(), file.coord_options()?)
        .await
        .context("connecting to coord")?;
    let mut leader = None;
    for p in file.by_role("coord") {
        if let Ok(s) = coord.status_of(&p.addr).await
            && s.role == Role::Leader
        {
            leader = Some(p.id);
        }
    }
    let running: Vec<&Process> = file
        .processes
        .iter()
        .filter(|p| local::running(p.pid))
        .collect();
    let mut out: Vec<Process> = Vec::new();
    let coords = running.iter().filter(|p| p.role == "coord");
    out.extend(
        coords
            .clone()
            .filter(|p| Some(p.id) != leader)
            .map(|p| (*p).clone()),
    );
    out.extend(
        coords
            .filter(|p| Some(p.id) == leader)
            .map(|p| (*p).clone()),
    );
    for role in ["datanode", "querynode", "proxy"] {
        out.extend(
            running
                .iter()
                .filter(|p| p.role == role)
                .map(|p| (*p).clone()),
        );
    }
    Ok(out)
}

/// Rolls the cluster; returns the ids restarted, in order.
pub async fn roll(dir: &Path) -> Result<Vec<u64>> {
    roll_roles(dir, &["coord", "datanode", "querynode", "proxy"]).await
}

/// Rolls the processes of `roles` only (in the usual order).
pub async fn roll_roles(dir: &Path, roles: &[&str]) -> Result<Vec<u64>> {
    let file = ClusterFile::read(dir)?;
    wait_whole(dir, WHOLE_TIMEOUT)
        .await
        .context("before rolling")?;
    let mut rolled = Vec::new();
    let todo = order(&file).await?;
    for p in todo
        .into_iter()
        .filter(|p| roles.contains(&p.role.as_str()))
    {
        local::stop_process(p.pid, STOP_GRACE).await;
        local::start(dir, p.id).await?;
        wait_whole(dir, WHOLE_TIMEOUT)
            .await
            .with_context(|| format!("after restarting {} {}", p.role, p.id))?;
        tracing::info!(role = %p.role, id = p.id, "restarted; the cluster is whole");
        rolled.push(p.id);
    }
    Ok(rolled)
}
