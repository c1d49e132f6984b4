//! Request tracing across roles.
//!
//! - Every gRPC call a role serves runs in a span `rpc{service, method,
//!   request_id}` ([`crate::rpc::track`]), so every log line it causes names
//!   the request. The request id is the caller's `x-request-id` (a client's,
//!   or the role that called this one), else the trace id when OpenTelemetry
//!   is on, else a fresh random one. It goes back to the client in the
//!   `x-request-id` response header and in the message of every failure
//!   (`...[request_id=...]`), so a user's error report names the logs and
//!   the trace to read.
//! - Internal gRPC clients carry it on ([`Propagate`]): the request id and,
//!   with OpenTelemetry on, the W3C `traceparent` of the current span, so
//!   one request's spans in the proxy, datanodes and querynodes form one
//!   trace.
//! - OpenTelemetry export is off unless `QUIVER_OTLP_ENDPOINT` names an OTLP
//!   gRPC collector (`http://collector:4317`); `QUIVER_TRACE_SAMPLE_RATIO`
//!   (0..=1, default 1) samples new traces (a sampled caller's decision is
//!   followed). Spans are batched and sent by a background thread; the
//!   `OTEL_BSP_*` variables tune the batching.

use std::sync::{LazyLock, OnceLock};

use anyhow::{Context, Result};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The header carrying a request's id, on requests and responses.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

static PROPAGATOR: LazyLock<TraceContextPropagator> = LazyLock::new(TraceContextPropagator::new);

/// The exporter, while OpenTelemetry is on.
static EXPORT: OnceLock<Export> = OnceLock::new();

struct Export {
    provider: SdkTracerProvider,
    /// The tonic exporter needs a Tokio reactor; the batch processor's
    /// thread has none, so the channel lives on this one.
    _runtime: tokio::runtime::Runtime,
}

/// Whether spans are exported (OpenTelemetry on).
pub fn exporting() -> bool {
    EXPORT.get().is_some()
}

/// Installs the process's subscriber: log lines to stderr (`RUST_LOG`,
/// default `info`), and spans to an OTLP collector when
/// `QUIVER_OTLP_ENDPOINT` is set, as service `service` (e.g.
/// `quiver-proxy`). A bad setting is reported and tracing stays local.
pub fn init(service: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: a file or a container's log gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let endpoint = std::env::var("QUIVER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    let otel = endpoint.as_deref().map(|e| exporter(e, service));
    let (layer, problem) = match otel {
        Some(Ok(export)) => {
            let tracer = export.provider.tracer("quiver");
            let _ = EXPORT.set(export);
            (
                Some(tracing_opentelemetry::layer().with_tracer(tracer)),
                None,
            )
        }
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(layer)
        .try_init();
    if let Some(e) = problem {
        tracing::error!(error = %format!("{e:#}"), "QUIVER_OTLP_ENDPOINT: OpenTelemetry export is off");
    } else if let Some(e) = endpoint {
        tracing::info!(endpoint = %e, service, "exporting spans over OTLP");
    }
}

fn exporter(endpoint: &str, service: &str) -> Result<Export> {
    use opentelemetry_otlp::WithExportConfig;
    let ratio = match std::env::var("QUIVER_TRACE_SAMPLE_RATIO") {
        Ok(v) => v
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .with_context(|| {
                format!("QUIVER_TRACE_SAMPLE_RATIO: must be a number from 0 to 1 (got {v:?})")
            })?,
        Err(_) => 1.0,
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        anyhow::bail!("must be http(s)://host:port of an OTLP gRPC collector (got {endpoint:?})");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-export")
        .enable_all()
        .build()
        .context("starting the exporter's runtime")?;
    let exporter = {
        let _inside = runtime.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .context("building the OTLP exporter")?
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_string())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .with_resource(resource)
        .build();
    Ok(Export {
        provider,
        _runtime: runtime,
    })
}

/// Sends the spans still batched (at the end of a process).
pub fn shutdown() {
    if let Some(e) = EXPORT.get() {
        if let Err(err) = e.provider.force_flush() {
            tracing::warn!(error = %err, "flushing spans");
        }
        let _ = e.provider.shutdown();
    }
}

/// Sets the span's parent from a request's `traceparent` (OpenTelemetry on).
pub(crate) fn adopt_parent(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if exporting() {
        let parent = PROPAGATOR.extract(&HeaderExtractor(headers));
        let _ = span.set_parent(parent);
    }
}

/// The span's trace id (OpenTelemetry on; `None` otherwise).
pub(crate) fn trace_id(span: &tracing::Span) -> Option<String> {
    if !exporting() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// A client whose calls carry the request id and trace context.
pub type Traced<T> = tonic::service::interceptor::InterceptedService<T, Propagate>;

/// The interceptor of every internal gRPC client: carries the request id
/// (and the trace context, OpenTelemetry on) of the call being served to
/// the role it calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct Propagate;

impl tonic::service::Interceptor for Propagate {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        inject(req.metadata_mut());
        Ok(req)
    }
}

/// Adds the current request id, trace context and this build's internal
/// protocol version (`crate::protocol`) to `metadata`.
pub fn inject(metadata: &mut tonic::metadata::MetadataMap) {
    metadata.insert(
        crate::protocol::PROTOCOL_HEADER,
        tonic::metadata::MetadataValue::from(crate::protocol::PROTOCOL),
    );
    if let Some(id) = crate::rpc::request_id()
        && let Ok(v) = id.parse()
    {
        metadata.insert(REQUEST_ID_HEADER, v);
    }
    if exporting() {
        let cx = tracing::Span::current().context();
        PROPAGATOR.inject_context(&cx, &mut MetadataInjector(metadata));
    }
}

/// A caller's request id, if it is one we can echo safely: 1 to 64 of
/// `A-Z a-z 0-9 - _ . :`.
pub(crate) fn valid_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A fresh request id: 16 hex digits.
pub(crate) fn new_request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked_before_they_are_echoed() {
        assert!(valid_request_id("4bf92f3577b34da6"));
        assert!(valid_request_id("client-1:req.7_a"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("a b"));
        assert!(!valid_request_id("x\r\nSet-Cookie: y"));
        assert!(!valid_request_id(&"a".repeat(65)));
        let id = new_request_id();
        assert_eq!(id.len(), 16);
        assert!(valid_request_id(&id));
        assert_ne!(id, new_request_id());
    }

    #[test]
    fn outside_a_call_a_client_adds_no_request_id() {
        let mut md = tonic::metadata::MetadataMap::new();
        inject(&mut md);
        assert!(md.get(REQUEST_ID_HEADER).is_none(), "outside a call: none");
    }
}
