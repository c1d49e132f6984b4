//! Milvus-compatible gRPC protocol for Quiver.
//!
//! The message and service definitions live in `proto/milvus/*.proto` at the repository
//! root; they are written for wire compatibility with Milvus so that unmodified Milvus
//! clients (pymilvus) work against Quiver. `tests/proto_conformance` checks them against
//! the descriptors bundled with pymilvus.
//!
//! Modules mirror the protobuf packages:
//! - [`common`] — `milvus.proto.common` (Status, KeyValuePair, MsgBase, PlaceholderGroup, enums)
//! - [`schema`] — `milvus.proto.schema` (CollectionSchema, FieldData, IDs, SearchResultData)
//! - [`msg`] — `milvus.proto.msg` (only MsgPosition, used by FlushResponse)
//! - [`rg`] — `milvus.proto.rg` (resource group configuration)
//! - [`milvus`] — `milvus.proto.milvus` (requests/responses and `MilvusService`, with
//!   [`milvus::milvus_service_server`] and [`milvus::milvus_service_client`])

/// `milvus.proto.common`.
#[allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::unwrap_used)]
pub mod common {
    include!(concat!(env!("OUT_DIR"), "/milvus.proto.common.rs"));
}

/// `milvus.proto.schema`.
#[allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::unwrap_used)]
pub mod schema {
    include!(concat!(env!("OUT_DIR"), "/milvus.proto.schema.rs"));
}

/// `milvus.proto.msg` (only the messages the service needs).
#[allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::unwrap_used)]
pub mod msg {
    include!(concat!(env!("OUT_DIR"), "/milvus.proto.msg.rs"));
}

/// `milvus.proto.rg` (resource group configuration).
#[allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::unwrap_used)]
pub mod rg {
    include!(concat!(env!("OUT_DIR"), "/milvus.proto.rg.rs"));
}

/// `milvus.proto.milvus`: requests, responses and the `MilvusService` server/client.
#[allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::unwrap_used)]
pub mod milvus {
    include!(concat!(env!("OUT_DIR"), "/milvus.proto.milvus.rs"));
}

/// `quiver.coord.v1` (`proto/quiver/coord.proto`): Raft between coords
/// ([`coord::raft_service_server`], [`coord::raft_service_client`]) and the
/// metadata API ([`coord::coord_service_server`], [`coord::coord_service_client`]).
#[allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::unwrap_used)]
pub mod coord {
    include!(concat!(env!("OUT_DIR"), "/quiver.coord.v1.rs"));
}

/// `quiver.node.v1` (`proto/quiver/node.proto`): the internal data path,
/// datanodes ([`node::data_service_server`], [`node::data_service_client`])
/// and querynodes ([`node::query_service_server`], [`node::query_service_client`]).
/// Versioned with the binary; `quiver-rpc` holds both ends.
#[allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::unwrap_used)]
pub mod node {
    include!(concat!(env!("OUT_DIR"), "/quiver.node.v1.rs"));
}

/// `quiver.admin.v1` (`proto/quiver/admin.proto`): the admin API (mirrored
/// aliases, flips, pins), served next to the Milvus API
/// ([`admin::admin_service_server`], [`admin::admin_service_client`]).
#[allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::unwrap_used)]
pub mod admin {
    include!(concat!(env!("OUT_DIR"), "/quiver.admin.v1.rs"));
}

/// Serialized `google.protobuf.FileDescriptorSet` of all the files above (for gRPC
/// reflection and tests).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/milvus_descriptor.bin"));

/// Full gRPC service name, as used in request paths (`/milvus.proto.milvus.MilvusService/Search`).
pub const MILVUS_SERVICE_NAME: &str = "milvus.proto.milvus.MilvusService";

#[cfg(test)]
mod tests;
