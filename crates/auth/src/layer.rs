//! The front door's gate, one middleware in front of every route of the
//! port (Milvus gRPC, admin gRPC, status page, `/metrics`):
//!
//! - gRPC: the Milvus `authorization` metadata (base64 of `user:password`)
//!   is checked; a refusal is gRPC UNAUTHENTICATED with Milvus's message.
//! - HTTP: the `Host` must be an IP literal, `localhost` or an allowed name
//!   (a DNS-rebinding page cannot reach the status page through its own
//!   domain); a request that changes state must come from the same origin;
//!   credentials are HTTP Basic (the browser's login prompt) or
//!   `Bearer user:password`; `/metrics` is open unless protected.
//!
//! The checked [`Caller`] travels to the handlers as a request extension;
//! handlers authorize with [`crate::Guard::authorize`]. A handler that finds
//! no `Caller` refuses (fail closed).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::guard::{AuthError, Caller, Guard};

/// What the HTTP side of the gate allows.
#[derive(Debug, Clone, Default)]
pub struct HttpPolicy {
    /// Host names (without port) the status page answers to besides IP
    /// literals and `localhost`.
    pub allowed_hosts: Vec<String>,
    /// Whether `/metrics` needs credentials too (with auth on).
    pub protect_metrics: bool,
}

/// The gate's state.
pub struct Gate {
    pub guard: Arc<Guard>,
    pub http: HttpPolicy,
}

/// The middleware (`axum::middleware::from_fn_with_state(gate, gate::check)`).
pub async fn check(State(gate): State<Arc<Gate>>, mut req: Request, next: Next) -> Response {
    if is_grpc(req.headers()) {
        let auth = req.headers().get("authorization").cloned();
        return match gate
            .guard
            .authenticate(auth.as_ref().map(HeaderValue::as_bytes))
            .await
        {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                next.run(req).await
            }
            Err(e) => {
                tracing::info!(error = %e, "unauthenticated gRPC call refused");
                tonic::Status::unauthenticated(e.to_string()).into_http::<Body>()
            }
        };
    }
    // HTTP/2 carries the host in the `:authority` pseudo-header (the URI).
    let authority = req.uri().authority().map(|a| a.as_str().to_string());
    if let Err(refusal) = same_site(
        req.method(),
        req.headers(),
        authority.as_deref(),
        &gate.http,
    ) {
        return *refusal;
    }
    let path = req.uri().path();
    // Probes say nothing about the data: open like an unprotected /metrics.
    let open = (path == "/metrics" && !gate.http.protect_metrics)
        || quiver_metrics::health::is_probe(path);
    let caller = if open || !gate.guard.enabled() {
        Ok(Caller::Anyone)
    } else {
        http_credentials(&gate.guard, req.headers()).await
    };
    match caller {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            let body = serde_json::json!({ "error": e.to_string() }).to_string();
            let mut resp = (StatusCode::UNAUTHORIZED, body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"quiver\", charset=\"UTF-8\""),
            );
            resp
        }
    }
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

async fn http_credentials(guard: &Guard, headers: &HeaderMap) -> Result<Caller, AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Malformed)?;
    let (scheme, rest) = value.trim().split_once(' ').ok_or(AuthError::Malformed)?;
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = BASE64
            .decode(rest.trim())
            .map_err(|_| AuthError::Malformed)?;
        let token = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
        guard.check_token(&token).await
    } else if scheme.eq_ignore_ascii_case("bearer") {
        guard.check_token(rest.trim()).await
    } else {
        Err(AuthError::Malformed)
    }
}

/// The host part of a `Host` (or origin authority) value, without port.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// DNS rebinding and cross-site requests: the `Host` must be an IP
/// literal, `localhost` or an allowed name; a request that is not a read
/// must carry no `Origin`, or one whose authority is the `Host`.
fn same_site(
    method: &Method,
    headers: &HeaderMap,
    authority: Option<&str>,
    policy: &HttpPolicy,
) -> Result<(), Box<Response>> {
    let refuse = |msg: String| Err(Box::new((StatusCode::FORBIDDEN, msg).into_response()));
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or(authority)
        .unwrap_or_default();
    if !host.is_empty() {
        let name = host_of(host);
        let allowed = name.parse::<std::net::IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || policy
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name));
        if !allowed {
            return refuse(format!(
                "host {name:?} is not allowed: use an IP address or localhost, or add it to \
                 http.allowed_hosts"
            ));
        }
    }
    let reads = [Method::GET, Method::HEAD, Method::OPTIONS];
    if !reads.contains(method)
        && let Some(origin) = headers.get(header::ORIGIN)
    {
        let origin = origin.to_str().unwrap_or_default();
        let authority = origin.split_once("://").map_or("", |(_, a)| a);
        if host.is_empty() || !authority.eq_ignore_ascii_case(host) {
            return refuse(format!(
                "cross-origin request refused (Origin {origin:?}, Host {host:?})"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn hosts_must_be_addresses_localhost_or_allowed() {
        let policy = HttpPolicy {
            allowed_hosts: vec!["quiver.internal".into()],
            ..Default::default()
        };
        for ok in [
            "127.0.0.1:19530",
            "[::1]:19530",
            "localhost:19530",
            "10.0.0.7",
            "Quiver.Internal:443",
        ] {
            let h = headers(&[(header::HOST, ok)]);
            assert!(same_site(&Method::GET, &h, None, &policy).is_ok(), "{ok}");
        }
        for bad in ["evil.example:19530", "rebind.attacker.net"] {
            let h = headers(&[(header::HOST, bad)]);
            assert!(same_site(&Method::GET, &h, None, &policy).is_err(), "{bad}");
        }
    }

    #[test]
    fn state_changes_must_come_from_the_same_origin() {
        let policy = HttpPolicy::default();
        let same = headers(&[
            (header::HOST, "127.0.0.1:19530"),
            (header::ORIGIN, "http://127.0.0.1:19530"),
        ]);
        assert!(same_site(&Method::POST, &same, None, &policy).is_ok());
        let cross = headers(&[
            (header::HOST, "127.0.0.1:19530"),
            (header::ORIGIN, "http://evil.example"),
        ]);
        assert!(same_site(&Method::POST, &cross, None, &policy).is_err());
        // Reads may be cross-origin (the browser keeps the answer from the page).
        assert!(same_site(&Method::GET, &cross, None, &policy).is_ok());
        let no_origin = headers(&[(header::HOST, "127.0.0.1:19530")]);
        assert!(same_site(&Method::POST, &no_origin, None, &policy).is_ok());
        // HTTP/2: no Host header, the authority is the URI's.
        let h2 = headers(&[(header::ORIGIN, "https://127.0.0.1:19530")]);
        assert!(same_site(&Method::POST, &h2, Some("127.0.0.1:19530"), &policy).is_ok());
        let h2_foreign = headers(&[]);
        assert!(same_site(&Method::GET, &h2_foreign, Some("evil.example:443"), &policy).is_err());
    }
}
