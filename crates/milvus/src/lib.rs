//! The Milvus-compatible gRPC front door: `MilvusService` over [`Proxy`], so
//! that unmodified Milvus clients (pymilvus) work against Quiver.
//!
//! Every RPC answers gRPC OK with a `common.Status` (see [`status`]); only a
//! transport failure is a gRPC error. Handlers are grouped by RPC family:
//! [`ddl`] (collections), [`partition`] (the one `_default` partition),
//! [`index`], [`load`] (load/release/flush/stats), [`dml`]
//! (insert/upsert/delete), [`search`], [`query`], [`alias`].
//!
//! This crate is only the protocol adapter: validation, routing, consistency
//! and scatter/gather live in `quiver-proxy`, which knows nothing of Milvus.

mod access;
mod alias;
mod compaction;
mod database;
mod ddl;
mod dml;
mod fields;
mod filter;
mod group_by;
mod hybrid;
mod index;
mod load;
mod output;
mod partition;
mod partitioning;
mod query;
mod range;
mod resource_group;
mod rpc;
mod schema;
mod search;
mod server;
mod status;
mod users;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use quiver_api::CatalogClient;
use quiver_auth::Guard;
use quiver_common::HybridClock;

use quiver_proxy::Proxy;

pub use filter::MilvusFilter;
pub use schema::{DYNAMIC_COLUMN, schema_from_bytes, schema_from_proto, schema_to_proto};
pub use server::MilvusServer;

/// The version reported by GetVersion / Connect: the Milvus API level served.
pub const MILVUS_API_VERSION: &str = "v2.5.0";

/// State of the Milvus front door.
pub struct MilvusFront {
    proxy: Arc<Proxy>,
    /// Alias DDL goes straight to the catalog (the proxy resolves aliases).
    catalog: Arc<dyn CatalogClient>,
    next_client: AtomicI64,
    /// AllocTimestamp: unique, increasing hybrid timestamps.
    clock: HybridClock,
    /// Checks callers' privileges (`access.rs`); auth off unless set.
    guard: Arc<Guard>,
}

impl MilvusFront {
    pub fn new(proxy: Arc<Proxy>, catalog: Arc<dyn CatalogClient>) -> Self {
        Self {
            proxy,
            catalog,
            next_client: AtomicI64::new(1),
            clock: HybridClock::new(),
            guard: Arc::new(Guard::off()),
        }
    }

    /// Checks callers against `guard` (the one the front door's gate uses).
    pub fn with_guard(mut self, guard: Arc<Guard>) -> Self {
        self.guard = guard;
        self
    }

    /// The tonic service to add to a server.
    pub fn into_service(self) -> MilvusServer {
        MilvusServer::new(Arc::new(self))
    }
}
