//! CreateIndex / DescribeIndex / DropIndex.
//!
//! Quiver indexes the vector field of every collection from its creation
//! (HNSW or flat) with the collection's metric. CreateIndex therefore:
//! - on the vector field, with the collection's metric: accepted (the index
//!   parameters are applied when the collection is still empty);
//! - with another metric on an empty collection: the collection is re-created
//!   with that metric (Milvus's quick setup creates, then indexes with COSINE);
//! - with another metric once data exists: rejected, naming `metric_type`;
//! - on a scalar field: accepted and ignored (filters scan; no scalar indexes).
//!
//! DropIndex is accepted and ignored: the vector index is part of the collection.
//!
//! The re-creation is not atomic. Writes through this front door wait while
//! it runs (they hold `index_ddl` shared), so none is lost between the
//! emptiness check and the drop; a write through another proxy of a cluster
//! at that moment could be, and a crash between drop and create loses the
//! (empty) collection and its aliases. Clients create the index before
//! writing, so this window is only hit by concurrent misuse; a coord-side
//! "set metric while empty" command would close it.

use quiver_api::{CollectionInfo, CreateCollection, IndexKind};
use quiver_common::{Error, Metric, Result};
use quiver_proto::common::{IndexState, KeyValuePair, Status};
use quiver_proto::milvus::{
    CreateIndexRequest, DescribeIndexRequest, DescribeIndexResponse, DropIndexRequest,
    IndexDescription,
};

use super::MilvusFront;
use super::ddl::DEFAULT_INDEX;
use super::schema::kv;
use super::status::{failure, status_of, success};
use quiver_proxy::Consistency;

fn param<'a>(params: &'a [KeyValuePair], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|kv| kv.key.eq_ignore_ascii_case(key))
        .map(|kv| kv.value.as_str())
}

/// An index parameter from the `params` JSON or a top-level pair.
fn index_param(
    params: &[KeyValuePair],
    json: &serde_json::Value,
    key: &str,
) -> Result<Option<usize>> {
    let v = match json.get(key) {
        Some(v) => Some(v.to_string()),
        None => param(params, key).map(str::to_string),
    };
    v.map(|v| {
        v.trim_matches('"').parse::<usize>().map_err(|_| {
            Error::invalid(
                format!("params.{key}"),
                format!("must be a positive integer (got {v})"),
            )
        })
    })
    .transpose()
}

/// The index kind a CreateIndex request asks for.
fn index_kind(params: &[KeyValuePair]) -> Result<IndexKind> {
    let json = match param(params, "params") {
        Some(p) if !p.trim().is_empty() => serde_json::from_str(p)
            .map_err(|e| Error::invalid("params", format!("must be a JSON object: {e}")))?,
        _ => serde_json::Value::Null,
    };
    let index_type = param(params, "index_type").unwrap_or("AUTOINDEX");
    match index_type.to_ascii_uppercase().as_str() {
        "FLAT" => Ok(IndexKind::Flat),
        "HNSW" => {
            let m = index_param(params, &json, "M")?.unwrap_or(16);
            let ef = index_param(params, &json, "efConstruction")?.unwrap_or(200);
            if !(2..=2048).contains(&m) || ef == 0 {
                return Err(Error::invalid(
                    "params.M",
                    format!("M must be in 2..=2048 and efConstruction >= 1 (got {m}, {ef})"),
                ));
            }
            Ok(IndexKind::Hnsw {
                m,
                ef_construction: ef,
            })
        }
        // Served by HNSW with default parameters.
        "AUTOINDEX" | "IVF_FLAT" | "IVF_SQ8" | "IVF_PQ" | "SCANN" | "DISKANN" => Ok(DEFAULT_INDEX),
        other => Err(Error::invalid(
            "index_type",
            format!(
                "{other:?} is not supported for float vectors (FLAT, HNSW, AUTOINDEX, IVF_FLAT, IVF_SQ8, IVF_PQ, SCANN, DISKANN are)"
            ),
        )),
    }
}

impl MilvusFront {
    pub(crate) async fn create_index(&self, req: CreateIndexRequest) -> Status {
        status_of(self.create_index_inner(req).await)
    }

    async fn create_index_inner(&self, req: CreateIndexRequest) -> Result<()> {
        let _exclusive = self.index_ddl.write().await;
        let info = self.proxy.describe(&req.collection_name)?;
        let vector = &info.schema.vector_field().name;
        if !req.field_name.is_empty() && req.field_name != *vector {
            return match info.schema.field(&req.field_name) {
                Some(_) => Ok(()),
                None => Err(Error::invalid(
                    "field_name",
                    format!("no field {:?} in the collection", req.field_name),
                )),
            };
        }
        let metric = match param(&req.extra_params, "metric_type") {
            Some(m) if !m.is_empty() => Metric::parse(m)?,
            _ => info.metric,
        };
        let index = index_kind(&req.extra_params)?;
        if metric == info.metric && index == info.index {
            return Ok(());
        }
        let rows = self
            .proxy
            .count(&info.schema.name, Consistency::Strong)
            .await?;
        if rows == 0 {
            return self.recreate(&info, metric, index).await;
        }
        if metric != info.metric {
            return Err(Error::invalid(
                "metric_type",
                format!(
                    "collection {:?} already holds data indexed with {}; its metric cannot change (got {}): create the index before inserting",
                    info.schema.name,
                    info.metric.as_str(),
                    metric.as_str()
                ),
            ));
        }
        tracing::info!(collection = %info.schema.name, ?index, current = ?info.index,
            "CreateIndex on a non-empty collection keeps its existing index parameters");
        Ok(())
    }

    /// Re-creates an empty collection with another metric / index.
    async fn recreate(
        &self,
        info: &CollectionInfo,
        metric: Metric,
        index: IndexKind,
    ) -> Result<()> {
        let name = &info.schema.name;
        let aliases = self.aliases_of(name);
        for a in &aliases {
            self.catalog.drop_alias(a).await?;
        }
        self.proxy.drop_collection(name).await?;
        self.proxy
            .create_collection(CreateCollection {
                schema: info.schema.clone(),
                shards: info.shards,
                metric,
                index,
            })
            .await?;
        for a in &aliases {
            self.catalog.create_alias(a, name).await?;
        }
        Ok(())
    }

    pub(crate) async fn describe_index(&self, req: DescribeIndexRequest) -> DescribeIndexResponse {
        let info = match self.proxy.describe(&req.collection_name) {
            Ok(info) => info,
            Err(e) => {
                return DescribeIndexResponse {
                    status: Some(failure(&e)),
                    ..Default::default()
                };
            }
        };
        let vector = info.schema.vector_field().name.clone();
        if !req.field_name.is_empty() && req.field_name != vector {
            return DescribeIndexResponse {
                status: Some(Status {
                    error_code: quiver_proto::common::ErrorCode::IndexNotExist as i32,
                    code: 700,
                    reason: format!(
                        "index not found: collection {:?} has one index, {vector:?} on field {vector:?}",
                        info.schema.name
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            };
        }
        let rows = self
            .proxy
            .count(&info.schema.name, Consistency::Eventually)
            .await
            .unwrap_or(0) as i64;
        // Milvus lists an index's parameters as flat pairs next to its type
        // (pymilvus: `describe_index(..)["M"]`); `params` also carries them as
        // JSON, the form they were created with (read by `quiver-client`).
        let mut params = vec![kv("metric_type", info.metric.as_str())];
        match info.index {
            IndexKind::Flat => {
                params.push(kv("index_type", "FLAT"));
                params.push(kv("params", "{}"));
            }
            IndexKind::Hnsw { m, ef_construction } => {
                params.push(kv("index_type", "HNSW"));
                params.push(kv("M", m.to_string()));
                params.push(kv("efConstruction", ef_construction.to_string()));
                params.push(kv(
                    "params",
                    format!("{{\"M\":{m},\"efConstruction\":{ef_construction}}}"),
                ));
            }
        }
        DescribeIndexResponse {
            status: Some(success()),
            index_descriptions: vec![IndexDescription {
                // One index per collection: it answers to any index name.
                index_name: if req.index_name.is_empty() {
                    vector.clone()
                } else {
                    req.index_name
                },
                index_id: info.id as i64,
                params,
                field_name: vector,
                indexed_rows: rows,
                total_rows: rows,
                state: IndexState::Finished as i32,
                ..Default::default()
            }],
        }
    }

    pub(crate) fn drop_index(&self, req: DropIndexRequest) -> Status {
        match self.proxy.describe(&req.collection_name) {
            Ok(_) => success(),
            Err(e) => failure(&e),
        }
    }
}
