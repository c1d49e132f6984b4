//! Per-RPC metrics of every gRPC service, from one axum middleware on each
//! role's port ([`track`]):
//!
//! - `quiver_rpc_requests_total{service, method, code}`: calls by outcome.
//!   `code` is the Milvus status code for the Milvus API (its failures are
//!   answered with gRPC OK and a status in the body; the handler reports it
//!   through [`set_code`]), otherwise the gRPC status code (0 = OK).
//! - `quiver_rpc_request_duration_seconds{service, method}`: latency until
//!   the response headers (a unary call's whole handling).
//!
//! Only gRPC paths (`/package.Service/Method`) are counted; the status
//! page and `/metrics` itself are not.

use std::cell::Cell;
use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramVec, IntCounterVec};

static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    crate::counter_vec(
        "quiver_rpc_requests_total",
        "gRPC calls by service, method and outcome code (Milvus code for the Milvus API, gRPC code otherwise)",
        &["service", "method", "code"],
    )
});

static DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    crate::histogram_vec(
        "quiver_rpc_request_duration_seconds",
        "gRPC call latency until the response headers",
        &["service", "method"],
        crate::LATENCY_BUCKETS,
    )
});

tokio::task_local! {
    /// The outcome a handler reported for the call being tracked.
    static CODE: Cell<Option<i32>>;
}

/// Reports the outcome of the call this task is handling (a Milvus status
/// code; the first failure reported wins); outside a tracked call it does
/// nothing.
pub fn set_code(code: i32) {
    // A failure sticks: a later success status (of a part of the answer)
    // does not hide it.
    let _ = CODE.try_with(|c| {
        if code != 0 || c.get().is_none() {
            c.set(Some(code));
        }
    });
}

/// The service (last segment of the package path) and method of a gRPC
/// path, e.g. `/milvus.proto.milvus.MilvusService/Search` →
/// (`MilvusService`, `Search`).
fn service_method(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    if method.is_empty() || method.contains('/') || !service.contains('.') {
        return None;
    }
    Some((service.rsplit('.').next().unwrap_or(service), method))
}

/// The middleware: counts and times every gRPC call on the port.
pub async fn track(req: Request, next: Next) -> Response {
    let Some((service, method)) = service_method(req.uri().path()) else {
        return next.run(req).await;
    };
    let (service, method) = (service.to_string(), method.to_string());
    let start = Instant::now();
    let (code, response) = CODE
        .scope(Cell::new(None), async {
            let response = next.run(req).await;
            (CODE.with(Cell::get), response)
        })
        .await;
    // A refused call (a gRPC error) carries its status in the headers of a
    // trailers-only response.
    let grpc = (response.headers().get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    let code = match code {
        Some(c) if grpc == 0 => c,
        _ => grpc,
    };
    DURATION
        .with_label_values(&[&service, &method])
        .observe(start.elapsed().as_secs_f64());
    REQUESTS
        .with_label_values(&[&service, &method, &code.to_string()])
        .inc();
    response
}

/// Counts a call handled outside the middleware (an in-process call that
/// stands for an RPC, e.g. standalone's querynode): `code` 0 is success.
pub fn observe(service: &str, method: &str, code: i32, seconds: f64) {
    DURATION
        .with_label_values(&[service, method])
        .observe(seconds);
    REQUESTS
        .with_label_values(&[service, method, &code.to_string()])
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[test]
    fn grpc_paths_name_service_and_method() {
        assert_eq!(
            service_method("/milvus.proto.milvus.MilvusService/Search"),
            Some(("MilvusService", "Search"))
        );
        assert_eq!(service_method("/metrics"), None);
        assert_eq!(service_method("/api/status"), None);
    }

    #[tokio::test]
    async fn calls_are_counted_with_the_code_the_handler_reports() {
        let app = axum::Router::new()
            .route(
                "/test.v1.Things/Fail",
                axum::routing::post(|| async {
                    set_code(1100);
                    "refused in the body"
                }),
            )
            .route("/test.v1.Things/Ok", axum::routing::post(|| async { "ok" }))
            .layer(axum::middleware::from_fn(track));
        for path in [
            "/test.v1.Things/Fail",
            "/test.v1.Things/Ok",
            "/test.v1.Things/Ok",
        ] {
            let req = Request::post(path).body(Body::empty()).expect("request");
            app.clone().oneshot(req).await.expect("response");
        }
        let text = crate::render();
        assert!(
            text.contains(
                "quiver_rpc_requests_total{code=\"1100\",method=\"Fail\",service=\"Things\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "quiver_rpc_requests_total{code=\"0\",method=\"Ok\",service=\"Things\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "quiver_rpc_request_duration_seconds_count{method=\"Ok\",service=\"Things\"} 2"
            ),
            "{text}"
        );
    }
}
