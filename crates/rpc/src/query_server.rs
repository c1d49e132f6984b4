//! `QueryService` over a querynode's [`QueryClient`].

use std::sync::Arc;

use quiver_api::{DigestRequest as ShardDigestRequest, QueryClient, ShardQuery, ShardSearch};
use quiver_common::{PrimaryKey, Result};
use quiver_proto::node::query_service_server::{QueryService, QueryServiceServer};
use quiver_proto::node::{
    CountReply, CountRequest, DigestReply, DigestRequest, QueryReply, QueryRequest, SearchReply,
    SearchRequest,
};
use tonic::{Request, Response, Status};

use crate::codec::{decode_arg, decode_filter, encode, shard_id, to_usize};
use crate::config::MAX_MESSAGE_BYTES;
use crate::server::reply;

/// The querynode's side of the data path, as a tonic service.
pub struct QueryServiceImpl {
    query: Arc<dyn QueryClient>,
}

impl QueryServiceImpl {
    pub fn new(query: Arc<dyn QueryClient>) -> Self {
        Self { query }
    }

    /// The service to add to a tonic `Router`, with Quiver's message limits.
    pub fn into_service(self) -> QueryServiceServer<Self> {
        QueryServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    async fn search_shard(&self, r: SearchRequest) -> Result<SearchReply> {
        let req = ShardSearch {
            shard: shard_id(r.shard)?,
            queries: Arc::new(r.queries),
            k: to_usize("k", r.k)?,
            ef: to_usize("ef", r.ef)?,
            rerank: to_usize("rerank", r.rerank)?,
            guarantee_ts: r.guarantee_ts,
            filter: decode_filter(r.filter.as_deref())?,
            output_fields: r.output_fields,
            with_vectors: r.with_vectors,
            anns: match r.anns_field.is_empty() {
                true => None,
                false => Some(quiver_api::AnnsField {
                    name: r.anns_field,
                    metric: quiver_common::Metric::parse(&r.metric)?,
                    sparse: match r.sparse.as_deref() {
                        Some(b) => Some(Arc::new(decode_arg("sparse", b)?)),
                        None => None,
                    },
                }),
            },
        };
        let hits = self.query.search(req).await?;
        Ok(SearchReply {
            hits: encode("search hits", &hits)?,
        })
    }

    async fn query_shard(&self, r: QueryRequest) -> Result<QueryReply> {
        let pks = match r.pks.as_deref() {
            Some(b) => Some(decode_arg::<Vec<PrimaryKey>>("pks", b)?),
            None => None,
        };
        let req = ShardQuery {
            shard: shard_id(r.shard)?,
            guarantee_ts: r.guarantee_ts,
            filter: decode_filter(r.filter.as_deref())?,
            pks,
            limit: to_usize("limit", r.limit)?,
            output_fields: r.output_fields,
            with_vectors: r.with_vectors,
        };
        let result = self.query.query(req).await?;
        Ok(QueryReply {
            rows: encode("query rows", &result.rows)?,
        })
    }
}

#[tonic::async_trait]
impl QueryService for QueryServiceImpl {
    async fn search(&self, req: Request<SearchRequest>) -> Result<Response<SearchReply>, Status> {
        reply("Search", self.search_shard(req.into_inner()).await)
    }

    async fn query(&self, req: Request<QueryRequest>) -> Result<Response<QueryReply>, Status> {
        reply("Query", self.query_shard(req.into_inner()).await)
    }

    async fn count(&self, req: Request<CountRequest>) -> Result<Response<CountReply>, Status> {
        let r = req.into_inner();
        let result = async {
            let filter = decode_filter(r.filter.as_deref())?;
            let filtered = filter.is_some();
            let count = (self.query)
                .count(shard_id(r.shard)?, r.guarantee_ts, filter)
                .await?;
            Ok(CountReply { count, filtered })
        }
        .await;
        reply("Count", result)
    }

    async fn digest(&self, req: Request<DigestRequest>) -> Result<Response<DigestReply>, Status> {
        let r = req.into_inner();
        let result = async {
            let req: ShardDigestRequest = decode_arg("request", &r.request)?;
            let digest = self.query.digest(req).await?;
            Ok(DigestReply {
                digest: encode("digest", &digest)?,
            })
        }
        .await;
        reply("Digest", result)
    }
}
