//! The front door's protocol-independent core. Validates every request before
//! anything is written, resolves the collection once per request, routes
//! writes to shards by the hash of the primary key, turns the consistency
//! level into a guarantee timestamp, scatters searches to every shard and
//! merges the results.
//!
//! Protocols sit on top in their own crates: `quiver-milvus` (the Milvus gRPC
//! service) and `quiver-admin` (the admin API and the status page).
//! `ClusterData`/`ClusterQuery` are the data path of a cluster front door.

mod admission;
mod cluster;
mod routing;
mod service;
mod stale;

pub use cluster::{ClusterClientConfig, ClusterData, ClusterQuery, StaticRoutes};
pub use quiver_expr::TemplateValue;
pub use routing::shard_of;
pub use service::{Consistency, Limits, Proxy, SearchRequest, Served, WriteResult, bounded_ts};

/// The error of a read of a released collection (Milvus code 101).
pub fn not_loaded(collection: &str) -> quiver_common::Error {
    quiver_common::Error::NotLoaded(format!(
        "collection {collection:?} was released; load it (load_collection) before searching or querying it"
    ))
}
