//! Operating Quiver from outside: the admin gRPC API (`quiver.admin.v1`:
//! mirrored aliases, flips, pins, compare-and-swap, verify) and, beside it,
//! the HTTP status page on the same port, with the Prometheus metrics it
//! serves and the divergence checks of mirrored pairs both of them report.
//!
//! Everything here works over the catalog and the data path clients
//! (`quiver-api`); the servers compose it next to the Milvus front door.

mod admin;
pub mod divergence;
pub mod metrics;
pub mod nodes;
mod status_page;
pub mod storage;

pub use admin::{AdminFront, DEFAULT_MAX_LAG_MS, alias_status};
pub use status_page::{
    History, HistoryOptions, NodeHealth, NodeStatus, RECENT_FLIPS, STATUS_PAGE_ACTOR, StatusPage,
    alias_json, utc,
};
