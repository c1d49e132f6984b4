//! The front door. Validates every request before anything is written,
//! resolves the collection once per request, routes writes to shards by the
//! hash of the primary key, turns the consistency level into a guarantee
//! timestamp, scatters searches to every shard and merges the results.

mod routing;
mod service;

pub use quiver_expr::TemplateValue;
pub use routing::shard_of;
pub use service::{Consistency, Limits, Proxy, SearchRequest, WriteResult};
