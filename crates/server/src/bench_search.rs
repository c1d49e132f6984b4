//! `quiver bench search`: a load generator over the Milvus gRPC protocol
//! (Quiver or Milvus 2.3+). N clients, each on its own connection, send
//! one-vector searches back to back for a fixed time; the report is q/s,
//! latency percentiles, errors and, given ground truth, recall@k.
//!
//! Requests are encoded once per query vector and sent as bytes, so a
//! search costs the client only what tonic and decoding the answer cost.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::{BufMut, Bytes};
use clap::{Args, ValueEnum};
use prost::Message;
use quiver_client::{Client, ConnectOptions, DataType, FieldInfo, Metric, Transport};
use quiver_proto::common::{
    ConsistencyLevel, KeyValuePair, PlaceholderGroup, PlaceholderType, PlaceholderValue,
};
use quiver_proto::milvus::{SearchRequest, SearchResults};
use quiver_proto::schema::i_ds::IdField;
use serde_json::json;
use tonic::Status;
use tonic::client::Grpc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;

use crate::bench_util::{percentile, report};

const SEARCH_PATH: &str = "/milvus.proto.milvus.MilvusService/Search";

#[derive(Debug, Args)]
pub struct SearchBenchArgs {
    /// The server's Milvus gRPC address (host:port, http:// or https://).
    #[arg(long, default_value = quiver_client::DEFAULT_ADDR, env = "QUIVER_ADDR")]
    addr: String,
    /// The collection (or alias) searched.
    #[arg(long)]
    collection: String,
    /// Query vectors (.fvecs), cycled through.
    #[arg(long)]
    query: PathBuf,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    clients: u32,
    /// Seconds measured (fractions allowed).
    #[arg(long, default_value = "10", value_parser = seconds)]
    duration: Duration,
    /// Seconds of searches before the measured window (not reported).
    #[arg(long, default_value = "0", value_parser = seconds)]
    warmup: Duration,
    /// A filter expression sent with every search.
    #[arg(long)]
    filter: Option<String>,
    /// Hits per query (top-k).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=16384))]
    k: u32,
    /// The HNSW search beam width (search param `ef`).
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u32).range(1..))]
    ef: u32,
    /// Search param `refine_k` (Milvus 2.5, HNSW_SQ: at least `refine_k × k`
    /// rows re-ranked exactly); not sent when absent.
    #[arg(long)]
    refine_k: Option<f64>,
    /// l2, ip or cosine, sent as `metric_type` (default: none sent; the
    /// server uses the index's).
    #[arg(long, value_parser = |s: &str| s.parse::<Metric>())]
    metric: Option<Metric>,
    /// The vector field searched (default: the collection's one float-vector field).
    #[arg(long)]
    anns_field: Option<String>,
    /// Ground-truth neighbour ids (.ivecs, one row per query, nearest
    /// first; ids are the collection's Int64 primary keys): reports recall@k.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Consistency level of every search (`default`: the collection's).
    #[arg(long, value_enum, default_value_t = Level::Bounded)]
    level: Level,
    /// user:password, sent with every call.
    #[arg(long, env = "QUIVER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The CA certificate (PEM) that signed the server's certificate: TLS.
    #[arg(long, env = "QUIVER_CLIENT_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("expected a number of seconds >= 0, got {s:?}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Level {
    Strong,
    Bounded,
    Eventually,
    Default,
}

/// Sends pre-encoded `SearchRequest` bytes, decodes `SearchResults`.
#[derive(Debug, Clone, Copy, Default)]
struct RawSearchCodec;

impl Codec for RawSearchCodec {
    type Encode = Bytes;
    type Decode = SearchResults;
    type Encoder = RawSearchCodec;
    type Decoder = RawSearchCodec;

    fn encoder(&mut self) -> Self {
        *self
    }

    fn decoder(&mut self) -> Self {
        *self
    }
}

impl Encoder for RawSearchCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawSearchCodec {
    type Item = SearchResults;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<SearchResults>, Status> {
        SearchResults::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("decoding SearchResults: {e}")))
    }
}

/// Ground truth: the first `k` ids of each query's row.
struct Truth {
    ids: Vec<i32>,
    dim: usize,
    k: usize,
}

impl Truth {
    /// How many of the returned ids are among query `q`'s true top k.
    fn hits(&self, q: usize, r: &SearchResults) -> usize {
        let truth = self.ids.get(q * self.dim..q * self.dim + self.k);
        let found = r.results.as_ref().and_then(|d| d.ids.as_ref());
        match (truth, found.and_then(|i| i.id_field.as_ref())) {
            (Some(truth), Some(IdField::IntId(ids))) => ids
                .data
                .iter()
                .take(self.k)
                .filter(|id| truth.iter().any(|t| i64::from(*t) == **id))
                .count(),
            _ => 0,
        }
    }
}

/// What one client measured.
#[derive(Default)]
struct ClientStats {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<(Instant, String)>,
    hits: u64,
}

pub async fn run_cli(args: SearchBenchArgs) -> Result<()> {
    if args.duration.is_zero() {
        bail!("--duration must be > 0");
    }
    let (dim, queries) = quiver_index::bench::read_fvecs(&args.query)
        .map_err(|e| anyhow::anyhow!("--query: {e}"))?;
    if queries.is_empty() {
        bail!("--query: {} holds no vectors", args.query.display());
    }
    let nq = queries.len() / dim;
    let truth = match &args.truth {
        Some(path) => Some(Arc::new(read_truth(path, nq, args.k as usize)?)),
        None => None,
    };
    let options = ConnectOptions {
        token: args.token.clone(),
        tls_ca: args.tls_ca.clone(),
        ..Default::default()
    };
    let first = Client::connect_with(&args.addr, &options).await?;
    let field = vector_field(&first, &args, dim, truth.is_some()).await?;
    let requests = encode_requests(&args, &field, &queries, dim);

    // One search first: a bad filter or a released collection is an error
    // before the run, not a run of errors.
    let request = requests.first().cloned().unwrap_or_default();
    search(&mut grpc(&first), request)
        .await
        .map_err(|e| anyhow::anyhow!("the first search failed: {e}"))?;
    let mut conns = Vec::with_capacity(args.clients as usize);
    for _ in 0..args.clients {
        conns.push(grpc(&Client::connect_with(&args.addr, &options).await?));
    }

    let measure_from = Instant::now() + args.warmup;
    let until = measure_from + args.duration;
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, conn)| {
            // Clients start spread over the queries.
            let first_query = c * nq / args.clients as usize;
            let (requests, truth) = (requests.clone(), truth.clone());
            tokio::spawn(client_loop(
                conn,
                requests,
                truth,
                first_query,
                measure_from,
                until,
            ))
        })
        .collect();
    let mut all = ClientStats::default();
    for t in tasks {
        let s = t.await.context("a client task failed")?;
        all.latencies.extend(s.latencies);
        all.errors += s.errors;
        all.hits += s.hits;
        if let Some((at, e)) = s.first_error
            && all.first_error.as_ref().is_none_or(|(t, _)| at < *t)
        {
            all.first_error = Some((at, e));
        }
    }
    // Searches in flight at the deadline finish and count.
    let wall = measure_from.elapsed().as_secs_f64();
    print_report(&args, &field, nq, dim, truth.is_some(), all, wall);
    Ok(())
}

/// The ground truth for `nq` queries, checked to hold `k` ids per query.
fn read_truth(path: &Path, nq: usize, k: usize) -> Result<Truth> {
    let (dim, ids) =
        quiver_index::bench::read_ivecs(path).map_err(|e| anyhow::anyhow!("--truth: {e}"))?;
    let rows = ids.len() / dim.max(1);
    if dim < k || rows < nq {
        bail!(
            "--truth: {} has {rows} rows of {dim} ids; need {nq} rows (one per query) of at least {k}",
            path.display()
        );
    }
    Ok(Truth { ids, dim, k })
}

/// The float-vector field searched (checked against the queries), by
/// DescribeCollection: a missing collection is an error here.
async fn vector_field(
    client: &Client,
    args: &SearchBenchArgs,
    dim: usize,
    with_truth: bool,
) -> Result<FieldInfo> {
    let name = &args.collection;
    let info = client
        .describe_collection(name)
        .await
        .with_context(|| format!("collection {name:?}"))?;
    if with_truth && info.primary_field().map(|f| f.data_type) != Some(DataType::Int64) {
        bail!("--truth needs a collection with an Int64 primary key (ids are compared)");
    }
    let mut vectors = info
        .fields
        .into_iter()
        .filter(|f| f.data_type == DataType::FloatVector);
    let field = match &args.anns_field {
        Some(want) => vectors.find(|f| &f.name == want).with_context(|| {
            format!("--anns-field: collection {name:?} has no float-vector field {want:?}")
        })?,
        None => match (vectors.next(), vectors.next()) {
            (Some(f), None) => f,
            (None, _) => bail!("collection {name:?} has no float-vector field"),
            (Some(_), Some(_)) => bail!(
                "collection {name:?} has several float-vector fields: name one with --anns-field"
            ),
        },
    };
    if field.dim != Some(dim) {
        bail!(
            "--query has {dim}-d vectors; field {:?} of collection {name:?} has dimension {}",
            field.name,
            field.dim.map_or("unknown".into(), |d| d.to_string())
        );
    }
    Ok(field)
}

/// The search's `params` JSON: `ef`, and `refine_k` when given.
fn search_json(args: &SearchBenchArgs) -> serde_json::Value {
    let mut params = json!({ "ef": args.ef });
    if let Some(r) = args.refine_k {
        params["refine_k"] = json!(r);
    }
    params
}

/// One encoded one-vector `SearchRequest` per query.
fn encode_requests(
    args: &SearchBenchArgs,
    field: &FieldInfo,
    queries: &[f32],
    dim: usize,
) -> Arc<[Bytes]> {
    let kv = |key: &str, value: String| KeyValuePair {
        key: key.into(),
        value,
    };
    let mut params = vec![
        kv("anns_field", field.name.clone()),
        kv("topk", args.k.to_string()),
        kv("params", search_json(args).to_string()),
        kv("round_decimal", "-1".into()),
    ];
    if let Some(m) = args.metric {
        params.push(kv("metric_type", m.as_str().into()));
    }
    let level = match args.level {
        Level::Strong => ConsistencyLevel::Strong,
        Level::Bounded | Level::Default => ConsistencyLevel::Bounded,
        Level::Eventually => ConsistencyLevel::Eventually,
    };
    queries
        .chunks_exact(dim)
        .map(|q| {
            let group = PlaceholderGroup {
                placeholders: vec![PlaceholderValue {
                    tag: "$0".into(),
                    r#type: PlaceholderType::FloatVector as i32,
                    values: vec![q.iter().flat_map(|f| f.to_le_bytes()).collect()],
                }],
            };
            let request = SearchRequest {
                collection_name: args.collection.clone(),
                dsl: args.filter.clone().unwrap_or_default(),
                dsl_type: 1, // BoolExprV1
                placeholder_group: group.encode_to_vec(),
                search_params: params.clone(),
                nq: 1,
                consistency_level: level as i32,
                use_default_consistency: args.level == Level::Default,
                ..Default::default()
            };
            Bytes::from(request.encode_to_vec())
        })
        .collect()
}

fn print_report(
    args: &SearchBenchArgs,
    field: &FieldInfo,
    nq: usize,
    dim: usize,
    with_truth: bool,
    all: ClientStats,
    wall: f64,
) {
    let mut lat = all.latencies;
    lat.sort_unstable();
    let ok = lat.len() as u64;
    let requests = ok + all.errors;
    let qps = ok as f64 / wall.max(1e-9);
    let mean_ms = lat.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / ok.max(1) as f64;
    let k = args.k;
    let recall = (with_truth && ok > 0).then(|| all.hits as f64 / (ok as f64 * f64::from(k)));
    let first_error = all.first_error.map(|(_, e)| e);
    let [p50, p99, p999] = [0.5, 0.99, 0.999].map(|p| percentile(&lat, p));
    let filter = args.filter.as_deref().map(|f| format!(", filter {f:?}"));
    let mut text = format!(
        "bench search {:?} at {} ({} clients, {wall:.2} s, k={k} ef={}{}): {requests} requests, \
         {qps:.1} q/s, latency p50 {p50:.3} ms, p99 {p99:.3} ms, p99.9 {p999:.3} ms, \
         mean {mean_ms:.3} ms, {} errors",
        args.collection,
        args.addr,
        args.clients,
        args.ef,
        filter.unwrap_or_default(),
        all.errors
    );
    if let Some(r) = recall {
        text.push_str(&format!(", recall@{k} {r:.4}"));
    }
    if let Some(e) = &first_error {
        text.push_str(&format!("\nfirst error: {e}"));
    }
    report(
        args.json,
        json!({
            "addr": args.addr, "collection": args.collection, "clients": args.clients,
            "duration_s": wall, "warmup_s": args.warmup.as_secs_f64(), "qps": qps,
            "p50_ms": p50, "p99_ms": p99, "p999_ms": p999, "mean_ms": mean_ms,
            "requests": requests, "ok": ok, "errors": all.errors, "first_error": first_error,
            "recall": recall, "k": k, "ef": args.ef, "refine_k": args.refine_k,
            "filter": args.filter,
            "level": format!("{:?}", args.level).to_lowercase(), "anns_field": field.name,
            "queries": nq, "dim": dim,
        }),
        text,
    );
}

/// A raw gRPC client over `client`'s connection.
fn grpc(client: &Client) -> Grpc<Transport> {
    Grpc::new(client.transport()).max_decoding_message_size(512 << 20)
}

/// One search; a gRPC error or a failed Milvus status is the error message.
async fn search(conn: &mut Grpc<Transport>, request: Bytes) -> Result<SearchResults, String> {
    conn.ready().await.map_err(|e| {
        let e: tonic::codegen::StdError = e.into();
        format!("Search: connection not ready: {e}")
    })?;
    let r = conn
        .unary(
            tonic::Request::new(request),
            PathAndQuery::from_static(SEARCH_PATH),
            RawSearchCodec,
        )
        .await
        .map_err(|s| format!("Search: gRPC error {}: {}", s.code(), s.message()))?
        .into_inner();
    match &r.status {
        Some(s) if s.code != 0 || s.error_code != 0 => {
            let reason = if s.reason.is_empty() {
                &s.detail
            } else {
                &s.reason
            };
            // Older servers set only the legacy error_code.
            Err(match s.code {
                0 => format!("Search: {reason} (error_code {})", s.error_code),
                code => format!("Search: {reason} (Milvus code {code})"),
            })
        }
        _ => Ok(r),
    }
}

/// Searches back to back until `until`; what started before `measure_from`
/// is not recorded.
async fn client_loop(
    mut conn: Grpc<Transport>,
    requests: Arc<[Bytes]>,
    truth: Option<Arc<Truth>>,
    mut next: usize,
    measure_from: Instant,
    until: Instant,
) -> ClientStats {
    let mut stats = ClientStats {
        latencies: Vec::with_capacity(1 << 16),
        ..Default::default()
    };
    loop {
        let started = Instant::now();
        if started >= until {
            break;
        }
        let q = next % requests.len();
        next = next.wrapping_add(1);
        let r = search(&mut conn, requests[q].clone()).await;
        let took = started.elapsed();
        if started < measure_from {
            continue;
        }
        match r {
            Ok(r) => {
                stats.latencies.push(took);
                if let Some(t) = &truth {
                    stats.hits += t.hits(q, &r) as u64;
                }
            }
            Err(e) => {
                stats.errors += 1;
                stats.first_error.get_or_insert((started, e));
            }
        }
    }
    stats
}
