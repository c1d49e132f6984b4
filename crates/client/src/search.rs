//! Vector search: query vectors in a placeholder group, top-k hits per query.

use prost::Message;
use quiver_proto::common::{PlaceholderGroup, PlaceholderType, PlaceholderValue};
use quiver_proto::milvus::SearchRequest;

use crate::Client;
use crate::collection::kv;
use crate::error::{Error, Result, check, grpc};
use crate::value::{Id, Row, decode_ids, decode_rows};

/// How to search.
#[derive(Clone, Debug)]
pub struct SearchParams {
    /// Hits per query (top-k).
    pub k: usize,
    /// HNSW beam width; `None`: the server's default.
    pub ef: Option<usize>,
    /// A filter expression (`age > 3 and color == "red"`).
    pub filter: Option<String>,
    /// Fields returned with each hit.
    pub output_fields: Vec<String>,
    /// How fresh the answer must be; `Strong` unless set.
    pub level: ReadLevel,
}

/// The consistency a read asks for (Milvus's consistency levels).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadLevel {
    /// Everything acknowledged before the read started.
    #[default]
    Strong,
    /// Everything older than the server's staleness bound; a stalled shard
    /// answers with what it has after a short delay.
    Bounded,
    /// Whatever the serving replica has applied.
    Eventually,
    /// The collection's own default level (Bounded unless created otherwise).
    CollectionDefault,
}

impl SearchParams {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            ef: None,
            filter: None,
            output_fields: Vec::new(),
            level: ReadLevel::Strong,
        }
    }

    pub fn with_level(mut self, level: ReadLevel) -> Self {
        self.level = level;
        self
    }

    pub fn with_ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }

    pub fn with_filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    pub fn with_output_fields(mut self, fields: &[&str]) -> Self {
        self.output_fields = fields.iter().map(|f| f.to_string()).collect();
        self
    }
}

/// One search hit.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub id: Id,
    /// The metric's score: squared distance for L2 (smaller is nearer),
    /// similarity for IP and COSINE (larger is nearer).
    pub distance: f32,
    /// The requested output fields.
    pub fields: Row,
}

impl Client {
    /// Searches with `queries` (row-major, `dim` floats each); returns the
    /// hits of each query, nearest first, at `params.level` (Strong unless set).
    pub async fn search(
        &self,
        collection: &str,
        queries: &[f32],
        dim: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Hit>>> {
        Ok(self
            .search_served(collection, queries, dim, params)
            .await?
            .0)
    }

    /// [`Client::search`], and the collection that answered: through a
    /// mirrored alias, the collection of the pair that served the search
    /// (the standby when the target did not answer in time); otherwise the
    /// name searched.
    pub async fn search_served(
        &self,
        collection: &str,
        queries: &[f32],
        dim: usize,
        params: &SearchParams,
    ) -> Result<(Vec<Vec<Hit>>, String)> {
        if dim == 0 || queries.is_empty() || !queries.len().is_multiple_of(dim) {
            return Err(Error::invalid(
                "queries",
                format!(
                    "{} floats are not whole query vectors of dim {dim}",
                    queries.len()
                ),
            ));
        }
        let nq = queries.len() / dim;
        let group = PlaceholderGroup {
            placeholders: vec![PlaceholderValue {
                tag: "$0".to_string(),
                r#type: PlaceholderType::FloatVector as i32,
                values: queries
                    .chunks_exact(dim)
                    .map(|q| q.iter().flat_map(|f| f.to_le_bytes()).collect())
                    .collect(),
            }],
        };
        let mut search_params = vec![kv("topk", params.k.to_string())];
        if let Some(ef) = params.ef {
            search_params.push(kv("params", format!("{{\"ef\": {ef}}}")));
        }
        let r = grpc(
            "Search",
            self.stub()
                .search(SearchRequest {
                    collection_name: collection.to_string(),
                    dsl: params.filter.clone().unwrap_or_default(),
                    dsl_type: 1, // BoolExprV1
                    placeholder_group: group.encode_to_vec(),
                    output_fields: params.output_fields.clone(),
                    search_params,
                    nq: nq as i64,
                    consistency_level: level_to_proto(params.level) as i32,
                    use_default_consistency: params.level == ReadLevel::CollectionDefault,
                    ..Default::default()
                })
                .await,
        )?;
        check("Search", r.status)?;
        let served_by = r.collection_name;
        let Some(res) = r.results else {
            return Ok((vec![Vec::new(); nq], served_by));
        };
        let ids = decode_ids(res.ids);
        let topks: Vec<usize> = res
            .topks
            .iter()
            .map(|k| usize::try_from(*k).unwrap_or(0))
            .collect();
        if ids.len() != res.scores.len()
            || topks.len() != nq
            || topks.iter().sum::<usize>() != ids.len()
        {
            return Err(Error::protocol(
                "Search",
                format!(
                    "{} ids, {} scores, topks {:?} for {nq} queries",
                    ids.len(),
                    res.scores.len(),
                    res.topks
                ),
            ));
        }
        let mut fields = decode_rows("Search", &res.fields_data, ids.len())?.into_iter();
        let mut hits = ids.into_iter().zip(res.scores).map(|(id, distance)| Hit {
            id,
            distance,
            fields: fields.next().unwrap_or_default(),
        });
        let hits = topks
            .into_iter()
            .map(|k| hits.by_ref().take(k).collect())
            .collect();
        Ok((hits, served_by))
    }
}

pub(crate) fn level_to_proto(level: ReadLevel) -> quiver_proto::common::ConsistencyLevel {
    use quiver_proto::common::ConsistencyLevel as L;
    match level {
        ReadLevel::Strong => L::Strong,
        ReadLevel::Bounded | ReadLevel::CollectionDefault => L::Bounded,
        ReadLevel::Eventually => L::Eventually,
    }
}
