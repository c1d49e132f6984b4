//! Search paths end to end: filters of every shape served by a segment's
//! indexes or by per-row tests, and HNSW_SQ segments (a graph over codes,
//! exact scores).

use super::*;

/// Filters of every selectivity and shape, on sealed and growing rows with
/// nulls and deletes: whichever way a segment serves them (its indexes
/// naming the rows, or rows tested as a search visits them), a query returns
/// exactly the rows the filter accepts and a search only such rows, the
/// nearest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_the_same_rows_whichever_way_a_segment_serves_them() {
    use quiver_common::{Column, DataType, FieldSchema, ScalarValue};
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(dir.path()).await;
    let mut schema = CollectionSchema::simple("sel", DIM as u32);
    schema
        .fields
        .push(FieldSchema::new("cat", DataType::Int64).nullable());
    schema
        .fields
        .push(FieldSchema::new("price", DataType::Double));
    schema
        .fields
        .push(FieldSchema::new("tag", DataType::VarChar).with_max_length(8));
    s.proxy
        .create_collection(CreateCollection {
            schema,
            shards: 1,
            metric: Metric::L2,
            index: IndexKind::Hnsw {
                m: 8,
                ef_construction: 64,
            },
            partitions: None,
        })
        .await
        .expect("create");
    let cat = |p: i64| (p % 13 != 5).then_some(p % 100);
    let price = |p: i64| ((p * 7919) % 1000) as f64 / 1000.0;
    let tag = |p: i64| ["red", "green", "blue"][(p % 3) as usize];
    let rows = |pks: Vec<i64>| {
        let mut b = batch(&pks, 0);
        b.columns = vec![
            Column {
                name: "cat".into(),
                values: (pks.iter())
                    .map(|p| cat(*p).map_or(ScalarValue::Null, ScalarValue::Int))
                    .collect(),
            },
            Column {
                name: "price".into(),
                values: pks.iter().map(|p| ScalarValue::Float(price(*p))).collect(),
            },
            Column {
                name: "tag".into(),
                values: pks
                    .iter()
                    .map(|p| ScalarValue::Str(tag(*p).into()))
                    .collect(),
            },
        ];
        b
    };
    // Two sealed segments with an index, then growing rows; some deleted.
    let n = 3000i64;
    for part in [0..1200, 1200..2400] {
        s.proxy
            .insert("sel", rows(part.collect()))
            .await
            .expect("insert");
        s.proxy.flush("sel").await.expect("flush");
    }
    // Once both have their graph, a restart loads them as sealed segments
    // with indexes (not growing rows that a hand-off has yet to replace).
    let id = s.coord().state().collection("sel").expect("meta").id;
    wait_for(
        std::time::Duration::from_secs(60),
        "both segments indexed",
        async || {
            let segs = s.coord().state().segments(id, 0).segments;
            segs.len() == 2 && segs.iter().all(|m| m.has_index)
        },
    )
    .await
    .expect("indexed");
    s.close().await;
    let s = open(dir.path()).await;
    s.proxy
        .insert("sel", rows((2400..n).collect()))
        .await
        .expect("insert");
    let none = std::collections::HashMap::new();
    s.proxy
        .delete_where("sel", "id in [7, 107, 1207, 2407, 2999]", &none)
        .await
        .expect("delete");
    let live = |p: i64| ![7, 107, 1207, 2407, 2999].contains(&p);
    type Want = Box<dyn Fn(i64) -> bool>;
    let filters: Vec<(&str, Want)> = vec![
        ("cat == 7", Box::new(move |p| cat(p) == Some(7))),
        ("price < 0.01", Box::new(move |p| price(p) < 0.01)),
        (
            "0.2 <= price < 0.5",
            Box::new(move |p| (0.2..0.5).contains(&price(p))),
        ),
        (
            "cat < 50",
            Box::new(move |p| cat(p).is_some_and(|c| c < 50)),
        ),
        (
            "not (cat < 50)",
            Box::new(move |p| cat(p).is_some_and(|c| c >= 50)),
        ),
        (
            "cat != 3",
            Box::new(move |p| cat(p).is_some_and(|c| c != 3)),
        ),
        (
            "cat in [1, 2.0, 2.5] or price > 0.995",
            Box::new(move |p| cat(p).is_some_and(|c| c == 1 || c == 2) || price(p) > 0.995),
        ),
        (
            "cat not in [1, 2]",
            Box::new(move |p| cat(p).is_some_and(|c| c != 1 && c != 2)),
        ),
        ("cat is null", Box::new(move |p| cat(p).is_none())),
        (
            "cat is null and tag == 'red'",
            Box::new(move |p| cat(p).is_none() && tag(p) == "red"),
        ),
        (
            "tag != 'red' and price < 0.05",
            Box::new(move |p| tag(p) != "red" && price(p) < 0.05),
        ),
        // A conjunct outside the column plan (like): the plan narrows, the
        // filter decides.
        (
            "price < 0.1 and tag like 'gr%'",
            Box::new(move |p| price(p) < 0.1 && tag(p) == "green"),
        ),
        ("cat > 1000", Box::new(|_| false)),
    ];
    let pk_of = |h: &quiver_api::ShardHit| match h.pk {
        PrimaryKey::Int(p) => p,
        _ => panic!("int pk"),
    };
    for (text, want) in &filters {
        let filter = s.proxy.compile_filter("sel", text, &none).expect("compile");
        let expected: HashSet<i64> = (0..n).filter(|p| live(*p) && want(*p)).collect();
        let got = s
            .proxy
            .query(
                "sel",
                None,
                Some(filter.clone()),
                10_000,
                vec![],
                false,
                Consistency::Strong,
            )
            .await
            .expect("query");
        let got: HashSet<i64> = got.iter().map(pk_of).collect();
        assert_eq!(got, expected, "query {text}");
        // A search returns only accepted rows, nearest first; all of them
        // when they are fewer than k.
        let q = vec_for(1500, 0);
        let mut req = search("sel", q.clone(), 20, Consistency::Strong);
        req.filter = Some(filter);
        let hits = s.proxy.search(req).await.expect("search");
        let got: Vec<i64> = hits[0].iter().map(pk_of).collect();
        assert!(
            got.iter().all(|p| expected.contains(p)),
            "search {text}: {got:?}"
        );
        assert_eq!(got.len(), expected.len().min(20), "search {text}");
        let dist = |p: i64| -> f32 {
            vec_for(p, 0)
                .iter()
                .zip(&q)
                .map(|(a, b)| (a - b) * (a - b))
                .sum()
        };
        let mut exact: Vec<i64> = expected.iter().copied().collect();
        exact.sort_by(|a, b| dist(*a).total_cmp(&dist(*b)).then(a.cmp(b)));
        if let (Some(first), Some(best)) = (got.first(), exact.first()) {
            assert_eq!(dist(*first), dist(*best), "search {text}: nearest first");
        }
    }
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hnsw_sq_segments_get_a_graph_over_codes_and_exact_scores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(dir.path()).await;
    s.proxy
        .create_collection(CreateCollection {
            schema: CollectionSchema::simple("q", DIM as u32),
            shards: 1,
            metric: Metric::L2,
            index: IndexKind::HnswSq {
                m: 8,
                ef_construction: 64,
            },
            partitions: None,
        })
        .await
        .expect("create collection");
    let pks: Vec<i64> = (0..300).collect();
    s.proxy.insert("q", batch(&pks, 0)).await.expect("insert");
    s.proxy.flush("q").await.expect("flush");
    // The seal hands the rows off; its graph follows.
    let id = s.coord().state().collection("q").expect("meta").id;
    wait_for(
        std::time::Duration::from_secs(60),
        "the segment's graph",
        async || {
            let segs = s.coord().state().segments(id, 0).segments;
            !segs.is_empty() && segs.iter().all(|m| m.has_index)
        },
    )
    .await
    .expect("indexed");
    // The sealed segment's index is the quantized format (version 2).
    let quantized = files_under(dir.path())
        .iter()
        .any(|f| std::fs::read(f).is_ok_and(|b| b.starts_with(b"QVHNSW\0\0\x02\0\0\0")));
    assert!(quantized, "no HNSW_SQ index object written");
    for pk in [0i64, 17, 150, 299] {
        let q = vec_for(pk, 0);
        let hits = s
            .proxy
            .search(search("q", q.clone(), 5, Consistency::Strong))
            .await
            .expect("search");
        assert_eq!(hits[0].len(), 5);
        assert_eq!(hits[0][0].pk, PrimaryKey::Int(pk));
        for h in &hits[0] {
            let PrimaryKey::Int(p) = h.pk else {
                panic!("int keys")
            };
            let want: f32 = (q.iter().zip(vec_for(p, 0)))
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            assert_eq!(h.score, want, "re-ranked with the exact vector of {p}");
        }
    }
    // A re-ranking depth below k is refused, naming the parameter; NaN too.
    for bad in [0.5, f32::NAN] {
        let mut req = search("q", vec_for(3, 0), 5, Consistency::Strong);
        req.refine_k = Some(bad);
        let e = s.proxy.search(req).await.expect_err("refused");
        assert!(e.to_string().contains("refine_k"), "{e}");
    }
    s.close().await;
}
