//! Placement: which datanode owns each shard and which querynodes serve it.
//! A pure function from the metadata and the set of live nodes to the
//! commands that repair the placement; the leader's control loop
//! (`coord::placement`) proposes them. Stable input gives no commands.
//!
//! - Every shard of every collection has an owner. A shard without one, or
//!   whose owner is not live, goes to the least-loaded live datanode that is
//!   not draining (fewest owned shards, ties to the lowest id), if any.
//! - Each shard of a loaded collection is served by at least
//!   `min(replica_number, live querynodes not draining)` querynodes not
//!   draining: the live ones it has (in their order) stay, then the
//!   least-loaded of those not draining are added (fewest replicas held,
//!   ties to the lowest id). Never two on one node. Replicas beyond that
//!   (a draining node's, a move's old copy, a lowered replica number) are
//!   not dropped here: [`super::balance`] releases them once the others
//!   serve, so a shard never loses its last serving replica to a move.
//! - An unloaded collection has no replicas.
//! - The two collections of a mirrored alias keep apart. Owners: a new
//!   owner of one is picked among the datanodes that own nothing of the
//!   other when there is one (else among all); owners are never moved for
//!   this (a move fences the WAL and pauses writes). Querynodes: the live
//!   querynodes are split in two groups, the target's — the
//!   `max(replica_number, ceil(n/2))` nodes holding most of the target's
//!   replicas (ties: lowest id), so the target moves as little as possible
//!   — and the rest for the other side. When the other group can hold the
//!   other side's `replica_number`, each side's replicas live in its own
//!   group: new ones are picked there, and ones outside it move in (their
//!   shard's searches wait for the load; at mirror time, or for the side
//!   the alias does not target when a node comes back). Otherwise (too few
//!   querynodes) both sides are placed as any collection: served beats
//!   separated.
//! - A querynode is never given a replica beyond its memory limit
//!   ([`super::room`]); a shard that finds no querynode with room is left
//!   short, and the collection says why (`SetUnplaced`, shown by load
//!   progress and `cluster status`) until it can be placed.

use std::collections::{BTreeMap, BTreeSet};

use super::balance::NodeView;
use super::room::Room;
use crate::command::MetaCommand;
use crate::state::{MetaState, NodeRole};

/// A placement round's commands (the unplaced reasons included).
#[derive(Debug, Default)]
pub struct Planned {
    /// Ownership and replica changes.
    pub cmds: Vec<MetaCommand>,
    /// `SetUnplaced` where a loaded collection's reason changed.
    pub unplaced: Vec<MetaCommand>,
}

/// The commands that bring the placement in line with `live` (ids of the
/// nodes whose lease holds). Ids in `live` that are not registered are ignored.
#[cfg(test)]
pub fn plan(state: &MetaState, live: &BTreeSet<u64>) -> Vec<MetaCommand> {
    let view = NodeView {
        live: live.clone(),
        ..NodeView::default()
    };
    plan_in(state, &view).cmds
}

/// [`plan`] with what the leader knows of the nodes beyond liveness: their
/// memory limits and what they serve.
pub fn plan_in(state: &MetaState, view: &NodeView) -> Planned {
    let live = &view.live;
    let mut room = Room::new(state, view);
    let mut reasons: BTreeMap<u64, String> = BTreeMap::new();
    // Live nodes keep what they have; only those not draining get more.
    let live_of = |role: NodeRole, draining_too: bool| -> BTreeSet<u64> {
        state
            .nodes
            .values()
            .filter(|n| n.role == role && live.contains(&n.id) && (draining_too || !n.draining))
            .map(|n| n.id)
            .collect()
    };
    let datanodes_live = live_of(NodeRole::DataNode, true);
    let datanodes = live_of(NodeRole::DataNode, false);
    let querynodes_live = live_of(NodeRole::QueryNode, true);
    let querynodes = live_of(NodeRole::QueryNode, false);
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

    // The datanodes each collection's shards are owned by, as planned so
    // far (mirrored pairs keep owners apart).
    let mut owners_of: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for (c, shards) in &state.owners {
        owners_of
            .entry(*c)
            .or_default()
            .extend(shards.values().map(|o| o.node_id));
    }

    let groups = mirror_groups(state, &querynodes);
    for meta in state.collections.values() {
        let partner = state.mirror_partner(meta.id);
        // The querynodes its replicas must stay in (a mirrored pair's side).
        let group = groups.get(&meta.id);
        let apart = |of: &BTreeMap<u64, BTreeSet<u64>>| -> BTreeSet<u64> {
            partner
                .and_then(|p| of.get(&p).cloned())
                .unwrap_or_default()
        };

        for shard in 0..meta.shards {
            let owner = state.shard_owner(meta.id, shard);
            if !owner.is_some_and(|o| datanodes_live.contains(&o.node_id))
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
                // Every live replica in its group stays: one beyond `want`
                // (a move in flight, a draining node's, a lowered replica
                // number) is released by `balance` once the others serve.
                let mut target: Vec<u64> = current
                    .iter()
                    .copied()
                    .filter(|id| {
                        let draining = !querynodes.contains(id);
                        querynodes_live.contains(id)
                            && (draining || group.is_none_or(|g| g.contains(id)))
                    })
                    .collect();
                // Outside the group: every live querynode not in it.
                let outside: BTreeSet<u64> = match group {
                    Some(g) => querynodes.difference(g).copied().collect(),
                    None => BTreeSet::new(),
                };
                let bytes = view.replica_bytes((meta.id, shard));
                while target.iter().filter(|id| querynodes.contains(id)).count() < want {
                    let mut avoid: BTreeSet<u64> = target.iter().copied().collect();
                    avoid.extend(&outside);
                    let full: BTreeSet<u64> = (querynodes.iter())
                        .filter(|q| !avoid.contains(q) && !room.fits(**q, bytes))
                        .copied()
                        .collect();
                    let Some(id) = least_loaded(&held, &avoid.union(&full).copied().collect())
                    else {
                        if !full.is_empty() {
                            let why = room.why_not(full, bytes);
                            reasons
                                .entry(meta.id)
                                .or_insert(format!("shard {shard}: {why}"));
                        }
                        break;
                    };
                    room.take(id, bytes);
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
                out.push(MetaCommand::SetReplicas {
                    collection_id: meta.id,
                    shard,
                    nodes: target,
                    leaving: None,
                });
            }
        }
    }
    let unplaced = (state.collections.values())
        .filter_map(|meta| {
            let reason = reasons.remove(&meta.id);
            (meta.unplaced != reason).then_some(MetaCommand::SetUnplaced {
                collection_id: meta.id,
                reason,
            })
        })
        .collect();
    Planned {
        cmds: out,
        unplaced,
    }
}

/// The querynode group of each side of every mirrored pair that can be
/// kept apart (see the module docs).
pub(super) fn mirror_groups(
    state: &MetaState,
    querynodes: &BTreeSet<u64>,
) -> BTreeMap<u64, BTreeSet<u64>> {
    let mut groups = BTreeMap::new();
    let n = querynodes.len();
    for alias in state.aliases.values() {
        let Some(mirror) = &alias.mirror else {
            continue;
        };
        let (t, o) = (alias.target, mirror.other(alias.target));
        let (Some(tm), Some(om)) = (state.collections.get(&t), state.collections.get(&o)) else {
            continue;
        };
        let k = (tm.replica_number.max(1) as usize)
            .max(n.div_ceil(2))
            .min(n);
        let mut held: Vec<(usize, u64)> = querynodes
            .iter()
            .map(|q| {
                let count = (0..tm.shards)
                    .filter(|s| state.shard_replicas(t, *s).contains(q))
                    .count();
                (count, *q)
            })
            .collect();
        held.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mine: BTreeSet<u64> = held.iter().take(k).map(|(_, q)| *q).collect();
        let theirs: BTreeSet<u64> = querynodes.difference(&mine).copied().collect();
        if theirs.len() >= om.replica_number.max(1) as usize {
            groups.insert(t, mine);
            groups.insert(o, theirs);
        }
    }
    groups
}

/// The node with the smallest load (ties: lowest id), not in `except`.
fn least_loaded(load: &BTreeMap<u64, usize>, except: &BTreeSet<u64>) -> Option<u64> {
    load.iter()
        .filter(|(id, _)| !except.contains(id))
        .min_by_key(|(id, n)| (**n, **id))
        .map(|(id, _)| *id)
}
