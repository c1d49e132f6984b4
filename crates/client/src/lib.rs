//! A Rust client for Quiver (and Milvus) over the Milvus gRPC protocol.
//!
//! ```no_run
//! # async fn demo() -> quiver_client::Result<()> {
//! use quiver_client::{Client, CollectionSpec, Metric, Rows, SearchParams};
//!
//! let client = Client::connect("127.0.0.1:19530").await?;
//! let mut spec = CollectionSpec::new("demo", 4);
//! spec.metric = Metric::Cosine;
//! client.create_collection(&spec).await?; // schema, HNSW index, load
//! client
//!     .insert("demo", Rows::new(4, vec![0.1, 0.2, 0.3, 0.4]).with_ids(vec![7]))
//!     .await?;
//! let hits = client
//!     .search("demo", &[0.1, 0.2, 0.3, 0.4], 4, &SearchParams::new(3))
//!     .await?;
//! assert_eq!(hits[0][0].id, quiver_client::Id::Int(7));
//! # Ok(())
//! # }
//! ```
//!
//! A request the server refuses comes back as [`Error::Server`], which
//! carries the Milvus code (see [`code`]) and the server's reason.

mod admin;
mod alias;
mod client;
mod collection;
mod compaction;
mod connect;
mod data;
mod error;
mod search;
mod users;
mod value;

pub use admin::{
    Actor, AliasEvent, AliasStatus, DivergentRow, MirrorSpec, NodeStatus, ShardStorage,
    VerifyReport,
};
pub use client::{Client, DEFAULT_ADDR, endpoint_uri};
pub use collection::{
    CollectionInfo, CollectionSpec, DEFAULT_PK_FIELD, DEFAULT_VECTOR_FIELD, FieldInfo, Index,
    IndexInfo, Metric,
};
pub use compaction::{CompactionPlan, CompactionProgress};
pub use connect::{Auth, ConnectOptions, Transport};
pub use data::{Rows, WriteResult};
pub use error::{Error, Result, code};
pub use quiver_proto::schema::DataType;
pub use search::{Hit, ReadLevel, SearchParams};
pub use value::{Id, Row, Value};
