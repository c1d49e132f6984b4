//! Where shards are served: coord's placement as the front door and the
//! querynodes see it. In cluster mode a table follows coord's watch stream;
//! the data path reads it locally and never waits on coord.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::meta::ShardId;

/// A node's id and the address of its internal gRPC endpoint (`host:port`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeAddr {
    pub id: u64,
    pub addr: String,
}

/// Who serves one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRoute {
    /// The datanode owning the shard (writes, flush, the change stream);
    /// None while the shard is unassigned (e.g. its owner died).
    pub owner: Option<NodeAddr>,
    /// The querynodes serving the shard (its replicas).
    pub replicas: Vec<NodeAddr>,
}

/// Placement as known to this process.
#[async_trait]
pub trait RouteTable: Send + Sync {
    /// The current route of a shard (empty when unknown).
    fn route(&self, shard: ShardId) -> ShardRoute;
    /// A number that grows with every change of the table.
    fn version(&self) -> u64;
    /// Resolves once the table's version is greater than `since` (returns it).
    async fn changed(&self, since: u64) -> u64;
}
