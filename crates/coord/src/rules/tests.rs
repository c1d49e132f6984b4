//! Each rule's success and each of its failures, without I/O.

use quiver_common::{CollectionSchema, Metric};

use super::apply;
use crate::command::{MetaCommand, MetaResponse};
use crate::error::RuleError;
use crate::state::{IndexKind, IndexSpec, MetaState, SegmentMeta};

fn create(name: &str, shards: u32) -> MetaCommand {
    MetaCommand::CreateCollection {
        schema: CollectionSchema::simple(name, 4),
        shards,
        metric: Metric::L2,
        index: None,
        partitions: None,
    }
}

pub(super) fn hnsw() -> IndexSpec {
    IndexSpec {
        kind: IndexKind::Hnsw {
            m: 16,
            ef_construction: 200,
        },
        field_name: "vector".into(),
        index_name: String::new(),
    }
}

pub(super) fn ok(state: &mut MetaState, cmd: MetaCommand) -> MetaResponse {
    let before = state.version;
    let resp = apply(state, &cmd, 7).expect("command should succeed");
    assert_eq!(state.version, before + 1, "version bumps on success");
    resp
}

/// Applies a command that must fail, checks the state did not change, returns the error.
pub(super) fn rejected(state: &mut MetaState, cmd: MetaCommand) -> RuleError {
    let before = state.clone();
    let err = apply(state, &cmd, 7).expect_err("command should be rejected");
    assert_eq!(
        *state, before,
        "a rejected command leaves the state untouched"
    );
    err
}

fn seg(id: u64, wal_seq: u64) -> SegmentMeta {
    SegmentMeta {
        id,
        rows: 10,
        max_ts: 5,
        wal_seq,
        has_index: false,
        index_version: 0,
    }
}

fn state_with(names: &[&str]) -> MetaState {
    let mut s = MetaState::default();
    for n in names {
        ok(&mut s, create(n, 2));
    }
    s
}

fn alias(alias: &str, collection: &str) -> MetaCommand {
    MetaCommand::CreateAlias {
        alias: alias.into(),
        collection: collection.into(),
    }
}

#[test]
fn create_collection_assigns_ids_and_defaults() {
    let mut s = MetaState::default();
    assert_eq!(
        ok(&mut s, create("a", 2)),
        MetaResponse::CollectionCreated { id: 1 }
    );
    assert_eq!(
        ok(&mut s, create("b", 1)),
        MetaResponse::CollectionCreated { id: 2 }
    );
    let a = s.collection("a").expect("a");
    assert_eq!((a.id, a.shards, a.created_ts, a.loaded), (1, 2, 7, false));
    assert_eq!(a.index, IndexSpec::none("vector"));
    let with_index = MetaCommand::CreateCollection {
        schema: CollectionSchema::simple("c", 4),
        shards: 1,
        metric: Metric::Cosine,
        index: Some(hnsw()),
        partitions: None,
    };
    ok(&mut s, with_index);
    assert_eq!(s.collection("c").expect("c").index.index_name, "vector");
}

#[test]
fn create_collection_failures() {
    let mut s = state_with(&["a"]);
    ok(&mut s, alias("al", "a"));
    assert!(matches!(
        rejected(&mut s, create("a", 1)),
        RuleError::AlreadyExists(_)
    ));
    let e = rejected(&mut s, create("al", 1));
    assert!(
        matches!(&e, RuleError::NameConflict(m) if m.contains("alias")),
        "{e}"
    );
    for shards in [0, 65] {
        let e = rejected(&mut s, create("z", shards));
        assert!(e.to_string().contains("shards_num"), "{e}");
    }
    let e = rejected(&mut s, create("1bad", 1));
    assert!(e.to_string().contains("collection_name"), "{e}");
    let mut bad = hnsw();
    bad.field_name = "id".into();
    let cmd = MetaCommand::CreateCollection {
        schema: CollectionSchema::simple("z", 4),
        shards: 1,
        metric: Metric::L2,
        index: Some(bad),
        partitions: None,
    };
    assert!(rejected(&mut s, cmd).to_string().contains("field_name"));
}

#[test]
fn partition_rules() {
    use crate::command::PartitionOp;
    let mut s = state_with(&[]);
    let create = |name: &str, partitions: Option<Vec<&str>>| MetaCommand::CreateCollection {
        schema: CollectionSchema::simple(name, 4),
        shards: 1,
        metric: Metric::L2,
        index: Some(hnsw()),
        partitions: partitions.map(|p| p.iter().map(|s| s.to_string()).collect()),
    };
    // Bad initial partitions create nothing.
    let e = rejected(&mut s, create("p", Some(vec!["_default", "_default"])));
    assert!(e.to_string().contains("duplicate partition"), "{e}");
    let e = rejected(&mut s, create("p", Some(vec![])));
    assert!(e.to_string().contains("num_partitions"), "{e}");
    ok(&mut s, create("p", Some(vec!["_default"])));
    ok(&mut s, create("old", None));
    let op = |c: &str, op: PartitionOp| MetaCommand::Partition {
        collection: c.into(),
        op,
    };
    let new = |n: &str| PartitionOp::Create { name: n.into() };
    // A collection from before partitions has only the implicit `_default`.
    let e = rejected(&mut s, op("old", new("a")));
    assert!(e.to_string().contains("without partitions"), "{e}");
    ok(&mut s, op("p", new("a")));
    ok(&mut s, op("p", new("a"))); // exists: nothing to do
    let p = s.collection("p").expect("p");
    let names: Vec<&str> = p.partitions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["_default", "a"]);
    assert_ne!(p.partitions[0].id, p.partitions[1].id);
    let e = rejected(&mut s, op("p", new("bad name")));
    assert!(e.to_string().contains("partition_name"), "{e}");
    // Dropping needs a release; `_default` is never dropped.
    let drop = |n: &str| PartitionOp::Drop { name: n.into() };
    let e = rejected(&mut s, op("p", drop("a")));
    assert!(matches!(e, RuleError::StateConflict(_)), "{e:?}");
    let e = rejected(&mut s, op("p", drop("_default")));
    assert!(e.to_string().contains("default partition"), "{e}");
    let release = |names: &[&str], released| PartitionOp::SetReleased {
        names: names.iter().map(|s| s.to_string()).collect(),
        released,
    };
    let e = rejected(&mut s, op("p", release(&["a", "zz"], true)));
    assert!(matches!(e, RuleError::PartitionNotFound(_)), "{e:?}");
    ok(&mut s, op("p", release(&["a"], true)));
    assert!(s.collection("p").expect("p").partitions[1].released);
    ok(&mut s, op("p", drop("a")));
    ok(&mut s, op("p", drop("a"))); // gone: nothing to do
    assert_eq!(s.collection("p").expect("p").partitions.len(), 1);
}

#[test]
fn database_rules() {
    use crate::command::DatabaseOp;
    let mut s = state_with(&["c"]);
    let db = |op| MetaCommand::Database { op };
    let create = |n: &str| DatabaseOp::Create {
        name: n.into(),
        properties: [("k".to_string(), "v".to_string())].into(),
    };
    let drop = |n: &str| DatabaseOp::Drop { name: n.into() };
    let coll = |name: &str| MetaCommand::CreateCollection {
        schema: CollectionSchema::simple(name, 4),
        shards: 1,
        metric: Metric::L2,
        index: Some(hnsw()),
        partitions: None,
    };
    // A collection of a database that does not exist is not created.
    let e = rejected(&mut s, coll("db1.c"));
    assert!(matches!(e, RuleError::DatabaseNotFound(_)), "{e:?}");
    ok(&mut s, db(create("db1")));
    let e = rejected(&mut s, db(create("db1")));
    assert!(e.to_string().contains("database already exist"), "{e}");
    let e = rejected(&mut s, db(create("bad name")));
    assert!(e.to_string().contains("db_name"), "{e}");
    // The same name in two databases is two collections.
    ok(&mut s, coll("db1.c"));
    assert_ne!(
        s.collection("c").expect("c").id,
        s.collection("db1.c").expect("db1.c").id
    );
    // An alias lives in its collection's database.
    let alias = |a: &str, c: &str| MetaCommand::CreateAlias {
        alias: a.into(),
        collection: c.into(),
    };
    let e = rejected(&mut s, alias("a", "db1.c"));
    assert!(e.to_string().contains("database of its collection"), "{e}");
    ok(&mut s, alias("db1.a", "db1.c"));
    // A database holding collections is not dropped; the default never is.
    let e = rejected(&mut s, db(drop("db1")));
    assert!(e.to_string().contains("not empty"), "{e}");
    let e = rejected(&mut s, db(drop("default")));
    assert!(e.to_string().contains("default database"), "{e}");
    // A rename keeps the id; into another database only without aliases.
    let rename = |old: &str, new: &str| MetaCommand::RenameCollection {
        old: old.into(),
        new: new.into(),
    };
    let id = s.collection("db1.c").expect("db1.c").id;
    let e = rejected(&mut s, rename("db1.c", "c2"));
    assert!(matches!(e, RuleError::StateConflict(_)), "{e:?}");
    let e = rejected(&mut s, rename("db1.c", "db1.a"));
    assert!(matches!(e, RuleError::NameConflict(_)), "{e:?}");
    ok(&mut s, rename("db1.c", "db1.d"));
    assert_eq!(s.collection("db1.a").expect("alias follows").id, id);
    let drop_alias = MetaCommand::DropAlias {
        alias: "db1.a".into(),
    };
    ok(&mut s, drop_alias);
    let e = rejected(&mut s, rename("db1.d", "c"));
    assert!(e.to_string().contains("duplicated"), "{e}");
    ok(&mut s, rename("db1.d", "db1.c"));
    let drop_c = MetaCommand::DropCollection {
        name: "db1.c".into(),
    };
    ok(&mut s, drop_c);
    let alter = DatabaseOp::Alter {
        name: "db1".into(),
        set: [("k2".to_string(), "v2".to_string())].into(),
        delete: vec!["k".into()],
    };
    ok(&mut s, db(alter));
    let props: Vec<&str> = s.databases()["db1"]
        .properties
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(props, ["k2"]);
    ok(&mut s, db(drop("db1")));
    ok(&mut s, db(drop("db1"))); // gone: nothing to do
    assert!(s.databases().is_empty());
    let e = rejected(
        &mut s,
        db(DatabaseOp::Alter {
            name: "db1".into(),
            set: Default::default(),
            delete: vec![],
        }),
    );
    assert!(matches!(e, RuleError::DatabaseNotFound(_)), "{e:?}");
    assert!(s.collection("c").is_some());
}

#[test]
fn drop_collection_and_its_catalog() {
    let mut s = state_with(&["a", "b"]);
    let id = s.collection("a").expect("a").id;
    ok(&mut s, register(id, 0, vec![seg(1, 3)], 3));
    ok(
        &mut s,
        MetaCommand::AcquireShard {
            collection_id: id,
            shard: 0,
            node_id: 9,
        },
    );
    ok(&mut s, MetaCommand::DropCollection { name: "a".into() });
    assert!(s.collection("a").is_none());
    assert!(s.segments(id, 0).segments.is_empty());
    assert!(s.shard_owner(id, 0).is_none());
    assert!(s.collection("b").is_some());
    let e = rejected(&mut s, MetaCommand::DropCollection { name: "a".into() });
    assert!(matches!(e, RuleError::CollectionNotFound(_)));
}

#[test]
fn drop_collection_refuses_while_aliased_or_by_alias() {
    let mut s = state_with(&["a"]);
    ok(&mut s, alias("al", "a"));
    let e = rejected(&mut s, MetaCommand::DropCollection { name: "a".into() });
    assert!(e.to_string().contains("still has aliases [\"al\"]"), "{e}");
    let e = rejected(&mut s, MetaCommand::DropCollection { name: "al".into() });
    assert!(e.to_string().contains("is an alias"), "{e}");
    ok(&mut s, MetaCommand::DropAlias { alias: "al".into() });
    ok(&mut s, MetaCommand::DropCollection { name: "a".into() });
}

#[test]
fn index_rules() {
    let mut s = state_with(&["a"]);
    ok(&mut s, alias("al", "a"));
    let set = |c: &str, index: IndexSpec| MetaCommand::SetIndex {
        collection: c.into(),
        index,
        metric: None,
    };
    assert_eq!(s.collection("a").expect("a").index_version, 0);
    ok(&mut s, set("al", hnsw()));
    assert_eq!(s.collection("a").expect("a").index_version, 1);
    ok(&mut s, set("a", hnsw())); // same parameters: idempotent
    assert_eq!(s.collection("a").expect("a").index_version, 1);
    let mut other = hnsw();
    other.kind = IndexKind::Flat;
    let e = rejected(&mut s, set("a", other.clone()));
    assert!(matches!(e, RuleError::StateConflict(_)), "{e:?}");
    assert!(e.to_string().contains("at most one distinct index"), "{e}");
    // Another metric is another index.
    let e = rejected(
        &mut s,
        MetaCommand::SetIndex {
            collection: "a".into(),
            index: hnsw(),
            metric: Some(Metric::Ip),
        },
    );
    assert!(matches!(e, RuleError::StateConflict(_)), "{e:?}");
    let mut bad_m = hnsw();
    bad_m.kind = IndexKind::Hnsw {
        m: 1,
        ef_construction: 8,
    };
    assert!(
        rejected(&mut s, set("a", bad_m))
            .to_string()
            .contains("invalid M")
    );
    let mut bad_ef = hnsw();
    bad_ef.kind = IndexKind::Hnsw {
        m: 8,
        ef_construction: 0,
    };
    assert!(
        rejected(&mut s, set("a", bad_ef))
            .to_string()
            .contains("efConstruction")
    );
    let e = rejected(&mut s, set("a", IndexSpec::none("vector")));
    assert!(e.to_string().contains("index_type"), "{e}");
    let mut missing = hnsw();
    missing.field_name = "nope".into();
    assert!(
        rejected(&mut s, set("a", missing))
            .to_string()
            .contains("no field \"nope\"")
    );
    let mut bad_name = hnsw();
    bad_name.index_name = "bad name".into();
    assert!(
        rejected(&mut s, set("a", bad_name))
            .to_string()
            .contains("index_name")
    );
    assert!(matches!(
        rejected(&mut s, set("zz", hnsw())),
        RuleError::CollectionNotFound(_)
    ));
    ok(
        &mut s,
        MetaCommand::DropIndex {
            collection: "a".into(),
            field: None,
        },
    );
    // Dropped, any index with any metric can be set: a new version.
    ok(
        &mut s,
        MetaCommand::SetIndex {
            collection: "a".into(),
            index: other,
            metric: Some(Metric::Cosine),
        },
    );
    let a = s.collection("a").expect("a");
    assert_eq!(a.index.kind, IndexKind::Flat);
    assert_eq!((a.metric, a.index_version), (Metric::Cosine, 2));
    let e = rejected(
        &mut s,
        MetaCommand::DropIndex {
            collection: "zz".into(),
            field: None,
        },
    );
    assert!(matches!(e, RuleError::CollectionNotFound(_)));
}

#[test]
fn load_needs_an_index_and_blocks_drop_index() {
    let mut s = state_with(&["a"]);
    let load = |loaded| MetaCommand::SetLoaded {
        collection: "a".into(),
        loaded,
        replica_number: None,
    };
    assert!(
        rejected(&mut s, load(true))
            .to_string()
            .contains("no vector index")
    );
    ok(
        &mut s,
        MetaCommand::SetIndex {
            collection: "a".into(),
            index: hnsw(),
            metric: None,
        },
    );
    ok(&mut s, load(true));
    assert!(s.collection("a").expect("a").loaded);
    let e = rejected(
        &mut s,
        MetaCommand::DropIndex {
            collection: "a".into(),
            field: None,
        },
    );
    assert!(e.to_string().contains("release it"), "{e}");
    ok(&mut s, load(false));
    ok(
        &mut s,
        MetaCommand::DropIndex {
            collection: "a".into(),
            field: None,
        },
    );
    let e = rejected(
        &mut s,
        MetaCommand::SetLoaded {
            collection: "x".into(),
            loaded: false,
            replica_number: None,
        },
    );
    assert!(matches!(e, RuleError::CollectionNotFound(_)));
}

#[test]
fn a_release_is_remembered_until_the_next_load() {
    let mut s = state_with(&["a"]);
    // Created without an index: not loaded (Milvus's NotLoad).
    assert!(s.collection("a").expect("a").released);
    ok(
        &mut s,
        MetaCommand::SetIndex {
            collection: "a".into(),
            index: hnsw(),
            metric: None,
        },
    );
    let load = |loaded| MetaCommand::SetLoaded {
        collection: "a".into(),
        loaded,
        replica_number: None,
    };
    // Created with an index and never loaded is not released (standalone
    // never loaded collections before releases existed, and serves them).
    let mut indexed = state_with(&[]);
    ok(
        &mut indexed,
        MetaCommand::CreateCollection {
            schema: CollectionSchema::simple("b", 4),
            shards: 1,
            metric: Metric::L2,
            index: Some(hnsw()),
            partitions: None,
        },
    );
    assert!(!indexed.collection("b").expect("b").released);
    ok(&mut s, load(false));
    assert!(s.collection("a").expect("a").released);
    ok(&mut s, load(true));
    let a = s.collection("a").expect("a");
    assert!(a.loaded && !a.released);

    // State written before the field existed reads as not released.
    let mut json = serde_json::to_value(a).expect("encodes");
    json.as_object_mut().expect("object").remove("released");
    let old: crate::state::CollectionMeta = serde_json::from_value(json).expect("decodes");
    assert!(!old.released);
}

#[test]
fn alias_rules() {
    let mut s = state_with(&["a", "b"]);
    let MetaResponse::AliasSet { epoch: e1 } = ok(&mut s, alias("feed", "a")) else {
        panic!("expected an epoch");
    };
    assert_eq!(s.collection("feed").expect("resolves").name, "a");
    assert!(matches!(
        rejected(&mut s, alias("feed", "b")),
        RuleError::AliasExists(_)
    ));
    assert!(matches!(
        rejected(&mut s, alias("b", "a")),
        RuleError::NameConflict(_)
    ));
    assert!(matches!(
        rejected(&mut s, alias("x", "nope")),
        RuleError::CollectionNotFound(_)
    ));
    assert!(
        rejected(&mut s, alias("x", "feed"))
            .to_string()
            .contains("is an alias")
    );
    assert!(
        rejected(&mut s, alias("bad-name", "a"))
            .to_string()
            .contains("invalid alias")
    );
    let alter = |a: &str, c: &str| MetaCommand::AlterAlias {
        alias: a.into(),
        collection: c.into(),
    };
    let MetaResponse::AliasSet { epoch: e2 } = ok(&mut s, alter("feed", "b")) else {
        panic!("expected an epoch");
    };
    assert!(e2 > e1, "alter bumps the epoch");
    assert_eq!(s.collection("feed").expect("resolves").name, "b");
    assert!(
        rejected(&mut s, alter("nope", "a"))
            .to_string()
            .contains("does not exist")
    );
    assert!(matches!(
        rejected(&mut s, alter("feed", "zz")),
        RuleError::CollectionNotFound(_)
    ));
    ok(
        &mut s,
        MetaCommand::DropAlias {
            alias: "feed".into(),
        },
    );
    assert!(s.collection("feed").is_none());
    let e = rejected(
        &mut s,
        MetaCommand::DropAlias {
            alias: "feed".into(),
        },
    );
    assert!(e.to_string().contains("does not exist"));
    let MetaResponse::AliasSet { epoch: e3 } = ok(&mut s, alias("feed", "a")) else {
        panic!("expected an epoch");
    };
    assert!(e3 > e2, "epochs never repeat, even across drop + create");
}

fn register(collection_id: u64, shard: u32, segments: Vec<SegmentMeta>, wal: u64) -> MetaCommand {
    MetaCommand::RegisterSegments {
        collection_id,
        shard,
        epoch: Some(0),
        segments,
        wal_checkpoint: wal,
    }
}

#[test]
fn register_segments_is_idempotent_and_checkpoint_moves_forward() {
    let mut s = state_with(&["a"]);
    let id = s.collection("a").expect("a").id;
    let r = ok(&mut s, register(id, 1, vec![seg(5, 10), seg(2, 4)], 10));
    assert_eq!(
        r,
        MetaResponse::SegmentsRegistered {
            added: 2,
            wal_checkpoint: 10
        }
    );
    let r = ok(
        &mut s,
        register(id, 1, vec![seg(5, 10), seg(7, 12), seg(7, 12)], 3),
    );
    assert_eq!(
        r,
        MetaResponse::SegmentsRegistered {
            added: 1,
            wal_checkpoint: 10
        }
    );
    let cat = s.segments(id, 1);
    let ids: Vec<u64> = cat.segments.iter().map(|s| s.id).collect();
    assert_eq!((ids, cat.wal_checkpoint), (vec![2, 5, 7], 10));
    assert!(s.segments(id, 0).segments.is_empty());
    let e = rejected(&mut s, register(id, 2, vec![seg(1, 1)], 1));
    assert!(e.to_string().contains("invalid shard"), "{e}");
    assert!(matches!(
        rejected(&mut s, register(99, 0, vec![], 1)),
        RuleError::CollectionNotFound(_)
    ));
}

#[test]
fn acquire_shard_bumps_epoch() {
    let mut s = state_with(&["a"]);
    let id = s.collection("a").expect("a").id;
    let acq = |node_id, shard| MetaCommand::AcquireShard {
        collection_id: id,
        shard,
        node_id,
    };
    assert_eq!(
        ok(&mut s, acq(3, 0)),
        MetaResponse::ShardAcquired { epoch: 1 }
    );
    assert_eq!(
        ok(&mut s, acq(4, 0)),
        MetaResponse::ShardAcquired { epoch: 2 }
    );
    assert_eq!(
        ok(&mut s, acq(4, 1)),
        MetaResponse::ShardAcquired { epoch: 1 }
    );
    let owner = s.shard_owner(id, 0).expect("owner");
    assert_eq!((owner.node_id, owner.epoch), (4, 2));
    assert!(
        rejected(&mut s, acq(4, 2))
            .to_string()
            .contains("invalid shard")
    );
    let e = rejected(
        &mut s,
        MetaCommand::AcquireShard {
            collection_id: 42,
            shard: 0,
            node_id: 1,
        },
    );
    assert!(matches!(e, RuleError::CollectionNotFound(_)));
}

#[test]
fn allocate_ids_hands_out_disjoint_ranges() {
    let mut s = state_with(&["a"]); // the collection took id 1
    assert_eq!(
        ok(&mut s, MetaCommand::AllocateIds { count: 10 }),
        MetaResponse::IdsAllocated { first: 2 }
    );
    assert_eq!(
        ok(&mut s, MetaCommand::AllocateIds { count: 1 }),
        MetaResponse::IdsAllocated { first: 12 }
    );
    assert_eq!(s.next_id(), 13);
    assert!(
        rejected(&mut s, MetaCommand::AllocateIds { count: 0 })
            .to_string()
            .contains("count")
    );
    let too_many = super::shard::MAX_ID_BATCH + 1;
    assert!(
        rejected(&mut s, MetaCommand::AllocateIds { count: too_many })
            .to_string()
            .contains("count")
    );
    s.next_id = u64::MAX - 1;
    let e = rejected(&mut s, MetaCommand::AllocateIds { count: 5 });
    assert!(e.to_string().contains("exhausted"), "{e}");
}

#[test]
fn a_register_segments_entry_without_an_epoch_replays_as_accepted_then() {
    // An entry written before RegisterSegments carried the owner epoch: the
    // shard has an owner now (epoch 1), and replay must still register it.
    let mut s = MetaState::default();
    let id = match ok(&mut s, create("a", 1)) {
        MetaResponse::CollectionCreated { id } => id,
        other => panic!("unexpected {other:?}"),
    };
    ok(
        &mut s,
        MetaCommand::AcquireShard {
            collection_id: id,
            shard: 0,
            node_id: 1,
        },
    );
    let legacy = format!(
        r#"{{"RegisterSegments":{{"collection_id":{id},"shard":0,"segments":[{{"id":9,"rows":5,"max_ts":7,"wal_seq":3,"has_index":false}}],"wal_checkpoint":3}}}}"#
    );
    let cmd: MetaCommand = serde_json::from_str(&legacy).expect("legacy entry decodes");
    ok(&mut s, cmd);
    assert_eq!(s.segments(id, 0).segments.len(), 1);
    assert_eq!(s.segments(id, 0).wal_checkpoint, 3);
}

#[test]
fn alter_rules() {
    use crate::command::AlterTarget;
    let mut s = state_with(&["a"]);
    let alter = |target: AlterTarget, set: &[(&str, &str)], delete: &[&str]| MetaCommand::Alter {
        collection: "a".into(),
        target,
        set: set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        delete: delete.iter().map(|k| k.to_string()).collect(),
    };
    ok(
        &mut s,
        alter(
            AlterTarget::Collection,
            &[("collection.ttl.seconds", "60")],
            &[],
        ),
    );
    assert_eq!(s.collection("a").expect("a").schema.ttl_ms(), Some(60_000));
    let e = rejected(
        &mut s,
        alter(
            AlterTarget::Collection,
            &[("collection.ttl.seconds", "x")],
            &[],
        ),
    );
    assert!(e.to_string().contains("collection.ttl.seconds"), "{e}");
    ok(
        &mut s,
        alter(AlterTarget::Collection, &[], &["collection.ttl.seconds"]),
    );
    assert_eq!(s.collection("a").expect("a").schema.ttl_ms(), None);
    // No index yet: nothing to alter.
    let e = rejected(
        &mut s,
        alter(AlterTarget::Index, &[("mmap.enabled", "true")], &[]),
    );
    assert!(matches!(e, RuleError::IndexNotFound(_)), "{e:?}");
    ok(
        &mut s,
        MetaCommand::SetIndex {
            collection: "a".into(),
            index: hnsw(),
            metric: None,
        },
    );
    ok(
        &mut s,
        alter(AlterTarget::Index, &[("mmap.enabled", "true")], &[]),
    );
    let e = rejected(&mut s, alter(AlterTarget::Index, &[("M", "8")], &[]));
    assert!(e.to_string().contains("cannot be altered"), "{e}");
    // Fields: a vector field has no max_length; unknown fields are named.
    let e = rejected(
        &mut s,
        alter(
            AlterTarget::Field("vector".into()),
            &[("max_length", "9")],
            &[],
        ),
    );
    assert!(e.to_string().contains("not a VarChar"), "{e}");
    let e = rejected(
        &mut s,
        alter(
            AlterTarget::Field("nope".into()),
            &[("mmap.enabled", "true")],
            &[],
        ),
    );
    assert!(e.to_string().contains("nope"), "{e}");
    ok(
        &mut s,
        alter(
            AlterTarget::Field("vector".into()),
            &[("mmap.enabled", "false")],
            &[],
        ),
    );
}
