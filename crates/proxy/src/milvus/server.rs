//! The tonic service: `MilvusServiceServer` plus the RPCs pymilvus calls that
//! the generated service does not hold (`AllocTimestamp`, used by
//! `create_index` to wait for the index), answered by hand with the same
//! codec.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use quiver_common::wall_ts;
use quiver_proto::common::{MsgBase, Status};
use quiver_proto::milvus::milvus_service_server::MilvusServiceServer;
use tonic::codegen::{Body, BoxFuture, StdError, http};
use tonic::server::NamedService;

use super::MilvusFront;
use super::status::success;

/// `milvus.AllocTimestampRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AllocTimestampRequest {
    #[prost(message, optional, tag = "1")]
    pub base: Option<MsgBase>,
}

/// `milvus.AllocTimestampResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AllocTimestampResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(uint64, tag = "2")]
    pub timestamp: u64,
}

const ALLOC_TIMESTAMP: &str = "/milvus.proto.milvus.MilvusService/AllocTimestamp";

/// The Milvus service (add it to a tonic `Server` with `add_service`).
#[derive(Clone)]
pub struct MilvusServer {
    inner: MilvusServiceServer<MilvusFront>,
}

impl MilvusServer {
    pub(crate) fn new(front: Arc<MilvusFront>) -> Self {
        Self {
            inner: MilvusServiceServer::from_arc(front)
                .max_decoding_message_size(512 << 20)
                .max_encoding_message_size(512 << 20),
        }
    }
}

impl NamedService for MilvusServer {
    const NAME: &'static str = quiver_proto::MILVUS_SERVICE_NAME;
}

#[derive(Clone, Copy)]
struct AllocTimestamp;

impl tonic::server::UnaryService<AllocTimestampRequest> for AllocTimestamp {
    type Response = AllocTimestampResponse;
    type Future = BoxFuture<tonic::Response<AllocTimestampResponse>, tonic::Status>;

    fn call(&mut self, _req: tonic::Request<AllocTimestampRequest>) -> Self::Future {
        Box::pin(async move {
            Ok(tonic::Response::new(AllocTimestampResponse {
                status: Some(success()),
                timestamp: wall_ts(),
            }))
        })
    }
}

impl<B> tonic::codegen::Service<http::Request<B>> for MilvusServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tonic::codegen::Service::<http::Request<B>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == ALLOC_TIMESTAMP {
            return Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(AllocTimestamp, req).await)
            });
        }
        self.inner.call(req)
    }
}
