//! Memory room on querynodes (pure): placement never gives a querynode a
//! replica that would take it past its configured limit
//! (`querynode.max_memory_mib`, reported with its heartbeats).
//!
//! A node's use is its resident memory as it last reported it, plus the
//! estimate of every replica placed on it that it does not serve yet (not
//! in its resident memory), plus what this round placed on it. A replica's
//! estimate is the bytes of its shard's segment and index objects, as the
//! shard's owner reports them (0 while unknown: an empty or new shard).

use std::collections::BTreeMap;

use quiver_common::{CollectionId, ShardIndex};

use super::balance::NodeView;
use crate::state::MetaState;

/// A querynode's memory as it reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident bytes (0: unknown).
    pub resident: u64,
    /// Its limit in bytes (0: none).
    pub limit: u64,
}

const MIB: u64 = 1 << 20;

/// Room left on querynodes during one placement round.
pub struct Room<'a> {
    view: &'a NodeView,
    /// Bytes placed on each node and not in its resident memory yet.
    pending: BTreeMap<u64, u64>,
}

impl<'a> Room<'a> {
    pub fn new(state: &MetaState, view: &'a NodeView) -> Room<'a> {
        let mut pending: BTreeMap<u64, u64> = BTreeMap::new();
        for (c, shards) in &state.replicas {
            for (shard, nodes) in shards {
                for n in nodes {
                    if !view
                        .serving
                        .get(n)
                        .is_some_and(|s| s.contains(&(*c, *shard)))
                    {
                        *pending.entry(*n).or_default() += view.replica_bytes((*c, *shard));
                    }
                }
            }
        }
        Room { view, pending }
    }

    fn used(&self, node: u64) -> u64 {
        let resident = self.view.memory.get(&node).map_or(0, |m| m.resident);
        resident + self.pending.get(&node).copied().unwrap_or(0)
    }

    /// Whether `bytes` more fit on `node` (always, without a limit).
    pub fn fits(&self, node: u64, bytes: u64) -> bool {
        match self.view.memory.get(&node) {
            Some(m) if m.limit > 0 => self.used(node) + bytes <= m.limit,
            _ => true,
        }
    }

    /// Counts `bytes` placed on `node` this round.
    pub fn take(&mut self, node: u64, bytes: u64) {
        *self.pending.entry(node).or_default() += bytes;
    }

    /// Why none of `nodes` can take a replica of `bytes`: each one's
    /// limit. Stable while nothing changes (no use figures, which move with
    /// every heartbeat: the reason is recorded in the metadata when it
    /// changes).
    pub fn why_not(&self, nodes: impl IntoIterator<Item = u64>, bytes: u64) -> String {
        let each: Vec<String> = nodes
            .into_iter()
            .filter_map(|n| {
                let m = self.view.memory.get(&n).filter(|m| m.limit > 0)?;
                Some(format!("querynode {n}: limit {} MiB", m.limit / MIB))
            })
            .collect();
        format!(
            "a replica needs ~{} MiB and no querynode has room under its querynode.max_memory_mib ({}); add querynodes or raise their limit, or load fewer replicas",
            bytes.div_ceil(MIB).max(1),
            each.join("; ")
        )
    }
}

impl NodeView {
    /// The estimated memory of one replica of `shard`.
    pub fn replica_bytes(&self, shard: (CollectionId, ShardIndex)) -> u64 {
        self.shard_bytes.get(&shard).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::command::MetaCommand;
    use crate::rules::placement::plan_in;
    use crate::rules::placement_tests::{collection, live, load, node, ok};
    use crate::state::NodeRole;

    fn view(memory: &[(u64, u64, u64)], bytes: BTreeMap<(u64, u32), u64>) -> NodeView {
        NodeView {
            live: live(&[1, 11, 12]),
            memory: (memory.iter())
                .map(|(id, resident, limit)| {
                    let m = Memory {
                        resident: resident * MIB,
                        limit: limit * MIB,
                    };
                    (*id, m)
                })
                .collect(),
            shard_bytes: bytes,
            ..NodeView::default()
        }
    }

    /// Applies a round's commands; returns the unplaced ones.
    fn round(s: &mut MetaState, v: &NodeView) -> Vec<MetaCommand> {
        let planned = plan_in(s, v);
        for cmd in planned.cmds.into_iter().chain(planned.unplaced.clone()) {
            ok(s, cmd);
        }
        planned.unplaced
    }

    #[test]
    fn a_querynode_gets_no_replica_past_its_limit_and_the_collection_says_why() {
        let mut s = MetaState::default();
        ok(&mut s, node(1, NodeRole::DataNode));
        ok(&mut s, node(11, NodeRole::QueryNode));
        ok(&mut s, node(12, NodeRole::QueryNode));
        let c = collection(&mut s, "items", 2);
        load(&mut s, "items", true, Some(1));
        let bytes = BTreeMap::from([((c, 0), 30 * MIB), ((c, 1), 30 * MIB)]);
        // 11 is nearly full; 12 has room for both shards.
        let mut v = view(&[(11, 90, 100), (12, 10, 100)], bytes.clone());
        round(&mut s, &v);
        for shard in 0..2 {
            assert_eq!(s.shard_replicas(c, shard), vec![12], "shard {shard}");
        }
        assert_eq!(s.collection("items").and_then(|m| m.unplaced.clone()), None);

        // Two replicas each: 12 has one of every shard, 11 has no room.
        load(&mut s, "items", true, Some(2));
        round(&mut s, &v);
        let why = s.collection("items").and_then(|m| m.unplaced.clone());
        let why = why.unwrap_or_default();
        assert!(
            why.contains("querynode 11: limit 100 MiB") && why.contains("max_memory_mib"),
            "{why}"
        );
        for shard in 0..2 {
            assert_eq!(s.shard_replicas(c, shard), vec![12], "shard {shard}");
        }
        // The same state again: nothing to record (no proposal per round).
        assert!(plan_in(&s, &v).unplaced.is_empty());

        // 11's limit raised: the second replicas go there, the reason clears.
        v = view(&[(11, 90, 200), (12, 10, 100)], bytes);
        round(&mut s, &v);
        for shard in 0..2 {
            assert_eq!(s.shard_replicas(c, shard), vec![12, 11], "shard {shard}");
        }
        assert_eq!(s.collection("items").and_then(|m| m.unplaced.clone()), None);
    }
}
