//! The front door as every deployment serves it on one port: the Milvus
//! gRPC API, the admin API, the status page (HTTP/1.1, `/`) and its
//! `/metrics`, and the probes `/livez` and `/readyz`.

use std::sync::Arc;

use anyhow::Result;
use quiver_admin::metrics::Metrics;
use quiver_admin::{AdminFront, History, HistoryOptions, NodeHealth, StatusPage};
use quiver_api::{CatalogClient, DataClient, QueryClient};
use quiver_coord::MetaState;
use quiver_metrics::health::Readiness;
use quiver_milvus::MilvusFront;
use quiver_proxy::Proxy;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::auth::AuthConfig;

/// What a front door is made of.
pub struct FrontDoor {
    pub catalog: Arc<dyn CatalogClient>,
    pub data: Arc<dyn DataClient>,
    pub query: Arc<dyn QueryClient>,
    /// The protocol-independent front door over the three above.
    pub proxy: Arc<Proxy>,
    /// Node health for the status page.
    pub nodes: NodeHealth,
    /// The metadata this front door follows (alias changes are timed from it).
    pub metadata: watch::Receiver<Arc<MetaState>>,
    /// Who may call (auth off by default).
    pub auth: AuthConfig,
    /// What `/readyz` answers (ready by default).
    pub ready: Readiness,
    /// How the status page's charts sample this process's metrics.
    pub history: HistoryOptions,
}

/// A front door over `catalog`, `data` and `query`.
impl FrontDoor {
    pub fn new(
        catalog: Arc<dyn CatalogClient>,
        data: Arc<dyn DataClient>,
        query: Arc<dyn QueryClient>,
        limits: quiver_proxy::Limits,
        nodes: NodeHealth,
        metadata: watch::Receiver<Arc<MetaState>>,
    ) -> Self {
        let proxy = Arc::new(Proxy::new(
            catalog.clone(),
            data.clone(),
            query.clone(),
            limits,
        ));
        Self {
            catalog,
            data,
            query,
            proxy,
            nodes,
            metadata,
            auth: AuthConfig::default(),
            ready: quiver_metrics::health::always_ready(),
            history: HistoryOptions::default(),
        }
    }

    /// `/readyz` answers with `ready`.
    pub fn with_readiness(mut self, ready: Readiness) -> Self {
        self.ready = ready;
        self
    }

    /// Requires credentials as `auth` says.
    pub fn with_auth(mut self, auth: AuthConfig) -> Self {
        self.auth = auth;
        self
    }

    /// Samples the status page's charts as `history` says.
    pub fn with_history(mut self, history: HistoryOptions) -> Self {
        self.history = history;
        self
    }
}

/// Builds the front door's routes (Milvus, admin, status page, metrics),
/// every one behind the gate (`quiver_auth::layer`: credentials, Host and
/// Origin checks), and starts timing alias changes and sampling the status
/// page's charts; the task ends with `shutdown`. With auth on, the root user is created at the first start.
pub async fn front_door(
    parts: FrontDoor,
    shutdown: CancellationToken,
) -> Result<(Routes, JoinHandle<()>)> {
    let FrontDoor {
        catalog,
        data,
        query,
        proxy,
        nodes,
        metadata,
        auth,
        ready,
        history,
    } = parts;
    let gate = crate::auth::gate(&auth, catalog.clone()).await?;
    let guard = gate.guard.clone();
    let metrics = Arc::new(Metrics::default());
    let timing = time_alias_changes(metadata, metrics.clone(), shutdown.clone());
    let history = Arc::new(History::new(history));
    let sampling = history.clone().spawn(catalog.clone(), shutdown);
    let timing = tokio::spawn(async move {
        let _ = tokio::join!(timing, sampling);
    });
    let milvus = MilvusFront::new(proxy, catalog.clone())
        .with_guard(guard.clone())
        .into_service();
    let admin = AdminFront::new(catalog.clone())
        .with_data_path(query, data)
        .with_guard(guard.clone())
        .into_service();
    let router = StatusPage::new(catalog, nodes)
        .with_metrics(metrics)
        .with_history(history)
        .with_guard(guard)
        .routes()
        .add_service(milvus)
        .add_service(admin)
        .into_axum_router()
        .merge(quiver_metrics::health::probes(ready))
        .layer(axum::middleware::from_fn_with_state(
            gate,
            quiver_auth::layer::check,
        ))
        // Outermost: refusals of the gate are counted too.
        .layer(axum::middleware::from_fn(quiver_metrics::rpc::track));
    Ok((Routes::from(router), timing))
}

/// Times every alias change this front door's metadata receives
/// (`quiver_alias_propagation_seconds`).
pub fn time_alias_changes(
    mut metadata: watch::Receiver<Arc<MetaState>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let state = metadata.borrow_and_update().clone();
            let now_ms = quiver_common::ts_physical_ms(quiver_common::wall_ts());
            metrics.aliases_seen(&state.aliases(), now_ms);
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = metadata.changed() => if changed.is_err() { return },
            }
        }
    })
}
