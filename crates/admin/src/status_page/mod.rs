//! The status page: plain HTTP on the front door's own port, next to the
//! gRPC APIs (tonic serves an axum router and its gRPC services together;
//! the server accepts HTTP/1.1 for browsers).
//!
//! - `GET /`: the page (`page.html`, no build step, nothing fetched from elsewhere); it
//!   polls `/api/status` and `/api/history` every second.
//! - `GET /static/...`: the page's script (`charts.js`) and the vendored
//!   charting library (uPlot, `vendor/`), compiled in: no CDN.
//! - `GET /api/status`: collections, aliases (the shape of
//!   `quiver alias show --json`), node health, recent flips.
//! - `GET /api/history`: the last minutes of this front door's own metrics
//!   (`history.rs`), drawn as the page's charts.
//! - `GET /metrics`: Prometheus text (`crate::metrics`).
//! - `POST /api/aliases/{alias}/flip` with `{"expect": "<current target>",
//!   "reason": "..."}`: flips a mirrored alias if it still targets `expect`
//!   (compare-and-swap through coord), recorded as made by `status-page`.
//!
//! Reads come from the front door's cache of coord's metadata, like the admin
//! API's. Node health comes from a [`NodeHealth`] source: standalone reports
//! its own roles, a cluster proxy asks coord.

mod history;
mod json;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::future::BoxFuture;
use quiver_api::{Actor, AliasChange, CatalogClient};
use quiver_auth::{Caller, Guard, MANAGE_ALIASES, Need};
use quiver_common::Error;
use serde_json::{Value, json};

use crate::metrics::Metrics;

pub use history::{History, HistoryOptions};
pub use json::{RECENT_FLIPS, alias_json, utc};

/// Who a flip from the page is recorded as.
pub const STATUS_PAGE_ACTOR: &str = "status-page";
/// How long `/api/status` waits for node health before it answers without.
const NODE_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// The page.
const PAGE: &str = include_str!("page.html");
/// Static assets of the page: path, content type, body.
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "/static/charts.js",
        "text/javascript; charset=utf-8",
        include_str!("charts.js"),
    ),
    (
        "/static/uplot.min.js",
        "text/javascript; charset=utf-8",
        include_str!("vendor/uPlot.iife.min.js"),
    ),
    (
        "/static/uplot.min.css",
        "text/css; charset=utf-8",
        include_str!("vendor/uPlot.min.css"),
    ),
];

/// One process (or role) as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// `coord`, `datanode`, `querynode`, `proxy` (or `standalone`).
    pub role: String,
    /// The node id, if the role has one.
    pub id: Option<u64>,
    pub addr: String,
    pub healthy: bool,
    /// Milliseconds since coord last heard from it, where coord tracks that.
    pub last_seen_ms: Option<u64>,
    /// Anything else worth a glance (a coord's Raft role, an error).
    pub detail: String,
}

impl NodeStatus {
    fn to_json(&self) -> Value {
        json!({
            "role": self.role,
            "id": self.id,
            "addr": self.addr,
            "healthy": self.healthy,
            "last_seen_ms": self.last_seen_ms,
            "detail": self.detail,
        })
    }
}

/// Where node health comes from: called once per `/api/status` (bounded by
/// a timeout); an error is shown on the page instead of the nodes.
pub type NodeHealth =
    Arc<dyn Fn() -> BoxFuture<'static, Result<Vec<NodeStatus>, String>> + Send + Sync>;

/// The status page of a front door.
pub struct StatusPage {
    catalog: Arc<dyn CatalogClient>,
    nodes: NodeHealth,
    metrics: Arc<Metrics>,
    /// The charts' data (sampled by a task the server runs).
    history: Arc<History>,
    /// Flips need `ManageAliases` (the gate authenticated the caller).
    guard: Arc<Guard>,
}

impl StatusPage {
    pub fn new(catalog: Arc<dyn CatalogClient>, nodes: NodeHealth) -> Self {
        Self {
            catalog,
            nodes,
            metrics: Arc::default(),
            history: Arc::new(History::new(HistoryOptions::default())),
            guard: Arc::new(Guard::off()),
        }
    }

    /// Checks flips against `guard` (the one the front door's gate uses).
    pub fn with_guard(mut self, guard: Arc<Guard>) -> Self {
        self.guard = guard;
        self
    }

    /// Serves these metrics at `/metrics` (by default: a set of its own,
    /// with no alias changes timed).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Serves this history at `/api/history` (by default: one nobody
    /// samples, so empty; [`History::spawn`] samples it).
    pub fn with_history(mut self, history: Arc<History>) -> Self {
        self.history = history;
        self
    }

    /// A node health source that always reports `nodes` (a process whose
    /// roles all live in it: if it answers, they are up).
    pub fn fixed_nodes(nodes: Vec<NodeStatus>) -> NodeHealth {
        Arc::new(move || {
            let nodes = nodes.clone();
            Box::pin(async move { Ok(nodes) })
        })
    }

    /// The page's routes alone (tests can serve them on their own).
    pub fn router(self) -> Router {
        let mut router = Router::new()
            .route("/", get(index))
            .route("/api/status", get(status))
            .route("/api/history", get(history));
        for (path, content_type, body) in ASSETS {
            router = router.route(path, get(move || asset(content_type, body)));
        }
        router
            .route("/metrics", get(metrics))
            .route("/api/aliases/{alias}/flip", post(flip))
            .fallback(fallback)
            .with_state(Arc::new(self))
    }

    /// The page as tonic routes: add the gRPC services to them
    /// (`.add_service(..)`) and serve them with `Server::builder()
    /// .accept_http1(true).add_routes(routes)`. A request for a path nobody
    /// serves gets gRPC's UNIMPLEMENTED if it is gRPC, a 404 otherwise.
    pub fn routes(self) -> tonic::service::Routes {
        tonic::service::Routes::from(self.router())
    }

    async fn snapshot(&self) -> Value {
        let aliases = json::aliases(self.catalog.as_ref());
        let mut collections = self.catalog.collections();
        collections.sort_by(|a, b| a.schema.name.cmp(&b.schema.name));
        let storage = self.catalog.storage().await;
        let collections: Vec<Value> = collections
            .iter()
            .map(|c| {
                let mut v = json::collection_json(c, &aliases);
                let shards = crate::storage::of(&storage, c);
                v["storage"] = crate::storage::storage_json(&shards);
                let loaded = self.catalog.is_loaded(&c.schema.name);
                let replicas = self.catalog.replicas(&c.schema.name);
                v["load"] = json::load_json(loaded, &replicas, &shards);
                v
            })
            .collect();
        let mut alias_list: Vec<Value> = Vec::with_capacity(aliases.len());
        for (a, m) in &aliases {
            alias_list.push(json::alias_meta_json(self.catalog.as_ref(), a, m).await);
        }
        let recent_flips = json::recent_flips(&aliases, RECENT_FLIPS);
        let (nodes, nodes_error) =
            match tokio::time::timeout(NODE_HEALTH_TIMEOUT, (self.nodes)()).await {
                Ok(Ok(nodes)) => (nodes.iter().map(NodeStatus::to_json).collect(), None),
                Ok(Err(e)) => (Vec::new(), Some(e)),
                Err(_) => (
                    Vec::new(),
                    Some(format!(
                        "node health did not answer within {} ms",
                        NODE_HEALTH_TIMEOUT.as_millis()
                    )),
                ),
            };
        let now = now_ms();
        json!({
            "at_ms": now,
            "at": utc(now),
            "collections": collections,
            "aliases": alias_list,
            "nodes": nodes,
            "nodes_error": nodes_error,
            "recent_flips": recent_flips,
        })
    }

    async fn flip(
        &self,
        alias: &str,
        actor: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Value, Refusal> {
        // Only JSON bodies: a cross-site form cannot send one without a CORS
        // preflight, which this server does not grant.
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let body: Value = serde_json::from_slice(body)
            .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")))?;
        let expect = match body.get("expect") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "\"expect\" must name the collection the alias targets now",
                ));
            }
        };
        let reason = match body.get("reason") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "\"reason\" must be a string",
                ));
            }
        };
        let Some(meta) = self.catalog.alias(alias) else {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                format!("alias {alias:?} does not exist"),
            ));
        };
        if meta.mirror.is_none() {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("alias {alias:?} is not mirrored: there is no other collection to flip to"),
            ));
        }
        let change = AliasChange::Flip {
            alias: alias.to_string(),
            expect: Some(expect),
        };
        let epoch = self
            .catalog
            .change_alias(change, Actor::new(actor, reason))
            .await
            .map_err(|e| Refusal::from_error(&e))?;
        // The catalog returns once its cache holds the write (or a later one).
        let meta = self.catalog.alias(alias).ok_or_else(|| {
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "alias {alias:?} flipped (epoch {epoch}) but is not in this front door's cache yet"
                ),
            )
        })?;
        tracing::info!(alias, epoch, target = %meta.collection, "alias flipped from the status page");
        Ok(json::alias_meta_json(self.catalog.as_ref(), alias, &meta).await)
    }
}

/// A refused request: its HTTP status and `{"error": ...}`.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 409 for a failed compare-and-swap or a conflict, 404 for what does not
    /// exist, 400 for a bad request, 503 for what a retry may fix.
    fn from_error(e: &Error) -> Self {
        let status = match e {
            Error::InvalidArgument { field, rule } => match field.as_str() {
                "expect" => StatusCode::CONFLICT,
                "alias" if rule.ends_with("does not exist") => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            },
            Error::CollectionNotFound(_)
            | Error::PartitionNotFound(_)
            | Error::DatabaseNotFound(_)
            | Error::IndexNotFound(_)
            | Error::AliasNotFound(_) => StatusCode::NOT_FOUND,
            Error::FieldNameInvalid { .. } => StatusCode::BAD_REQUEST,
            Error::AlreadyExists(_)
            | Error::AliasExists(_)
            | Error::NameConflict(_)
            | Error::StateConflict(_)
            | Error::Fenced(_)
            | Error::NotLoaded(_) => StatusCode::CONFLICT,
            Error::Unavailable(_)
            | Error::DeadlineExceeded(_)
            | Error::NoSpace(_)
            | Error::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Corrupt(_) | Error::Io(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Self::new(status, e.to_string())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        json_response(self.status, &json!({ "error": self.message }))
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn index() -> Response {
    let mut response = Response::new(Body::from(PAGE));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn status(State(page): State<Arc<StatusPage>>) -> Response {
    json_response(StatusCode::OK, &page.snapshot().await)
}

async fn history(State(page): State<Arc<StatusPage>>) -> Response {
    json_response(StatusCode::OK, &page.history.to_json())
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Compiled into the binary: a new binary may serve other bytes.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn metrics(State(page): State<Arc<StatusPage>>) -> Response {
    let mut text = page.metrics.render(page.catalog.as_ref()).await;
    // Every role's metrics in this process (`quiver_metrics`).
    text.push_str(&quiver_metrics::render());
    let mut r = Response::new(Body::from(text));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

async fn flip(
    State(page): State<Arc<StatusPage>>,
    caller: Option<Extension<Caller>>,
    alias: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Fail closed: a request that did not pass the gate has no caller.
    let Some(Extension(caller)) = caller else {
        return Refusal::new(StatusCode::FORBIDDEN, "not authenticated").into_response();
    };
    if let Err(denied) = page.guard.authorize(&caller, &Need::global(MANAGE_ALIASES)) {
        return Refusal::new(StatusCode::FORBIDDEN, denied.to_string()).into_response();
    }
    let actor = caller.user().unwrap_or(STATUS_PAGE_ACTOR).to_string();
    let result = match alias {
        Ok(Path(alias)) => page.flip(&alias, &actor, &headers, &body).await,
        Err(e) => Err(Refusal::new(StatusCode::BAD_REQUEST, e.body_text())),
    };
    match result {
        Ok(shown) => json_response(StatusCode::OK, &shown),
        Err(refusal) => refusal.into_response(),
    }
}

/// gRPC's UNIMPLEMENTED for a gRPC request to an unknown service, a 404
/// for anything else.
async fn fallback(headers: HeaderMap) -> Response {
    let grpc = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        let (parts, ()) = tonic::Status::unimplemented("")
            .into_http::<()>()
            .into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    json_response(StatusCode::NOT_FOUND, &json!({ "error": "not found" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_http_statuses() {
        let cas = Error::invalid("expect", "alias \"feed\" targets \"b\", not \"a\"");
        assert_eq!(Refusal::from_error(&cas).status, StatusCode::CONFLICT);
        let gone = Error::invalid("alias", "alias \"feed\" does not exist");
        assert_eq!(Refusal::from_error(&gone).status, StatusCode::NOT_FOUND);
        let bad = Error::invalid("alias", "alias \"feed\" is not mirrored");
        assert_eq!(Refusal::from_error(&bad).status, StatusCode::BAD_REQUEST);
        let down = Error::Unavailable("no leader".into());
        assert_eq!(
            Refusal::from_error(&down).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
