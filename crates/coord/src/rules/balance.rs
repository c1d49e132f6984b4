//! Balancing: moving replicas and shard ownership between live nodes so
//! that a node that joins takes its share, a node being drained ends up
//! with nothing, and a move never leaves a shard without a serving replica.
//! Pure, like [`super::placement::plan`]: the leader runs it when `plan`
//! has nothing to repair and proposes what it returns.
//!
//! - **Releasing** (a move's second half): a shard with more replicas than
//!   `min(replica_number, querynodes not draining)` releases one — a
//!   replica on a node that is not live, else on a draining node, else the
//!   one a move recorded as leaving (`SetReplicas::leaving`), else on the
//!   most loaded node (ties: highest id) — only when every replica it
//!   keeps is *serving* the shard (its querynode reported it loaded). The
//!   extra replica was added by `plan` (for a draining node) or by a spread
//!   move below, so the new copy serves before the old one goes.
//! - **Spreading replicas**: a querynode's load is the rows of the shards
//!   it holds replicas of (each shard weighs its rows + 1, so empty shards
//!   count one each: [`NodeView::rows`], else the sealed rows in the
//!   metadata). While the most loaded querynode not draining carries more
//!   than the least loaded one by over a tenth of its load, one of its
//!   replicas whose weight is below the difference (the move narrows it;
//!   the one closest to half of it), of a shard not already moving whose
//!   mirror group admits the target, gains a copy on the least loaded node;
//!   it is released above once that copy serves. When every replica of the
//!   heaviest node outweighs the gap, one of them is *swapped* with a
//!   lighter replica of the least loaded node (two moves, each recording
//!   its leaving copy: a stateless "release the most loaded" would undo one
//!   half while the other's copy still counts twice). At most `max_moves`
//!   shards move at once (a swap may start alone when `max_moves` is 1).
//!   Every move or swap lowers the sum of squared loads, so balancing
//!   settles.
//! - **Ownership**: a shard owned by a draining datanode, else (while the
//!   spread of owned shards is two or more) one of the most loaded
//!   datanode's shards, goes to the least loaded datanode not draining
//!   (`AcquireShard`: the new owner's epoch fences the old one, that
//!   shard's writes pause for a moment and the proxy retries them). A
//!   mirrored collection's shard avoids datanodes owning its partner's. At
//!   most `max_moves` per round.
//!
//! Datanode load is counted in shards owned (ingest, not rows, is a
//! datanode's work).

use std::collections::{BTreeMap, BTreeSet};

use quiver_common::{CollectionId, ShardIndex};

use super::placement::mirror_groups;
use crate::command::MetaCommand;
use crate::state::{MetaState, NodeRole};

/// What the leader knows beyond the metadata.
#[derive(Debug, Default, Clone)]
pub struct NodeView {
    /// Nodes whose lease holds.
    pub live: BTreeSet<u64>,
    /// The shards each querynode reported it has loaded (serves).
    pub serving: BTreeMap<u64, BTreeSet<(CollectionId, ShardIndex)>>,
    /// Live rows per shard as its owner last reported them (a shard
    /// missing here weighs its sealed rows in the metadata).
    pub rows: BTreeMap<(CollectionId, ShardIndex), u64>,
    /// Querynodes' memory as they reported it ([`super::room`]).
    pub memory: BTreeMap<u64, super::room::Memory>,
    /// Bytes of each shard's segment and index objects, as its owner
    /// reported them: what one replica is estimated to take in memory.
    pub shard_bytes: BTreeMap<(CollectionId, ShardIndex), u64>,
}

impl NodeView {
    fn serves(&self, node: u64, shard: (CollectionId, ShardIndex)) -> bool {
        self.serving.get(&node).is_some_and(|s| s.contains(&shard))
    }

    /// What a replica of each placed shard weighs in a querynode's load
    /// (computed once per round).
    fn weights(&self, state: &MetaState) -> BTreeMap<(CollectionId, ShardIndex), u64> {
        let sealed = |c: &CollectionId, s: &ShardIndex| -> u64 {
            (state.segments.get(c).and_then(|shards| shards.get(s)))
                .map_or(0, |cat| cat.segments.iter().map(|seg| seg.rows).sum())
        };
        let mut out = BTreeMap::new();
        for (c, shards) in &state.replicas {
            for s in shards.keys() {
                let rows = self.rows.get(&(*c, *s)).copied();
                out.insert((*c, *s), rows.unwrap_or_else(|| sealed(c, s)) + 1);
            }
        }
        out
    }
}

/// The balancing commands for this round (see the module docs).
pub fn balance(state: &MetaState, view: &NodeView, max_moves: usize) -> Vec<MetaCommand> {
    let pick_of = |role: NodeRole| -> BTreeSet<u64> {
        (state.nodes.values())
            .filter(|n| n.role == role && view.live.contains(&n.id) && !n.draining)
            .map(|n| n.id)
            .collect()
    };
    let querynodes = pick_of(NodeRole::QueryNode);
    let datanodes = pick_of(NodeRole::DataNode);
    let mut out = Vec::new();
    replicas(state, view, &querynodes, max_moves, &mut out);
    owners(state, view, &datanodes, max_moves, &mut out);
    out
}

/// Releases finished moves and starts new replica moves (at most
/// `max_moves` shards moving at once).
fn replicas(
    state: &MetaState,
    view: &NodeView,
    querynodes: &BTreeSet<u64>,
    max_moves: usize,
    out: &mut Vec<MetaCommand>,
) {
    let weights = view.weights(state);
    let weight = |shard: (CollectionId, ShardIndex)| weights.get(&shard).copied().unwrap_or(1);
    let mut held: BTreeMap<u64, u64> = querynodes.iter().map(|q| (*q, 0)).collect();
    for (c, shards) in &state.replicas {
        for (shard, nodes) in shards {
            let w = weight((*c, *shard));
            for id in nodes {
                if let Some(n) = held.get_mut(id) {
                    *n += w;
                }
            }
        }
    }
    let draining = |id: &u64| state.nodes.get(id).is_some_and(|n| n.draining);
    let mut moving = 0;
    // Shards that can take a new copy: (collection, shard, replicas).
    let mut settled: Vec<(CollectionId, ShardIndex, Vec<u64>)> = Vec::new();
    for meta in state.collections.values().filter(|m| m.loaded) {
        let want = (meta.replica_number as usize).min(querynodes.len());
        for shard in 0..meta.shards {
            let current = state.shard_replicas(meta.id, shard);
            if current.len() <= want {
                settled.push((meta.id, shard, current));
                continue;
            }
            // Leavers in order of preference: gone, draining, the copy a
            // move recorded as leaving, most loaded.
            let moving_off = state.leaving_replica(meta.id, shard);
            let mut leavers: Vec<u64> = current.clone();
            leavers.sort_by_key(|id| {
                let gone = !view.live.contains(id);
                let load = held.get(id).copied().unwrap_or(u64::MAX);
                let recorded = moving_off == Some(*id);
                std::cmp::Reverse((gone, draining(id), recorded, load, *id))
            });
            // Only the first leaver: releasing another (the new copy of a
            // move) would undo the move.
            let released = leavers.first().and_then(|leaver| {
                let keep: Vec<u64> = current.iter().copied().filter(|id| id != leaver).collect();
                let serving = keep.iter().all(|k| view.serves(*k, (meta.id, shard)));
                (keep.len() >= want && serving).then_some((*leaver, keep))
            });
            match released {
                Some((leaver, keep)) => {
                    if let Some(n) = held.get_mut(&leaver) {
                        *n = n.saturating_sub(weight((meta.id, shard)));
                    }
                    if keep.len() > want {
                        moving += 1;
                    }
                    out.push(MetaCommand::SetReplicas {
                        collection_id: meta.id,
                        shard,
                        nodes: keep,
                        leaving: None,
                    });
                }
                None => moving += 1,
            }
        }
    }
    // Spread: one new copy on the least loaded node per move (one with
    // memory room for it).
    let groups = mirror_groups(state, querynodes);
    let mut room = super::room::Room::new(state, view);
    while moving < max_moves {
        let Some((&max_node, &max)) = held
            .iter()
            .max_by_key(|(id, n)| (**n, std::cmp::Reverse(**id)))
        else {
            break;
        };
        let Some((&min_node, &min)) = held.iter().min_by_key(|(id, n)| (**n, **id)) else {
            break;
        };
        let diff = max - min;
        // Within a tenth of the heaviest: balanced enough (growth jitter
        // must not move replicas back and forth).
        if diff * 10 <= max {
            break;
        }
        // A replica lighter than the difference narrows it; the one
        // closest to half of it narrows it most.
        let movable = |i: usize, from: u64, to: u64, room: &super::room::Room| {
            let (c, s, nodes) = &settled[i];
            nodes.contains(&from)
                && !nodes.contains(&to)
                && groups.get(c).is_none_or(|g| g.contains(&to))
                && room.fits(to, view.replica_bytes((*c, *s)))
        };
        let w_of = |i: usize| weight((settled[i].0, settled[i].1));
        let single = (0..settled.len())
            .filter(|i| movable(*i, max_node, min_node, &room))
            .map(|i| (i, w_of(i)))
            .filter(|(_, w)| *w < diff)
            .min_by_key(|(i, w)| ((2 * w).abs_diff(diff), *i));
        let picks = match single {
            Some((i, _)) => vec![(i, max_node, min_node)],
            // Every replica of the heaviest node outweighs the gap: swap
            // one of them with a lighter one of the least loaded node (a
            // move each way; the gap narrows by twice their difference).
            None if moving == 0 || moving + 2 <= max_moves => {
                let down: Vec<usize> = (0..settled.len())
                    .filter(|i| movable(*i, max_node, min_node, &room))
                    .collect();
                let up: Vec<usize> = (0..settled.len())
                    .filter(|i| movable(*i, min_node, max_node, &room))
                    .collect();
                let pair = (down.iter())
                    .flat_map(|a| up.iter().map(move |b| (*a, *b)))
                    .filter(|(a, b)| w_of(*a) > w_of(*b) && w_of(*a) - w_of(*b) < diff)
                    .min_by_key(|(a, b)| ((2 * (w_of(*a) - w_of(*b))).abs_diff(diff), *a, *b));
                match pair {
                    Some((a, b)) => vec![(a, max_node, min_node), (b, min_node, max_node)],
                    None => break,
                }
            }
            None => break,
        };
        for (i, from, to) in &picks {
            let (c, s, _) = &settled[*i];
            room.take(*to, view.replica_bytes((*c, *s)));
            let w = w_of(*i);
            *held.entry(*from).or_default() -= w;
            *held.entry(*to).or_default() += w;
        }
        // Taken out highest index first so the lower one stays valid.
        let mut picks = picks;
        picks.sort_by_key(|(i, _, _)| std::cmp::Reverse(*i));
        for (i, from, to) in picks {
            let (collection_id, shard, mut nodes) = settled.swap_remove(i);
            nodes.push(to);
            moving += 1;
            out.push(MetaCommand::SetReplicas {
                collection_id,
                shard,
                nodes,
                leaving: Some(from),
            });
        }
    }
}

/// Moves shard ownership off draining datanodes, then evens it out.
fn owners(
    state: &MetaState,
    view: &NodeView,
    datanodes: &BTreeSet<u64>,
    max_moves: usize,
    out: &mut Vec<MetaCommand>,
) {
    if datanodes.is_empty() {
        return;
    }
    let mut owned: BTreeMap<u64, usize> = datanodes.iter().map(|d| (*d, 0)).collect();
    let mut shards: Vec<(CollectionId, ShardIndex, u64)> = Vec::new();
    for (c, per_shard) in &state.owners {
        for (s, o) in per_shard {
            shards.push((*c, *s, o.node_id));
            if let Some(n) = owned.get_mut(&o.node_id) {
                *n += 1;
            }
        }
    }
    let partner_owners = |c: CollectionId| -> BTreeSet<u64> {
        state
            .mirror_partner(c)
            .and_then(|p| state.owners.get(&p))
            .map(|o| o.values().map(|x| x.node_id).collect())
            .unwrap_or_default()
    };
    let target_for = |c: CollectionId, owned: &BTreeMap<u64, usize>| -> Option<u64> {
        let avoid = partner_owners(c);
        let least = |skip: &BTreeSet<u64>| {
            (owned.iter())
                .filter(|(id, _)| !skip.contains(id))
                .min_by_key(|(id, n)| (**n, **id))
                .map(|(id, _)| *id)
        };
        least(&avoid).or_else(|| least(&BTreeSet::new()))
    };
    let mut moves = 0;
    let draining = |id: u64| state.nodes.get(&id).is_some_and(|n| n.draining);
    for (c, s, from) in &shards {
        if moves >= max_moves {
            return;
        }
        if draining(*from) && view.live.contains(from) {
            let Some(to) = target_for(*c, &owned) else {
                return;
            };
            *owned.entry(to).or_default() += 1;
            moves += 1;
            out.push(MetaCommand::AcquireShard {
                collection_id: *c,
                shard: *s,
                node_id: to,
            });
        }
    }
    while moves < max_moves {
        let Some((&max_node, &max)) = owned
            .iter()
            .max_by_key(|(id, n)| (**n, std::cmp::Reverse(**id)))
        else {
            return;
        };
        let Some((&min_node, &min)) = owned.iter().min_by_key(|(id, n)| (**n, **id)) else {
            return;
        };
        if max < min + 2 {
            return;
        }
        let pick = shards
            .iter()
            .position(|(c, _, from)| *from == max_node && !partner_owners(*c).contains(&min_node));
        let Some(i) = pick else {
            return;
        };
        let (c, s, _) = shards.swap_remove(i);
        *owned.entry(max_node).or_default() -= 1;
        *owned.entry(min_node).or_default() += 1;
        moves += 1;
        out.push(MetaCommand::AcquireShard {
            collection_id: c,
            shard: s,
            node_id: min_node,
        });
    }
}
