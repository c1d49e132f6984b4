//! Placement: which datanode owns each shard and which querynodes serve it.
//! A pure function from the metadata and the set of live nodes to the
//! commands that repair the placement; the leader's control loop
//! (`coord::placement`) proposes them. Stable input gives no commands.
//!
//! - Every shard of every collection has an owner. A shard without one, or
//!   whose owner is not live, goes to the least-loaded live datanode (fewest
//!   owned shards, ties to the lowest id), if any datanode is live.
//! - Each shard of a loaded collection is served by
//!   `min(replica_number, live querynodes)` querynodes: the live ones it has
//!   (in their order), then the least-loaded live querynodes (fewest
//!   replicas held, ties to the lowest id). Never two on one node.
//! - An unloaded collection has no replicas.
//! - The two collections of a mirrored alias keep apart: a new owner or
//!   replica of one is picked among the nodes that hold nothing of the
//!   other when there is such a node (else among all), so that losing a
//!   node does not take both sides down.

use std::collections::{BTreeMap, BTreeSet};

use crate::command::MetaCommand;
use crate::state::{MetaState, NodeRole};

/// The commands that bring the placement in line with `live` (ids of the
/// nodes whose lease holds). Ids in `live` that are not registered are ignored.
pub fn plan(state: &MetaState, live: &BTreeSet<u64>) -> Vec<MetaCommand> {
    let live_of = |role: NodeRole| -> BTreeSet<u64> {
        state
            .nodes
            .values()
            .filter(|n| n.role == role && live.contains(&n.id))
            .map(|n| n.id)
            .collect()
    };
    let datanodes = live_of(NodeRole::DataNode);
    let querynodes = live_of(NodeRole::QueryNode);
    let mut out = Vec::new();

    // Shards owned / replicas held, per live node.
    let mut owned: BTreeMap<u64, usize> = datanodes.iter().map(|id| (*id, 0)).collect();
    for shards in state.owners.values() {
        for owner in shards.values() {
            if let Some(n) = owned.get_mut(&owner.node_id) {
                *n += 1;
            }
        }
    }
    let mut held: BTreeMap<u64, usize> = querynodes.iter().map(|id| (*id, 0)).collect();
    for shards in state.replicas.values() {
        for nodes in shards.values() {
            for id in nodes {
                if let Some(n) = held.get_mut(id) {
                    *n += 1;
                }
            }
        }
    }

    // What each collection holds, as planned so far (for mirrored pairs).
    let mut owners_of: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut replicas_of: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for (c, shards) in &state.owners {
        owners_of
            .entry(*c)
            .or_default()
            .extend(shards.values().map(|o| o.node_id));
    }
    for (c, shards) in &state.replicas {
        replicas_of
            .entry(*c)
            .or_default()
            .extend(shards.values().flatten().copied());
    }

    for meta in state.collections.values() {
        let partner = state.mirror_partner(meta.id);
        let apart = |of: &BTreeMap<u64, BTreeSet<u64>>| -> BTreeSet<u64> {
            partner
                .and_then(|p| of.get(&p).cloned())
                .unwrap_or_default()
        };
        for shard in 0..meta.shards {
            let owner = state.shard_owner(meta.id, shard);
            if !owner.is_some_and(|o| datanodes.contains(&o.node_id))
                && let Some(node_id) = least_loaded(&owned, &apart(&owners_of))
                    .or_else(|| least_loaded(&owned, &BTreeSet::new()))
            {
                owners_of.entry(meta.id).or_default().insert(node_id);
                *owned.entry(node_id).or_default() += 1;
                out.push(MetaCommand::AcquireShard {
                    collection_id: meta.id,
                    shard,
                    node_id,
                });
            }

            let current = state.shard_replicas(meta.id, shard);
            let target = if meta.loaded {
                let want = (meta.replica_number as usize).min(querynodes.len());
                let mut target: Vec<u64> = current
                    .iter()
                    .copied()
                    .filter(|id| querynodes.contains(id))
                    .take(want)
                    .collect();
                while target.len() < want {
                    let taken: BTreeSet<u64> = target.iter().copied().collect();
                    let mut avoid = apart(&replicas_of);
                    avoid.extend(&taken);
                    let Some(id) =
                        least_loaded(&held, &avoid).or_else(|| least_loaded(&held, &taken))
                    else {
                        break;
                    };
                    target.push(id);
                }
                target
            } else {
                Vec::new()
            };
            if target != current {
                for id in &current {
                    if let Some(n) = held.get_mut(id) {
                        *n = n.saturating_sub(1);
                    }
                }
                for id in &target {
                    *held.entry(*id).or_default() += 1;
                }
                replicas_of.entry(meta.id).or_default().extend(&target);
                out.push(MetaCommand::SetReplicas {
                    collection_id: meta.id,
                    shard,
                    nodes: target,
                });
            }
        }
    }
    out
}

/// The node with the smallest load (ties: lowest id), not in `except`.
fn least_loaded(load: &BTreeMap<u64, usize>, except: &BTreeSet<u64>) -> Option<u64> {
    load.iter()
        .filter(|(id, _)| !except.contains(id))
        .min_by_key(|(id, n)| (**n, **id))
        .map(|(id, _)| *id)
}
