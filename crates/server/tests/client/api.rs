//! The client library: collections, writes, search, query, aliases, errors.

use quiver_client::{
    Client, CollectionSpec, DataType, Error, Id, Index, Metric, Rows, SearchParams, Value, code,
};
use quiver_test_util::wait_for;

use super::{Server, vectors};

const DIM: usize = 8;
/// How long a test waits for a condition.
const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn row(data: &[f32], i: usize) -> &[f32] {
    &data[i * DIM..(i + 1) * DIM]
}

async fn top1(client: &Client, collection: &str, query: &[f32]) -> (Id, f32) {
    let hits = client
        .search(collection, query, DIM, &SearchParams::new(1))
        .await
        .expect("search");
    let hit = hits[0].first().expect("a hit");
    (hit.id.clone(), hit.distance)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_insert_search_query_through_the_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path()).await;
    let client = server.client().await;

    let mut spec = CollectionSpec::new("docs", DIM);
    spec.index = Index::Hnsw {
        m: 8,
        ef_construction: 64,
    };
    client.create_collection(&spec).await.expect("create");
    assert_eq!(client.list_collections().await.expect("list"), ["docs"]);
    assert!(client.has_collection("docs").await.expect("has"));
    let info = client.describe_collection("docs").await.expect("describe");
    assert_eq!(info.name, "docs");
    assert_eq!(info.dim(), Some(DIM));
    assert_eq!(info.shards, 1);
    assert!(!info.auto_id());
    let pk = info.primary_field().expect("pk");
    assert_eq!((pk.name.as_str(), pk.data_type), ("id", DataType::Int64));
    assert_eq!(info.vector_field().expect("vector").name, "vector");
    let index = client.describe_index("docs").await.expect("index");
    assert_eq!(
        (index.index_type.as_str(), index.metric.as_str()),
        ("HNSW", "L2")
    );
    assert!(index.params.contains("\"M\":8"), "{}", index.params);

    let data = vectors(300, DIM, 1);
    let ids: Vec<i64> = (0..300).collect();
    let w = client
        .insert("docs", Rows::new(DIM, data.clone()).with_ids(ids))
        .await
        .expect("insert");
    assert_eq!(w.count, 300);
    assert_eq!(w.ids[..2], [Id::Int(0), Id::Int(1)]);
    assert!(w.timestamp > 0);
    assert_eq!(client.count("docs").await.expect("count"), 300);

    // Acknowledged rows are searchable at once: each finds itself first.
    for i in [0, 123, 299] {
        let (id, distance) = top1(&client, "docs", row(&data, i)).await;
        assert_eq!((id, distance), (Id::Int(i as i64), 0.0));
    }
    // Several queries in one request, ef and a filter.
    let queries: Vec<f32> = [5, 250]
        .iter()
        .flat_map(|&i| row(&data, i).to_vec())
        .collect();
    let params = SearchParams::new(5)
        .with_ef(64)
        .with_filter("id >= 200")
        .with_output_fields(&["vector"]);
    let hits = client
        .search("docs", &queries, DIM, &params)
        .await
        .expect("search");
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.len() == 5));
    assert!(
        hits.iter()
            .flatten()
            .all(|h| matches!(h.id, Id::Int(i) if i >= 200))
    );
    assert_eq!(hits[1][0].id, Id::Int(250));
    assert_eq!(
        hits[1][0].fields.get("vector"),
        Some(&Value::Vector(row(&data, 250).to_vec()))
    );
    assert!(hits[0].windows(2).all(|w| w[0].distance <= w[1].distance));

    // Query by key, with all fields.
    let rows = client
        .query("docs", "id in [7, 8]", &["*"], None)
        .await
        .expect("query");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get("id"), Some(&Value::Int(7)));
    assert_eq!(
        rows[1].get("vector"),
        Some(&Value::Vector(row(&data, 8).to_vec()))
    );

    // Upsert replaces a row, delete removes rows.
    let moved = row(&data, 42).to_vec();
    client
        .upsert("docs", Rows::new(DIM, moved.clone()).with_ids(vec![7]))
        .await
        .expect("upsert");
    let hits = client
        .search("docs", &moved, DIM, &SearchParams::new(2))
        .await
        .expect("search");
    let mut top: Vec<Id> = hits[0].iter().map(|h| h.id.clone()).collect();
    top.sort();
    assert_eq!(top, [Id::Int(7), Id::Int(42)]);
    let d = client.delete("docs", "id < 10").await.expect("delete");
    assert_eq!(d.count, 10);
    assert_eq!(client.count("docs").await.expect("count"), 290);

    // After a flush (sealed, HNSW-indexed segment) rows still find themselves.
    client.flush(&["docs"]).await.expect("flush");
    let (id, _) = top1(&client, "docs", row(&data, 123)).await;
    assert_eq!(id, Id::Int(123));

    client.drop_collection("docs").await.expect("drop");
    assert!(!client.has_collection("docs").await.expect("has"));
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_refuses_reads_until_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path()).await;
    let client = server.client().await;
    client
        .create_collection(&CollectionSpec::new("r", DIM))
        .await
        .expect("create");
    let data = vectors(20, DIM, 3);
    client
        .insert(
            "r",
            Rows::new(DIM, data[..10 * DIM].to_vec()).with_ids((0..10).collect()),
        )
        .await
        .expect("insert");
    assert!(client.is_loaded("r").await.expect("state"));

    client.release_collection("r").await.expect("release");
    assert!(!client.is_loaded("r").await.expect("state"));
    let e = client
        .search("r", row(&data, 0), DIM, &SearchParams::new(1))
        .await
        .expect_err("released");
    assert!(e.is_not_loaded(), "{e}");
    assert!(
        client
            .count("r")
            .await
            .expect_err("released")
            .is_not_loaded()
    );
    // Writes land while released.
    client
        .insert(
            "r",
            Rows::new(DIM, data[10 * DIM..].to_vec()).with_ids((10..20).collect()),
        )
        .await
        .expect("insert while released");

    client.load_collection("r", 0).await.expect("load");
    assert!(client.is_loaded("r").await.expect("state"));
    assert_eq!(client.count("r").await.expect("count"), 20);
    assert_eq!(top1(&client, "r", row(&data, 15)).await.0, Id::Int(15));
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_id_and_cosine_collections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path()).await;
    let client = server.client().await;

    let mut spec = CollectionSpec::new("auto", DIM);
    spec.auto_id = true;
    spec.metric = Metric::Cosine;
    spec.shards = Some(2);
    client.create_collection(&spec).await.expect("create");
    let info = client.describe_collection("auto").await.expect("describe");
    assert!(info.auto_id());
    assert_eq!(info.shards, 2);
    let data = vectors(50, DIM, 2);
    let w = client
        .insert("auto", Rows::new(DIM, data.clone()))
        .await
        .expect("insert");
    assert_eq!(w.ids.len(), 50);
    let (id, similarity) = top1(&client, "auto", row(&data, 17)).await;
    assert_eq!(id, w.ids[17]);
    assert!((similarity - 1.0).abs() < 1e-5, "{similarity}");
    let index = client.describe_index("auto").await.expect("index");
    assert_eq!(index.metric, "COSINE");
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_through_the_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path()).await;
    let client = server.client().await;
    let (a, b) = (vectors(20, DIM, 3), vectors(20, DIM, 4));
    for (name, data) in [("blue", &a), ("green", &b)] {
        client
            .create_collection(&CollectionSpec::new(name, DIM))
            .await
            .expect("create");
        let ids = (0..20)
            .map(|i| if name == "blue" { i } else { 100 + i })
            .collect();
        client
            .insert(name, Rows::new(DIM, data.clone()).with_ids(ids))
            .await
            .expect("insert");
    }

    client
        .create_alias("live", "blue")
        .await
        .expect("create alias");
    assert_eq!(
        client.describe_alias("live").await.expect("describe"),
        "blue"
    );
    assert_eq!(client.list_aliases(None).await.expect("list"), ["live"]);
    assert_eq!(
        client.list_aliases(Some("blue")).await.expect("list"),
        ["live"]
    );
    assert!(
        client
            .list_aliases(Some("green"))
            .await
            .expect("list")
            .is_empty()
    );
    let info = client.describe_collection("live").await.expect("describe");
    assert_eq!(
        (info.name.as_str(), info.aliases.as_slice()),
        ("blue", &["live".to_string()][..])
    );
    assert_eq!(top1(&client, "live", row(&a, 3)).await.0, Id::Int(3));

    // Re-pointing: reads through the alias now see the other collection.
    client.alter_alias("live", "green").await.expect("alter");
    assert_eq!(top1(&client, "live", row(&b, 3)).await.0, Id::Int(103));
    let e = client
        .drop_collection("green")
        .await
        .expect_err("a collection with aliases cannot be dropped");
    assert_eq!(e.code(), Some(code::PARAMETER_INVALID), "{e}");

    client.drop_alias("live").await.expect("drop alias");
    let e = client.describe_alias("live").await.expect_err("gone");
    assert_eq!(e.code(), Some(code::ALIAS_NOT_FOUND), "{e}");
    let e = client.describe_collection("live").await.expect_err("gone");
    assert!(e.is_collection_not_found(), "{e}");
    let e = client
        .create_alias("x", "missing")
        .await
        .expect_err("no such collection");
    assert!(e.code().is_some_and(|c| c != 0), "{e}");
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_carry_the_milvus_code_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path()).await;
    let client = server.client().await;

    let e = client
        .describe_collection("nope")
        .await
        .expect_err("missing");
    assert!(e.is_collection_not_found(), "{e}");
    assert_eq!(e.code(), Some(code::COLLECTION_NOT_FOUND));
    assert!(e.to_string().contains("nope"), "{e}");
    let e = client
        .insert("nope", Rows::new(DIM, vec![0.5; DIM]).with_ids(vec![1]))
        .await
        .expect_err("missing");
    assert_eq!(e.code(), Some(code::COLLECTION_NOT_FOUND), "{e}");
    let e = client
        .search("nope", &[0.5; DIM], DIM, &SearchParams::new(1))
        .await
        .expect_err("missing");
    assert!(e.is_collection_not_found(), "{e}");

    client
        .create_collection(&CollectionSpec::new("c", DIM))
        .await
        .expect("create");
    // The same parameters again: accepted, as by Milvus; other ones: refused.
    client
        .create_collection(&CollectionSpec::new("c", DIM))
        .await
        .expect("create again");
    let e = client
        .create_collection(&CollectionSpec::new("c", DIM + 1))
        .await
        .expect_err("duplicate");
    assert_eq!(e.code(), Some(code::PARAMETER_INVALID), "{e}");
    assert!(e.to_string().contains("other parameters"), "{e}");

    // Wrong dimension: refused by the server, naming the vector field; nothing written.
    let e = client
        .insert(
            "c",
            Rows::new(DIM - 1, vec![0.5; DIM - 1]).with_ids(vec![1]),
        )
        .await
        .expect_err("wrong dim");
    assert_eq!(e.code(), Some(code::PARAMETER_INVALID), "{e}");
    assert!(e.reason().is_some_and(|r| r.contains("vector")), "{e}");
    let e = client
        .search("c", &[0.5; 3], 3, &SearchParams::new(1))
        .await
        .expect_err("wrong dim");
    assert_eq!(e.code(), Some(code::PARAMETER_INVALID), "{e}");
    let e = client
        .search(
            "c",
            &[0.5; DIM],
            DIM,
            &SearchParams::new(1).with_filter("id >"),
        )
        .await
        .expect_err("bad filter");
    assert_eq!(e.code(), Some(code::PARAMETER_INVALID), "{e}");
    assert_eq!(client.count("c").await.expect("count"), 0);

    // Refused before sending.
    let e = client
        .insert("c", Rows::new(DIM, vec![0.5; DIM]).with_ids(vec![1, 2]))
        .await
        .expect_err("ids");
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");

    // A refused index drops the collection it had just created.
    let mut spec = CollectionSpec::new("bad_index", DIM);
    spec.index = Index::Hnsw {
        m: 1,
        ef_construction: 10,
    };
    let e = client.create_collection(&spec).await.expect_err("M = 1");
    assert_eq!(e.code(), Some(code::PARAMETER_INVALID), "{e}");
    assert!(e.to_string().contains("params.M"), "{e}");
    assert!(!client.has_collection("bad_index").await.expect("has"));

    // Connection errors.
    let e = Client::connect("localhost").await.expect_err("no port");
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e}");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let e = Client::connect(&format!("http://{closed}"))
        .await
        .expect_err("nothing listens");
    assert!(matches!(e, Error::Connect { .. }), "{e}");
    server.close().await;
}

/// Writes through a mirrored alias reach both collections (each side ships
/// its own writes to the other, never back), after a flip too; deletes as
/// well; the standby's lag is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_a_mirrored_alias_reach_both_collections() {
    use quiver_client::{Actor, MirrorSpec};
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path()).await;
    let client = server.client().await;
    for name in ["feed_a", "feed_b"] {
        let mut spec = CollectionSpec::new(name, DIM);
        spec.shards = Some(2);
        client.create_collection(&spec).await.expect("create");
    }
    let spec = MirrorSpec {
        alias: "feed".into(),
        primary: "feed_a".into(),
        standby: "feed_b".into(),
        auto_failover: false,
        max_lag_ms: None,
    };
    let actor = Actor::new("test", "");
    client.mirror_alias(&spec, &actor).await.expect("mirror");

    let data = vectors(40, DIM, 5);
    let ids: Vec<i64> = (0..40).collect();
    client
        .insert("feed", Rows::new(DIM, data.clone()).with_ids(ids))
        .await
        .expect("insert through the alias");
    client.delete("feed", "id in [0, 1]").await.expect("delete");
    let count = |name: &'static str| {
        let client = client.clone();
        async move { client.count(name).await.expect("count") }
    };
    assert_eq!(
        count("feed_a").await,
        38,
        "the target has the writes at once"
    );
    wait_for(WAIT, "the standby has the writes", || async {
        count("feed_b").await == 38
    })
    .await
    .expect("waited");

    // Flip: writes now go to feed_b and are shipped to feed_a.
    client.flip_alias("feed", None, &actor).await.expect("flip");
    let more = vectors(10, DIM, 6);
    client
        .insert("feed", Rows::new(DIM, more).with_ids((100..110).collect()))
        .await
        .expect("insert after the flip");
    assert_eq!(count("feed_b").await, 48);
    wait_for(WAIT, "the old target has the new writes", || async {
        count("feed_a").await == 48
    })
    .await
    .expect("waited");
    // Nothing echoes back and forth: the counts stay put and the lag drains.
    wait_for(WAIT, "the lag drains", || async {
        client
            .show_alias("feed")
            .await
            .is_ok_and(|s| s.standby_lag_ms == Some(0))
    })
    .await
    .expect("waited");
    assert_eq!((count("feed_a").await, count("feed_b").await), (48, 48));
    let rows = client
        .query("feed_a", "id in [0, 5, 105]", &["id"], None)
        .await
        .expect("query");
    assert_eq!(rows.len(), 2, "the delete was mirrored, the rest arrived");
    server.close().await;
}
