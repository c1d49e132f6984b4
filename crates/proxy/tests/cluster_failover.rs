//! The front door's cluster clients against real nodes on loopback: one
//! datanode and two querynodes (replicas of the one shard), each behind its
//! gRPC server, sharing an object store and an in-memory coord. The
//! querynodes follow the shard through `ClusterData` too, so they find a
//! moved owner the same way the front door does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use quiver_api::{
    CollectionInfo, DataClient, IndexKind, NodeAddr, QueryClient, ShardId, ShardQuery, ShardRoute,
    ShardSearch, WriteOp,
};
use quiver_common::{
    CollectionSchema, Column, DataType, ErrorKind, FieldSchema, Metric, PrimaryKey, Result,
    RowBatch, ScalarValue, Timestamp,
};
use quiver_datanode::{DataNode, DataNodeConfig};
use quiver_proxy::{ClusterClientConfig, ClusterData, ClusterQuery, StaticRoutes};
use quiver_querynode::{QueryNode, QueryNodeConfig};
use quiver_rpc::{ClientConfig, DataServiceImpl, QueryServiceImpl, RemoteData, RemoteQuery};
use quiver_storage::ObjectStore;
use quiver_test_util::{MemMeta, wait_for};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

const DIM: usize = 4;
const SHARD: ShardId = ShardId {
    collection_id: 1,
    shard: 0,
};

fn info() -> CollectionInfo {
    let mut schema = CollectionSchema::simple("c", DIM as u32);
    schema.fields.push(FieldSchema::new("age", DataType::Int64));
    CollectionInfo {
        id: SHARD.collection_id,
        schema,
        shards: 1,
        metric: Metric::L2,
        index: IndexKind::Flat,
        index_version: 0,
        field_indexes: Default::default(),
        scalar_indexes: Default::default(),
    }
}

fn vector(pk: i64) -> Vec<f32> {
    vec![pk as f32, 1.0, (pk % 7) as f32, -1.0]
}

fn batch(pks: &[i64]) -> RowBatch {
    RowBatch {
        pks: pks.iter().map(|p| PrimaryKey::Int(*p)).collect(),
        vectors: quiver_common::Vectors::f32(DIM, pks.iter().flat_map(|p| vector(*p)).collect()),
        columns: vec![Column {
            name: "age".into(),
            values: pks.iter().map(|p| ScalarValue::Int(*p)).collect(),
        }],
    }
}

fn search(shard: ShardId, q: Vec<f32>, k: usize, guarantee_ts: Timestamp) -> ShardSearch {
    ShardSearch {
        shard,
        queries: Arc::new(q),
        k,
        ef: 64,
        rerank: 0,
        guarantee_ts,
        filter: None,
        output_fields: vec!["age".into()],
        with_vectors: false,
        anns: None,
    }
}

/// How long a test waits for a condition.
const WAIT: Duration = Duration::from_secs(60);

/// One gRPC server task.
struct Served {
    stop: CancellationToken,
    task: JoinHandle<std::result::Result<(), tonic::transport::Error>>,
}

impl Served {
    async fn stop(self) {
        self.stop.cancel();
        match tokio::time::timeout(Duration::from_secs(20), self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("server failed: {e}"),
            Ok(Err(e)) => panic!("server task: {e}"),
            Err(_) => panic!("server did not stop within 20 s"),
        }
    }
}

fn serve(
    listener: TcpListener,
    router: tonic::transport::server::Router,
    stop: CancellationToken,
) -> Served {
    let token = stop.clone();
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                token.cancelled_owned(),
            )
            .await
    });
    Served { stop, task }
}

struct DataProc {
    node: Arc<DataNode>,
    server: Served,
    addr: NodeAddr,
}

struct QueryProc {
    _node: Arc<QueryNode>,
    shutdown: CancellationToken,
    server: Option<Served>,
    addr: NodeAddr,
}

struct Cluster {
    dir: tempfile::TempDir,
    store: Arc<dyn ObjectStore>,
    meta: Arc<MemMeta>,
    routes: Arc<StaticRoutes>,
    datanode: Option<DataProc>,
    querynodes: Vec<QueryProc>,
    /// The front door's clients.
    data: Arc<ClusterData>,
    query: Arc<ClusterQuery>,
}

async fn bind() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    (l, addr)
}

async fn start_datanode(
    store: &Arc<dyn ObjectStore>,
    meta: &Arc<MemMeta>,
    id: u64,
    listener: TcpListener,
) -> DataProc {
    let addr = listener.local_addr().expect("addr").to_string();
    let node = Arc::new(
        DataNode::new(
            DataNodeConfig::default(),
            store.clone(),
            meta.clone(),
            CancellationToken::new(),
        )
        .expect("datanode"),
    );
    node.open_shard(&info(), SHARD.shard)
        .await
        .expect("open shard");
    let stop = CancellationToken::new();
    let router = Server::builder().add_service(
        DataServiceImpl::new(node.clone(), node.clone())
            .with_shutdown(stop.clone())
            .into_service(),
    );
    let server = serve(listener, router, stop);
    DataProc {
        node,
        server,
        addr: NodeAddr { id, addr },
    }
}

impl Cluster {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = quiver_storage::open_local_store(&dir.path().join("objects")).expect("store");
        let meta = Arc::new(MemMeta::default());
        let routes = Arc::new(StaticRoutes::new());
        let (listener, _) = bind().await;
        let datanode = start_datanode(&store, &meta, 1, listener).await;
        routes.set(
            SHARD,
            ShardRoute {
                owner: Some(datanode.addr.clone()),
                replicas: vec![],
            },
        );
        let mut querynodes = Vec::new();
        for i in 0..2u64 {
            let feed =
                ClusterData::new(routes.clone(), ClusterClientConfig::default()).expect("feed");
            let shutdown = CancellationToken::new();
            let node = Arc::new(
                QueryNode::new(
                    QueryNodeConfig {
                        node_id: 10 + i,
                        cache_dir: dir.path().join(format!("cache{i}")),
                        search_threads: 1,
                        ..QueryNodeConfig::default()
                    },
                    store.clone(),
                    Arc::new(feed),
                    shutdown.clone(),
                )
                .expect("querynode"),
            );
            node.load_shard(&info(), SHARD.shard)
                .await
                .expect("load shard");
            let (listener, addr) = bind().await;
            let router =
                Server::builder().add_service(QueryServiceImpl::new(node.clone()).into_service());
            querynodes.push(QueryProc {
                _node: node,
                shutdown,
                server: Some(serve(listener, router, CancellationToken::new())),
                addr: NodeAddr { id: 10 + i, addr },
            });
        }
        routes.set(
            SHARD,
            ShardRoute {
                owner: Some(datanode.addr.clone()),
                replicas: querynodes.iter().map(|q| q.addr.clone()).collect(),
            },
        );
        let data = Arc::new(
            ClusterData::new(routes.clone(), ClusterClientConfig::default()).expect("data"),
        );
        let query = Arc::new(
            ClusterQuery::new(routes.clone(), ClusterClientConfig::default()).expect("query"),
        );
        Self {
            dir,
            store,
            meta,
            routes,
            datanode: Some(datanode),
            querynodes,
            data,
            query,
        }
    }

    fn owner_addr(&self) -> String {
        match &self.datanode {
            Some(d) => d.addr.addr.clone(),
            None => panic!("the datanode is down"),
        }
    }

    /// Stops the datanode's server (its streams end) and the datanode.
    async fn kill_datanode(&mut self) -> NodeAddr {
        let d = self.datanode.take().expect("a running datanode");
        d.server.stop().await;
        d.node.close().await;
        d.addr
    }

    async fn start_datanode_on(&mut self, id: u64, listener: TcpListener) {
        assert!(self.datanode.is_none(), "the datanode is running");
        self.datanode = Some(start_datanode(&self.store, &self.meta, id, listener).await);
    }

    fn set_owner(&self, owner: Option<NodeAddr>) {
        self.routes.set(
            SHARD,
            ShardRoute {
                owner,
                replicas: self.querynodes.iter().map(|q| q.addr.clone()).collect(),
            },
        );
    }

    async fn stop(mut self) {
        if self.datanode.is_some() {
            self.kill_datanode().await;
        }
        for q in &mut self.querynodes {
            q.shutdown.cancel();
            if let Some(s) = q.server.take() {
                s.stop().await;
            }
        }
        drop(self.dir);
    }
}

fn pk_of(hit: &quiver_api::ShardHit) -> i64 {
    match hit.pk {
        PrimaryKey::Int(i) => i,
        PrimaryKey::Str(_) => -1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn searches_survive_a_querynode_stopping() {
    let mut c = Cluster::start().await;
    let rows: Vec<i64> = (0..50).collect();
    let ts = c
        .data
        .write(SHARD, WriteOp::Upsert(batch(&rows)))
        .await
        .expect("write");

    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let searcher = {
        let (query, ok, failed, done) = (c.query.clone(), ok.clone(), failed.clone(), done.clone());
        tokio::spawn(async move {
            let mut i = 0i64;
            while !done.load(Ordering::SeqCst) {
                let pk = i % 50;
                i += 1;
                match query.search(search(SHARD, vector(pk), 1, ts)).await {
                    Ok(hits) => {
                        let got: Vec<i64> = hits[0].iter().map(pk_of).collect();
                        if got != [pk] {
                            failed.lock().push(format!("search {pk}: got {got:?}"));
                        }
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => failed.lock().push(format!("search {pk}: {e}")),
                }
            }
        })
    };
    wait_for(WAIT, "searches on both replicas", || {
        let n = ok.load(Ordering::SeqCst);
        async move { n >= 40 }
    })
    .await
    .expect("waited");

    // Querynode 0 goes away while the searches run.
    let gone = c.querynodes[0].server.take().expect("server");
    gone.stop().await;
    c.querynodes[0].shutdown.cancel();
    let at_stop = ok.load(Ordering::SeqCst);
    let direct =
        RemoteQuery::new(&c.querynodes[0].addr.addr, ClientConfig::default()).expect("client");
    let e = direct
        .count(SHARD, ts, None)
        .await
        .expect_err("querynode 0 is down");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");

    wait_for(WAIT, "searches after the stop", || {
        let n = ok.load(Ordering::SeqCst);
        async move { n >= at_stop + 100 }
    })
    .await
    .expect("waited");
    done.store(true, Ordering::SeqCst);
    searcher.await.expect("searcher");
    let failed = failed.lock().clone();
    assert!(failed.is_empty(), "failed searches: {failed:?}");

    // Counts and queries go to the remaining replica too.
    assert_eq!(c.query.count(SHARD, ts, None).await.expect("count"), 50);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_ride_out_a_datanode_restart_and_a_move() {
    let mut c = Cluster::start().await;
    let acked = Arc::new(Mutex::new(Vec::<(i64, Timestamp)>::new()));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (data, acked, failed, done) =
            (c.data.clone(), acked.clone(), failed.clone(), done.clone());
        tokio::spawn(async move {
            let mut pk = 0i64;
            let mut slowest = Duration::ZERO;
            while !done.load(Ordering::SeqCst) {
                let started = Instant::now();
                match data.write(SHARD, WriteOp::Upsert(batch(&[pk]))).await {
                    Ok(ts) => acked.lock().push((pk, ts)),
                    Err(e) => failed.lock().push(format!("write {pk}: {e}")),
                }
                slowest = slowest.max(started.elapsed());
                pk += 1;
            }
            slowest
        })
    };
    let acked_at_least = |n: usize| {
        let acked = acked.clone();
        move || {
            let len = acked.lock().len();
            async move { len >= n }
        }
    };
    wait_for(WAIT, "writes before the restart", acked_at_least(20))
        .await
        .expect("waited");

    // 1. The datanode stops and comes back on the same address.
    let addr = c.kill_datanode().await;
    let direct = RemoteData::new(&addr.addr, ClientConfig::default()).expect("client");
    let e = direct
        .last_ts(SHARD)
        .await
        .expect_err("the datanode is down");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let before = acked.lock().len();
    let listener = TcpListener::bind(&addr.addr).await.expect("rebind");
    c.start_datanode_on(addr.id, listener).await;
    wait_for(
        WAIT,
        "writes after the restart",
        acked_at_least(before + 20),
    )
    .await
    .expect("waited");

    // 2. The shard moves to a datanode on another address: for a while it
    // has no owner, then the new one.
    c.set_owner(None);
    let old = c.kill_datanode().await;
    let before = acked.lock().len();
    let (listener, _) = bind().await;
    c.start_datanode_on(old.id + 1, listener).await;
    assert_ne!(c.owner_addr(), old.addr);
    let new_owner = c.datanode.as_ref().map(|d| d.addr.clone());
    c.set_owner(new_owner);
    wait_for(WAIT, "writes after the move", acked_at_least(before + 20))
        .await
        .expect("waited");

    done.store(true, Ordering::SeqCst);
    let slowest = writer.await.expect("writer");
    let failed = failed.lock().clone();
    assert!(failed.is_empty(), "failed writes: {failed:?}");
    assert!(
        slowest < Duration::from_secs(10),
        "slowest write {slowest:?}"
    );

    // Every acknowledged row is there, on both replicas' answers.
    let acked = acked.lock().clone();
    let last = c.data.last_ts(SHARD).await.expect("last_ts");
    assert!(acked.iter().all(|(_, ts)| *ts <= last));
    let pks: Vec<PrimaryKey> = acked.iter().map(|(pk, _)| PrimaryKey::Int(*pk)).collect();
    for _ in 0..2 {
        assert_eq!(
            c.query.count(SHARD, last, None).await.expect("count"),
            acked.len() as u64
        );
        let got = c
            .query
            .query(ShardQuery {
                shard: SHARD,
                guarantee_ts: last,
                filter: None,
                pks: Some(pks.clone()),
                limit: pks.len(),
                output_fields: vec!["age".into()],
                with_vectors: false,
            })
            .await
            .expect("query");
        let mut got: Vec<i64> = got.rows.iter().map(pk_of).collect();
        got.sort_unstable();
        let want: Vec<i64> = acked.iter().map(|(pk, _)| *pk).collect();
        assert_eq!(got, want, "acknowledged rows missing");
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_fail_at_once_and_unserved_shards_at_the_deadline() {
    let c = Cluster::start().await;
    let ts = c
        .data
        .write(SHARD, WriteOp::Upsert(batch(&[1, 2, 3])))
        .await
        .expect("write");

    // Bad input is not retried (the deadline is 10 s).
    let started = Instant::now();
    let mut bad = search(SHARD, vector(1), 1, ts);
    bad.queries = Arc::new(vec![1.0; DIM + 1]);
    let e = c.query.search(bad).await.expect_err("bad dim");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "retried bad input"
    );

    // A shard nobody serves: Unavailable naming the shard, at the deadline.
    let short = ClusterClientConfig {
        request_deadline: Duration::from_millis(400),
        ..ClusterClientConfig::default()
    };
    let data = ClusterData::new(c.routes.clone(), short.clone()).expect("data");
    let query = ClusterQuery::new(c.routes.clone(), short.clone()).expect("query");
    let unknown = ShardId {
        collection_id: 99,
        shard: 0,
    };
    for (what, routed) in [("unrouted", false), ("routed to nodes without it", true)] {
        if routed {
            c.routes.set(
                unknown,
                ShardRoute {
                    owner: c.datanode.as_ref().map(|d| d.addr.clone()),
                    replicas: c.querynodes.iter().map(|q| q.addr.clone()).collect(),
                },
            );
        }
        let started = Instant::now();
        let e = data
            .write(unknown, WriteOp::Delete(vec![PrimaryKey::Int(1)]))
            .await
            .expect_err(what);
        let took = started.elapsed();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{what}: {e}");
        assert!(e.to_string().contains("shard 99/0"), "{what}: {e}");
        assert!(took >= Duration::from_millis(400), "{what}: {took:?}");
        assert!(took < Duration::from_secs(5), "{what}: {took:?}");
        let started = Instant::now();
        let e = query.count(unknown, 0, None).await.expect_err(what);
        let took = started.elapsed();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{what}: {e}");
        assert!(e.to_string().contains("shard 99/0"), "{what}: {e}");
        assert!(took >= Duration::from_millis(400), "{what}: {took:?}");
        assert!(took < Duration::from_secs(5), "{what}: {took:?}");
    }

    // A request waiting for an owner goes as soon as the route names one.
    let routes = Arc::new(StaticRoutes::new());
    let data =
        Arc::new(ClusterData::new(routes.clone(), ClusterClientConfig::default()).expect("data"));
    let started = Instant::now();
    let pending = {
        let data = data.clone();
        tokio::spawn(async move { data.write(SHARD, WriteOp::Upsert(batch(&[4]))).await })
    };
    wait_for(WAIT, "the write to be waiting", || {
        let waited = started.elapsed();
        async move { waited >= Duration::from_millis(100) }
    })
    .await
    .expect("waited");
    assert!(!pending.is_finished(), "wrote without an owner");
    routes.set(
        SHARD,
        ShardRoute {
            owner: c.datanode.as_ref().map(|d| d.addr.clone()),
            replicas: vec![],
        },
    );
    let ts4 = pending.await.expect("task").expect("write once routed");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(c.query.count(SHARD, ts4, None).await.expect("count"), 4);
    c.stop().await;
}

/// The catalog of one fixed collection (the front door's view of coord).
struct OneCollection;

#[async_trait]
impl quiver_api::CatalogClient for OneCollection {
    async fn create_collection(
        &self,
        _req: quiver_api::CreateCollection,
    ) -> Result<CollectionInfo> {
        Err(quiver_common::Error::Internal("fixed catalog".into()))
    }
    async fn drop_collection(&self, _name: &str) -> Result<()> {
        Err(quiver_common::Error::Internal("fixed catalog".into()))
    }
    fn collection(&self, name_or_alias: &str) -> Option<CollectionInfo> {
        (name_or_alias == "c").then(info)
    }
    fn collections(&self) -> Vec<CollectionInfo> {
        vec![info()]
    }
    async fn allocate_ids(&self, _count: u64) -> Result<u64> {
        Err(quiver_common::Error::Internal("fixed catalog".into()))
    }
    async fn create_alias(&self, _alias: &str, _collection: &str) -> Result<()> {
        Err(quiver_common::Error::Internal("fixed catalog".into()))
    }
    async fn alter_alias(&self, _alias: &str, _collection: &str) -> Result<()> {
        Err(quiver_common::Error::Internal("fixed catalog".into()))
    }
    async fn drop_alias(&self, _alias: &str) -> Result<()> {
        Err(quiver_common::Error::Internal("fixed catalog".into()))
    }
    fn aliases(&self) -> Vec<(String, String)> {
        vec![]
    }
    async fn load_collection(&self, _name: &str, _replicas: Option<u32>) -> Result<()> {
        Ok(())
    }
    async fn release_collection(&self, _name: &str) -> Result<()> {
        Err(quiver_common::Error::Internal("fixed catalog".into()))
    }
    fn is_loaded(&self, _name: &str) -> bool {
        true
    }
}

/// The real front door over the cluster clients: inserts and strong
/// searches run while a querynode stops and the datanode restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_proxy_serves_through_a_querynode_stop_and_a_datanode_restart() {
    let mut c = Cluster::start().await;
    let proxy = Arc::new(quiver_proxy::Proxy::new(
        Arc::new(OneCollection),
        c.data.clone(),
        c.query.clone(),
        quiver_proxy::Limits::default(),
    ));
    let inserted = Arc::new(AtomicUsize::new(0));
    let searched = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let client = {
        let (proxy, inserted, searched, failed, done) = (
            proxy.clone(),
            inserted.clone(),
            searched.clone(),
            failed.clone(),
            done.clone(),
        );
        tokio::spawn(async move {
            let mut pk = 0i64;
            while !done.load(Ordering::SeqCst) {
                match proxy.insert("c", batch(&[pk])).await {
                    Ok(_) => {
                        inserted.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => failed.lock().push(format!("insert {pk}: {e}")),
                }
                let req = quiver_proxy::SearchRequest {
                    collection: "c".into(),
                    queries: vector(pk),
                    k: 1,
                    ef: None,
                    refine_k: None,
                    filter: None,
                    consistency: quiver_proxy::Consistency::Strong,
                    output_fields: vec![],
                    with_vectors: false,
                    anns_field: None,
                    sparse: None,
                };
                match proxy.search(req).await {
                    Ok(hits) if hits[0].first().map(pk_of) == Some(pk) => {
                        searched.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(hits) => failed.lock().push(format!("search {pk}: {hits:?}")),
                    Err(e) => failed.lock().push(format!("search {pk}: {e}")),
                }
                pk += 1;
            }
        })
    };
    let searched_at_least = |n: usize| {
        let searched = searched.clone();
        move || {
            let len = searched.load(Ordering::SeqCst);
            async move { len >= n }
        }
    };
    wait_for(WAIT, "requests before the faults", searched_at_least(20))
        .await
        .expect("waited");
    let gone = c.querynodes[1].server.take().expect("server");
    gone.stop().await;
    c.querynodes[1].shutdown.cancel();
    let before = searched.load(Ordering::SeqCst);
    wait_for(
        WAIT,
        "requests after the querynode stop",
        searched_at_least(before + 20),
    )
    .await
    .expect("waited");
    let addr = c.kill_datanode().await;
    let listener = TcpListener::bind(&addr.addr).await.expect("rebind");
    c.start_datanode_on(addr.id, listener).await;
    let before = searched.load(Ordering::SeqCst);
    wait_for(
        WAIT,
        "requests after the datanode restart",
        searched_at_least(before + 20),
    )
    .await
    .expect("waited");
    done.store(true, Ordering::SeqCst);
    client.await.expect("client");
    let failed = failed.lock().clone();
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    let n = inserted.load(Ordering::SeqCst) as u64;
    let count = proxy
        .count("c", quiver_proxy::Consistency::Strong)
        .await
        .expect("count");
    assert_eq!(count, n, "acknowledged inserts missing");
    c.stop().await;
}
