//! [`CoordClient`] for datanodes and querynodes: heartbeats, node health,
//! and the shard routes ([`RouteTable`]) read from the watch-fed cache.

use async_trait::async_trait;
use quiver_api::{NodeAddr, RouteTable, ShardId, ShardRoute};
use quiver_common::{Error, Result};
use quiver_proto::coord as pb;

use super::CoordClient;
use crate::coord::NodeHealth;
use crate::state::{MetaState, NodeRole};
use crate::wire::{health_from_pb, role_to_pb};

impl CoordClient {
    /// A heartbeat of node `id` (`role`, serving at `addr`) to the leader;
    /// registers the node or its new address on first contact. Send one
    /// every fraction of coord's `node_lease_ms` (a third, say).
    pub async fn heartbeat(&self, id: u64, role: NodeRole, addr: &str) -> Result<()> {
        self.heartbeat_with(id, role, addr, &std::collections::BTreeMap::new())
            .await
    }

    /// [`CoordClient::heartbeat`] carrying a datanode's mirror lags
    /// (collection id -> ms behind).
    pub async fn heartbeat_with(
        &self,
        id: u64,
        role: NodeRole,
        addr: &str,
        mirror_lag_ms: &std::collections::BTreeMap<u64, u64>,
    ) -> Result<()> {
        if addr.is_empty() {
            return Err(Error::invalid("addr", "a node needs a host:port address"));
        }
        let req = pb::HeartbeatRequest {
            id,
            role: role_to_pb(role) as i32,
            addr: addr.to_string(),
            mirror_lag_ms: mirror_lag_ms.iter().map(|(k, v)| (*k, *v)).collect(),
        };
        self.call("heartbeat", |mut c| {
            let req = req.clone();
            async move { c.heartbeat(req).await }
        })
        .await?;
        Ok(())
    }

    /// What the leader knows of mirrored aliases, in one call: mirror lags
    /// as datanodes last reported them (collection id -> ms behind), and
    /// divergent rows per alias as its divergence check last counted them.
    pub async fn mirror_health(&self) -> Result<MirrorHealth> {
        let reply = self
            .call("node health", |mut c| async move {
                c.node_health(pb::Empty {}).await
            })
            .await?;
        Ok(MirrorHealth {
            lag_ms: reply.mirror_lag_ms.into_iter().collect(),
            divergent_rows: reply.divergent_rows.into_iter().collect(),
        })
    }

    /// Every registered node with its liveness, as the leader sees it.
    pub async fn node_health(&self) -> Result<Vec<NodeHealth>> {
        let reply = self
            .call("node health", |mut c| async move {
                c.node_health(pb::Empty {}).await
            })
            .await?;
        reply.nodes.iter().map(health_from_pb).collect()
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

/// See [`CoordClient::mirror_health`].
#[derive(Debug, Clone, Default)]
pub struct MirrorHealth {
    pub lag_ms: std::collections::BTreeMap<u64, u64>,
    pub divergent_rows: std::collections::BTreeMap<String, u64>,
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
