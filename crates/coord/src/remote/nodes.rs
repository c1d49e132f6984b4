//! [`CoordClient`] for datanodes, querynodes and proxies: node health and
//! the shard routes ([`RouteTable`]) read from the watch-fed cache.

use async_trait::async_trait;
use quiver_api::{NodeAddr, RouteTable, ShardId, ShardRoute};
use quiver_common::Result;
use quiver_proto::coord as pb;

use super::CoordClient;
use crate::state::MetaState;

impl CoordClient {
    /// The leader's `NodeHealth` answer (node leases, mirror lags,
    /// divergence counts).
    pub(super) async fn node_health_reply(&self) -> Result<pb::NodeHealthReply> {
        self.call("node health", |mut c| async move {
            c.node_health(pb::Empty {}).await
        })
        .await
    }
}

fn node_addr(state: &MetaState, id: u64) -> Option<NodeAddr> {
    state.node(id).map(|n| NodeAddr {
        id,
        addr: n.addr.clone(),
    })
}

/// A shard's route in `state`: its owner and replicas with their addresses
/// (a node that is not registered is left out).
pub fn route_of(state: &MetaState, shard: ShardId) -> ShardRoute {
    let owner = state
        .shard_owner(shard.collection_id, shard.shard)
        .and_then(|o| node_addr(state, o.node_id));
    let replicas = state
        .shard_replicas(shard.collection_id, shard.shard)
        .into_iter()
        .filter_map(|id| node_addr(state, id))
        .collect();
    ShardRoute { owner, replicas }
}

/// Routes from the watch-fed cache: never waits on coord.
#[async_trait]
impl RouteTable for CoordClient {
    fn route(&self, shard: ShardId) -> ShardRoute {
        route_of(&self.state(), shard)
    }

    fn version(&self) -> u64 {
        self.state().version()
    }

    async fn changed(&self, since: u64) -> u64 {
        let mut cache = self.subscribe();
        match cache.wait_for(|s| s.version() > since).await {
            Ok(state) => state.version(),
            // The watch task is gone (it lives as long as the client).
            Err(_) => self.state().version(),
        }
    }
}
