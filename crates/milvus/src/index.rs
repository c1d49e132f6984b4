//! CreateIndex / DescribeIndex / DropIndex, as Milvus does them.
//!
//! A collection created through this door has no index (LoadState NotLoad,
//! load refused) until CreateIndex sets one on its vector field, with any
//! metric and type, whether or not it holds rows: coord records the index
//! under a new version and each shard's owner re-indexes the segments built
//! under another one in the background (DescribeIndex reports the rows done;
//! until a segment is rebuilt, searches read it exactly). A second, different
//! index is refused (65535, as Milvus); DropIndex needs a released collection
//! and really drops it. CreateIndex on a scalar field is accepted and ignored
//! (filters scan; no scalar indexes yet).

use quiver_api::{AlterTarget, IndexKind, IndexSpec};
use quiver_common::{Error, Metric, Result};
use quiver_proto::common::{IndexState, KeyValuePair, Status};
use quiver_proto::milvus::{
    AlterIndexRequest, CreateIndexRequest, DescribeIndexRequest, DescribeIndexResponse,
    DropIndexRequest, IndexDescription,
};

use super::MilvusFront;
use super::ddl::DEFAULT_INDEX;
use super::schema::kv;
use super::status::{failure, status_of, success};

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
        "FLAT" | "BIN_FLAT" => Ok(IndexKind::Flat),
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
        "AUTOINDEX" | "IVF_FLAT" | "IVF_SQ8" | "IVF_PQ" | "SCANN" | "DISKANN" | "BIN_IVF_FLAT" => {
            Ok(DEFAULT_INDEX)
        }
        other => Err(Error::invalid(
            "index_type",
            format!(
                "{other:?} is not supported (FLAT, HNSW, AUTOINDEX, IVF_FLAT, IVF_SQ8, IVF_PQ, SCANN, DISKANN, BIN_FLAT, BIN_IVF_FLAT are)"
            ),
        )),
    }
}

impl MilvusFront {
    pub(crate) async fn create_index(&self, req: CreateIndexRequest) -> Status {
        status_of(self.create_index_inner(req).await)
    }

    async fn create_index_inner(&self, req: CreateIndexRequest) -> Result<()> {
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
            _ => {
                return Err(Error::invalid(
                    "metric_type",
                    "metric type not set for vector index (one of L2, IP, COSINE; HAMMING, JACCARD for binary vectors)",
                ));
            }
        };
        let index = index_kind(&req.extra_params)?;
        self.catalog
            .set_index(
                &req.collection_name,
                IndexSpec {
                    kind: index,
                    metric,
                    index_name: req.index_name,
                },
            )
            .await
    }

    pub(crate) async fn describe_index(&self, req: DescribeIndexRequest) -> DescribeIndexResponse {
        match self.describe_index_inner(&req) {
            Ok(d) => DescribeIndexResponse {
                status: Some(success()),
                index_descriptions: vec![d],
            },
            Err(e) => DescribeIndexResponse {
                status: Some(failure(&e)),
                ..Default::default()
            },
        }
    }

    fn describe_index_inner(&self, req: &DescribeIndexRequest) -> Result<IndexDescription> {
        let info = self.proxy.describe(&req.collection_name)?;
        let vector = info.schema.vector_field().name.clone();
        let not_found = || {
            Error::IndexNotFound(format!(
                "collection={}, field={:?}, index={:?}",
                info.schema.name, req.field_name, req.index_name
            ))
        };
        if info.index == IndexKind::None || (!req.field_name.is_empty() && req.field_name != vector)
        {
            return Err(not_found());
        }
        let progress = self
            .catalog
            .index_progress(&req.collection_name)
            .unwrap_or_default();
        // One vector index per collection; scalar indexes are accepted and
        // not built, so any index name answers with the vector index (as
        // pymilvus waits for a scalar index it created).
        let index_name = if !req.index_name.is_empty() {
            req.index_name.clone()
        } else if progress.index_name.is_empty() {
            vector.clone()
        } else {
            progress.index_name.clone()
        };
        // Milvus lists an index's parameters as flat pairs next to its type
        // (pymilvus: `describe_index(..)["M"]`); `params` also carries them as
        // JSON, the form they were created with (read by `quiver-client`).
        let mut params = vec![kv("metric_type", info.metric.as_str())];
        match info.index {
            IndexKind::Flat | IndexKind::None => {
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
        for (k, v) in &progress.properties {
            params.push(kv(k, v.clone()));
        }
        let done = progress.pending_segments == 0;
        Ok(IndexDescription {
            index_name,
            index_id: info.id as i64,
            params,
            field_name: vector,
            indexed_rows: progress.indexed_rows as i64,
            total_rows: progress.total_rows as i64,
            pending_index_rows: (progress.total_rows - progress.indexed_rows) as i64,
            state: if done {
                IndexState::Finished
            } else {
                IndexState::InProgress
            } as i32,
            ..Default::default()
        })
    }

    /// Sets and deletes properties of the vector index (`mmap.enabled`),
    /// reported by DescribeIndex.
    pub(crate) async fn alter_index(&self, req: AlterIndexRequest) -> Status {
        let run = async {
            let info = self.proxy.describe(&req.collection_name)?;
            let set = req
                .extra_params
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect();
            self.catalog
                .alter(&info.schema.name, AlterTarget::Index, set, req.delete_keys)
                .await
        };
        status_of(run.await)
    }

    /// Drops the vector index of a released collection (a collection
    /// without one: nothing to do, as Milvus answers).
    pub(crate) async fn drop_index(&self, req: DropIndexRequest) -> Status {
        let run = async {
            let info = self.proxy.describe(&req.collection_name)?;
            let vector = &info.schema.vector_field().name;
            if !req.field_name.is_empty() && req.field_name != *vector {
                return Ok(());
            }
            if info.index == IndexKind::None {
                return Ok(());
            }
            self.catalog.drop_index(&req.collection_name).await
        };
        status_of(run.await)
    }
}
