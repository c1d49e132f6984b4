//! Quiver's internal data path over gRPC (`proto/quiver/node.proto`,
//! package `quiver.node.v1`): the network form of the role traits of
//! `quiver-api`.
//!
//! - A datanode serves [`DataServiceImpl`] (over its [`quiver_api::DataClient`]
//!   and [`quiver_api::ShardFeed`]); front doors and querynodes reach it
//!   through [`RemoteData`], which implements both traits. A shard stream is
//!   a server stream: the starting point (sealed segments, growing
//!   mutations), then live events; when it ends or breaks, the subscriber's
//!   event receiver closes and the querynode resubscribes.
//! - A querynode serves [`QueryServiceImpl`] (over its
//!   [`quiver_api::QueryClient`]); front doors reach it through
//!   [`RemoteQuery`]. Filters cross as compiled expressions
//!   ([`quiver_expr::CompiledFilter::decode`]).
//!
//! Payloads are postcard encodings of the serde form of the api/common types:
//! the protocol is internal and versioned with the binary (every node of a
//! cluster runs the same version). Errors keep their kind and message across
//! the wire (see [`ERROR_HEADER`]); transport failures are
//! `Error::Unavailable`. Calls have per-call deadlines ([`ClientConfig`]).

pub mod accept;
mod client;
mod codec;
mod config;
mod data_client;
mod data_server;
mod error;
mod query_client;
mod query_server;
mod server;
pub mod tls;

pub use config::{ClientConfig, MAX_MESSAGE_BYTES};
pub use data_client::RemoteData;
pub use data_server::DataServiceImpl;
pub use error::{ERROR_HEADER, WireError, from_status, to_status};
pub use query_client::RemoteQuery;
pub use query_server::QueryServiceImpl;
pub use tls::{CLUSTER_SERVER_NAME, ClusterTls};
