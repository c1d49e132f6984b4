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
//!
//! The same middleware gives every call its request id and span
//! (`crate::trace`): `rpc{service, method, request_id}`, the id echoed in
//! the `x-request-id` response header and appended to a gRPC error's
//! message.

use std::cell::Cell;
use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramVec, IntCounterVec};
use tracing::Instrument;

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
    /// The id of the call being tracked.
    static REQUEST_ID: String;
}

/// The id of the call this task is serving (`None` outside a tracked call).
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// `message[request_id=ID]` inside a tracked call (Milvus's `[key=value]`
/// style), `message` outside one.
pub fn with_request_id(message: String) -> String {
    match request_id() {
        Some(id) if !message.contains("[request_id=") => format!("{message}[request_id={id}]"),
        _ => message,
    }
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

/// The middleware: counts and times every gRPC call on the port, and runs
/// it in its request's span with its request id.
pub async fn track(req: Request, next: Next) -> Response {
    let Some((service, method)) = service_method(req.uri().path()) else {
        return next.run(req).await;
    };
    let (service, method) = (service.to_string(), method.to_string());
    let start = Instant::now();
    let given = (req.headers().get(crate::trace::REQUEST_ID_HEADER))
        .and_then(|v| v.to_str().ok())
        .filter(|v| crate::trace::valid_request_id(v))
        .map(str::to_string);
    let span = tracing::info_span!(
        "rpc",
        service = %service,
        method = %method,
        request_id = tracing::field::Empty
    );
    crate::trace::adopt_parent(&span, req.headers());
    let id = given
        .or_else(|| crate::trace::trace_id(&span))
        .unwrap_or_else(crate::trace::new_request_id);
    span.record("request_id", id.as_str());
    let (code, mut response) = REQUEST_ID
        .scope(
            id.clone(),
            CODE.scope(Cell::new(None), async {
                let response = next.run(req).instrument(span).await;
                (CODE.with(Cell::get), response)
            }),
        )
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
    let headers = response.headers_mut();
    if grpc != 0 {
        tag_grpc_message(headers, &id);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(crate::trace::REQUEST_ID_HEADER, v);
    }
    DURATION
        .with_label_values(&[&service, &method])
        .observe(start.elapsed().as_secs_f64());
    REQUESTS
        .with_label_values(&[&service, &method, &code.to_string()])
        .inc();
    response
}

/// Appends `[request_id=ID]` to a trailers-only response's `grpc-message`
/// (percent-encoded, as gRPC carries it).
fn tag_grpc_message(headers: &mut axum::http::HeaderMap, id: &str) {
    let message = (headers.get("grpc-message"))
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    if message.contains("[request_id=") {
        return;
    }
    let tagged = format!("{message}[request_id={id}]");
    if let Ok(v) = HeaderValue::from_str(&percent_encode(&tagged)) {
        headers.insert("grpc-message", v);
    }
}

/// gRPC's message encoding: bytes outside printable ASCII, and `%`, as %XX.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
    async fn every_call_gets_a_request_id_echoed_and_appended_to_errors() {
        let app = axum::Router::new()
            .route(
                "/test.v1.Ids/Refuse",
                axum::routing::post(|| async {
                    let mut resp = axum::response::Response::new(Body::empty());
                    let h = resp.headers_mut();
                    h.insert("grpc-status", HeaderValue::from_static("3"));
                    h.insert(
                        "grpc-message",
                        HeaderValue::from_static("dim: must be 8%25"),
                    );
                    resp
                }),
            )
            .route(
                "/test.v1.Ids/Echo",
                axum::routing::post(|| async { with_request_id("refused".into()) }),
            )
            .route(
                // What an internal client calling on from this call sends.
                "/test.v1.Ids/CallOn",
                axum::routing::post(|| async {
                    let mut md = tonic::metadata::MetadataMap::new();
                    crate::trace::inject(&mut md);
                    md.get(crate::trace::REQUEST_ID_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                }),
            )
            .layer(axum::middleware::from_fn(track));
        // A caller's id is kept (the hop from another role, or a client's).
        let req = Request::post("/test.v1.Ids/Echo")
            .header("x-request-id", "upstream-42")
            .body(Body::empty())
            .expect("request");
        let resp = app.clone().oneshot(req).await.expect("response");
        assert_eq!(resp.headers()["x-request-id"], "upstream-42");
        let body = axum::body::to_bytes(resp.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(&body[..], b"refused[request_id=upstream-42]");
        // Internal calls made while serving it carry the id on.
        let req = Request::post("/test.v1.Ids/CallOn")
            .header("x-request-id", "upstream-43")
            .body(Body::empty())
            .expect("request");
        let resp = app.clone().oneshot(req).await.expect("response");
        let body = axum::body::to_bytes(resp.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(&body[..], b"upstream-43");
        // None given (or an unsafe one): a fresh id, in the header and in
        // the gRPC error's message.
        let req = Request::post("/test.v1.Ids/Refuse")
            .header("x-request-id", "bad id\tx")
            .body(Body::empty())
            .expect("request");
        let resp = app.oneshot(req).await.expect("response");
        let id = resp.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert_eq!(id.len(), 16, "{id}");
        assert_eq!(
            resp.headers()["grpc-message"],
            format!("dim: must be 8%25[request_id={id}]").as_str()
        );
        assert_eq!(with_request_id("outside".into()), "outside");
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
