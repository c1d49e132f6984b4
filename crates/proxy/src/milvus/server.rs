//! The tonic service: `MilvusServiceServer` over [`MilvusFront`], with message
//! size limits large enough for big insert batches and result sets.

use std::sync::Arc;

use quiver_proto::milvus::milvus_service_server::MilvusServiceServer;

use super::MilvusFront;

/// Largest request or response message, bytes.
const MAX_MESSAGE_BYTES: usize = 512 << 20;

/// The Milvus service (add it to a tonic `Server` with `add_service`).
pub type MilvusServer = MilvusServiceServer<MilvusFront>;

pub(crate) fn service(front: Arc<MilvusFront>) -> MilvusServer {
    MilvusServiceServer::from_arc(front)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}
