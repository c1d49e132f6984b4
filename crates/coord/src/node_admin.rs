//! What an operator does to datanodes and querynodes (`quiver node list |
//! drain | remove`, the admin API): the node table with each node's state
//! and load, draining (placement then moves everything off it, see
//! `rules::balance`) and forgetting a node that is gone.

use std::collections::BTreeMap;

use quiver_api::{NodeInfo, NodeState};
use quiver_common::{Error, Result};

use crate::command::MetaCommand;
use crate::meta::{CoordApi, MetaOps};
use crate::state::NodeRole;

/// Every registered datanode and querynode with its state and load.
pub async fn nodes(coord: &dyn CoordApi) -> Result<Vec<NodeInfo>> {
    let health = coord.node_health().await?;
    let state = coord.read().await?;
    let storage = coord.storage().await.unwrap_or_default();
    let rows: BTreeMap<(u64, u32), u64> = (storage.iter())
        .map(|s| ((s.collection_id, s.shard), s.live_rows))
        .collect();
    let mut out = Vec::new();
    for n in state.nodes().values() {
        let h = health.iter().find(|h| h.id == n.id);
        let alive = h.is_some_and(|h| h.alive);
        let (owned, served) = state.holdings(n.id);
        let holds = match n.role {
            NodeRole::DataNode => &owned,
            NodeRole::QueryNode => &served,
        };
        let node_state = match (alive, n.draining, owned.is_empty() && served.is_empty()) {
            (false, _, _) => NodeState::Gone,
            (true, true, true) => NodeState::Drained,
            (true, true, false) => NodeState::Draining,
            (true, false, _) => NodeState::Active,
        };
        out.push(NodeInfo {
            id: n.id,
            role: n.role.to_string(),
            addr: n.addr.clone(),
            state: node_state,
            last_seen_ms: h.and_then(|h| h.last_seen_ms),
            shards_owned: owned.len() as u32,
            replicas: served.len() as u32,
            rows: holds.iter().filter_map(|k| rows.get(k)).sum(),
            memory_bytes: h.and_then(|h| h.resident_bytes).unwrap_or(0),
        });
    }
    Ok(out)
}

fn registered(coord: &dyn CoordApi, id: u64) -> Result<()> {
    match coord.state().node(id) {
        Some(_) => Ok(()),
        None => Err(Error::invalid(
            "id",
            format!(
                "node {id} is not a registered datanode or querynode (`quiver node list` shows them)"
            ),
        )),
    }
}

/// Starts or stops draining `id`.
pub async fn drain(coord: &dyn CoordApi, id: u64, draining: bool) -> Result<()> {
    registered(coord, id)?;
    coord
        .done(MetaCommand::SetNodeDraining { id, draining })
        .await
}

/// Forgets `id`: refused while its lease holds (drain it and stop it
/// first) or while it still owns or serves anything.
pub async fn forget(coord: &dyn CoordApi, id: u64) -> Result<()> {
    registered(coord, id)?;
    let health = coord.node_health().await?;
    if let Some(h) = health.iter().find(|h| h.id == id && h.alive) {
        let seen = h
            .last_seen_ms
            .map_or(String::from("not heard from yet"), |ms| {
                format!("last heartbeat {ms} ms ago")
            });
        return Err(Error::invalid(
            "id",
            format!(
                "node {id} is alive ({seen}): drain it and stop it first, or wait until its lease expires"
            ),
        ));
    }
    coord.done(MetaCommand::ForgetNode { id }).await
}
