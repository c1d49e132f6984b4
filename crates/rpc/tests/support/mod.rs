//! A datanode and a querynode, each behind its own gRPC server on loopback,
//! sharing an object store and an in-memory coord.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use quiver_api::{
    CollectionInfo, IndexKind, RowPredicate, ShardFeed, ShardId, ShardSearch, Subscription,
};
use quiver_common::{
    CollectionSchema, Column, DataType, FieldSchema, Metric, PrimaryKey, Result, RowBatch,
    ScalarValue, Timestamp,
};
use quiver_datanode::{DataNode, DataNodeConfig};
use quiver_querynode::{QueryNode, QueryNodeConfig};
use quiver_rpc::{ClientConfig, DataServiceImpl, QueryServiceImpl, RemoteData, RemoteQuery};
use quiver_storage::ObjectStore;
use quiver_test_util::MemMeta;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

pub const DIM: usize = 4;
pub const SHARD: ShardId = ShardId {
    collection_id: 1,
    shard: 0,
};

/// The datanode's feed, counting subscriptions (each one is a querynode
/// (re)subscribing through the network).
struct CountingFeed {
    node: Arc<DataNode>,
    count: Arc<AtomicUsize>,
}

#[async_trait]
impl ShardFeed for CountingFeed {
    async fn subscribe(&self, shard: ShardId) -> Result<Subscription> {
        let sub = self.node.subscribe(shard).await?;
        self.count.fetch_add(1, Ordering::SeqCst);
        Ok(sub)
    }
}

/// One gRPC server task.
pub struct Served {
    stop: CancellationToken,
    task: JoinHandle<std::result::Result<(), tonic::transport::Error>>,
}

impl Served {
    /// Stops accepting, ends the shard streams, drains, and waits.
    pub async fn stop(self) {
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

pub fn info() -> CollectionInfo {
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

pub fn vector(pk: i64) -> Vec<f32> {
    vec![pk as f32, 1.0, (pk % 7) as f32, -1.0]
}

/// Rows with `age = pk`.
pub fn batch(pks: &[i64]) -> RowBatch {
    RowBatch {
        pks: pks.iter().map(|p| PrimaryKey::Int(*p)).collect(),
        vectors: quiver_common::Vectors::f32(DIM, pks.iter().flat_map(|p| vector(*p)).collect()),
        columns: vec![Column {
            name: "age".into(),
            values: pks.iter().map(|p| ScalarValue::Int(*p)).collect(),
        }],
    }
}

pub fn search(
    q: Vec<f32>,
    k: usize,
    guarantee_ts: Timestamp,
    filter: Option<Arc<dyn RowPredicate>>,
) -> ShardSearch {
    ShardSearch {
        shard: SHARD,
        queries: Arc::new(q),
        k,
        ef: 64,
        rerank: 0,
        guarantee_ts,
        filter,
        output_fields: vec!["age".into()],
        with_vectors: true,
        anns: None,
    }
}

pub fn filter(text: &str) -> Arc<dyn RowPredicate> {
    let e = quiver_expr::parse(text).expect("parse");
    Arc::new(quiver_expr::compile(&e, &info().schema, &HashMap::new()).expect("compile"))
}

/// How long a test waits for a condition.
pub const WAIT: Duration = Duration::from_secs(30);

/// An address nobody listens on (bound, then released).
pub async fn unused_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr.to_string()
}

/// A TCP relay that can drop its connections (a crash or a network cut)
/// or stop forwarding bytes while keeping them open (a frozen process).
pub struct Relay {
    pub addr: SocketAddr,
    paused: watch::Sender<bool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Connections that ended (either side closed).
    pub closed: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("addr");
        let (paused, _) = watch::channel(false);
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let closed = Arc::new(AtomicUsize::new(0));
        let accept = {
            let (paused, conns, closed) = (paused.clone(), conns.clone(), closed.clone());
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        continue;
                    };
                    let (p, closed) = (paused.subscribe(), closed.clone());
                    conns.lock().push(tokio::spawn(async move {
                        pipe(inbound, outbound, p).await;
                        closed.fetch_add(1, Ordering::SeqCst);
                    }));
                }
            })
        };
        Relay {
            addr,
            paused,
            conns,
            closed,
            accept,
        }
    }

    /// Drops every open connection.
    pub fn cut(&self) {
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }

    /// Stops (or resumes) forwarding bytes; connections stay open.
    pub fn pause(&self, on: bool) {
        self.paused.send_replace(on);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn pipe(a: TcpStream, b: TcpStream, paused: watch::Receiver<bool>) {
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    tokio::select! {
        _ = copy(ar, bw, paused.clone()) => {}
        _ = copy(br, aw, paused) => {}
    }
}

/// Forwards bytes in order; while paused it keeps reading (so it sees the
/// other side close) but holds the bytes back.
async fn copy(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut paused: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    let mut pending = Vec::new();
    loop {
        tokio::select! {
            n = from.read(&mut buf) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                pending.extend_from_slice(&buf[..n]);
            }
            r = async { paused.wait_for(|p| !*p).await.is_ok() }, if !pending.is_empty() => {
                if !r {
                    return Ok(());
                }
                to.write_all(&pending).await?;
                pending.clear();
            }
        }
    }
}

struct DataProc {
    node: Arc<DataNode>,
    server: Served,
}

pub struct Cluster {
    dir: tempfile::TempDir,
    store: Arc<dyn ObjectStore>,
    meta: Arc<MemMeta>,
    data_addr: SocketAddr,
    datanode: Option<DataProc>,
    pub subscribes: Arc<AtomicUsize>,
    pub querynode: Arc<QueryNode>,
    querynode_shutdown: CancellationToken,
    query_server: Served,
    /// The datanode through the network (also the querynode's feed unless
    /// it goes through `relay`).
    pub data: RemoteData,
    /// Between the querynode and the datanode, when asked for.
    pub relay: Option<Relay>,
    /// The querynode through the network.
    pub query: RemoteQuery,
}

/// How the querynode reaches the datanode.
#[derive(Default)]
pub struct Options {
    /// Through a [`Relay`] (to cut or freeze the connection).
    pub relay: bool,
    /// The querynode's client settings.
    pub feed: ClientConfig,
}

impl Cluster {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = quiver_storage::open_local_store(&dir.path().join("objects")).expect("store");
        let meta = Arc::new(MemMeta::default());
        let subscribes = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let data_addr = listener.local_addr().expect("addr");
        let datanode = start_datanode(&store, &meta, &subscribes, listener).await;

        let data =
            RemoteData::new(&data_addr.to_string(), ClientConfig::default()).expect("data client");
        let relay = match options.relay {
            true => Some(Relay::start(data_addr).await),
            false => None,
        };
        let feed_addr = relay.as_ref().map_or(data_addr, |r| r.addr);
        let feed = RemoteData::new(&feed_addr.to_string(), options.feed).expect("feed client");
        let querynode_shutdown = CancellationToken::new();
        let querynode = Arc::new(
            QueryNode::new(
                QueryNodeConfig {
                    cache_dir: dir.path().join("cache"),
                    search_threads: 2,
                    ..QueryNodeConfig::default()
                },
                store.clone(),
                Arc::new(feed),
                querynode_shutdown.clone(),
            )
            .expect("querynode"),
        );
        querynode
            .load_shard(&info(), SHARD.shard)
            .await
            .expect("load shard through the network");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let query_addr = listener.local_addr().expect("addr");
        let router =
            Server::builder().add_service(QueryServiceImpl::new(querynode.clone()).into_service());
        let query_server = serve(listener, router, CancellationToken::new());
        let query = RemoteQuery::new(&query_addr.to_string(), ClientConfig::default())
            .expect("query client");
        Self {
            dir,
            store,
            meta,
            data_addr,
            datanode: Some(datanode),
            subscribes,
            querynode,
            querynode_shutdown,
            query_server,
            data,
            relay,
            query,
        }
    }

    /// The datanode itself (for comparing local and remote answers).
    pub fn datanode(&self) -> Arc<DataNode> {
        match &self.datanode {
            Some(d) => d.node.clone(),
            None => panic!("the datanode is down"),
        }
    }

    /// Stops the datanode's server (its streams end) and the datanode.
    pub async fn kill_datanode(&mut self) {
        let Some(d) = self.datanode.take() else {
            return;
        };
        d.server.stop().await;
        d.node.close().await;
    }

    /// A new datanode on the same address, store and coord: it replays the
    /// WAL, and subscribers find it where the old one was.
    pub async fn restart_datanode(&mut self) {
        assert!(self.datanode.is_none(), "the datanode is running");
        let listener = TcpListener::bind(self.data_addr).await.expect("rebind");
        self.datanode =
            Some(start_datanode(&self.store, &self.meta, &self.subscribes, listener).await);
    }

    pub async fn stop(mut self) {
        self.kill_datanode().await;
        self.querynode_shutdown.cancel();
        self.query_server.stop().await;
        drop(self.dir);
    }
}

async fn start_datanode(
    store: &Arc<dyn ObjectStore>,
    meta: &Arc<MemMeta>,
    subscribes: &Arc<AtomicUsize>,
    listener: TcpListener,
) -> DataProc {
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
    let feed = Arc::new(CountingFeed {
        node: node.clone(),
        count: subscribes.clone(),
    });
    let stop = CancellationToken::new();
    let router = Server::builder().add_service(
        DataServiceImpl::new(node.clone(), feed)
            .with_shutdown(stop.clone())
            .into_service(),
    );
    DataProc {
        node,
        server: serve(listener, router, stop),
    }
}
