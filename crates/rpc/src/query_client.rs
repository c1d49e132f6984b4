//! [`RemoteQuery`]: a querynode across the network, as [`QueryClient`].

use std::sync::Arc;

use async_trait::async_trait;
use quiver_api::{
    DigestRequest as ShardDigestRequest, QueryClient, QueryResult, RowPredicate, ShardDigest,
    ShardHit, ShardId, ShardQuery, ShardSearch,
};
use quiver_common::{Result, Timestamp};
use quiver_metrics::trace::{Propagate, Traced};
use quiver_proto::node::query_service_client::QueryServiceClient;
use quiver_proto::node::{CountRequest, DigestRequest, QueryRequest, SearchRequest};
use tonic::transport::Channel;

use crate::client::Conn;
use crate::codec::{decode_reply, encode, encode_filter, shard_ref};
use crate::config::{ClientConfig, MAX_MESSAGE_BYTES};

/// A querynode reached over gRPC. Cheap to clone; connects lazily and
/// reconnects after failures. Filters travel encoded
/// ([`quiver_api::RowPredicate::encode`]); a request whose filter cannot be
/// encoded fails with InvalidArgument instead of running unfiltered.
#[derive(Clone)]
pub struct RemoteQuery {
    conn: Arc<Conn>,
}

impl RemoteQuery {
    /// A client of the querynode at `addr` (`host:port`). Must be called
    /// inside a Tokio runtime; does not connect yet.
    pub fn new(addr: &str, config: ClientConfig) -> Result<Self> {
        Ok(Self {
            conn: Arc::new(Conn::new(addr, config)?),
        })
    }

    pub fn addr(&self) -> &str {
        &self.conn.addr
    }

    fn client(&self) -> QueryServiceClient<Traced<Channel>> {
        QueryServiceClient::with_interceptor(self.conn.channel.clone(), Propagate)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

#[async_trait]
impl QueryClient for RemoteQuery {
    async fn search(&self, req: ShardSearch) -> Result<Vec<Vec<ShardHit>>> {
        let wire = SearchRequest {
            shard: Some(shard_ref(req.shard)),
            queries: req.queries.as_ref().clone(),
            k: req.k as u64,
            ef: req.ef as u64,
            rerank: req.rerank as u64,
            guarantee_ts: req.guarantee_ts,
            filter: encode_filter(req.filter.as_ref())?,
            output_fields: req.output_fields,
            with_vectors: req.with_vectors,
            anns_field: req
                .anns
                .as_ref()
                .map(|a| a.name.clone())
                .unwrap_or_default(),
            metric: (req.anns.as_ref())
                .map(|a| a.metric.as_str().to_string())
                .unwrap_or_default(),
            sparse: match req.anns.as_ref().and_then(|a| a.sparse.as_deref()) {
                Some(s) => Some(encode("sparse queries", s)?),
                None => None,
            },
        };
        let c = &self.conn;
        let r = c
            .call(
                "Search",
                c.config.call_timeout(),
                self.client().search(wire),
            )
            .await?;
        decode_reply("search hits", &r.hits)
    }

    async fn query(&self, req: ShardQuery) -> Result<QueryResult> {
        let pks = match &req.pks {
            Some(pks) => Some(encode("pks", pks)?),
            None => None,
        };
        let wire = QueryRequest {
            shard: Some(shard_ref(req.shard)),
            guarantee_ts: req.guarantee_ts,
            filter: encode_filter(req.filter.as_ref())?,
            pks,
            limit: req.limit as u64,
            output_fields: req.output_fields,
            with_vectors: req.with_vectors,
        };
        let c = &self.conn;
        let r = c
            .call("Query", c.config.call_timeout(), self.client().query(wire))
            .await?;
        Ok(QueryResult {
            rows: decode_reply("query rows", &r.rows)?,
        })
    }

    async fn count(
        &self,
        shard: ShardId,
        guarantee_ts: Timestamp,
        filter: Option<Arc<dyn RowPredicate>>,
    ) -> Result<u64> {
        let wire = CountRequest {
            shard: Some(shard_ref(shard)),
            guarantee_ts,
            filter: encode_filter(filter.as_ref())?,
        };
        let c = &self.conn;
        let r = c
            .call("Count", c.config.call_timeout(), self.client().count(wire))
            .await?;
        match filter {
            // A querynode of an older release counted every row: count the
            // rows its Query returns instead.
            Some(filter) if !r.filtered => {
                let rows = self
                    .query(ShardQuery {
                        shard,
                        guarantee_ts,
                        filter: Some(filter),
                        pks: None,
                        limit: usize::MAX,
                        output_fields: Vec::new(),
                        with_vectors: false,
                    })
                    .await?;
                Ok(rows.rows.len() as u64)
            }
            _ => Ok(r.count),
        }
    }

    async fn digest(&self, req: ShardDigestRequest) -> Result<ShardDigest> {
        let wire = DigestRequest {
            request: encode("digest request", &req)?,
        };
        let c = &self.conn;
        let r = c
            .call(
                "Digest",
                c.config.call_timeout(),
                self.client().digest(wire),
            )
            .await?;
        decode_reply("digest", &r.digest)
    }
}
