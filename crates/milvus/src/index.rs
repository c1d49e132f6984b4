//! CreateIndex / DescribeIndex / DropIndex, as Milvus does them.
//!
//! A collection created through this door has no index (LoadState NotLoad,
//! load refused) until CreateIndex sets one on its vector field, with any
//! metric and type, whether or not it holds rows: coord records the index
//! under a new version and each shard's owner re-indexes the segments built
//! under another one in the background (DescribeIndex reports the rows done;
//! until a segment is rebuilt, searches read it exactly). A second, different
//! index is refused (65535, as Milvus); DropIndex needs a released collection
//! and really drops it. CreateIndex on a scalar field records a scalar index
//! (INVERTED, STL_SORT, BITMAP, Trie, AUTOINDEX; its kind checked against
//! the field's type by coord), reported by DescribeIndex and dropped by
//! DropIndex; querynodes build what filters need per segment on first use.

use quiver_api::{
    AlterTarget, IndexKind, IndexSpec, JSON_CAST_TYPES, JsonPathIndex, ScalarIndex,
    ScalarIndexKind, json_path_key, parse_json_path,
};
use quiver_common::{Error, Metric, Result};
use quiver_proto::common::{IndexState, KeyValuePair, Status};
use quiver_proto::milvus::{
    AlterIndexRequest, CreateIndexRequest, DescribeIndexRequest, DescribeIndexResponse,
    DropIndexRequest, IndexDescription,
};

use super::MilvusFront;
use super::ddl::DEFAULT_INDEX;
use super::schema::kv;
use super::search::number;
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

/// A float index parameter from the `params` JSON or a top-level pair,
/// within `range`.
fn float_param(
    params: &[KeyValuePair],
    json: &serde_json::Value,
    key: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Result<Option<f64>> {
    let top = param(params, key).map(|s| serde_json::Value::String(s.to_string()));
    let rule = format!("between {} and {}", range.start(), range.end());
    number(json.get(key).or(top.as_ref()), key, &rule, |x| {
        range.contains(&x)
    })
}

/// A sparse field's index: SPARSE_INVERTED_INDEX or SPARSE_WAND (AUTOINDEX
/// is the first), BM25's `bm25_k1` / `bm25_b`, and `drop_ratio_build`
/// (accepted; every value is kept, so searches stay exact).
fn sparse_index_kind(
    index_type: &str,
    params: &[KeyValuePair],
    json: &serde_json::Value,
) -> Result<IndexKind> {
    let wand = match index_type {
        "SPARSE_INVERTED_INDEX" | "AUTOINDEX" => false,
        "SPARSE_WAND" => true,
        other => {
            return Err(Error::invalid(
                "index_type",
                format!(
                    "{other:?} is not an index of sparse vectors (SPARSE_INVERTED_INDEX, SPARSE_WAND, AUTOINDEX are)"
                ),
            ));
        }
    };
    float_param(params, json, "drop_ratio_build", 0.0..=0.99)?;
    let milli = |x: f64| (x * 1000.0).round() as u32;
    let k1 = float_param(params, json, "bm25_k1", 1.2..=2.0)?.unwrap_or(1.2);
    let b = float_param(params, json, "bm25_b", 0.0..=1.0)?.unwrap_or(0.75);
    Ok(IndexKind::Sparse {
        wand,
        bm25_k1_milli: milli(k1),
        bm25_b_milli: milli(b),
    })
}

/// The index kind a CreateIndex request asks for (on a sparse field when
/// `sparse`).
fn index_kind(params: &[KeyValuePair], sparse: bool) -> Result<IndexKind> {
    let json = match param(params, "params") {
        Some(p) if !p.trim().is_empty() => serde_json::from_str(p)
            .map_err(|e| Error::invalid("params", format!("must be a JSON object: {e}")))?,
        _ => serde_json::Value::Null,
    };
    let index_type = param(params, "index_type").unwrap_or("AUTOINDEX");
    let index_type = index_type.to_ascii_uppercase();
    if sparse {
        return sparse_index_kind(&index_type, params, &json);
    }
    match index_type.as_str() {
        "FLAT" | "BIN_FLAT" => Ok(IndexKind::Flat),
        "HNSW" | "HNSW_SQ" => {
            let m = index_param(params, &json, "M")?.unwrap_or(16);
            let ef = index_param(params, &json, "efConstruction")?.unwrap_or(200);
            if !(2..=2048).contains(&m) || ef == 0 {
                return Err(Error::invalid(
                    "params.M",
                    format!("M must be in 2..=2048 and efConstruction >= 1 (got {m}, {ef})"),
                ));
            }
            if index_type == "HNSW" {
                return Ok(IndexKind::Hnsw {
                    m,
                    ef_construction: ef,
                });
            }
            // 8-bit codes, always re-ranked exactly (`refine*` accepted).
            let sq_type = json.get("sq_type").and_then(|v| v.as_str());
            let sq_type = sq_type
                .or_else(|| param(params, "sq_type"))
                .unwrap_or("SQ8");
            if !sq_type.eq_ignore_ascii_case("SQ8") {
                return Err(Error::invalid(
                    "params.sq_type",
                    format!("only SQ8 is supported (got {sq_type:?})"),
                ));
            }
            Ok(IndexKind::HnswSq {
                m,
                ef_construction: ef,
            })
        }
        // 8-bit codes: HNSW_SQ with default parameters.
        "IVF_SQ8" => Ok(IndexKind::HnswSq {
            m: 16,
            ef_construction: 200,
        }),
        // Served by HNSW with default parameters.
        "AUTOINDEX" | "IVF_FLAT" | "IVF_PQ" | "SCANN" | "DISKANN" | "BIN_IVF_FLAT" => {
            Ok(DEFAULT_INDEX)
        }
        "SPARSE_INVERTED_INDEX" | "SPARSE_WAND" => Err(Error::invalid(
            "index_type",
            format!("{index_type} is an index of sparse vector fields only"),
        )),
        other => Err(Error::invalid(
            "index_type",
            format!(
                "{other:?} is not supported (FLAT, HNSW, HNSW_SQ, AUTOINDEX, IVF_FLAT, IVF_SQ8, IVF_PQ, SCANN, DISKANN, BIN_FLAT, BIN_IVF_FLAT; SPARSE_INVERTED_INDEX, SPARSE_WAND for sparse vectors are)"
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
        let field = if req.field_name.is_empty() {
            info.schema.vector_field()
        } else {
            info.schema.field(&req.field_name).ok_or_else(|| {
                Error::invalid(
                    "field_name",
                    format!("no field {:?} in the collection", req.field_name),
                )
            })?
        };
        if !field.data_type.is_vector() {
            let index_type = param(&req.extra_params, "index_type").unwrap_or("AUTOINDEX");
            let kind = ScalarIndexKind::parse(index_type).ok_or_else(|| {
                Error::invalid(
                    "index_type",
                    format!(
                        "{index_type:?} is not an index of scalar fields (INVERTED, STL_SORT, BITMAP, Trie, AUTOINDEX are)"
                    ),
                )
            })?;
            let index_name = if req.index_name.is_empty() {
                field.name.clone()
            } else {
                req.index_name
            };
            let json = json_path_index(&req.extra_params, &field.name)?;
            let index = ScalarIndex {
                index_name,
                kind,
                json,
            };
            return (self.catalog)
                .set_scalar_index(&req.collection_name, &field.name, index)
                .await;
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
        let sparse = field.data_type == quiver_common::DataType::SparseFloatVector;
        let index = index_kind(&req.extra_params, sparse)?;
        self.catalog
            .set_index(
                &req.collection_name,
                IndexSpec {
                    kind: index,
                    metric,
                    index_name: req.index_name,
                    field: field.name.clone(),
                },
            )
            .await
    }

    pub(crate) async fn describe_index(&self, req: DescribeIndexRequest) -> DescribeIndexResponse {
        match self.describe_indexes(&req) {
            Ok(index_descriptions) => DescribeIndexResponse {
                status: Some(success()),
                index_descriptions,
            },
            Err(e) => DescribeIndexResponse {
                status: Some(failure(&e)),
                ..Default::default()
            },
        }
    }

    /// The indexes a DescribeIndex names: a further vector field's by its
    /// field or index name; otherwise the first vector field's (any index
    /// name answers with it: scalar indexes are not built), and every
    /// vector index when the request names nothing.
    fn describe_indexes(&self, req: &DescribeIndexRequest) -> Result<Vec<IndexDescription>> {
        let info = self.proxy.describe(&req.collection_name)?;
        let rows =
            (self.catalog.index_progress(&req.collection_name)).map_or(0, |p| p.total_rows as i64);
        let scalar = self.catalog.scalar_indexes(&req.collection_name);
        let extra: Vec<IndexDescription> = (info.field_indexes.iter())
            .map(|(field, index)| extra_description(&info, field, index))
            .chain(
                (scalar.iter()).map(|(field, index)| scalar_description(&info, field, index, rows)),
            )
            .collect();
        let named: Vec<IndexDescription> = (extra.iter())
            .filter(|d| {
                (!req.field_name.is_empty() && req.field_name == d.field_name)
                    || (!req.index_name.is_empty() && req.index_name == d.index_name)
            })
            .cloned()
            .collect();
        if !named.is_empty() {
            return Ok(named);
        }
        let everything = req.field_name.is_empty() && req.index_name.is_empty();
        match self.describe_index_inner(req, &info) {
            Ok(first) if everything => Ok(std::iter::once(first).chain(extra).collect()),
            Ok(first) => Ok(vec![first]),
            Err(_) if everything && !extra.is_empty() => Ok(extra),
            Err(e) => Err(e),
        }
    }
    fn describe_index_inner(
        &self,
        req: &DescribeIndexRequest,
        info: &quiver_api::CollectionInfo,
    ) -> Result<IndexDescription> {
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
        // One vector index per collection; a name no index has answers
        // with it too (scalar indexes created before they were recorded:
        // pymilvus waits for the one it created).
        let index_name = if !req.index_name.is_empty() {
            req.index_name.clone()
        } else if progress.index_name.is_empty() {
            vector.clone()
        } else {
            progress.index_name.clone()
        };
        let mut params = index_params(info.metric, info.index);
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

    /// Drops a vector index of a released collection, named by field or
    /// index name (neither: the first vector field's); an index that does
    /// not exist: nothing to do, as Milvus answers.
    pub(crate) async fn drop_index(&self, req: DropIndexRequest) -> Status {
        let run = async {
            let info = self.proxy.describe(&req.collection_name)?;
            let named = |field: &str, index_name: &str| {
                req.field_name == field
                    || (!req.index_name.is_empty() && req.index_name == index_name)
            };
            let extra = (info.field_indexes.iter())
                .find(|(field, index)| named(field, &index.index_name))
                .map(|(field, _)| field.clone());
            let scalar = (self
                .catalog
                .scalar_indexes(&req.collection_name)
                .into_iter())
            .find(|(field, index)| named(field, &index.index_name))
            .map(|(field, _)| field);
            if let Some(field) = extra.or(scalar) {
                return (self.catalog)
                    .drop_index(&req.collection_name, Some(&field))
                    .await;
            }
            let vector = &info.schema.vector_field().name;
            if !req.field_name.is_empty() && req.field_name != *vector {
                return Ok(());
            }
            if info.index == IndexKind::None {
                return Ok(());
            }
            self.catalog.drop_index(&req.collection_name, None).await
        };
        status_of(run.await)
    }
}

/// DescribeIndex's answer for the index of a vector field other than the
/// first: searched exactly, nothing to build, so always finished.
fn extra_description(
    info: &quiver_api::CollectionInfo,
    field: &str,
    index: &quiver_api::FieldIndex,
) -> IndexDescription {
    let index_name = if index.index_name.is_empty() {
        field.to_string()
    } else {
        index.index_name.clone()
    };
    IndexDescription {
        index_name,
        index_id: info.id as i64,
        params: index_params(index.metric, index.kind),
        field_name: field.to_string(),
        state: IndexState::Finished as i32,
        ..Default::default()
    }
}

/// A JSON path index's `json_path`, `json_cast_type` and
/// `json_cast_function` (top-level pairs or inside `params`), the path in
/// its canonical spelling; None when the request names no path or cast.
fn json_path_index(params: &[KeyValuePair], field: &str) -> Result<Option<JsonPathIndex>> {
    let json: serde_json::Value = param(params, "params")
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    let get = |key: &str| -> Option<String> {
        match json.get(key) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
            None => param(params, key).map(str::to_string),
        }
    };
    let (path, cast) = (get("json_path"), get("json_cast_type"));
    if path.is_none() && cast.is_none() {
        return Ok(None);
    }
    let path = path.unwrap_or_else(|| field.to_string());
    let Some(cast) = cast else {
        return Err(Error::invalid(
            "json_cast_type",
            format!(
                "a JSON path index needs json_cast_type (one of {})",
                JSON_CAST_TYPES.join(", ")
            ),
        ));
    };
    let (name, steps) = parse_json_path(&path).map_err(|e| Error::invalid("json_path", e))?;
    Ok(Some(JsonPathIndex {
        path: json_path_key(&name, &steps),
        cast: cast.to_ascii_uppercase(),
        cast_function: get("json_cast_function").map(|f| f.to_ascii_uppercase()),
    }))
}

/// DescribeIndex's answer for a scalar field's index: what a filter needs
/// is built per segment on first use, so nothing waits: finished, every
/// row indexed.
fn scalar_description(
    info: &quiver_api::CollectionInfo,
    field: &str,
    index: &ScalarIndex,
    rows: i64,
) -> IndexDescription {
    let mut params = vec![kv("index_type", index.kind.as_str())];
    let field = match &index.json {
        Some(j) => {
            params.push(kv("json_path", j.path.clone()));
            params.push(kv("json_cast_type", j.cast.clone()));
            if let Some(f) = &j.cast_function {
                params.push(kv("json_cast_function", f.clone()));
            }
            parse_json_path(&j.path).map_or_else(|_| field.to_string(), |(name, _)| name)
        }
        None => field.to_string(),
    };
    params.push(kv("params", "{}"));
    IndexDescription {
        index_name: index.index_name.clone(),
        index_id: info.id as i64,
        params,
        field_name: field,
        state: IndexState::Finished as i32,
        indexed_rows: rows,
        total_rows: rows,
        ..Default::default()
    }
}

/// An index's parameters as Milvus lists them: flat pairs next to its type
/// (pymilvus: `describe_index(..)["M"]`), and `params` carrying them as
/// JSON, the form they were created with (read by `quiver-client`).
fn index_params(metric: Metric, kind: IndexKind) -> Vec<KeyValuePair> {
    let mut params = vec![kv("metric_type", metric.as_str())];
    match kind {
        IndexKind::Flat | IndexKind::None => {
            params.push(kv("index_type", "FLAT"));
            params.push(kv("params", "{}"));
        }
        IndexKind::Hnsw { m, ef_construction } | IndexKind::HnswSq { m, ef_construction } => {
            let sq = matches!(kind, IndexKind::HnswSq { .. });
            params.push(kv("index_type", if sq { "HNSW_SQ" } else { "HNSW" }));
            if sq {
                params.push(kv("sq_type", "SQ8"));
            }
            params.push(kv("M", m.to_string()));
            params.push(kv("efConstruction", ef_construction.to_string()));
            let sq_type = if sq { ",\"sq_type\":\"SQ8\"" } else { "" };
            params.push(kv(
                "params",
                format!("{{\"M\":{m},\"efConstruction\":{ef_construction}{sq_type}}}"),
            ));
        }
        IndexKind::Sparse {
            wand,
            bm25_k1_milli,
            bm25_b_milli,
        } => {
            let kind = if wand {
                "SPARSE_WAND"
            } else {
                "SPARSE_INVERTED_INDEX"
            };
            params.push(kv("index_type", kind));
            if metric == Metric::Bm25 {
                let (k1, b) = (bm25_k1_milli as f64 / 1000.0, bm25_b_milli as f64 / 1000.0);
                params.push(kv("bm25_k1", k1.to_string()));
                params.push(kv("bm25_b", b.to_string()));
                params.push(kv("params", format!("{{\"bm25_k1\":{k1},\"bm25_b\":{b}}}")));
            } else {
                params.push(kv("params", "{}"));
            }
        }
    }
    params
}

#[cfg(test)]
mod sq_tests {
    use super::*;

    #[test]
    fn hnsw_sq_and_ivf_sq8_are_the_quantized_graph() {
        let kind = |pairs: &[(&str, &str)]| {
            let params: Vec<KeyValuePair> = pairs.iter().map(|(k, v)| kv(k, *v)).collect();
            index_kind(&params, false)
        };
        let sq = kind(&[
            ("index_type", "HNSW_SQ"),
            (
                "params",
                r#"{"M":8,"efConstruction":50,"sq_type":"SQ8","refine":true}"#,
            ),
        ]);
        assert_eq!(
            sq.expect("HNSW_SQ"),
            IndexKind::HnswSq {
                m: 8,
                ef_construction: 50
            }
        );
        assert_eq!(
            kind(&[("index_type", "ivf_sq8")]).expect("IVF_SQ8"),
            IndexKind::HnswSq {
                m: 16,
                ef_construction: 200
            }
        );
        assert!(kind(&[("index_type", "HNSW_SQ"), ("sq_type", "SQ4U")]).is_err());
        assert!(kind(&[("index_type", "HNSW_SQ"), ("M", "1")]).is_err());
        let described = index_params(
            Metric::Cosine,
            IndexKind::HnswSq {
                m: 8,
                ef_construction: 50,
            },
        );
        let get = |k: &str| {
            described
                .iter()
                .find(|p| p.key == k)
                .map(|p| p.value.as_str())
        };
        assert_eq!(get("index_type"), Some("HNSW_SQ"));
        assert_eq!(get("sq_type"), Some("SQ8"));
        assert_eq!(get("M"), Some("8"));
        let json: serde_json::Value =
            serde_json::from_str(get("params").expect("params")).expect("json");
        assert_eq!(json["sq_type"], "SQ8");
    }
}
