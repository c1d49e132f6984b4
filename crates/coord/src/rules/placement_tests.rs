//! Node registration, replica sets, load with a replica number, fenced
//! segment registration, and the placement plan.

use std::collections::BTreeSet;

use quiver_common::{CollectionId, CollectionSchema, Metric};

use super::apply;
use super::placement::plan;
use crate::command::{MetaCommand, MetaResponse};
use crate::error::RuleError;
use crate::state::{IndexKind, IndexSpec, MetaState, NodeRole, SegmentMeta};

pub(super) fn ok(state: &mut MetaState, cmd: MetaCommand) -> MetaResponse {
    let before = state.version();
    let resp = apply(state, &cmd, 7).expect("command should succeed");
    assert_eq!(state.version(), before + 1, "version bumps on success");
    resp
}

pub(super) fn rejected(state: &mut MetaState, cmd: MetaCommand) -> RuleError {
    let before = state.clone();
    let err = apply(state, &cmd, 7).expect_err("command should be rejected");
    assert_eq!(
        *state, before,
        "a rejected command leaves the state as it was"
    );
    err
}

pub(super) fn node(id: u64, role: NodeRole) -> MetaCommand {
    MetaCommand::RegisterNode {
        id,
        role,
        addr: format!("10.0.0.{id}:7200"),
    }
}

fn replicas(collection_id: u64, shard: u32, nodes: Vec<u64>) -> MetaCommand {
    MetaCommand::SetReplicas {
        collection_id,
        shard,
        nodes,
        leaving: None,
    }
}

/// A collection `name` with `shards` shards and an HNSW index; returns its id.
pub(super) fn collection(s: &mut MetaState, name: &str, shards: u32) -> u64 {
    let index = IndexSpec {
        kind: IndexKind::Hnsw {
            m: 16,
            ef_construction: 200,
        },
        field_name: "vector".into(),
        index_name: String::new(),
    };
    let cmd = MetaCommand::CreateCollection {
        schema: CollectionSchema::simple(name, 4),
        shards,
        metric: Metric::L2,
        index: Some(index),
        partitions: None,
    };
    match ok(s, cmd) {
        MetaResponse::CollectionCreated { id } => id,
        other => panic!("unexpected {other:?}"),
    }
}

pub(super) fn load(s: &mut MetaState, name: &str, loaded: bool, replica_number: Option<u32>) {
    ok(
        s,
        MetaCommand::SetLoaded {
            collection: name.into(),
            loaded,
            replica_number,
        },
    );
}

pub(super) fn live(ids: &[u64]) -> BTreeSet<u64> {
    ids.iter().copied().collect()
}

/// Applies the plan's commands; returns how many there were.
fn settle(s: &mut MetaState, live: &BTreeSet<u64>) -> usize {
    let cmds = plan(s, live);
    for cmd in &cmds {
        ok(s, cmd.clone());
    }
    assert!(plan(s, live).is_empty(), "a settled placement is stable");
    cmds.len()
}

#[test]
fn register_node_adds_updates_and_keeps_the_role() {
    let mut s = MetaState::default();
    ok(&mut s, node(1, NodeRole::DataNode));
    ok(
        &mut s,
        MetaCommand::RegisterNode {
            id: 1,
            role: NodeRole::DataNode,
            addr: "10.0.0.9:7200".into(),
        },
    );
    assert_eq!(s.node(1).map(|n| n.addr.as_str()), Some("10.0.0.9:7200"));
    let e = rejected(&mut s, node(1, NodeRole::QueryNode));
    assert!(
        matches!(&e, RuleError::InvalidArgument { field, rule } if field == "id" && rule.contains("datanode")),
        "{e}"
    );
    let e = rejected(
        &mut s,
        MetaCommand::RegisterNode {
            id: 2,
            role: NodeRole::QueryNode,
            addr: " ".into(),
        },
    );
    assert!(matches!(e, RuleError::InvalidArgument { field, .. } if field == "addr"));
    assert!(
        matches!(rejected(&mut s, node(0, NodeRole::QueryNode)), RuleError::InvalidArgument { field, .. } if field == "id")
    );
    assert_eq!(s.nodes().len(), 1);
}

#[test]
fn set_replicas_needs_distinct_registered_querynodes() {
    let mut s = MetaState::default();
    let c = collection(&mut s, "a", 2);
    ok(&mut s, node(1, NodeRole::DataNode));
    ok(&mut s, node(2, NodeRole::QueryNode));
    ok(&mut s, node(3, NodeRole::QueryNode));
    for bad in [vec![1], vec![9], vec![2, 2]] {
        let e = rejected(&mut s, replicas(c, 0, bad));
        assert!(matches!(e, RuleError::InvalidArgument { field, .. } if field == "nodes"));
    }
    assert!(matches!(
        rejected(&mut s, replicas(c, 2, vec![2])),
        RuleError::InvalidArgument { field, .. } if field == "shard"
    ));
    ok(&mut s, replicas(c, 0, vec![3, 2]));
    assert_eq!(s.shard_replicas(c, 0), vec![3, 2]);
    ok(&mut s, replicas(c, 0, vec![]));
    assert!(s.shard_replicas(c, 0).is_empty());
    ok(&mut s, replicas(c, 1, vec![2]));
    ok(&mut s, MetaCommand::DropCollection { name: "a".into() });
    assert!(
        s.shard_replicas(c, 1).is_empty(),
        "dropped with the collection"
    );
}

#[test]
fn set_loaded_takes_a_replica_number() {
    let mut s = MetaState::default();
    let c = collection(&mut s, "a", 1);
    assert_eq!(s.collection_by_id(c).map(|m| m.replica_number), Some(1));
    load(&mut s, "a", true, Some(3));
    assert_eq!(s.collection_by_id(c).map(|m| m.replica_number), Some(3));
    load(&mut s, "a", false, None);
    assert_eq!(s.collection_by_id(c).map(|m| m.replica_number), Some(3));
    let e = rejected(
        &mut s,
        MetaCommand::SetLoaded {
            collection: "a".into(),
            loaded: true,
            replica_number: Some(0),
        },
    );
    assert!(matches!(e, RuleError::InvalidArgument { field, .. } if field == "replica_number"));
}

#[test]
fn register_segments_is_fenced_by_the_owner_epoch() {
    let mut s = MetaState::default();
    let c = collection(&mut s, "a", 1);
    let reg = |epoch, id| MetaCommand::RegisterSegments {
        collection_id: c,
        shard: 0,
        epoch: Some(epoch),
        segments: vec![SegmentMeta {
            id,
            rows: 1,
            max_ts: 1,
            wal_seq: id,
            has_index: false,
            index_version: 0,
        }],
        wal_checkpoint: id,
    };
    // No owner yet: epoch 0 is the current one.
    ok(&mut s, reg(0, 1));
    let acquire = |node_id| MetaCommand::AcquireShard {
        collection_id: c,
        shard: 0,
        node_id,
    };
    ok(&mut s, acquire(5));
    ok(&mut s, reg(1, 2));
    ok(&mut s, acquire(6));
    for stale in [0, 1, 3] {
        let e = rejected(&mut s, reg(stale, 3));
        assert!(matches!(e, RuleError::Fenced(_)), "{e}");
    }
    ok(&mut s, reg(2, 3));
    assert_eq!(s.segments(c, 0).wal_checkpoint, 3);
}

#[test]
fn the_old_state_format_still_loads() {
    let mut s = MetaState::default();
    collection(&mut s, "a", 1);
    let mut json = serde_json::to_value(&s).expect("encode");
    let obj = json.as_object_mut().expect("object");
    obj.remove("nodes");
    obj.remove("replicas");
    for meta in obj["collections"]
        .as_object_mut()
        .expect("map")
        .values_mut()
    {
        meta.as_object_mut().expect("meta").remove("replica_number");
    }
    let back: MetaState = serde_json::from_value(json).expect("decode the old format");
    assert_eq!(back, s);
}

#[test]
fn initial_placement_spreads_owners_and_replicas() {
    let mut s = MetaState::default();
    let c = collection(&mut s, "a", 4);
    for (id, role) in [
        (1, NodeRole::DataNode),
        (2, NodeRole::DataNode),
        (11, NodeRole::QueryNode),
        (12, NodeRole::QueryNode),
        (13, NodeRole::QueryNode),
    ] {
        ok(&mut s, node(id, role));
    }
    let all = live(&[1, 2, 11, 12, 13]);
    assert_eq!(
        settle(&mut s, &all),
        4,
        "one owner per shard, no replicas yet"
    );
    let owners: Vec<u64> = (0..4)
        .map(|sh| s.shard_owner(c, sh).map(|o| o.node_id).unwrap_or(0))
        .collect();
    assert_eq!(owners, vec![1, 2, 1, 2]);
    assert!((0..4).all(|sh| s.shard_replicas(c, sh).is_empty()));

    load(&mut s, "a", true, Some(2));
    assert_eq!(settle(&mut s, &all), 4);
    let mut held = std::collections::BTreeMap::<u64, usize>::new();
    for sh in 0..4 {
        let r = s.shard_replicas(c, sh);
        assert_eq!(r.len(), 2);
        assert_ne!(r[0], r[1], "never two replicas on one node");
        for id in r {
            *held.entry(id).or_default() += 1;
        }
    }
    // 8 replicas over 3 querynodes: 3, 3, 2.
    assert_eq!(held.values().sum::<usize>(), 8);
    assert!(held.values().all(|n| (2..=3).contains(n)), "{held:?}");
}

#[test]
fn an_owner_death_moves_its_shards_and_nothing_else() {
    let mut s = MetaState::default();
    let c = collection(&mut s, "a", 2);
    ok(&mut s, node(1, NodeRole::DataNode));
    ok(&mut s, node(2, NodeRole::DataNode));
    settle(&mut s, &live(&[1, 2]));
    let before = [s.shard_owner(c, 0), s.shard_owner(c, 1)];
    assert_eq!(before.map(|o| o.map(|o| o.node_id)), [Some(1), Some(2)]);
    assert_eq!(settle(&mut s, &live(&[2])), 1);
    let moved = s.shard_owner(c, 0).expect("an owner");
    assert_eq!((moved.node_id, moved.epoch), (2, 2), "new owner, new epoch");
    assert_eq!(
        s.shard_owner(c, 1),
        before[1],
        "the live owner keeps its shard"
    );
    // No datanode live: nothing to do (the shard waits).
    assert!(plan(&s, &live(&[])).is_empty());
}

#[test]
fn a_querynode_death_replaces_its_replicas() {
    let mut s = MetaState::default();
    let c = collection(&mut s, "a", 1);
    for id in [11, 12, 13] {
        ok(&mut s, node(id, NodeRole::QueryNode));
    }
    load(&mut s, "a", true, Some(2));
    settle(&mut s, &live(&[11, 12, 13]));
    assert_eq!(s.shard_replicas(c, 0), vec![11, 12]);
    assert_eq!(settle(&mut s, &live(&[12, 13])), 1);
    assert_eq!(
        s.shard_replicas(c, 0),
        vec![12, 13],
        "the survivor stays first"
    );
}

#[test]
fn the_replica_number_is_capped_by_live_querynodes() {
    let mut s = MetaState::default();
    let c = collection(&mut s, "a", 1);
    for id in [11, 12] {
        ok(&mut s, node(id, NodeRole::QueryNode));
    }
    load(&mut s, "a", true, Some(3));
    settle(&mut s, &live(&[11, 12]));
    assert_eq!(s.shard_replicas(c, 0), vec![11, 12]);
    ok(&mut s, node(13, NodeRole::QueryNode));
    settle(&mut s, &live(&[11, 12, 13]));
    assert_eq!(s.shard_replicas(c, 0), vec![11, 12, 13]);
    // Fewer replicas asked: plan keeps the extra ones; balance releases
    // them once the others serve (balance_tests).
    load(&mut s, "a", true, Some(1));
    assert_eq!(settle(&mut s, &live(&[11, 12, 13])), 0);
    assert_eq!(s.shard_replicas(c, 0), vec![11, 12, 13]);
}

#[test]
fn a_stable_placement_plans_nothing() {
    let mut s = MetaState::default();
    collection(&mut s, "a", 2);
    collection(&mut s, "b", 1);
    for (id, role) in [(1, NodeRole::DataNode), (11, NodeRole::QueryNode)] {
        ok(&mut s, node(id, role));
    }
    load(&mut s, "b", true, None);
    let all = live(&[1, 11]);
    assert_eq!(settle(&mut s, &all), 4);
    assert!(plan(&s, &all).is_empty());
    // Unknown ids in `live` change nothing either.
    assert!(plan(&s, &live(&[1, 11, 99])).is_empty());
}

#[test]
fn release_clears_replicas() {
    let mut s = MetaState::default();
    let c = collection(&mut s, "a", 2);
    ok(&mut s, node(11, NodeRole::QueryNode));
    load(&mut s, "a", true, None);
    settle(&mut s, &live(&[11]));
    assert_eq!(s.shard_replicas(c, 1), vec![11]);
    load(&mut s, "a", false, None);
    let cmds = plan(&s, &live(&[11]));
    assert_eq!(
        cmds,
        vec![replicas(c, 0, vec![]), replicas(c, 1, vec![])],
        "an unloaded collection's replicas are cleared"
    );
    settle(&mut s, &live(&[11]));
    assert!(s.shard_replicas(c, 0).is_empty() && s.shard_replicas(c, 1).is_empty());
}

/// Mirrors `primary` and `standby` under the alias `feed`.
fn mirror(primary: &str, standby: &str) -> MetaCommand {
    use crate::command::{Actor, AliasChange};
    MetaCommand::AliasAdmin {
        change: AliasChange::Mirror {
            alias: "feed".into(),
            primary: primary.into(),
            standby: standby.into(),
            auto_failover: false,
            max_lag_ms: 100,
        },
        actor: Actor::new("t", ""),
    }
}

#[test]
fn the_two_sides_of_a_mirror_are_placed_apart_when_they_can_be() {
    let mut s = MetaState::default();
    for id in [1, 2] {
        ok(&mut s, node(id, NodeRole::DataNode));
    }
    for id in [3, 4] {
        ok(&mut s, node(id, NodeRole::QueryNode));
    }
    let a = collection(&mut s, "a", 1);
    let b = collection(&mut s, "b", 1);
    ok(&mut s, mirror("a", "b"));
    // Load a first and place it, then b: plain least-loaded would put b's
    // replica on the node a left empty anyway, so make a's node the less
    // loaded one by giving the other node an unrelated replica.
    let c = collection(&mut s, "c", 1);
    load(&mut s, "c", true, None);
    ok(&mut s, replicas(c, 0, vec![4]));
    load(&mut s, "a", true, None);
    load(&mut s, "b", true, None);
    let everyone = live(&[1, 2, 3, 4]);
    for cmd in plan(&s, &everyone) {
        ok(&mut s, cmd);
    }
    let (ra, rb) = (s.shard_replicas(a, 0), s.shard_replicas(b, 0));
    assert_eq!(ra.len(), 1);
    assert_eq!(rb.len(), 1);
    assert_ne!(ra, rb, "a and b on different querynodes: {ra:?} {rb:?}");
    let (oa, ob) = (s.shard_owner(a, 0), s.shard_owner(b, 0));
    assert_ne!(
        oa.map(|o| o.node_id),
        ob.map(|o| o.node_id),
        "and different datanodes"
    );

    // With one querynode left, both sides share it rather than go unserved.
    let survivor = if ra[0] == 3 { 4 } else { 3 };
    let fewer = live(&[1, 2, survivor]);
    for cmd in plan(&s, &fewer) {
        ok(&mut s, cmd);
    }
    assert_eq!(s.shard_replicas(a, 0), vec![survivor]);
    assert_eq!(s.shard_replicas(b, 0), vec![survivor]);

    // The node returns: the side the alias does not target (b) moves to
    // it; the target's replica stays where it serves.
    settle(&mut s, &everyone);
    assert_eq!(s.shard_replicas(a, 0), vec![survivor]);
    assert_eq!(s.shard_replicas(b, 0), vec![ra[0]]);
}

/// One datanode (1), two querynodes (3, 4), collections `a` and `b` of two
/// shards each, loaded; returns the state and their ids.
fn two_loaded_collections() -> (MetaState, CollectionId, CollectionId) {
    let mut s = MetaState::default();
    ok(&mut s, node(1, NodeRole::DataNode));
    for id in [3, 4] {
        ok(&mut s, node(id, NodeRole::QueryNode));
    }
    let a = collection(&mut s, "a", 2);
    let b = collection(&mut s, "b", 2);
    load(&mut s, "a", true, None);
    load(&mut s, "b", true, None);
    (s, a, b)
}

#[test]
fn a_pair_placed_together_before_mirroring_moves_apart() {
    let (mut s, a, b) = two_loaded_collections();
    for shard in 0..2 {
        ok(&mut s, replicas(a, shard, vec![3]));
        ok(&mut s, replicas(b, shard, vec![3]));
    }
    let everyone = live(&[1, 3, 4]);
    settle(&mut s, &everyone);
    assert_eq!(s.shard_replicas(b, 0), vec![3], "not mirrored: left alone");
    ok(&mut s, mirror("b", "a"));
    settle(&mut s, &everyone);
    for shard in 0..2 {
        assert_eq!(s.shard_replicas(b, shard), vec![3], "the target stays");
        assert_eq!(s.shard_replicas(a, shard), vec![4], "the standby moves");
    }
}

#[test]
fn a_pair_spread_over_every_querynode_regroups_on_disjoint_ones() {
    let (mut s, a, b) = two_loaded_collections();
    // Each collection's shards spread over both querynodes.
    for (c, nodes) in [(a, [3, 4]), (b, [4, 3])] {
        for (shard, q) in nodes.into_iter().enumerate() {
            ok(&mut s, replicas(c, shard as u32, vec![q]));
        }
    }
    ok(&mut s, mirror("a", "b"));
    let everyone = live(&[1, 3, 4]);
    settle(&mut s, &everyone);
    for shard in 0..2 {
        assert_eq!(s.shard_replicas(a, shard), vec![3], "the target gathers");
        assert_eq!(
            s.shard_replicas(b, shard),
            vec![4],
            "the standby keeps apart"
        );
    }
    // Too few querynodes to separate two replicas each: left as placed.
    load(&mut s, "a", true, Some(2));
    load(&mut s, "b", true, Some(2));
    settle(&mut s, &everyone);
    for shard in 0..2 {
        assert_eq!(s.shard_replicas(a, shard).len(), 2);
        assert_eq!(s.shard_replicas(b, shard).len(), 2);
    }
}
