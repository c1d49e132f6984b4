//! `GET /livez` and `GET /readyz` on every role's port: what an
//! orchestrator's probes (Kubernetes liveness / readiness) and load balancers
//! ask. Both are plain HTTP/1.1 beside `/metrics`, open without credentials
//! like `/metrics` (they say nothing about the data).
//!
//! - `/livez`: 200 `ok` while the process serves its port at all.
//! - `/readyz`: 200 `ok` when the role can do its work now, else 503 with the
//!   reason as the body. What "ready" means is the role's own check
//!   ([`Readiness`]): a coord knows a Raft leader, a datanode or querynode
//!   has its heartbeats acknowledged by coord, a proxy follows coord's metadata,
//!   standalone is ready once it serves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

/// A role's readiness check: `Err(reason)` while it is not ready.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A check that is always ready (a process whose roles all live in it).
pub fn always_ready() -> Readiness {
    Arc::new(|| Ok(()))
}

/// `/livez` and `/readyz` answered with `ready`.
pub fn probes(ready: Readiness) -> axum::Router {
    axum::Router::new()
        .route("/livez", axum::routing::get(|| async { "ok\n" }))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let ready = ready.clone();
                async move { readyz(&ready) }
            }),
        )
}

fn readyz(ready: &Readiness) -> Response {
    match ready() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

/// Whether the paths are a probe's (served without credentials).
pub fn is_probe(path: &str) -> bool {
    matches!(path, "/livez" | "/readyz")
}

/// The outcome of a periodic check (a node's heartbeat to coord): ready
/// while the last success is recent enough.
pub struct Pulse {
    every: Duration,
    state: Mutex<PulseState>,
}

struct PulseState {
    last_ok: Option<Instant>,
    last_error: Option<String>,
}

impl Pulse {
    /// A pulse expected every `every`: ready within three periods (at least
    /// two seconds) of the last success.
    pub fn new(every: Duration) -> Arc<Pulse> {
        Arc::new(Pulse {
            every,
            state: Mutex::new(PulseState {
                last_ok: None,
                last_error: None,
            }),
        })
    }

    /// How often the check runs.
    pub fn every(&self) -> Duration {
        self.every
    }

    pub fn ok(&self) {
        let mut s = self.state.lock();
        s.last_ok = Some(Instant::now());
        s.last_error = None;
    }

    pub fn failed(&self, error: impl ToString) {
        self.state.lock().last_error = Some(error.to_string());
    }

    /// Ready within the grace of the last success; else why not.
    pub fn check(&self, what: &str) -> Result<(), String> {
        let grace = (self.every * 3).max(Duration::from_secs(2));
        let s = self.state.lock();
        let recent = s.last_ok.is_some_and(|t| t.elapsed() <= grace);
        match (recent, &s.last_error, s.last_ok) {
            (true, _, _) => Ok(()),
            (false, Some(e), _) => Err(format!("{what} failing: {e}")),
            (false, None, None) => Err(format!("{what}: none yet")),
            (false, None, Some(t)) => Err(format!(
                "{what}: last success {} ms ago",
                t.elapsed().as_millis()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn get(router: axum::Router, path: &str) -> (StatusCode, String) {
        let req = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .expect("request");
        let resp = router.oneshot(req).await.expect("response");
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn readyz_follows_the_pulse_and_livez_always_answers() {
        let pulse = Pulse::new(Duration::from_millis(500));
        let check = pulse.clone();
        let router = probes(Arc::new(move || check.check("heartbeats to coord")));
        let (status, body) = get(router.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("heartbeats to coord: none yet"), "{body}");
        assert_eq!(get(router.clone(), "/livez").await.0, StatusCode::OK);

        pulse.ok();
        assert_eq!(
            get(router.clone(), "/readyz").await,
            (StatusCode::OK, "ok\n".into())
        );

        // A failure after a recent success keeps the node ready (one missed
        // heartbeat is not an outage) ...
        pulse.failed("connection refused");
        assert_eq!(get(router.clone(), "/readyz").await.0, StatusCode::OK);
        // ... but once the success is old, the failure is the reason.
        pulse.state.lock().last_ok = Instant::now().checked_sub(Duration::from_secs(5));
        let (status, body) = get(router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("connection refused"), "{body}");
    }

    #[test]
    fn only_the_probe_paths_are_probes() {
        assert!(is_probe("/livez") && is_probe("/readyz"));
        assert!(!is_probe("/metrics") && !is_probe("/readyz/x") && !is_probe("/"));
    }
}
