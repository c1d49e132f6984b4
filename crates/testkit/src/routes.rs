//! A route table that sends one node's traffic to its peers through that
//! node's links.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;
use quiver_api::{NodeAddr, RouteTable, ShardId, ShardRoute};

/// Wraps coord's route table: a peer with a link from this node is reached
/// at the link's address; others at their own.
pub struct RewriteRoutes {
    inner: Arc<dyn RouteTable>,
    /// Peer id -> the link address this node dials.
    links: Arc<RwLock<HashMap<u64, String>>>,
}

impl RewriteRoutes {
    pub fn new(inner: Arc<dyn RouteTable>, links: Arc<RwLock<HashMap<u64, String>>>) -> Self {
        Self { inner, links }
    }

    fn rewrite(&self, node: NodeAddr) -> NodeAddr {
        match self.links.read().get(&node.id) {
            Some(addr) => NodeAddr {
                id: node.id,
                addr: addr.clone(),
            },
            None => node,
        }
    }
}

#[async_trait]
impl RouteTable for RewriteRoutes {
    fn route(&self, shard: ShardId) -> ShardRoute {
        let route = self.inner.route(shard);
        ShardRoute {
            owner: route.owner.map(|n| self.rewrite(n)),
            replicas: route
                .replicas
                .into_iter()
                .map(|n| self.rewrite(n))
                .collect(),
        }
    }

    fn version(&self) -> u64 {
        self.inner.version()
    }

    async fn changed(&self, since: u64) -> u64 {
        self.inner.changed(since).await
    }
}
