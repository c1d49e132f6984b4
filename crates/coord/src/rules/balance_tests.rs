//! Balancing: a querynode or datanode that joins takes its share, a
//! drained node ends up with nothing, and no move ever leaves a shard with
//! fewer serving replicas than it had (make before break).

use std::collections::{BTreeMap, BTreeSet};

use super::balance::{NodeView, balance};
use super::placement::plan;
use super::placement_tests::{collection, live, load, node, ok, rejected};
use crate::command::MetaCommand;
use crate::error::RuleError;
use crate::state::{MetaState, NodeRole};

const MOVES: usize = 2;

/// A cluster with datanodes `dn`, querynodes `qn`, and one collection of
/// `shards` shards loaded with `replicas` replicas, placed.
fn cluster(dn: &[u64], qn: &[u64], shards: u32, replicas: u32) -> (MetaState, u64) {
    let mut s = MetaState::default();
    for id in dn {
        ok(&mut s, node(*id, NodeRole::DataNode));
    }
    for id in qn {
        ok(&mut s, node(*id, NodeRole::QueryNode));
    }
    let c = collection(&mut s, "items", shards);
    load(&mut s, "items", true, Some(replicas));
    let all: Vec<u64> = dn.iter().chain(qn).copied().collect();
    for cmd in plan(&s, &live(&all)) {
        ok(&mut s, cmd);
    }
    (s, c)
}

/// What every querynode serves: what it was placed on as of the round
/// before (a load takes one round).
fn served(s: &MetaState) -> BTreeMap<u64, BTreeSet<(u64, u32)>> {
    let mut out: BTreeMap<u64, BTreeSet<(u64, u32)>> = BTreeMap::new();
    for (c, shards) in &s.replicas {
        for (shard, nodes) in shards {
            for n in nodes {
                out.entry(*n).or_default().insert((*c, *shard));
            }
        }
    }
    out
}

/// Serving replicas of each shard.
fn serving_counts(s: &MetaState, view: &NodeView) -> BTreeMap<(u64, u32), usize> {
    let mut out = BTreeMap::new();
    for (c, shards) in &s.replicas {
        for (shard, nodes) in shards {
            let n = (nodes.iter())
                .filter(|q| {
                    view.serving
                        .get(q)
                        .is_some_and(|x| x.contains(&(*c, *shard)))
                })
                .count();
            out.insert((*c, *shard), n);
        }
    }
    out
}

/// Runs placement rounds (plan, else balance) until nothing changes; the
/// querynodes load what they are given one round later. Asserts at every
/// step that no shard loses a serving replica it needs. Returns the rounds.
fn run(s: &mut MetaState, alive: &[u64]) -> usize {
    run_with_rows(s, alive, BTreeMap::new())
}

/// [`run`] with the rows each shard's owner reports.
fn run_with_rows(s: &mut MetaState, alive: &[u64], rows: BTreeMap<(u64, u32), u64>) -> usize {
    let mut view = NodeView {
        live: live(alive),
        serving: served(s),
        rows,
        ..NodeView::default()
    };
    for round in 0..100 {
        let mut cmds = plan(s, &view.live);
        if cmds.is_empty() {
            cmds = balance(s, &view, MOVES);
        }
        if cmds.is_empty() {
            return round;
        }
        let before = serving_counts(s, &view);
        for cmd in cmds {
            ok(s, cmd);
        }
        let after = serving_counts(s, &view);
        for (shard, n) in &before {
            let want = (s.collections.get(&shard.0))
                .map_or(0, |m| m.replica_number as usize)
                .min(*n);
            assert!(
                after.get(shard).copied().unwrap_or(0) >= want,
                "round {round}: shard {shard:?} went from {n} serving replicas to {:?}",
                after.get(shard)
            );
        }
        view.serving = served(s);
    }
    panic!("placement did not settle in 100 rounds");
}

fn held(s: &MetaState) -> BTreeMap<u64, usize> {
    let mut out: BTreeMap<u64, usize> = BTreeMap::new();
    for shards in s.replicas.values() {
        for nodes in shards.values() {
            for n in nodes {
                *out.entry(*n).or_default() += 1;
            }
        }
    }
    out
}

fn owned(s: &MetaState) -> BTreeMap<u64, usize> {
    let mut out: BTreeMap<u64, usize> = BTreeMap::new();
    for shards in s.owners.values() {
        for o in shards.values() {
            *out.entry(o.node_id).or_default() += 1;
        }
    }
    out
}

#[test]
fn a_querynode_that_joins_takes_its_share_and_no_shard_loses_a_serving_replica() {
    let (mut s, c) = cluster(&[1], &[11, 12], 6, 2);
    assert_eq!(held(&s), BTreeMap::from([(11, 6), (12, 6)]));
    ok(&mut s, node(13, NodeRole::QueryNode));
    let rounds = run(&mut s, &[1, 11, 12, 13]);
    assert!(rounds > 1, "moves happen over several rounds");
    assert_eq!(held(&s), BTreeMap::from([(11, 4), (12, 4), (13, 4)]));
    for shard in 0..6 {
        assert_eq!(s.shard_replicas(c, shard).len(), 2, "shard {shard}");
    }
}

#[test]
fn a_move_waits_for_the_new_copy_to_serve() {
    let (mut s, c) = cluster(&[1], &[11, 12], 2, 1);
    ok(&mut s, node(13, NodeRole::QueryNode));
    ok(&mut s, node(14, NodeRole::QueryNode));
    let everyone = live(&[1, 11, 12, 13, 14]);
    // 11 and 12 hold one shard each: nothing to spread.
    let view = NodeView {
        live: everyone.clone(),
        serving: served(&s),
        ..NodeView::default()
    };
    assert!(balance(&s, &view, MOVES).is_empty());
    // Drain 11: plan adds a copy elsewhere; the old one stays ...
    ok(
        &mut s,
        MetaCommand::SetNodeDraining {
            id: 11,
            draining: true,
        },
    );
    let shard = if s.shard_replicas(c, 0) == vec![11] {
        0
    } else {
        1
    };
    for cmd in plan(&s, &everyone) {
        ok(&mut s, cmd);
    }
    let both = s.shard_replicas(c, shard);
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[0], 11);
    // ... while the new copy has not loaded: nothing is released.
    let loading = NodeView {
        live: everyone.clone(),
        serving: view.serving.clone(),
        ..NodeView::default()
    };
    assert!(balance(&s, &loading, MOVES).is_empty());
    // Once it serves, the draining node's copy goes.
    let loaded = NodeView {
        live: everyone,
        serving: served(&s),
        ..NodeView::default()
    };
    let cmds = balance(&s, &loaded, MOVES);
    assert_eq!(
        cmds,
        vec![MetaCommand::SetReplicas {
            collection_id: c,
            shard,
            nodes: vec![both[1]],
            leaving: None,
        }]
    );
}

#[test]
fn a_drained_querynode_and_datanode_end_with_nothing_then_can_be_forgotten() {
    let (mut s, _) = cluster(&[1, 2], &[11, 12, 13], 4, 2);
    ok(
        &mut s,
        MetaCommand::SetNodeDraining {
            id: 12,
            draining: true,
        },
    );
    ok(
        &mut s,
        MetaCommand::SetNodeDraining {
            id: 2,
            draining: true,
        },
    );
    let e = rejected(&mut s, MetaCommand::ForgetNode { id: 12 });
    assert!(
        matches!(&e, RuleError::InvalidArgument { field, rule } if field == "id" && rule.contains("still")),
        "{e}"
    );
    run(&mut s, &[1, 2, 11, 12, 13]);
    assert_eq!(held(&s).get(&12), None);
    assert_eq!(owned(&s).get(&2), None);
    assert_eq!(held(&s), BTreeMap::from([(11, 4), (13, 4)]));
    assert_eq!(owned(&s), BTreeMap::from([(1, 4)]));
    ok(&mut s, MetaCommand::ForgetNode { id: 12 });
    ok(&mut s, MetaCommand::ForgetNode { id: 2 });
    assert!(s.node(12).is_none() && s.node(2).is_none());
    // Draining survives a re-registration (a new address).
    ok(
        &mut s,
        MetaCommand::SetNodeDraining {
            id: 13,
            draining: true,
        },
    );
    ok(&mut s, node(13, NodeRole::QueryNode));
    assert!(s.node(13).is_some_and(|n| n.draining));
}

#[test]
fn a_datanode_that_joins_gets_shards_a_bounded_number_per_round() {
    let (mut s, _) = cluster(&[1], &[11], 6, 1);
    assert_eq!(owned(&s), BTreeMap::from([(1, 6)]));
    ok(&mut s, node(2, NodeRole::DataNode));
    ok(&mut s, node(3, NodeRole::DataNode));
    let view = NodeView {
        live: live(&[1, 2, 3, 11]),
        serving: served(&s),
        ..NodeView::default()
    };
    let first = balance(&s, &view, MOVES);
    let acquires = first
        .iter()
        .filter(|c| matches!(c, MetaCommand::AcquireShard { .. }))
        .count();
    assert_eq!(acquires, MOVES, "{first:?}");
    run(&mut s, &[1, 2, 3, 11]);
    assert_eq!(owned(&s), BTreeMap::from([(1, 2), (2, 2), (3, 2)]));
}

#[test]
fn a_lowered_replica_number_releases_copies_that_are_not_needed() {
    let (mut s, c) = cluster(&[1], &[11, 12, 13], 2, 3);
    load(&mut s, "items", true, Some(1));
    run(&mut s, &[1, 11, 12, 13]);
    for shard in 0..2 {
        assert_eq!(s.shard_replicas(c, shard).len(), 1);
    }
    let h = held(&s);
    assert!(h.values().all(|n| *n <= 1), "{h:?}");
}

#[test]
fn replicas_spread_by_rows_not_by_count() {
    // Two collections: a big one (2 shards of 10,000 rows) and a small one
    // (6 shards of 100 rows), one replica each, on two querynodes; two
    // querynodes join. Counting replicas would even out the number of
    // shards and leave both big shards' rows on the old nodes.
    let mut s = MetaState::default();
    ok(&mut s, node(1, NodeRole::DataNode));
    for q in [11, 12] {
        ok(&mut s, node(q, NodeRole::QueryNode));
    }
    let big = collection(&mut s, "big", 2);
    let small = collection(&mut s, "small", 6);
    load(&mut s, "big", true, Some(1));
    load(&mut s, "small", true, Some(1));
    let mut rows = BTreeMap::new();
    for shard in 0..2 {
        rows.insert((big, shard), 10_000);
    }
    for shard in 0..6 {
        rows.insert((small, shard), 100);
    }
    run_with_rows(&mut s, &[1, 11, 12], rows.clone());
    for q in [13, 14] {
        ok(&mut s, node(q, NodeRole::QueryNode));
    }
    run_with_rows(&mut s, &[1, 11, 12, 13, 14], rows.clone());
    let mut load_of: BTreeMap<u64, u64> = BTreeMap::new();
    for (c, shards) in &s.replicas {
        for (shard, nodes) in shards {
            for n in nodes {
                *load_of.entry(*n).or_default() += rows[&(*c, *shard)] + 1;
            }
        }
    }
    // The best split: each big shard alone, the small ones on the other two.
    let heaviest = load_of.values().max().copied().unwrap_or(0);
    let busy: Vec<u64> = load_of.values().copied().filter(|l| *l > 0).collect();
    assert_eq!(busy.len(), 4, "every querynode serves: {load_of:?}");
    assert!(heaviest <= 10_001, "a big shard shares a node: {load_of:?}");
    // Settled: another round moves nothing.
    let view = NodeView {
        live: live(&[1, 11, 12, 13, 14]),
        serving: served(&s),
        rows,
        ..NodeView::default()
    };
    assert!(balance(&s, &view, MOVES).is_empty());
}

/// One collection of four shards, one replica each, placed by hand on
/// querynodes 11 and 12 with the rows given per shard.
fn placed_by_hand(placement: &[(u64, u64)]) -> (MetaState, u64, BTreeMap<(u64, u32), u64>) {
    let mut s = MetaState::default();
    ok(&mut s, node(1, NodeRole::DataNode));
    for q in [11, 12] {
        ok(&mut s, node(q, NodeRole::QueryNode));
    }
    let c = collection(&mut s, "items", placement.len() as u32);
    load(&mut s, "items", true, Some(1));
    let mut rows = BTreeMap::new();
    for (shard, (q, n)) in placement.iter().enumerate() {
        let shard = shard as u32;
        ok(
            &mut s,
            MetaCommand::SetReplicas {
                collection_id: c,
                shard,
                nodes: vec![*q],
                leaving: None,
            },
        );
        rows.insert((c, shard), *n);
    }
    (s, c, rows)
}

fn loads(s: &MetaState, rows: &BTreeMap<(u64, u32), u64>) -> BTreeMap<u64, u64> {
    let mut out: BTreeMap<u64, u64> = BTreeMap::new();
    for (c, shards) in &s.replicas {
        for (shard, nodes) in shards {
            for n in nodes {
                *out.entry(*n).or_default() += rows[&(*c, *shard)] + 1;
            }
        }
    }
    out
}

#[test]
fn a_swap_narrows_a_gap_that_no_single_move_can() {
    // 11 carries 7,000 + 5,000 rows, 12 carries 4,000 + 4,000: a 33% gap,
    // and every replica of 11 outweighs it. Swapping the 5,000 with a
    // 4,000 leaves 11,000 / 9,000. The light shards come first, so their
    // release is decided while the heavy shard's new copy still counts
    // twice on 12: only the recorded leaving copy keeps the swap.
    let (mut s, _, rows) = placed_by_hand(&[(12, 4_000), (12, 4_000), (11, 7_000), (11, 5_000)]);
    let before = loads(&s, &rows);
    assert_eq!(
        before.values().copied().collect::<Vec<_>>(),
        [12_002, 8_002]
    );
    run_with_rows(&mut s, &[1, 11, 12], rows.clone());
    let after = loads(&s, &rows);
    let (max, min) = (after[&11].max(after[&12]), after[&11].min(after[&12]));
    assert_eq!((max, min), (11_002, 9_002), "{after:?}");
    assert!(s.leaving.is_empty(), "every move finished: {:?}", s.leaving);
    let view = NodeView {
        live: live(&[1, 11, 12]),
        serving: served(&s),
        rows,
        ..NodeView::default()
    };
    assert!(balance(&s, &view, MOVES).is_empty(), "settled");
}

#[test]
fn a_move_releases_the_copy_it_recorded_once_the_new_one_serves() {
    let (mut s, c, rows) = placed_by_hand(&[(11, 10), (12, 10)]);
    // A move of shard 0 from 11 to 12 under way: 12 is the more loaded
    // node now, yet the recorded copy on 11 is the one that goes.
    ok(
        &mut s,
        MetaCommand::SetReplicas {
            collection_id: c,
            shard: 0,
            nodes: vec![11, 12],
            leaving: Some(11),
        },
    );
    assert_eq!(s.leaving_replica(c, 0), Some(11));
    let view = NodeView {
        live: live(&[1, 11, 12]),
        serving: served(&s),
        rows,
        ..NodeView::default()
    };
    let cmds = balance(&s, &view, MOVES);
    assert_eq!(
        cmds.first(),
        Some(&MetaCommand::SetReplicas {
            collection_id: c,
            shard: 0,
            nodes: vec![12],
            leaving: None,
        })
    );
    ok(&mut s, cmds[0].clone());
    assert_eq!(s.leaving_replica(c, 0), None);
    assert!(s.leaving.is_empty());
    // A leaving copy must be one of the replicas.
    let e = rejected(
        &mut s,
        MetaCommand::SetReplicas {
            collection_id: c,
            shard: 1,
            nodes: vec![12],
            leaving: Some(11),
        },
    );
    assert!(matches!(e, RuleError::InvalidArgument { field, .. } if field == "leaving"));
    assert_eq!(
        s.shard_replicas(c, 1),
        vec![12],
        "a refused command changes nothing"
    );
}
