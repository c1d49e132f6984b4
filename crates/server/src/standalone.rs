//! `quiver standalone`: every role in one process — a one-node coord, a
//! datanode, a querynode and the front door — with the object store on the
//! local filesystem under the data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use quiver_admin::AdminFront;
use quiver_admin::divergence::{Board, CatalogPairs, DivergenceOptions, spawn_watch};
use quiver_coord::Coord;
use quiver_datanode::{DataNode, DataNodeConfig};
use quiver_milvus::MilvusFront;
use quiver_proxy::{Limits, Proxy};
use quiver_querynode::{QueryNode, QueryNodeConfig};
use quiver_storage::open_local_store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::catalog::{CoordMeta, LocalCatalog, LocalMirror};
use quiver_coord::collection_info;

/// Settings of a standalone server.
#[derive(Debug, Clone)]
pub struct StandaloneConfig {
    pub data_dir: PathBuf,
    pub datanode: DataNodeConfig,
    pub querynode: QueryNodeConfig,
    pub limits: Limits,
    /// The continuous comparison of mirrored aliases' collections.
    pub divergence: DivergenceOptions,
}

impl StandaloneConfig {
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        Self {
            data_dir: data_dir.as_ref().to_path_buf(),
            datanode: DataNodeConfig::default(),
            querynode: QueryNodeConfig::default(),
            limits: Limits::default(),
            divergence: DivergenceOptions::default(),
        }
    }
}

/// A running standalone server.
pub struct Standalone {
    pub proxy: Arc<Proxy>,
    catalog: Arc<LocalCatalog>,
    querynode: Arc<QueryNode>,
    coord: Arc<Coord>,
    datanode: Arc<DataNode>,
    shutdown: CancellationToken,
}

impl Standalone {
    /// Opens (or creates) the data directory and brings every collection back:
    /// coord's metadata from its Raft log, each shard's growing data from its
    /// WAL, sealed segments from the object store.
    pub async fn open(mut config: StandaloneConfig, shutdown: CancellationToken) -> Result<Self> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let store = open_local_store(&dir.join("objects")).context("opening the object store")?;
        let coord = Arc::new(
            Coord::open(&dir.join("coord"), 1)
                .await
                .context("opening coord")?,
        );
        let meta = Arc::new(CoordMeta(coord.clone()));
        let datanode = Arc::new(DataNode::new(
            config.datanode.clone(),
            store.clone(),
            meta,
            shutdown.child_token(),
        )?);
        datanode.set_mirror_routes(Arc::new(LocalMirror {
            coord: coord.clone(),
            data: datanode.clone(),
        }));
        config.querynode.cache_dir = dir.join("cache");
        let querynode = Arc::new(QueryNode::new(
            config.querynode.clone(),
            store,
            datanode.clone(),
            shutdown.child_token(),
        )?);
        let board = Arc::new(Board::default());
        let catalog = Arc::new(LocalCatalog {
            coord: coord.clone(),
            datanode: datanode.clone(),
            querynode: querynode.clone(),
            divergence: board.clone(),
        });
        for meta in coord.collections() {
            let info = collection_info(&meta);
            catalog
                .bring_up(&info)
                .await
                .with_context(|| format!("loading collection {}", meta.name))?;
        }
        config.divergence.validate()?;
        spawn_watch(
            Arc::new(CatalogPairs(catalog.clone())),
            querynode.clone(),
            datanode.clone(),
            config.divergence.clone(),
            Arc::new(|| true),
            Arc::new(move |alias, rows| board.publish(alias, rows)),
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
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let bound = listener.local_addr()?;
        let service = MilvusFront::new(self.proxy.clone(), self.catalog.clone()).into_service();
        let admin = AdminFront::new(self.catalog.clone())
            .with_data_path(self.querynode.clone(), self.datanode.clone())
            .into_service();
        // The status page (HTTP/1.1 for browsers) on the same port. Every
        // role lives in this process: coord reports its Raft role, the others
        // are up if the page answers.
        let coord = self.coord.clone();
        let nodes: quiver_admin::NodeHealth = Arc::new(move || {
            let s = coord.status();
            let node =
                |role: &str, id, addr: String, healthy, detail: String| quiver_admin::NodeStatus {
                    role: role.to_string(),
                    id,
                    addr,
                    healthy,
                    last_seen_ms: None,
                    detail,
                };
            let here = format!("{bound} (this process)");
            let nodes = vec![
                node(
                    "coord",
                    Some(s.node_id),
                    here.clone(),
                    s.role == quiver_coord::Role::Leader,
                    format!(
                        "{}, term {}, applied {}, metadata v{}",
                        s.role, s.term, s.last_applied, s.meta_version
                    ),
                ),
                node("datanode", None, here.clone(), true, "standalone".into()),
                node("querynode", None, here.clone(), true, "standalone".into()),
                node("proxy", None, here, true, "standalone".into()),
            ];
            Box::pin(async move { Ok(nodes) })
        });
        let metrics = Arc::new(quiver_admin::metrics::Metrics::default());
        crate::cluster::time_alias_changes(
            self.coord.watch(),
            metrics.clone(),
            self.shutdown.child_token(),
        );
        let routes = quiver_admin::StatusPage::new(self.catalog.clone(), nodes)
            .with_metrics(metrics)
            .routes()
            .add_service(service)
            .add_service(admin);
        let shutdown = self.shutdown.clone();
        let task = tokio::spawn(async move {
            let stopped = async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = shutdown.cancelled() => {}
                }
            };
            tonic::transport::Server::builder()
                .accept_http1(true)
                .add_routes(routes)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                    stopped,
                )
                .await
                .context("serving the Milvus API")
        });
        Ok((bound, task))
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
