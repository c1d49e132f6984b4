//! [`LoadedSegment::warm`]: a segment that loads gets, before it serves, the
//! indexes the shard's other segments have built and its collection's
//! declared scalar indexes, so the next search builds nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use quiver_api::ScalarIndexKind;
use quiver_common::{Column, PrimaryKey, ScalarValue};
use quiver_storage::{MappedSegment, SegmentData, encode_segment};

use crate::view::LoadedSegment;
use crate::warm::{WarmKeys, warm_file};

/// A segment of `n` rows: `tenant` = row % 10, `price` = row, `name` =
/// "n{row % 3}", `note` = text.
fn segment(id: u64, n: usize) -> Arc<LoadedSegment> {
    let data = segment_data(id, n);
    let info = segment_info(id, n);
    let data = MappedSegment::from_bytes(encode_segment(&data)).expect("segment");
    Arc::new(LoadedSegment::new(info, data, None))
}

fn segment_info(id: u64, n: usize) -> quiver_api::SegmentInfo {
    quiver_api::SegmentInfo {
        id,
        rows: n as u64,
        max_ts: id,
        wal_seq: id,
        has_index: false,
        index_version: 0,
    }
}

/// A one-shard collection `id` of 2-d vectors, with no declared index.
fn collection(id: u64) -> quiver_api::CollectionInfo {
    quiver_api::CollectionInfo {
        id,
        schema: quiver_common::CollectionSchema::simple("c", 2),
        shards: 1,
        metric: quiver_common::Metric::L2,
        index: quiver_api::IndexKind::Flat,
        index_version: 0,
        field_indexes: Default::default(),
        scalar_indexes: Default::default(),
    }
}

fn segment_data(id: u64, n: usize) -> SegmentData {
    let col = |name: &str, f: &dyn Fn(usize) -> ScalarValue| Column {
        name: name.into(),
        values: (0..n).map(f).collect(),
    };
    SegmentData {
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
    }
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
    second.warm(&WarmKeys::of(std::slice::from_ref(&first)), &declared);
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
    third.warm(&WarmKeys::default(), &BTreeMap::new());
    assert!(third.terms.keys().is_empty() && third.sorted.keys().is_empty());
}

#[test]
fn a_declared_json_path_index_is_built_at_load_and_others_from_extracted_values() {
    use crate::built::When;
    let seg = segment(1, 40);
    let key = |k: &str| (k.to_string(), None);
    let declared = BTreeMap::from([
        (r#"meta["n"]"#.to_string(), ScalarIndexKind::Inverted),
        (r#"meta["deep"]["k"][0]"#.to_string(), ScalarIndexKind::Auto),
    ]);
    let columns = seg.data.columns();
    // Not declared yet: a search without the path's values builds nothing.
    assert!(
        seg.terms
            .get(columns, &key(r#"meta["n"]"#), When::Search)
            .is_none()
    );
    seg.warm(&WarmKeys::default(), &declared);
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
    let mut names = seg.paths.keys();
    names.sort();
    assert_eq!(names, [r#"meta["deep"]["k"][0]"#, r#"meta["n"]"#]);
    assert!(seg.sorted.tried(r#"meta["n"]"#));
    let deep_column = seg
        .path_column(r#"meta["deep"]["k"][0]"#)
        .expect("extracted");
    let sorted = seg.sorted.of(&deep_column).expect("numbers sort");
    let mut above: Vec<u32> = sorted
        .range(
            &std::ops::Bound::Excluded(quiver_api::Num::Int(30)),
            &std::ops::Bound::Unbounded,
        )
        .to_vec();
    above.sort_unstable();
    assert_eq!(above, [32, 37]);
    // An undeclared path without its values: nothing is built.
    assert!(
        seg.terms
            .get(columns, &key(r#"meta["a"]"#), When::Search)
            .is_none()
    );
    // A filter on an undeclared path gets the path's values extracted
    // (once), and its indexes are built from them.
    let a = seg.path_column(r#"meta["a"]"#).expect("a path of meta");
    assert_eq!(a.len(), 40);
    assert!(Arc::ptr_eq(
        &a,
        &seg.path_column(r#"meta["a"]"#).expect("kept")
    ));
    assert!(seg.path_column(r#"nothing["a"]"#).is_none());
    assert!(!seg.sorted.tried(r#"meta["a"]"#));
    let values = std::slice::from_ref(&*a);
    assert!((seg.terms.get(values, &key(r#"meta["a"]"#), When::Search)).is_some());
    // A later segment of the shard gets them from its sibling too.
    let next = segment(2, 10);
    next.warm(&WarmKeys::of(std::slice::from_ref(&seg)), &BTreeMap::new());
    assert!(next.terms.keys().contains(&key(r#"meta["n"]"#)));
    assert!(next.paths.keys().contains(&r#"meta["a"]"#.to_string()));
}

#[test]
fn the_indexes_searches_built_warm_a_segment_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = warm_file(dir.path(), 7, 1);
    std::fs::create_dir_all(path.parent().expect("shard dir")).expect("mkdir");
    // Before the restart: searches built a term index of tenant and a
    // sorted one of price; the replica kept their keys.
    let before = segment(1, 50);
    let columns = before.data.columns();
    assert!(before.terms.column(columns, "tenant").is_some());
    assert!(
        (before.sorted)
            .build(columns, "price", crate::built::When::Search)
            .is_some()
    );
    let used = WarmKeys::of(std::slice::from_ref(&before));
    used.write(&path).expect("write");
    // After it: nothing is loaded yet, only the file says what was used.
    let read = WarmKeys::read(&path);
    assert_eq!(read, used);
    let after = segment(2, 40);
    after.warm(&read, &BTreeMap::new());
    assert_eq!(after.terms.keys(), [("tenant".to_string(), None)]);
    assert_eq!(after.sorted.keys(), ["price"]);
    // A missing or unreadable file is no hint: nothing extra is built.
    assert_eq!(
        WarmKeys::read(&dir.path().join("none.json")),
        WarmKeys::default()
    );
    std::fs::write(&path, b"{not json").expect("write");
    assert_eq!(WarmKeys::read(&path), WarmKeys::default());
    // A file written before JSON paths were kept (session 28) still reads.
    std::fs::write(
        &path,
        br#"{"terms":[["tenant",null]],"sorted":["price"],"sparse":[]}"#,
    )
    .expect("write");
    let old = WarmKeys::read(&path);
    assert_eq!(old.sorted.len(), 1);
    assert!(old.paths.is_empty());
    // A path a filter extracted is kept and extracted again after it.
    assert!(before.path_column(r#"meta["n"]"#).is_some());
    let used = WarmKeys::of(std::slice::from_ref(&before));
    used.write(&path).expect("write");
    let again = segment(3, 20);
    again.warm(&WarmKeys::read(&path), &BTreeMap::new());
    assert_eq!(again.paths.keys(), [r#"meta["n"]"#]);
}

#[tokio::test]
async fn a_restarted_replica_warms_what_searches_built_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = quiver_storage::open_local_store(&dir.path().join("store")).expect("store");
    let cache = dir.path().join("cache");
    let info = collection(9);
    quiver_storage::put_segment(&store, 9, 0, &segment_data(1, 30), None)
        .await
        .expect("put");
    let replica = || {
        Arc::new(crate::replica::ShardReplica::new(
            info.clone(),
            0,
            store.clone(),
            None,
            cache.clone(),
            tokio_util::sync::CancellationToken::new(),
        ))
    };
    let subscription = || {
        let (_tx, events) = tokio::sync::mpsc::unbounded_channel();
        quiver_api::Subscription {
            sealed: vec![segment_info(1, 30)],
            growing: Vec::new(),
            events,
        }
    };
    let loaded = |r: &crate::replica::ShardReplica| r.view.read().sealed[0].seg.clone();

    let first = replica();
    first.install(&mut subscription()).await.expect("install");
    let seg = loaded(&first);
    assert!(
        seg.terms.keys().is_empty(),
        "nothing declared, nothing used yet"
    );
    first.remember_search_builds();
    assert!(!warm_file(&cache, 9, 0).exists(), "nothing to keep");
    // A search builds a term index of tenant; the replica keeps the key as
    // the next request arrives (before any seal or stop).
    assert!(seg.terms.column(seg.data.columns(), "tenant").is_some());
    first.remember_search_builds();
    assert!(warm_file(&cache, 9, 0).exists());

    // A new replica over the same cache: the segment loads with it built.
    let second = replica();
    second.install(&mut subscription()).await.expect("install");
    assert_eq!(loaded(&second).terms.keys(), [("tenant".to_string(), None)]);
}

/// `tenant == 1`, by its column terms (which make a search build a term
/// index of `tenant`).
struct TenantIs1(Vec<quiver_api::ColumnTerms>);

impl quiver_api::RowPredicate for TenantIs1 {
    fn eval(&self, row: &dyn quiver_api::RowAccess) -> bool {
        row.field("tenant") == Some(quiver_common::ValueRef::Int(1))
    }
    fn column_terms(&self) -> &[quiver_api::ColumnTerms] {
        &self.0
    }
}

struct OneFeed(parking_lot::Mutex<Option<quiver_api::Subscription>>);

#[async_trait::async_trait]
impl quiver_api::ShardFeed for OneFeed {
    async fn subscribe(
        &self,
        _: quiver_api::ShardId,
    ) -> quiver_common::Result<quiver_api::Subscription> {
        (self.0.lock().take())
            .ok_or_else(|| quiver_common::Error::Unavailable("subscribed already".into()))
    }
}

/// The first filtered request that builds an index keeps its key in
/// `warm.json` as it answers: a querynode killed before any other request
/// still warms it after a restart.
#[tokio::test]
async fn a_filtered_request_keeps_what_it_built_before_the_next_request() {
    use quiver_api::QueryClient;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = quiver_storage::open_local_store(&dir.path().join("store")).expect("store");
    let cache = dir.path().join("cache");
    let info = collection(11);
    quiver_storage::put_segment(&store, 11, 0, &segment_data(1, 30), None)
        .await
        .expect("put");
    let (_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let feed = OneFeed(parking_lot::Mutex::new(Some(quiver_api::Subscription {
        sealed: vec![segment_info(1, 30)],
        growing: Vec::new(),
        events,
    })));
    let node = crate::QueryNode::new(
        crate::QueryNodeConfig {
            cache_dir: cache.clone(),
            ..Default::default()
        },
        store,
        Arc::new(feed),
        tokio_util::sync::CancellationToken::new(),
    )
    .expect("node");
    node.load_shard(&info, 0).await.expect("load");
    assert!(!warm_file(&cache, 11, 0).exists(), "nothing built yet");
    let filter = TenantIs1(vec![quiver_api::ColumnTerms {
        column: "tenant".into(),
        values: vec![ScalarValue::Int(1)],
        analyzer: None,
    }]);
    let shard = quiver_api::ShardId {
        collection_id: 11,
        shard: 0,
    };
    let found = node
        .query(quiver_api::ShardQuery {
            shard,
            guarantee_ts: 0,
            filter: Some(Arc::new(filter)),
            pks: None,
            limit: 100,
            output_fields: vec![],
            with_vectors: false,
        })
        .await
        .expect("query");
    let pks: Vec<_> = found.rows.iter().map(|h| h.pk.clone()).collect();
    assert_eq!(
        pks,
        [
            PrimaryKey::Int(1001),
            PrimaryKey::Int(1011),
            PrimaryKey::Int(1021)
        ]
    );
    // No other request came; the key is kept already.
    let kept = WarmKeys::read(&warm_file(&cache, 11, 0));
    let fresh = segment(2, 10);
    fresh.warm(&kept, &BTreeMap::new());
    assert_eq!(fresh.terms.keys(), [("tenant".to_string(), None)]);
}

/// The JSON paths filters test are kept within their budget
/// (`path_cache.rs`): past it the least recently used go, of any segment
/// (the next filter on one extracts the same values again, and the shard's
/// warm keys no longer name it); a declared path's values are never
/// charged nor dropped; one larger than the whole budget serves the search
/// that asked and is not kept; a segment dropped is charged no more.
#[test]
fn json_paths_filters_test_are_kept_within_their_budget() {
    use crate::built::When;
    use crate::path_cache::Ledger;
    let ledger: &'static Ledger = Box::leak(Box::new(Ledger::new(0, false)));
    let seg = |id: u64| {
        let data =
            MappedSegment::from_bytes(encode_segment(&segment_data(id, 200))).expect("segment");
        Arc::new(LoadedSegment::charging(segment_info(id, 200), data, ledger))
    };
    let (s1, s2) = (seg(1), seg(2));
    let declared = BTreeMap::from([(r#"meta["n"]"#.to_string(), ScalarIndexKind::Inverted)]);
    s1.warm(&WarmKeys::default(), &declared);
    assert!(s1.paths.keys().contains(&r#"meta["n"]"#.to_string()));
    assert_eq!(ledger.bytes(), 0, "a declared path is not charged");
    // Paths no row holds: columns of 200 nulls, all the same size.
    let path = |i: u32| format!(r#"meta["p{i}"]"#);
    let p0 = s1.path_column(&path(0)).expect("a path of meta");
    let one = ledger.bytes();
    assert!(one as usize > p0.heap_bytes() && p0.heap_bytes() >= 200 * 8);
    ledger.set_budget(one * 5 / 2);
    let p1 = s2.path_column(&path(1)).expect("a path of meta");
    assert_eq!(ledger.bytes(), 2 * one);
    // p0 used again (the column kept), so p1 is the least recently used
    // when p2 comes.
    assert!(Arc::ptr_eq(&p0, &s1.path_column(&path(0)).expect("kept")));
    let _p2 = s1.path_column(&path(2)).expect("a path of meta");
    assert_eq!(ledger.bytes(), 2 * one);
    assert!(!s2.paths.keys().contains(&path(1)), "p1 dropped");
    let warm = WarmKeys::of(&[s1.clone(), s2.clone()]).paths;
    let want = [r#"meta["n"]"#.to_string(), path(0), path(2)];
    assert_eq!(
        warm,
        want.into_iter().collect(),
        "the shard's warm keys follow"
    );
    // A filter on p1 extracts it again: the same values, a new column.
    let again = s2.path_column(&path(1)).expect("extracted again");
    assert!(!Arc::ptr_eq(&p1, &again) && p1.to_column() == again.to_column());
    // That dropped p0 (now the least recently used); the declared path
    // stays through it all.
    let keys = s1.paths.keys();
    assert!(!keys.contains(&path(0)) && keys.contains(&path(2)));
    assert!(keys.contains(&r#"meta["n"]"#.to_string()));
    assert!(
        s1.terms
            .get(&[], &(r#"meta["n"]"#.to_string(), None), When::Search)
            .is_some()
    );
    // A path's term index is charged as its values are.
    let a = s1.path_column(r#"meta["a"]"#).expect("a path of meta");
    let before = ledger.bytes();
    let key = (r#"meta["a"]"#.to_string(), None);
    assert!(
        s1.terms
            .get(std::slice::from_ref(&*a), &key, When::Search)
            .is_some()
    );
    assert!(
        ledger.bytes() > before,
        "{} then {}",
        before,
        ledger.bytes()
    );
    // Past the whole budget: served, not kept.
    ledger.set_budget(1);
    assert_eq!(ledger.bytes(), 0);
    let big = s1.path_column(&path(3)).expect("served");
    assert_eq!(big.len(), 200);
    assert!(!s1.paths.keys().contains(&path(3)));
    assert_eq!(ledger.bytes(), 0);
    // Dropped segments are charged no more.
    ledger.set_budget(0);
    s1.path_column(&path(4)).expect("a path of meta");
    s2.path_column(&path(5)).expect("a path of meta");
    assert!(ledger.bytes() > 0);
    drop((s1, s2));
    assert_eq!(ledger.bytes(), 0);
}
