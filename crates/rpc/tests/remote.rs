//! A real datanode and querynode talking over loopback gRPC: the querynode
//! follows the shard stream through `RemoteData`, the test writes through
//! `RemoteData` and reads through `RemoteQuery`.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use quiver_api::{
    DataClient, QueryClient, RowAccess, RowPredicate, ShardFeed, ShardId, ShardQuery, WriteOp,
};
use quiver_common::{ErrorKind, PrimaryKey, ScalarValue};
use quiver_proto::node::query_service_server::{QueryService, QueryServiceServer};
use quiver_proto::node::{
    CountReply, CountRequest, DigestReply, DigestRequest, QueryReply, QueryRequest, SearchReply,
    SearchRequest,
};
use quiver_rpc::{ClientConfig, QueryServiceImpl, RemoteData, RemoteQuery};
use quiver_test_util::wait_for;
use support::{Cluster, DIM, SHARD, WAIT, batch, search, vector};
use tonic::{Request, Response, Status};

fn pks(hits: &[quiver_api::ShardHit]) -> Vec<i64> {
    let mut v: Vec<i64> = hits
        .iter()
        .map(|h| match h.pk {
            PrimaryKey::Int(i) => i,
            PrimaryKey::Str(_) => -1,
        })
        .collect();
    v.sort_unstable();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_is_visible_to_the_next_remote_read() {
    let c = Cluster::start().await;
    for i in 0..30i64 {
        let ts = c
            .data
            .write(SHARD, WriteOp::Upsert(batch(&[i])))
            .await
            .expect("write");
        let hits = c
            .query
            .search(search(vector(i), 1, ts, None))
            .await
            .expect("search");
        assert_eq!(
            pks(&hits[0]),
            [i],
            "row {i} not visible right after its ack"
        );
        assert_eq!(hits[0][0].score, 0.0);
        assert_eq!(hits[0][0].fields, [ScalarValue::Int(i)]);
        assert_eq!(hits[0][0].vector.as_deref(), Some(&vector(i)[..]));
    }
    let ts = c
        .data
        .write(SHARD, WriteOp::Delete(vec![PrimaryKey::Int(3)]))
        .await
        .expect("delete");
    assert_eq!(c.query.count(SHARD, ts, None).await.expect("count"), 29);
    let last = c.data.last_ts(SHARD).await.expect("last_ts");
    assert!(last >= ts);
    let got = c
        .query
        .query(ShardQuery {
            shard: SHARD,
            guarantee_ts: last,
            filter: None,
            pks: Some(vec![
                PrimaryKey::Int(2),
                PrimaryKey::Int(3),
                PrimaryKey::Int(4),
            ]),
            limit: 10,
            output_fields: vec!["age".into()],
            with_vectors: false,
        })
        .await
        .expect("query");
    assert_eq!(pks(&got.rows), [2, 4]);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_cross_the_wire_and_filter() {
    let c = Cluster::start().await;
    let ts = c
        .data
        .write(SHARD, WriteOp::Upsert(batch(&(0..20).collect::<Vec<_>>())))
        .await
        .expect("write");
    let filter = support::filter("age >= 15 and age != 17");
    let hits = c
        .query
        .search(search(vector(0), 20, ts, Some(filter.clone())))
        .await
        .expect("filtered search");
    assert_eq!(pks(&hits[0]), [15, 16, 18, 19]);
    let rows = c
        .query
        .query(ShardQuery {
            shard: SHARD,
            guarantee_ts: ts,
            filter: Some(filter.clone()),
            pks: None,
            limit: 100,
            output_fields: vec![],
            with_vectors: false,
        })
        .await
        .expect("filtered query");
    assert_eq!(pks(&rows.rows), [15, 16, 18, 19]);
    let counted = c.query.count(SHARD, ts, Some(filter.clone())).await;
    assert_eq!(counted.expect("filtered count"), 4);
    assert_eq!(c.query.count(SHARD, ts, None).await.expect("count"), 20);

    // A predicate that cannot be encoded is refused, not dropped.
    struct Opaque;
    impl RowPredicate for Opaque {
        fn eval(&self, _: &dyn RowAccess) -> bool {
            false
        }
    }
    let e = c
        .query
        .search(search(vector(0), 5, ts, Some(Arc::new(Opaque))))
        .await
        .expect_err("an opaque predicate must not cross the wire");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_survives_a_seal() {
    let c = Cluster::start().await;
    c.data
        .write(SHARD, WriteOp::Upsert(batch(&(0..50).collect::<Vec<_>>())))
        .await
        .expect("write");
    c.data.flush(SHARD).await.expect("flush");
    let ts = c
        .data
        .write(SHARD, WriteOp::Upsert(batch(&(50..60).collect::<Vec<_>>())))
        .await
        .expect("write after the seal");
    assert_eq!(c.query.count(SHARD, ts, None).await.expect("count"), 60);
    for i in [0, 49, 55] {
        let hits = c
            .query
            .search(search(vector(i), 1, ts, None))
            .await
            .expect("search");
        assert_eq!(pks(&hits[0]), [i]);
    }
    // The querynode followed the hand-off on its first stream.
    assert_eq!(c.subscribes.load(Ordering::SeqCst), 1);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_datanode_is_resubscribed() {
    let mut c = Cluster::start().await;
    c.data
        .write(SHARD, WriteOp::Upsert(batch(&[1, 2, 3])))
        .await
        .expect("write");
    assert_eq!(c.subscribes.load(Ordering::SeqCst), 1);

    c.kill_datanode().await;
    let e = c
        .data
        .write(SHARD, WriteOp::Upsert(batch(&[4])))
        .await
        .expect_err("no datanode");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");

    c.restart_datanode().await;
    wait_for(WAIT, "the querynode to resubscribe", async || {
        c.subscribes.load(Ordering::SeqCst) >= 2
    })
    .await
    .expect("resubscribed");
    let ts = c
        .data
        .write(SHARD, WriteOp::Upsert(batch(&[4, 5])))
        .await
        .expect("write after the restart");
    assert_eq!(c.query.count(SHARD, ts, None).await.expect("count"), 5);
    let hits = c
        .query
        .search(search(vector(5), 1, ts, None))
        .await
        .expect("search");
    assert_eq!(pks(&hits[0]), [5]);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_errors_are_the_local_errors() {
    let c = Cluster::start().await;
    let unknown = ShardId {
        collection_id: 99,
        shard: 0,
    };
    let same = |what: &str, local: quiver_common::Error, remote: quiver_common::Error| {
        assert_eq!(remote.kind(), local.kind(), "{what}: {remote} vs {local}");
        assert_eq!(remote.to_string(), local.to_string(), "{what}");
    };
    let node = c.datanode();
    same(
        "write",
        node.write(unknown, WriteOp::Delete(vec![]))
            .await
            .expect_err("local"),
        c.data
            .write(unknown, WriteOp::Delete(vec![]))
            .await
            .expect_err("remote"),
    );
    same(
        "last_ts",
        node.last_ts(unknown).await.expect_err("local"),
        c.data.last_ts(unknown).await.expect_err("remote"),
    );
    same(
        "flush",
        node.flush(unknown).await.expect_err("local"),
        c.data.flush(unknown).await.expect_err("remote"),
    );
    same(
        "subscribe",
        node.subscribe(unknown).await.expect_err("local"),
        c.data.subscribe(unknown).await.expect_err("remote"),
    );
    let mut bad = search(vector(0), 1, 0, None);
    bad.shard = unknown;
    same(
        "search",
        c.querynode.search(bad.clone()).await.expect_err("local"),
        c.query.search(bad).await.expect_err("remote"),
    );
    same(
        "count",
        c.querynode
            .count(unknown, 0, None)
            .await
            .expect_err("local"),
        c.query.count(unknown, 0, None).await.expect_err("remote"),
    );
    // Bad input: a query vector of the wrong dimension.
    let mut bad = search(vector(0), 1, 0, None);
    bad.queries = Arc::new(vec![1.0; DIM + 1]);
    let local = c.querynode.search(bad.clone()).await.expect_err("local");
    assert_eq!(local.kind(), ErrorKind::InvalidArgument);
    same(
        "search dim",
        local,
        c.query.search(bad).await.expect_err("remote"),
    );

    // Nobody listening: the transport failure is retryable.
    let addr = support::unused_addr().await;
    let nobody = RemoteData::new(&addr, ClientConfig::default()).expect("client");
    let e = nobody.last_ts(SHARD).await.expect_err("nobody there");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let nobody = RemoteQuery::new(&addr, ClientConfig::default()).expect("client");
    let e = nobody
        .count(SHARD, 0, None)
        .await
        .expect_err("nobody there");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        RemoteData::new("not a uri \u{0}", ClientConfig::default()).is_err(),
        "a bad address is refused"
    );
    c.stop().await;
}

/// A querynode of the previous release: its `CountRequest` has no filter
/// (it drops the field it does not know) and its reply says nothing of one.
struct PreviousRelease(QueryServiceImpl);

#[tonic::async_trait]
impl QueryService for PreviousRelease {
    async fn search(&self, r: Request<SearchRequest>) -> Result<Response<SearchReply>, Status> {
        self.0.search(r).await
    }
    async fn query(&self, r: Request<QueryRequest>) -> Result<Response<QueryReply>, Status> {
        self.0.query(r).await
    }
    async fn count(&self, r: Request<CountRequest>) -> Result<Response<CountReply>, Status> {
        let mut r = r.into_inner();
        r.filter = None;
        let mut reply = self.0.count(Request::new(r)).await?;
        reply.get_mut().filtered = false;
        Ok(reply)
    }
    async fn digest(&self, r: Request<DigestRequest>) -> Result<Response<DigestReply>, Status> {
        self.0.digest(r).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_count_through_a_querynode_of_the_previous_release_counts_the_rows_it_returns() {
    let c = Cluster::start().await;
    let ts = c
        .data
        .write(SHARD, WriteOp::Upsert(batch(&(0..20).collect::<Vec<_>>())))
        .await
        .expect("write");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let old = PreviousRelease(QueryServiceImpl::new(c.querynode.clone()));
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(QueryServiceServer::new(old))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                stop.clone().cancelled_owned(),
            ),
    );
    let query = RemoteQuery::new(&addr.to_string(), ClientConfig::default()).expect("client");
    let filter = support::filter("age >= 15 and age != 17");
    assert_eq!(query.count(SHARD, ts, None).await.expect("count"), 20);
    let counted = query.count(SHARD, ts, Some(filter)).await;
    assert_eq!(counted.expect("filtered count"), 4, "not the unfiltered 20");
    stop.cancel();
    server.await.expect("server task").expect("server");
    c.stop().await;
}
