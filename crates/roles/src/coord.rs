//! The coord role: one member of the Raft group, its gRPC server
//! (`quiver.coord.v1`), and the control loops that run next to every coord
//! and act on the leader only (automatic failover, the divergence check).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use quiver_coord::{Coord, GrpcTransport, RaftTransport};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::CoordConfig;

/// A running coord member.
pub struct CoordRole {
    pub coord: Coord,
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<quiver_coord::Result<()>>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

/// Opens `cfg.dir` as coord `cfg.id` of `cfg.members`, serves it on
/// `listener` until `shutdown`, and starts its control loops. `transport`
/// replaces the gRPC peer transport (tests inject one that drops RPCs; it
/// must then carry `cfg.cluster_tls` itself). With `[cluster_tls]` the
/// server requires mutual TLS and the loops' clients present the identity.
pub async fn start_coord(
    cfg: &CoordConfig,
    transport: Option<Arc<dyn RaftTransport>>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<CoordRole> {
    let addr = listener.local_addr()?;
    let members: BTreeMap<u64, String> =
        cfg.members.iter().map(|m| (m.id, m.addr.clone())).collect();
    // Bad TLS files fail the start, before the Raft directory is opened.
    let tls = crate::tls::load_cluster_tls(cfg.cluster_tls.as_ref())?;
    let transport = transport
        .unwrap_or_else(|| Arc::new(GrpcTransport::new(cfg.id, &cfg.raft).with_tls(tls.clone())));
    let coord = match cfg.join {
        true => Coord::join_cluster_with(&cfg.dir, cfg.id, &cfg.raft, transport).await,
        false => Coord::open_cluster_with(&cfg.dir, cfg.id, members, &cfg.raft, transport).await,
    }
    .context("opening coord")?;
    let stop = shutdown.clone();
    let server = tokio::spawn(quiver_coord::serve_tls(
        coord.clone(),
        listener,
        tls.clone(),
        async move { stop.cancelled().await },
    ));
    let failover = crate::failover::spawn(
        coord.clone(),
        cfg.failover.clone(),
        tls.clone(),
        shutdown.clone(),
    );
    let divergence =
        crate::divergence::spawn(coord.clone(), cfg.divergence.clone(), tls, shutdown.clone())?;
    let mut loops = vec![failover, divergence];
    if let Some(store) = &cfg.store {
        let store = quiver_storage::open_store(store).context("opening the object store")?;
        loops.push(quiver_coord::backup::spawn(
            &coord,
            store,
            std::time::Duration::from_millis(cfg.backup_wait_ms),
            shutdown.clone(),
        ));
    }
    Ok(CoordRole {
        coord,
        addr,
        server,
        loops,
    })
}

impl CoordRole {
    /// After the role's shutdown token was cancelled: waits for the server
    /// to drain, stops the loops and the Raft node.
    pub async fn stop(self) -> Result<()> {
        let served = match self.server.await {
            Ok(r) => r.context("coord gRPC server"),
            Err(e) => {
                tracing::warn!(error = %e, "coord server task");
                Ok(())
            }
        };
        halt(&self.coord, &self.loops).await?;
        served
    }

    /// Stops everything at once (a crash, for tests).
    pub async fn kill(self) -> Result<()> {
        self.server.abort();
        halt(&self.coord, &self.loops).await
    }
}

async fn halt(coord: &Coord, loops: &[tokio::task::JoinHandle<()>]) -> Result<()> {
    for l in loops {
        l.abort();
    }
    coord.shutdown().await.context("stopping coord")
}
