//! `quiver standalone`: every role in one process — a one-node coord, a
//! datanode, a querynode and the front door — with the object store on the
//! local filesystem under the data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use quiver_admin::divergence::{CatalogPairs, DivergenceOptions, spawn_watch};
use quiver_coord::{Catalog, Coord};
use quiver_datanode::{DataNode, DataNodeConfig};
use quiver_proxy::{Limits, Proxy};
use quiver_querynode::{QueryNode, QueryNodeConfig};
use quiver_storage::open_local_store;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

use crate::failover::{self, FailoverOptions};
use crate::front::{FrontDoor, front_door};
use crate::local::{LocalMirror, LocalRoles};
use crate::nodes::node_status;
use crate::serve::Running;
use crate::tls::TlsConfig;

/// Settings of a standalone server.
#[derive(Debug, Clone)]
pub struct StandaloneConfig {
    pub data_dir: PathBuf,
    pub datanode: DataNodeConfig,
    pub querynode: QueryNodeConfig,
    pub limits: Limits,
    /// The continuous comparison of mirrored aliases' collections.
    pub divergence: DivergenceOptions,
    /// Automatic failover of mirrored aliases (as next to a cluster's coords).
    pub failover: FailoverOptions,
    /// Who may call the front door (off by default; `--auth`).
    pub auth: crate::auth::AuthConfig,
    /// The front door over TLS (`--tls-cert`, `--tls-key`, `--tls-ca`).
    pub tls: Option<TlsConfig>,
    /// The status page's charts (`--status-sample-ms`).
    pub status_history: quiver_admin::HistoryOptions,
}

impl StandaloneConfig {
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        Self {
            data_dir: data_dir.as_ref().to_path_buf(),
            datanode: DataNodeConfig::default(),
            querynode: QueryNodeConfig::default(),
            limits: Limits::default(),
            divergence: DivergenceOptions::default(),
            failover: FailoverOptions::default(),
            auth: crate::auth::AuthConfig::default(),
            tls: None,
            status_history: quiver_admin::HistoryOptions::default(),
        }
    }
}

/// A running standalone server.
pub struct Standalone {
    pub proxy: Arc<Proxy>,
    catalog: Arc<Catalog>,
    querynode: Arc<QueryNode>,
    coord: Coord,
    datanode: Arc<DataNode>,
    shutdown: CancellationToken,
    auth: crate::auth::AuthConfig,
    tls: Option<Arc<ServerConfig>>,
    status_history: quiver_admin::HistoryOptions,
}

impl Standalone {
    /// Opens (or creates) the data directory and brings every collection back:
    /// coord's metadata from its Raft log, each shard's growing data from its
    /// WAL, sealed segments from the object store. Starts the control loops
    /// of mirrored aliases (divergence check, automatic failover).
    pub async fn open(mut config: StandaloneConfig, shutdown: CancellationToken) -> Result<Self> {
        config.divergence.validate()?;
        config
            .status_history
            .validate()
            .map_err(anyhow::Error::msg)?;
        // Bad TLS files fail the start, before anything is opened.
        let tls = match &config.tls {
            Some(t) => Some(t.server_config(crate::tls::FLAGS)?),
            None => None,
        };
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let objects = dir.join("objects");
        let store = open_local_store(&objects).context("opening the object store")?;
        let coord = Coord::open(&dir.join("coord"), 1)
            .await
            .context("opening coord")?;
        let meta = Arc::new(Catalog::new(Arc::new(coord.clone())));
        let mut datanode_cfg = config.datanode.clone();
        datanode_cfg.compaction = datanode_cfg.compaction.for_store(true);
        let datanode = Arc::new(DataNode::new(
            datanode_cfg,
            store.clone(),
            meta,
            shutdown.child_token(),
        )?);
        datanode.set_mirror_routes(Arc::new(LocalMirror {
            coord: coord.clone(),
            data: datanode.clone(),
        }));
        config.querynode.cache_dir = dir.join("cache");
        let querynode = Arc::new(
            QueryNode::new(
                config.querynode.clone(),
                store,
                datanode.clone(),
                shutdown.child_token(),
            )?
            .with_store_dir(Some(objects)),
        );
        let local = Arc::new(LocalRoles {
            datanode: datanode.clone(),
            querynode: querynode.clone(),
        });
        let catalog = Arc::new(Catalog::with_local(Arc::new(coord.clone()), local.clone()));
        catalog.serve_all().await?;
        let board = coord.clone();
        spawn_watch(
            Arc::new(CatalogPairs(catalog.clone())),
            querynode.clone(),
            datanode.clone(),
            config.divergence.clone(),
            Arc::new(|| true),
            Arc::new(move |alias, rows| board.set_divergence(alias, rows)),
            shutdown.child_token(),
        );
        failover::spawn_with(
            coord.clone(),
            config.failover.clone(),
            local,
            shutdown.child_token(),
        );
        let proxy = Arc::new(Proxy::new(
            catalog.clone(),
            datanode.clone(),
            querynode.clone(),
            config.limits,
        ));
        Ok(Self {
            proxy,
            catalog,
            querynode,
            coord,
            datanode,
            shutdown,
            auth: config.auth.clone(),
            tls,
            status_history: config.status_history,
        })
    }

    /// Serves the Milvus gRPC API, the admin API and the status page (HTTP,
    /// `/`) on `addr` (port 0 picks a free port) until `stop` (or the
    /// server's shutdown) is cancelled; in-flight requests are drained before
    /// the task ends. Returns the bound address and the task.
    /// Cancel `stop` and await the task before [`Standalone::close`] so that
    /// no request races the roles' shutdown.
    pub async fn serve_milvus(
        &self,
        addr: SocketAddr,
        stop: CancellationToken,
    ) -> Result<(SocketAddr, JoinHandle<Result<()>>)> {
        let listener = crate::serve::bind(addr, crate::serve::BIND_PATIENCE).await?;
        let bound = listener.local_addr()?;
        // Stops with `stop` or with the whole server.
        let stopped = CancellationToken::new();
        let (either, shutdown) = (stopped.clone(), self.shutdown.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = shutdown.cancelled() => {}
            }
            either.cancel();
        });
        let (routes, timing) = front_door(
            FrontDoor {
                catalog: self.catalog.clone(),
                data: self.datanode.clone(),
                query: self.querynode.clone(),
                proxy: self.proxy.clone(),
                nodes: self.health(bound),
                metadata: self.coord.watch(),
                auth: self.auth.clone(),
                ready: quiver_metrics::health::always_ready(),
                history: self.status_history,
            },
            stopped.clone(),
        )
        .await?;
        crate::auth::warn_if_open(&self.auth, bound);
        let running = Running::serve_tls(routes, listener, true, self.tls.clone(), stopped)
            .with_tasks([timing]);
        let task = tokio::spawn(async move {
            running.finish().await;
            Ok(())
        });
        Ok((bound, task))
    }

    /// The status page's node table: every role lives in this process;
    /// coord reports its Raft role, the others are up if the page answers.
    fn health(&self, bound: SocketAddr) -> quiver_admin::NodeHealth {
        let coord = self.coord.clone();
        Arc::new(move || {
            let s = coord.status();
            let here = format!("{bound} (this process)");
            let nodes = vec![
                node_status(
                    "coord",
                    Some(s.node_id),
                    &here,
                    s.role == quiver_coord::Role::Leader,
                    format!(
                        "{}, term {}, applied {}, metadata v{}",
                        s.role, s.term, s.last_applied, s.meta_version
                    ),
                ),
                node_status("datanode", None, &here, true, "standalone".into()),
                node_status("querynode", None, &here, true, "standalone".into()),
                node_status("proxy", None, &here, true, "standalone".into()),
            ];
            Box::pin(async move { Ok(nodes) })
        })
    }

    /// This process's coord (metadata, segment catalog).
    pub fn coord(&self) -> &Coord {
        &self.coord
    }

    /// This process's datanode (compaction statistics of its shards).
    pub fn datanode(&self) -> &Arc<DataNode> {
        &self.datanode
    }

    /// Stops every role. Acknowledged data is already durable; this only
    /// stops the tasks.
    pub async fn close(self) {
        self.shutdown.cancel();
        self.datanode.close().await;
        if let Err(e) = self.coord.shutdown().await {
            tracing::warn!(error = %e, "coord shutdown");
        }
    }
}
