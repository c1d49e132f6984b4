//! Node rules: registering datanodes and querynodes, and each shard's
//! replica set.

use std::collections::BTreeSet;

use quiver_common::{CollectionId, ShardIndex};

use super::shard::check_shard;
use crate::command::MetaResponse;
use crate::error::RuleError;
use crate::state::{MetaState, NodeMeta, NodeRole};

pub(super) fn register(
    state: &mut MetaState,
    id: u64,
    role: NodeRole,
    addr: &str,
) -> Result<MetaResponse, RuleError> {
    if id == 0 {
        return Err(RuleError::invalid("id", "node id 0 is reserved"));
    }
    if addr.trim().is_empty() {
        return Err(RuleError::invalid(
            "addr",
            format!("node {id} needs a host:port address"),
        ));
    }
    if let Some(known) = state.nodes.get(&id)
        && known.role != role
    {
        return Err(RuleError::invalid(
            "id",
            format!(
                "node {id} is registered as a {}; it cannot register as a {role}",
                known.role
            ),
        ));
    }
    // A new address keeps the node's standing (a draining node re-registers
    // still draining).
    let draining = state.nodes.get(&id).is_some_and(|n| n.draining);
    state.nodes.insert(
        id,
        NodeMeta {
            id,
            role,
            addr: addr.to_string(),
            draining,
        },
    );
    Ok(MetaResponse::Done)
}

fn known(state: &MetaState, id: u64) -> Result<&NodeMeta, RuleError> {
    state.nodes.get(&id).ok_or_else(|| {
        RuleError::invalid(
            "id",
            format!("node {id} is not a registered datanode or querynode"),
        )
    })
}

pub(super) fn set_draining(
    state: &mut MetaState,
    id: u64,
    draining: bool,
) -> Result<MetaResponse, RuleError> {
    known(state, id)?;
    if let Some(n) = state.nodes.get_mut(&id) {
        n.draining = draining;
    }
    Ok(MetaResponse::Done)
}

pub(super) fn forget(state: &mut MetaState, id: u64) -> Result<MetaResponse, RuleError> {
    known(state, id)?;
    let (owned, served) = state.holdings(id);
    if !owned.is_empty() || !served.is_empty() {
        let list = |v: &[(CollectionId, ShardIndex)]| -> String {
            v.iter()
                .map(|(c, s)| format!("{c}/{s}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(RuleError::invalid(
            "id",
            format!(
                "node {id} still owns shards [{}] and serves replicas of [{}]: drain it, or wait until its lease expires and placement moves them",
                list(&owned),
                list(&served)
            ),
        ));
    }
    state.nodes.remove(&id);
    Ok(MetaResponse::Done)
}

pub(super) fn set_replicas(
    state: &mut MetaState,
    collection_id: CollectionId,
    shard: ShardIndex,
    nodes: &[u64],
    leaving: Option<u64>,
) -> Result<MetaResponse, RuleError> {
    check_shard(state, collection_id, shard)?;
    if let Some(id) = leaving.filter(|id| !nodes.contains(id)) {
        return Err(RuleError::invalid(
            "leaving",
            format!("node {id} is not one of the shard's replicas {nodes:?}"),
        ));
    }
    let mut seen = BTreeSet::new();
    for id in nodes {
        match state.nodes.get(id) {
            Some(n) if n.role == NodeRole::QueryNode => {}
            Some(n) => {
                return Err(RuleError::invalid(
                    "nodes",
                    format!("node {id} is a {}, not a querynode", n.role),
                ));
            }
            None => {
                return Err(RuleError::invalid(
                    "nodes",
                    format!("node {id} is not registered"),
                ));
            }
        }
        if !seen.insert(*id) {
            return Err(RuleError::invalid(
                "nodes",
                format!("node {id} appears twice: one replica per node"),
            ));
        }
    }
    let moves = state.leaving.entry(collection_id).or_default();
    match leaving {
        Some(id) => moves.insert(shard, id),
        None => moves.remove(&shard),
    };
    if moves.is_empty() {
        state.leaving.remove(&collection_id);
    }
    let shards = state.replicas.entry(collection_id).or_default();
    if nodes.is_empty() {
        shards.remove(&shard);
        if shards.is_empty() {
            state.replicas.remove(&collection_id);
        }
    } else {
        shards.insert(shard, nodes.to_vec());
    }
    Ok(MetaResponse::Done)
}

pub(super) fn set_unplaced(
    state: &mut MetaState,
    collection_id: CollectionId,
    reason: Option<String>,
) -> Result<MetaResponse, RuleError> {
    let Some(meta) = state.collections.get_mut(&collection_id) else {
        return Err(RuleError::CollectionNotFound(format!(
            "collection id {collection_id}"
        )));
    };
    meta.unplaced = reason;
    Ok(MetaResponse::Done)
}
