//! The engine end to end in one process: front door -> datanode -> querynode,
//! with the real coord, WAL and object store on a temporary directory.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use quiver_api::{CreateCollection, IndexKind};
use quiver_common::{
    CollectionSchema, ErrorKind, Metric, PrimaryKey, RowBatch, VectorData, Vectors,
};
use quiver_proxy::{Consistency, SearchRequest};
use quiver_server::{Standalone, StandaloneConfig};
use quiver_test_util::wait_for;
use tokio_util::sync::CancellationToken;

#[path = "engine/search.rs"]
mod search;

const DIM: usize = 4;

fn config(dir: &std::path::Path) -> StandaloneConfig {
    let mut c = StandaloneConfig::new(dir);
    c.datanode.min_index_rows = 64;
    c.querynode.search_threads = 2;
    c
}

async fn open(dir: &std::path::Path) -> Standalone {
    Standalone::open(config(dir), CancellationToken::new())
        .await
        .expect("open standalone")
}

async fn create(s: &Standalone, name: &str, shards: u32) {
    s.proxy
        .create_collection(CreateCollection {
            schema: CollectionSchema::simple(name, DIM as u32),
            shards,
            metric: Metric::L2,
            index: IndexKind::Hnsw {
                m: 8,
                ef_construction: 64,
            },
            partitions: None,
        })
        .await
        .expect("create collection");
}

fn vec_for(pk: i64, version: u32) -> Vec<f32> {
    vec![pk as f32, version as f32, (pk % 7) as f32, 1.0]
}

fn batch(pks: &[i64], version: u32) -> RowBatch {
    RowBatch {
        pks: pks.iter().map(|p| PrimaryKey::Int(*p)).collect(),
        vectors: Vectors::f32(DIM, pks.iter().flat_map(|p| vec_for(*p, version)).collect()),
        columns: vec![],
    }
}

fn search(name: &str, q: Vec<f32>, k: usize, c: Consistency) -> SearchRequest {
    SearchRequest {
        collection: name.into(),
        queries: q,
        k,
        ef: Some(128),
        refine_k: None,
        filter: None,
        consistency: c,
        output_fields: vec![],
        with_vectors: true,
        anns_field: None,
        sparse: None,
    }
}

/// Every live row: pk -> vector.
async fn all_rows(s: &Standalone, name: &str) -> std::collections::HashMap<i64, Vec<f32>> {
    quiver_server::crash::rows_by_key(&s.proxy, name)
        .await
        .expect("all rows")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_insert_is_visible_to_the_next_search() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(dir.path()).await;
    create(&s, "c", 2).await;
    for i in 0..200i64 {
        let w = s.proxy.insert("c", batch(&[i], 0)).await.expect("insert");
        let consistency = if i % 2 == 0 {
            Consistency::Session(w.ts)
        } else {
            Consistency::Strong
        };
        let hits = s
            .proxy
            .search(search("c", vec_for(i, 0), 1, consistency))
            .await
            .expect("search");
        assert_eq!(
            hits[0][0].pk,
            PrimaryKey::Int(i),
            "row {i} not visible right after its ack"
        );
        assert_eq!(hits[0][0].score, 0.0);
    }
    assert_eq!(
        s.proxy
            .count("c", Consistency::Strong)
            .await
            .expect("count"),
        200
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_unique_last_write_wins_and_deletes_stick() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(dir.path()).await;
    create(&s, "c", 1).await;
    s.proxy
        .insert("c", batch(&[1, 2, 3], 0))
        .await
        .expect("insert");
    // Same key twice in one batch: the later row wins.
    let mut b = batch(&[4, 4], 0);
    b.vectors = Vectors::f32(DIM, [vec_for(4, 0), vec_for(4, 9)].concat());
    s.proxy.insert("c", b).await.expect("insert dup");
    s.proxy.upsert("c", batch(&[2], 1)).await.expect("upsert");
    s.proxy.flush("c").await.expect("flush");
    // Replace and delete rows that are now sealed.
    s.proxy
        .upsert("c", batch(&[3], 2))
        .await
        .expect("upsert sealed");
    s.proxy
        .delete("c", vec![PrimaryKey::Int(1)])
        .await
        .expect("delete");
    let rows = all_rows(&s, "c").await;
    let expect = |pk: i64, v: u32| assert_eq!(rows.get(&pk), Some(&vec_for(pk, v)), "row {pk}");
    assert_eq!(rows.len(), 3);
    expect(2, 1);
    expect(3, 2);
    expect(4, 9);
    // A search near the old version of 2 must not return the old version.
    let hits = s
        .proxy
        .search(search("c", vec_for(2, 0), 10, Consistency::Strong))
        .await
        .expect("search");
    let pks: Vec<_> = hits[0].iter().map(|h| h.pk.clone()).collect();
    assert_eq!(pks.len(), 3, "{pks:?}");
    assert_eq!(
        pks.iter().collect::<HashSet<_>>().len(),
        3,
        "duplicates: {pks:?}"
    );
    s.close().await;

    // Everything holds after a restart, and after sealing the rest.
    let s = open(dir.path()).await;
    assert_eq!(all_rows(&s, "c").await, rows);
    s.proxy.flush("c").await.expect("flush");
    assert_eq!(all_rows(&s, "c").await, rows);
    s.close().await;
    let s = open(dir.path()).await;
    assert_eq!(all_rows(&s, "c").await, rows);
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_hand_off_leaves_no_gap_and_no_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Arc::new(open(dir.path()).await);
    create(&s, "c", 1).await;
    let pks: Vec<i64> = (0..300).collect();
    let w = s.proxy.insert("c", batch(&pks, 0)).await.expect("insert");
    let seen_all = Consistency::Session(w.ts);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (s, stop) = (s.clone(), stop.clone());
        tokio::spawn(async move {
            let mut checks = 0u32;
            while !stop.load(Ordering::SeqCst) || checks < 20 {
                let hits = s
                    .proxy
                    .search(search("c", vec_for(150, 0), 300, seen_all))
                    .await
                    .expect("search");
                let seen: HashSet<_> = hits[0].iter().map(|h| h.pk.clone()).collect();
                assert_eq!(hits[0].len(), 300, "a row went missing during hand-off");
                assert_eq!(seen.len(), 300, "a row was returned twice during hand-off");
                assert_eq!(s.proxy.count("c", seen_all).await.expect("count"), 300);
                checks += 1;
                tokio::task::yield_now().await;
            }
            checks
        })
    };
    for round in 1..=3u32 {
        s.proxy
            .upsert("c", batch(&pks[..100], round))
            .await
            .expect("upsert");
        s.proxy.flush("c").await.expect("flush");
    }
    stop.store(true, Ordering::SeqCst);
    assert!(watcher.await.expect("watcher") >= 20);
    let rows = all_rows(&s, "c").await;
    assert_eq!(rows.len(), 300);
    assert_eq!(rows[&5], vec_for(5, 3));
    assert_eq!(rows[&200], vec_for(200, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_field_named_and_nothing_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(dir.path()).await;
    create(&s, "c", 2).await;
    s.proxy
        .insert("c", batch(&[1, 2], 0))
        .await
        .expect("insert");

    let floats = |b: &RowBatch| {
        let VectorData::F32(v) = b.vectors.clone().into_data();
        v
    };
    let mut wrong_dim = batch(&[10, 11], 0);
    wrong_dim.vectors = Vectors::f32(DIM + 1, [floats(&wrong_dim), vec![0.0, 0.0]].concat());
    let mut nan = batch(&[10, 11], 0);
    let mut v = floats(&nan);
    v[DIM + 2] = f32::NAN;
    nan.vectors = Vectors::f32(DIM, v);
    let mut inf = batch(&[10, 11], 0);
    let mut v = floats(&inf);
    v[1] = f32::INFINITY;
    inf.vectors = Vectors::f32(DIM, v);
    let empty = batch(&[], 0);
    let big = batch(&(0..100_001).collect::<Vec<_>>(), 0);
    let cases = [
        ("wrong dimension", wrong_dim, "dim 4"),
        ("NaN", nan, "finite"),
        ("Inf", inf, "finite"),
        ("empty batch", empty, "at least one row"),
        ("over-large batch", big, "at most 100000"),
    ];
    for (what, rows, rule) in cases {
        let e = s.proxy.insert("c", rows).await.expect_err(what);
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{what}: {e}");
        assert!(e.to_string().contains(rule), "{what}: {e}");
    }
    let e = s
        .proxy
        .insert("nope", batch(&[1], 0))
        .await
        .expect_err("unknown collection");
    assert_eq!(e.kind(), ErrorKind::CollectionNotFound);
    assert!(e.to_string().contains("nope"));
    let e = s
        .proxy
        .search(search("c", vec![0.0; DIM + 1], 1, Consistency::Strong))
        .await
        .expect_err("query dim");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = s
        .proxy
        .search(search("c", vec![f32::NAN; DIM], 1, Consistency::Strong))
        .await
        .expect_err("query nan");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = s
        .proxy
        .search(search("c", vec![0.0; DIM], 16_385, Consistency::Strong))
        .await
        .expect_err("topk");
    assert!(e.to_string().contains("limit"), "{e}");

    let rows = all_rows(&s, "c").await;
    assert_eq!(
        rows.keys().copied().collect::<HashSet<_>>(),
        HashSet::from([1, 2])
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_search_and_delete_by_expression_on_growing_and_sealed_rows() {
    use quiver_common::{Column, DataType, FieldSchema, ScalarValue};
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(dir.path()).await;
    let mut schema = CollectionSchema::simple("f", DIM as u32);
    schema.fields.push(FieldSchema::new("age", DataType::Int64));
    schema
        .fields
        .push(FieldSchema::new("tag", DataType::VarChar).with_max_length(16));
    s.proxy
        .create_collection(CreateCollection {
            schema,
            shards: 2,
            metric: Metric::L2,
            index: IndexKind::Hnsw {
                m: 8,
                ef_construction: 64,
            },
            partitions: None,
        })
        .await
        .expect("create");
    let n = 400i64;
    let insert = |from: i64| {
        let pks: Vec<i64> = (from..from + n / 2).collect();
        let mut b = batch(&pks, 0);
        b.columns = vec![
            Column {
                name: "age".into(),
                values: pks.iter().map(|p| ScalarValue::Int(p % 50)).collect(),
            },
            Column {
                name: "tag".into(),
                values: pks
                    .iter()
                    .map(|p| ScalarValue::Str(if p % 3 == 0 { "alpha" } else { "beta" }.into()))
                    .collect(),
            },
        ];
        b
    };
    // Half sealed, half growing.
    s.proxy.insert("f", insert(0)).await.expect("insert");
    s.proxy.flush("f").await.expect("flush");
    s.proxy.insert("f", insert(n / 2)).await.expect("insert");
    let matches = |p: i64| p % 50 > 40 && p % 3 == 0;
    let none = std::collections::HashMap::new();
    let filter = s
        .proxy
        .compile_filter("f", r#"age > 40 and tag like "al%""#, &none)
        .expect("compile");
    let mut req = search("f", vec_for(200, 0), 1000, Consistency::Strong);
    req.filter = Some(filter);
    req.output_fields = vec!["age".into(), "tag".into()];
    let hits = s.proxy.search(req).await.expect("filtered search");
    let got: HashSet<i64> = hits[0]
        .iter()
        .map(|h| {
            let PrimaryKey::Int(p) = h.pk else {
                panic!("int pk")
            };
            assert_eq!(h.fields[0], ScalarValue::Int(p % 50), "age of {p}");
            p
        })
        .collect();
    let want: HashSet<i64> = (0..n).filter(|p| matches(*p)).collect();
    assert_eq!(got, want);

    let e = s
        .proxy
        .compile_filter("f", "age > ", &none)
        .expect_err("broken filter");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = s
        .proxy
        .compile_filter("f", "nope == 1", &none)
        .expect_err("unknown field");
    assert!(e.to_string().contains("nope"), "{e}");

    // Delete by expression: a key list, then a predicate.
    s.proxy
        .delete_where("f", "id in [0, 1, 2]", &none)
        .await
        .expect("delete by keys");
    s.proxy
        .delete_where("f", r#"tag == "alpha""#, &none)
        .await
        .expect("delete by predicate");
    let left = all_rows(&s, "f").await;
    let want: HashSet<i64> = (3..n).filter(|p| p % 3 != 0).collect();
    assert_eq!(left.keys().copied().collect::<HashSet<_>>(), want);
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_collection_deletes_its_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(dir.path()).await;
    create(&s, "gone", 1).await;
    s.proxy
        .insert("gone", batch(&(0..300).collect::<Vec<_>>(), 0))
        .await
        .expect("insert");
    s.proxy.flush("gone").await.expect("flush");
    let files = |sub: &str| {
        let root = dir.path().join(sub);
        let mut n = 0;
        let mut stack = vec![root];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path())
                } else {
                    n += 1
                }
            }
        }
        n
    };
    assert!(files("objects/segments") > 0);
    // The querynode downloads the new segment after the flush: wait for it.
    wait_for(
        std::time::Duration::from_secs(10),
        "the segment to be cached",
        async || files("cache") > 0,
    )
    .await
    .expect("segment cached");
    s.proxy.drop_collection("gone").await.expect("drop");
    assert_eq!(files("objects/segments"), 0, "segment files left behind");
    assert_eq!(files("objects/wal"), 0, "WAL objects left behind");
    assert_eq!(files("cache"), 0, "cached segments left behind");
    // The name can be used again, empty.
    create(&s, "gone", 1).await;
    assert_eq!(
        s.proxy
            .count("gone", Consistency::Strong)
            .await
            .expect("count"),
        0
    );
    s.close().await;
}

/// Files under `dir` (recursively).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path())
            } else {
                out.push(e.path())
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_is_compacted_and_collected_and_every_key_keeps_its_last_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.datanode.compaction.interval_ms = 100;
    cfg.datanode.compaction.gc_grace_ms = Some(0);
    let s = Standalone::open(cfg, CancellationToken::new())
        .await
        .expect("open");
    create(&s, "churn", 1).await;
    let keys: Vec<i64> = (0..300).collect();
    let rounds = 6u32;
    let mut deleted = Vec::new();
    for round in 0..rounds {
        s.proxy
            .upsert("churn", batch(&keys, round))
            .await
            .expect("upsert");
        deleted = keys[(round as usize * 20)..(round as usize * 20 + 20)].to_vec();
        let pks = deleted.iter().map(|p| PrimaryKey::Int(*p)).collect();
        s.proxy.delete("churn", pks).await.expect("delete");
        s.proxy.flush("churn").await.expect("flush");
    }
    let id = s.coord().state().collection("churn").expect("meta").id;
    let segments = || s.coord().state().segments(id, 0).segments;
    // Each round superseded the one before: the old segments are compacted
    // away, and their objects (store and querynode cache) collected.
    let objects = |sub: &str| files_under(&dir.path().join(sub)).len();
    wait_for(
        std::time::Duration::from_secs(60),
        "compaction and garbage collection to catch up",
        async || {
            let segs = segments();
            let indexed = segs.iter().filter(|m| m.has_index).count();
            // The compactor has nothing left to do (a wholly dead segment
            // can still be queued when the counts above already match).
            // Idle and under the dead-row threshold: a compaction can be
            // queued just after an idle moment.
            let stats = s.datanode().storage();
            let idle = stats.iter().all(|st| st.backlog == 0);
            let settled = (stats.iter()).all(|st| st.dead * 5 < st.rows + st.tombstones);
            // The counters follow the deletes they count.
            let counted = (stats.iter()).all(|st| st.compactions > 0 && st.collected > 0);
            segs.len() <= 2
                && counted
                && idle
                && settled
                && objects("objects/segments") == segs.len() + indexed
                && objects("cache") <= segs.len() + indexed
        },
    )
    .await
    .expect("compacted");
    let stats = s.datanode().storage();
    assert!(stats[0].compactions > 0, "{stats:?}");
    assert!(stats[0].collected > 0, "{stats:?}");
    // What is left dead is under the threshold (the last round's
    // tombstones, which no longer hide anything).
    assert!(
        stats[0].dead * 5 < stats[0].rows + stats[0].tombstones,
        "{stats:?}"
    );
    // Every key holds its last version; the last deletes stick.
    let rows = all_rows(&s, "churn").await;
    assert_eq!(rows.len(), keys.len() - deleted.len());
    for k in &keys {
        match rows.get(k) {
            Some(v) => assert_eq!(v, &vec_for(*k, rounds - 1), "key {k}"),
            None => assert!(deleted.contains(k), "key {k} lost"),
        }
    }
    // And the same after a restart, from the compacted catalog alone.
    s.close().await;
    let s = open(dir.path()).await;
    let again = all_rows(&s, "churn").await;
    assert_eq!(again, rows);
    s.close().await;
}

/// A collection TTL: once every row of a sealed segment is older than it
/// (plus the clock margin, 0 here), compaction removes the segment; rows
/// written since stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_segments_are_compacted_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.datanode.compaction.interval_ms = 100;
    cfg.datanode.compaction.expiry_margin_ms = 0;
    let s = Standalone::open(cfg, CancellationToken::new())
        .await
        .expect("open");
    let mut schema = CollectionSchema::simple("ttl", DIM as u32);
    schema
        .properties
        .insert(quiver_common::TTL_PROPERTY.into(), "1".into());
    s.proxy
        .create_collection(CreateCollection {
            schema,
            shards: 1,
            metric: Metric::L2,
            index: IndexKind::Flat,
            partitions: None,
        })
        .await
        .expect("create");
    let old: Vec<i64> = (0..50).collect();
    s.proxy.insert("ttl", batch(&old, 0)).await.expect("insert");
    s.proxy.flush("ttl").await.expect("flush");
    let id = s.coord().state().collection("ttl").expect("meta").id;
    let first = s.coord().state().segments(id, 0).segments;
    assert_eq!(first.len(), 1, "{first:?}");
    wait_for(
        std::time::Duration::from_secs(30),
        "the expired segment to be compacted away",
        async || {
            let segs = s.coord().state().segments(id, 0).segments;
            segs.iter().all(|m| m.id != first[0].id)
        },
    )
    .await
    .expect("expired");
    // Rows written after the TTL passed for the first ones are kept until
    // they expire in turn; the count reads them.
    let fresh: Vec<i64> = (100..110).collect();
    s.proxy
        .insert("ttl", batch(&fresh, 0))
        .await
        .expect("insert");
    let n = s
        .proxy
        .count("ttl", Consistency::Strong)
        .await
        .expect("count");
    assert_eq!(n, 10);
    let stats = s.datanode().storage();
    assert!(stats[0].compactions > 0, "{stats:?}");
}
