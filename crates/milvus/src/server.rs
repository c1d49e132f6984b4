//! The tonic service: `MilvusServiceServer` over [`MilvusFront`], with message
//! size limits large enough for big insert batches and result sets, and a
//! message on the RPCs Quiver does not serve (tonic answers them UNIMPLEMENTED
//! with an empty message; pymilvus does not retry that code, and the message
//! tells the user which call it was).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use quiver_proto::milvus::milvus_service_server::MilvusServiceServer;
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::server::NamedService;

use super::MilvusFront;

/// Largest request or response message, bytes.
const MAX_MESSAGE_BYTES: usize = 512 << 20;

/// The Milvus service (add it to a tonic `Server` with `add_service`).
#[derive(Clone)]
pub struct MilvusServer {
    inner: MilvusServiceServer<MilvusFront>,
}

impl MilvusServer {
    pub(crate) fn new(front: Arc<MilvusFront>) -> Self {
        Self {
            inner: MilvusServiceServer::from_arc(front)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        }
    }
}

impl NamedService for MilvusServer {
    const NAME: &'static str = quiver_proto::MILVUS_SERVICE_NAME;
}

/// The `grpc-message` of an RPC Quiver does not serve (ASCII, no `%`: valid
/// unencoded in the header).
fn unimplemented_message(path: &str) -> String {
    let method: String = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    format!(
        "Quiver does not serve the Milvus RPC {method:?} (no bulk import, custom \
         privilege groups, grouping or sparse search; see the README's Milvus compatibility notes)"
    )
}

impl<B> Service<http::Request<B>> for MilvusServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<http::Request<B>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_string();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let mut resp = answer.await?;
            let headers = resp.headers_mut();
            let unimplemented = headers
                .get("grpc-status")
                .is_some_and(|v| v == (tonic::Code::Unimplemented as i32).to_string().as_str());
            if unimplemented
                && headers.get("grpc-message").is_none_or(|m| m.is_empty())
                && let Ok(v) = http::HeaderValue::from_str(&unimplemented_message(&path))
            {
                headers.insert("grpc-message", v);
            }
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_rpc_and_is_a_valid_header() {
        let m = unimplemented_message("/milvus.proto.milvus.MilvusService/Import");
        assert!(m.contains("\"Import\""), "{m}");
        assert!(!m.contains('%'));
        assert!(http::HeaderValue::from_str(&m).is_ok());
        let m = unimplemented_message("/x/Bad%20Name\u{e9}");
        assert!(m.contains("\"Bad20Name\""), "{m}");
    }
}
