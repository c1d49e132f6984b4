//! The front door. Validates every request before anything is written,
//! resolves the collection once per request, routes writes to shards by the
//! hash of the primary key, turns the consistency level into a guarantee
//! timestamp, scatters searches to every shard and merges the results.

mod admin;
mod cluster;
pub mod divergence;
pub mod metrics;
mod milvus;
mod routing;
mod service;
mod status_page;

pub use admin::{AdminFront, DEFAULT_MAX_LAG_MS, alias_status};
pub use cluster::{ClusterClientConfig, ClusterData, ClusterQuery, StaticRoutes};
pub use milvus::{
    DYNAMIC_COLUMN, MILVUS_API_VERSION, MilvusFilter, MilvusFront, MilvusServer, schema_from_bytes,
    schema_from_proto, schema_to_proto,
};
pub use quiver_expr::TemplateValue;
pub use routing::shard_of;

/// The error of a read of a released collection (Milvus code 101).
pub fn not_loaded(collection: &str) -> quiver_common::Error {
    quiver_common::Error::NotLoaded(format!(
        "collection {collection:?} was released; load it (load_collection) before searching or querying it"
    ))
}
pub use service::{Consistency, Limits, Proxy, SearchRequest, WriteResult};
pub use status_page::{
    NodeHealth, NodeStatus, RECENT_FLIPS, STATUS_PAGE_ACTOR, StatusPage, alias_json, utc,
};
