//! [`LoadedSegment::warm`]: a segment that loads gets, before it serves, the
//! indexes the shard's other segments have built and its collection's
//! declared scalar indexes, so the next search builds nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use quiver_api::ScalarIndexKind;
use quiver_common::{Column, PrimaryKey, ScalarValue};
use quiver_storage::{MappedSegment, SegmentData, encode_segment};

use crate::view::LoadedSegment;

/// A segment of `n` rows: `tenant` = row % 10, `price` = row, `name` =
/// "n{row % 3}", `note` = text.
fn segment(id: u64, n: usize) -> Arc<LoadedSegment> {
    let col = |name: &str, f: &dyn Fn(usize) -> ScalarValue| Column {
        name: name.into(),
        values: (0..n).map(f).collect(),
    };
    let data = SegmentData {
        segment_id: id,
        pks: (0..n)
            .map(|i| PrimaryKey::Int((id * 1000) as i64 + i as i64))
            .collect(),
        timestamps: vec![id; n],
        vectors: quiver_common::Vectors::f32(2, (0..n).flat_map(|i| [i as f32, 0.0]).collect()),
        columns: vec![
            col("tenant", &|i| ScalarValue::Int((i % 10) as i64)),
            col("price", &|i| ScalarValue::Float(i as f64)),
            col("name", &|i| ScalarValue::Str(format!("n{}", i % 3))),
            col("note", &|i| {
                ScalarValue::Str(format!("word{} other", i % 2))
            }),
            col("meta", &|i| match i % 5 {
                // Numbers as ints and as integral floats, strings, a
                // number in a string, a missing key, and a null row.
                0 => ScalarValue::Json(format!(r#"{{"a": "x{}", "n": {}}}"#, i % 3, i % 4)),
                1 => ScalarValue::Json(format!(r#"{{"a": "x{}", "n": {}.0}}"#, i % 3, i % 4)),
                2 => ScalarValue::Json(format!(r#"{{"n": "{}", "deep": {{"k": [{i}]}}}}"#, i % 4)),
                3 => ScalarValue::Json(r#"{"n": 2.5}"#.into()),
                _ => ScalarValue::Null,
            }),
        ],
        tombstones: Vec::new(),
        max_ts: id,
        wal_seq: id,
    };
    let info = quiver_api::SegmentInfo {
        id,
        rows: n as u64,
        max_ts: id,
        wal_seq: id,
        has_index: false,
        index_version: 0,
    };
    let data = MappedSegment::from_bytes(encode_segment(&data)).expect("segment");
    Arc::new(LoadedSegment::new(info, data, None))
}

#[test]
fn a_loading_segment_gets_the_indexes_its_shard_uses_and_the_declared_ones() {
    let first = segment(1, 50);
    // Searches on the first segment built a term index of tenant, a text
    // index of note and a sorted index of price.
    let columns = first.data.columns();
    assert!(first.terms.column(columns, "tenant").is_some());
    let text = ("note".to_string(), Some(String::new()));
    assert!(
        first
            .terms
            .get(columns, &text, crate::built::When::Search)
            .is_some()
    );
    assert!(
        first
            .sorted
            .build(columns, "price", crate::built::When::Search)
            .is_some()
    );

    let second = segment(2, 40);
    let declared = BTreeMap::from([
        ("name".to_string(), ScalarIndexKind::Inverted),
        ("tenant".to_string(), ScalarIndexKind::StlSort),
    ]);
    second.warm(std::slice::from_ref(&first), &declared);
    let mut terms = second.terms.keys();
    terms.sort();
    assert_eq!(
        terms,
        [
            ("name".to_string(), None),
            text.clone(),
            ("tenant".to_string(), None)
        ]
    );
    let mut sorted = second.sorted.keys();
    sorted.sort();
    // INVERTED on a string column tries a sorted index too: none applies.
    assert_eq!(sorted, ["price", "tenant"]);
    assert!(second.sorted.tried("name"));
    assert!(!second.sorted.tried("note"));
    // The warmed indexes answer for this segment's own rows.
    let columns = second.data.columns();
    let tenant = second.terms.column(columns, "tenant").expect("warmed");
    let mut rows: Vec<u32> = tenant.rows(&[ScalarValue::Int(3)]).collect();
    rows.sort_unstable();
    assert_eq!(rows, [3, 13, 23, 33]);
    let price = second
        .sorted
        .build(columns, "price", crate::built::When::Search)
        .expect("warmed");
    use std::ops::Bound;
    let above = price.range(
        &Bound::Excluded(quiver_api::Num::Int(36)),
        &Bound::Unbounded,
    );
    assert_eq!(above, [37, 38, 39]);
    // A segment with nothing to learn from and nothing declared builds nothing.
    let third = segment(3, 10);
    third.warm(&[], &BTreeMap::new());
    assert!(third.terms.keys().is_empty() && third.sorted.keys().is_empty());
}

#[test]
fn a_declared_json_path_index_is_built_at_load_and_never_by_a_search() {
    use crate::built::When;
    let seg = segment(1, 40);
    let key = |k: &str| (k.to_string(), None);
    let declared = BTreeMap::from([
        (r#"meta["n"]"#.to_string(), ScalarIndexKind::Inverted),
        (r#"meta["deep"]["k"][0]"#.to_string(), ScalarIndexKind::Auto),
    ]);
    let columns = seg.data.columns();
    // Not declared yet: a search does not build it.
    assert!(
        seg.terms
            .get(columns, &key(r#"meta["n"]"#), When::Search)
            .is_none()
    );
    seg.warm(&[], &declared);
    let n = seg
        .terms
        .get(columns, &key(r#"meta["n"]"#), When::Search)
        .expect("warmed");
    // n == 2: the rows holding 2 or 2.0, not "2" (a string) nor 2.5.
    let mut rows: Vec<u32> = n.rows(&[ScalarValue::Int(2)]).collect();
    rows.sort_unstable();
    let want: Vec<u32> = (0..40u32).filter(|i| i % 5 <= 1 && i % 4 == 2).collect();
    assert_eq!(rows, want);
    let mut strings: Vec<u32> = n.rows(&[ScalarValue::Str("2".into())]).collect();
    strings.sort_unstable();
    assert_eq!(strings, [2, 22]);
    let deep = (seg.terms)
        .get(columns, &key(r#"meta["deep"]["k"][0]"#), When::Search)
        .expect("warmed");
    assert_eq!(deep.rows(&[ScalarValue::Int(7)]).collect::<Vec<_>>(), [7]);
    // Each declared path has its column of values; a sorted index where
    // they are all numbers (`n` also holds strings: none).
    let names: Vec<&str> = seg.path_columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [r#"meta["deep"]["k"][0]"#, r#"meta["n"]"#]);
    assert!(seg.sorted.tried(r#"meta["n"]"#));
    let deep_column = &seg.path_columns()[0];
    let sorted = seg.sorted.of(deep_column).expect("numbers sort");
    let mut above: Vec<u32> = sorted
        .range(
            &std::ops::Bound::Excluded(quiver_api::Num::Int(30)),
            &std::ops::Bound::Unbounded,
        )
        .to_vec();
    above.sort_unstable();
    assert_eq!(above, [32, 37]);
    // Undeclared paths stay unbuilt, whatever a search asks.
    assert!(
        seg.terms
            .get(columns, &key(r#"meta["a"]"#), When::Search)
            .is_none()
    );
    // A later segment of the shard gets it from its sibling too.
    let next = segment(2, 10);
    next.warm(std::slice::from_ref(&seg), &BTreeMap::new());
    assert!(next.terms.keys().contains(&key(r#"meta["n"]"#)));
}
