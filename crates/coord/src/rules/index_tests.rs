//! The indexes of a collection with several vector fields: one per field,
//! each with its own metric, and loading only once every field has one.

use quiver_common::{CollectionSchema, DataType, FieldSchema, Metric};

use super::tests::{hnsw, ok, rejected};
use crate::command::MetaCommand;
use crate::error::RuleError;
use crate::state::{IndexKind, IndexSpec, MetaState};

fn two_vectors() -> MetaState {
    let mut schema = CollectionSchema::simple("a", 4);
    schema
        .fields
        .push(FieldSchema::new("image", DataType::FloatVector).with_dim(3));
    schema
        .fields
        .push(FieldSchema::new("bits", DataType::BinaryVector).with_dim(16));
    let mut s = MetaState::default();
    ok(
        &mut s,
        MetaCommand::CreateCollection {
            schema,
            shards: 1,
            metric: Metric::L2,
            index: None,
            partitions: None,
        },
    );
    s
}

fn flat(field: &str) -> IndexSpec {
    IndexSpec {
        kind: IndexKind::Flat,
        field_name: field.into(),
        index_name: String::new(),
    }
}

fn set(field: &str, metric: Metric) -> MetaCommand {
    MetaCommand::SetIndex {
        collection: "a".into(),
        index: flat(field),
        metric: Some(metric),
    }
}

fn load(loaded: bool) -> MetaCommand {
    MetaCommand::SetLoaded {
        collection: "a".into(),
        loaded,
        replica_number: None,
    }
}

#[test]
fn every_vector_field_needs_its_index_before_load() {
    let mut s = two_vectors();
    ok(
        &mut s,
        MetaCommand::SetIndex {
            collection: "a".into(),
            index: hnsw(),
            metric: Some(Metric::L2),
        },
    );
    let e = rejected(&mut s, load(true));
    assert!(e.to_string().contains("[image]"), "{e}");
    ok(&mut s, set("image", Metric::Ip));
    // Bits are compared by HAMMING / JACCARD only.
    let e = rejected(&mut s, set("bits", Metric::L2));
    assert!(e.to_string().contains("binary vector"), "{e}");
    ok(&mut s, set("bits", Metric::Hamming));
    ok(&mut s, load(true));
    let meta = s.collection("a").expect("a");
    assert!(meta.loaded);
    assert_eq!(meta.metric, Metric::L2);
    assert_eq!(meta.field_indexes["image"].metric, Metric::Ip);
    assert_eq!(meta.field_indexes["bits"].metric, Metric::Hamming);
    // The first field's index version is untouched by the others.
    assert_eq!(meta.index_version, 1);
}

#[test]
fn one_index_per_field_and_drop_needs_a_release() {
    let mut s = two_vectors();
    ok(&mut s, set("image", Metric::Ip));
    // The same again changes nothing; another one is refused.
    let before = s.clone();
    ok(&mut s, set("image", Metric::Ip));
    assert_eq!(
        s.collection("a").map(|c| &c.field_indexes),
        before.collection("a").map(|c| &c.field_indexes)
    );
    let e = rejected(&mut s, set("image", Metric::Cosine));
    assert!(matches!(e, RuleError::StateConflict(_)), "{e}");
    // A field index needs a metric; a scalar or unknown field none at all.
    let e = rejected(
        &mut s,
        MetaCommand::SetIndex {
            collection: "a".into(),
            index: flat("bits"),
            metric: None,
        },
    );
    assert!(e.to_string().contains("metric"), "{e}");
    let e = rejected(&mut s, set("nope", Metric::L2));
    assert!(e.to_string().contains("nope"), "{e}");
    ok(&mut s, set("bits", Metric::Jaccard));
    ok(&mut s, set("vector", Metric::L2));
    ok(&mut s, load(true));
    let drop = MetaCommand::DropIndex {
        collection: "a".into(),
        field: Some("image".into()),
    };
    let e = rejected(&mut s, drop.clone());
    assert!(e.to_string().contains("release it"), "{e}");
    ok(&mut s, load(false));
    ok(&mut s, drop);
    let meta = s.collection("a").expect("a");
    assert!(!meta.field_indexes.contains_key("image"));
    assert_eq!(
        meta.index.kind,
        IndexKind::Flat,
        "the first field keeps its index"
    );
    let e = rejected(&mut s, load(true));
    assert!(e.to_string().contains("[image]"), "{e}");
    ok(&mut s, set("image", Metric::Cosine));
    ok(&mut s, load(true));
}

fn scalar(field: &str, name: &str, kind: quiver_api::ScalarIndexKind) -> MetaCommand {
    MetaCommand::SetScalarIndex {
        collection: "a".into(),
        field: field.into(),
        index: quiver_api::ScalarIndex {
            index_name: name.into(),
            kind,
            json: None,
        },
    }
}

fn json_index(
    name: &str,
    path: &str,
    cast: &str,
    kind: quiver_api::ScalarIndexKind,
) -> MetaCommand {
    MetaCommand::SetScalarIndex {
        collection: "a".into(),
        field: "meta".into(),
        index: quiver_api::ScalarIndex {
            index_name: name.into(),
            kind,
            json: Some(quiver_api::JsonPathIndex {
                path: path.into(),
                cast: cast.into(),
                cast_function: None,
            }),
        },
    }
}

#[test]
fn scalar_indexes_fit_their_field_one_per_field_and_drop_with_a_release() {
    use quiver_api::ScalarIndexKind::{Bitmap, Inverted, StlSort, Trie};
    let mut schema = CollectionSchema::simple("a", 4);
    schema.fields.extend([
        FieldSchema::new("price", DataType::Double),
        FieldSchema::new("tag", DataType::VarChar).with_max_length(8),
        FieldSchema::new("meta", DataType::Json),
    ]);
    let mut s = MetaState::default();
    ok(
        &mut s,
        MetaCommand::CreateCollection {
            schema,
            shards: 1,
            metric: Metric::L2,
            index: Some(hnsw()),
            partitions: None,
        },
    );
    let before = s.clone();
    for (cmd, says) in [
        (scalar("tag", "t", StlSort), "numeric"),
        (scalar("price", "p", Trie), "varchar"),
        (scalar("price", "p", Bitmap), "bitmap"),
        (scalar("meta", "m", Inverted), "JSON"),
        (scalar("vector", "v", Inverted), "vector field"),
        (scalar("nope", "n", Inverted), "nope"),
    ] {
        let e = rejected(&mut s, cmd);
        assert!(matches!(e, RuleError::InvalidArgument { .. }), "{e}");
        assert!(e.to_string().contains(says), "{e}");
    }
    assert_eq!(s, before, "a refused index changes nothing");
    ok(&mut s, scalar("price", "p", StlSort));
    ok(&mut s, scalar("price", "p", StlSort));
    ok(&mut s, scalar("tag", "t", Trie));
    let e = rejected(&mut s, scalar("price", "p", Inverted));
    assert!(e.to_string().contains("at most one distinct index"), "{e}");
    let e = rejected(&mut s, scalar("tag", "p", Inverted));
    assert!(matches!(e, RuleError::StateConflict(_)), "{e}");
    let meta = s.collection("a").expect("a");
    assert_eq!(meta.scalar_indexes.len(), 2);
    assert_eq!(meta.scalar_indexes["price"].kind, StlSort);
    ok(&mut s, load(true));
    let drop = MetaCommand::DropIndex {
        collection: "a".into(),
        field: Some("price".into()),
    };
    let e = rejected(&mut s, drop.clone());
    assert!(e.to_string().contains("release it"), "{e}");
    ok(&mut s, load(false));
    ok(&mut s, drop);
    let meta = s.collection("a").expect("a");
    assert!(!meta.scalar_indexes.contains_key("price"));
    assert!(meta.scalar_indexes.contains_key("tag"));
    assert!(
        matches!(meta.index.kind, IndexKind::Hnsw { .. }),
        "the vector index stays"
    );

    // A JSON field takes indexes by path, several of them, each INVERTED
    // or AUTOINDEX with a cast Milvus knows.
    use quiver_api::ScalarIndexKind::Auto;
    let before = s.clone();
    for (cmd, says) in [
        (
            json_index("j", r#"meta["a"]"#, "VARCHAR", StlSort),
            "INVERTED or AUTOINDEX",
        ),
        (
            json_index("j", r#"meta["a"]"#, "INT", Inverted),
            "json_cast_type",
        ),
        (
            json_index("j", r#"other["a"]"#, "VARCHAR", Inverted),
            "not a path of field",
        ),
        (
            json_index("j", r#"meta['a']"#, "VARCHAR", Inverted),
            "not a path of field",
        ),
        (
            json_index("j", r#"meta[a]"#, "VARCHAR", Inverted),
            "json_path",
        ),
    ] {
        let e = rejected(&mut s, cmd);
        assert!(matches!(e, RuleError::InvalidArgument { .. }), "{e}");
        assert!(e.to_string().contains(says), "{says}: {e}");
    }
    let mut on_tag = json_index("j", r#"tag["a"]"#, "VARCHAR", Inverted);
    if let MetaCommand::SetScalarIndex { field, .. } = &mut on_tag {
        *field = "tag".into();
    }
    assert!(
        rejected(&mut s, on_tag)
            .to_string()
            .contains("not a JSON field")
    );
    assert_eq!(s, before, "a refused index changes nothing");
    ok(
        &mut s,
        json_index("by_a", r#"meta["a"]"#, "VARCHAR", Inverted),
    );
    ok(
        &mut s,
        json_index("by_b", r#"meta["b"][0]"#, "DOUBLE", Auto),
    );
    let e = rejected(
        &mut s,
        json_index("by_a2", r#"meta["a"]"#, "DOUBLE", Inverted),
    );
    assert!(e.to_string().contains("per JSON path"), "{e}");
    let meta = s.collection("a").expect("a");
    assert_eq!(meta.scalar_indexes[r#"meta["a"]"#].index_name, "by_a");
    assert_eq!(meta.scalar_indexes[r#"meta["b"][0]"#].kind, Auto);
    ok(
        &mut s,
        MetaCommand::DropIndex {
            collection: "a".into(),
            field: Some(r#"meta["a"]"#.into()),
        },
    );
    let meta = s.collection("a").expect("a");
    assert!(!meta.scalar_indexes.contains_key(r#"meta["a"]"#));
    assert!(meta.scalar_indexes.contains_key(r#"meta["b"][0]"#));
}

#[test]
fn hnsw_sq_quantizes_float_vectors_only_with_hnsw_bounds() {
    let mut s = two_vectors();
    let sq = |field: &str, m: u32, metric: Metric| MetaCommand::SetIndex {
        collection: "a".into(),
        index: IndexSpec {
            kind: IndexKind::HnswSq {
                m,
                ef_construction: 100,
            },
            field_name: field.into(),
            index_name: String::new(),
        },
        metric: Some(metric),
    };
    let e = rejected(&mut s, sq("bits", 16, Metric::Hamming));
    assert!(e.to_string().contains("HNSW_SQ"), "{e}");
    let e = rejected(&mut s, sq("vector", 1, Metric::L2));
    assert!(e.to_string().contains("M"), "{e}");
    ok(&mut s, sq("vector", 16, Metric::Ip));
    let a = s.collection("a").expect("a");
    assert_eq!(
        a.index.kind,
        IndexKind::HnswSq {
            m: 16,
            ef_construction: 100
        }
    );
    // Metadata round trips through JSON (the Raft log and snapshots).
    let json = serde_json::to_string(&a.index.kind).expect("json");
    let back: IndexKind = serde_json::from_str(&json).expect("back");
    assert_eq!(back, a.index.kind);
    let old: IndexKind =
        serde_json::from_str(r#"{"Hnsw":{"m":16,"ef_construction":200}}"#).expect("old");
    assert_eq!(
        old,
        IndexKind::Hnsw {
            m: 16,
            ef_construction: 200
        }
    );
}
