//! Search: the placeholder group (packed little-endian f32 vectors), search
//! parameters, consistency, and `SearchResultData`.

use std::time::Duration;

use prost::Message;
use quiver_api::{CollectionInfo, RowPredicate, ShardHit, SparseQueries};
use quiver_common::{CollectionSchema, DataType, ElementType, FieldSchema, ScalarValue};
use quiver_common::{Error, Metric, Result};
use quiver_proto::common::{
    ConsistencyLevel, KeyValuePair, PlaceholderGroup, PlaceholderType, PlaceholderValue,
};
use quiver_proto::milvus::{SearchRequest as PbSearch, SearchResults};
use quiver_proto::schema::SearchResultData;

use super::MilvusFront;
use super::fields::{encode_scalar, ids, sparse_row};
use super::filter;
use super::group_by::GroupBy;
use super::output::Outputs;
use super::range::Range;
use super::status::{failure, success_with_cost};
use quiver_proxy::bounded_ts;
use quiver_proxy::{Consistency, SearchRequest};

/// pymilvus's special guarantee timestamps.
const EVENTUALLY_TS: u64 = 1;
const BOUNDED_TS: u64 = 2;
/// Staleness of Bounded reads (Milvus's default `gracefulTime`).
pub(crate) const BOUNDED_STALENESS: Duration = Duration::from_secs(5);

/// The consistency of a read.
///
/// A request that names a level gets it: Strong is Strong, a real guarantee
/// timestamp (the client's last write, or one the caller chose) means
/// read-your-writes (Session), and pymilvus's markers 2 / 1 mean Bounded /
/// Eventually.
///
/// A request that uses the default (`use_default_consistency`) reads at the
/// collection's level, as in Milvus, with one addition: pymilvus then sends
/// the client's last write timestamp on the collection, and a Bounded or
/// Eventually read still waits for it, so a client always reads its own
/// writes (Milvus ignores it and may miss them).
pub(crate) fn consistency(
    level: i32,
    use_default: bool,
    guarantee_ts: u64,
    default: quiver_common::ConsistencyLevel,
) -> Consistency {
    use quiver_common::ConsistencyLevel as Default;
    let own_writes = (guarantee_ts > BOUNDED_TS).then_some(guarantee_ts);
    if use_default {
        return match default {
            Default::Strong => Consistency::Strong,
            Default::Bounded => match own_writes {
                Some(t) => Consistency::Session(t.max(bounded_ts(BOUNDED_STALENESS))),
                None => Consistency::Bounded(BOUNDED_STALENESS),
            },
            Default::Session | Default::Eventually | Default::Customized => {
                own_writes.map_or(Consistency::Eventually, Consistency::Session)
            }
        };
    }
    let level = ConsistencyLevel::try_from(level).unwrap_or(ConsistencyLevel::Bounded);
    if level == ConsistencyLevel::Strong {
        return Consistency::Strong;
    }
    match guarantee_ts {
        t if t > BOUNDED_TS => Consistency::Session(t),
        BOUNDED_TS => Consistency::Bounded(BOUNDED_STALENESS),
        EVENTUALLY_TS => Consistency::Eventually,
        _ if level == ConsistencyLevel::Bounded => Consistency::Bounded(BOUNDED_STALENESS),
        _ => Consistency::Eventually,
    }
}

/// Milvus's `consistency_level` of a collection.
pub(crate) fn level_to_proto(level: quiver_common::ConsistencyLevel) -> ConsistencyLevel {
    use quiver_common::ConsistencyLevel as L;
    match level {
        L::Strong => ConsistencyLevel::Strong,
        L::Session => ConsistencyLevel::Session,
        L::Bounded => ConsistencyLevel::Bounded,
        L::Eventually => ConsistencyLevel::Eventually,
        L::Customized => ConsistencyLevel::Customized,
    }
}

/// A collection's level from CreateCollection's `consistency_level`.
pub(crate) fn level_from_proto(level: i32) -> Result<quiver_common::ConsistencyLevel> {
    use quiver_common::ConsistencyLevel as L;
    Ok(match ConsistencyLevel::try_from(level) {
        Ok(ConsistencyLevel::Strong) => L::Strong,
        Ok(ConsistencyLevel::Session) => L::Session,
        Ok(ConsistencyLevel::Bounded) => L::Bounded,
        Ok(ConsistencyLevel::Eventually) => L::Eventually,
        Ok(ConsistencyLevel::Customized) => L::Customized,
        Err(_) => {
            return Err(Error::invalid(
                "consistency_level",
                format!(
                    "must be 0 (Strong), 1 (Session), 2 (Bounded), 3 (Eventually) or 4 (Customized) (got {level})"
                ),
            ));
        }
    })
}

/// The value of search parameter `key` (exact key).
pub(crate) fn param<'a>(params: &'a [KeyValuePair], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_str())
}

fn int_param(params: &[KeyValuePair], key: &str) -> Result<Option<i64>> {
    param(params, key)
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| Error::invalid(key, format!("must be an integer (got {v:?})")))
        })
        .transpose()
}

/// The queries of a search.
pub(crate) enum Queries {
    /// `nq * dim` floats.
    Dense(Vec<f32>),
    /// One sparse vector per query (texts searching a BM25 function's
    /// output: their analysed terms and counts).
    Sparse(Vec<Vec<(u32, f32)>>),
}

impl Queries {
    pub(crate) fn len(&self, dim: usize) -> usize {
        match self {
            Queries::Dense(q) => q.len() / dim.max(1),
            Queries::Sparse(q) => q.len(),
        }
    }
}

/// The queries of a placeholder group for vector field `field`.
pub(crate) fn decode_queries(
    bytes: &[u8],
    field: &FieldSchema,
    schema: &CollectionSchema,
) -> Result<Queries> {
    let group = PlaceholderGroup::decode(bytes)
        .map_err(|e| Error::invalid("placeholder_group", format!("cannot be decoded: {e}")))?;
    let [ph] = group.placeholders.as_slice() else {
        return Err(Error::invalid(
            "placeholder_group",
            format!(
                "must hold exactly one placeholder (got {})",
                group.placeholders.len()
            ),
        ));
    };
    if field.data_type != DataType::SparseFloatVector {
        return decode_dense(ph, field).map(Queries::Dense);
    }
    let vf = &field.name;
    if ph.values.is_empty() {
        return Err(Error::invalid(vf, "no query vectors"));
    }
    let queries = match PlaceholderType::try_from(ph.r#type) {
        Ok(PlaceholderType::SparseFloatVector) => (ph.values.iter().enumerate())
            .map(|(q, b)| {
                sparse_row(b).map_err(|rule| Error::invalid(vf, format!("query {q}: {rule}")))
            })
            .collect::<Result<Vec<_>>>()?,
        Ok(PlaceholderType::VarChar) => (ph.values.iter().enumerate())
            .map(|(q, b)| {
                let text = std::str::from_utf8(b)
                    .map_err(|_| Error::invalid(vf, format!("query {q}: text must be UTF-8")))?;
                schema.bm25_query(vf, text)
            })
            .collect::<Result<Vec<_>>>()?,
        _ => {
            return Err(Error::invalid(
                vf,
                format!(
                    "a sparse vector field is searched with sparse vectors (or text, for a BM25 function's output), not placeholder type {}",
                    ph.r#type
                ),
            ));
        }
    };
    Ok(Queries::Sparse(queries))
}

/// A dense field's query vectors, `nq * dim` floats.
fn decode_dense(ph: &PlaceholderValue, field: &FieldSchema) -> Result<Vec<f32>> {
    let vf = &field.name;
    let dim = field.dim.unwrap_or(0) as usize;
    let declared = field.data_type.element_type().unwrap_or(ElementType::F32);
    let element = match PlaceholderType::try_from(ph.r#type) {
        Ok(PlaceholderType::FloatVector) if declared != ElementType::Binary => ElementType::F32,
        Ok(PlaceholderType::Float16Vector) if declared == ElementType::F16 => ElementType::F16,
        Ok(PlaceholderType::BFloat16Vector) if declared == ElementType::BF16 => ElementType::BF16,
        Ok(PlaceholderType::BinaryVector) if declared == ElementType::Binary => ElementType::Binary,
        Ok(PlaceholderType::Int8Vector) if declared == ElementType::I8 => ElementType::I8,
        // pymilvus sends raw bytes as a BinaryVector placeholder: for a half
        // float field they are its own encoding (checked by length below).
        Ok(PlaceholderType::BinaryVector)
            if matches!(declared, ElementType::F16 | ElementType::BF16) =>
        {
            declared
        }
        _ => {
            return Err(Error::invalid(
                vf,
                format!(
                    "query vectors must be {:?} for this field (placeholder type {})",
                    field.data_type, ph.r#type
                ),
            ));
        }
    };
    if ph.values.is_empty() {
        return Err(Error::invalid(vf, "no query vectors"));
    }
    let mut out = Vec::with_capacity(ph.values.len() * dim);
    for (q, v) in ph.values.iter().enumerate() {
        let row = element.row_bytes(dim);
        if v.len() != row {
            return Err(Error::invalid(
                vf,
                format!(
                    "query {q} must have dim {dim} ({row} bytes of {element}, got {} bytes)",
                    v.len()
                ),
            ));
        }
        out.extend(
            element
                .widen(v, dim)
                .map_err(|rule| Error::invalid(vf, rule))?,
        );
    }
    Ok(out)
}

struct Params {
    /// The vector field searched.
    field: FieldSchema,
    /// A sparse search's `drop_ratio_search`.
    drop_ratio: f32,
    limit: usize,
    offset: usize,
    ef: Option<usize>,
    /// An 8-bit index re-ranks `refine_k × k` rows at least.
    refine_k: Option<f32>,
    round_decimal: i64,
    range: Option<Range>,
}

fn search_params(req: &PbSearch, info: &CollectionInfo, max_topk: usize) -> Result<Params> {
    let p = &req.search_params;
    let limit = int_param(p, "topk")?.ok_or_else(|| Error::invalid("limit", "topk is required"))?;
    let offset = int_param(p, "offset")?.unwrap_or(0);
    if limit < 1 || offset < 0 || limit.saturating_add(offset) as usize > max_topk {
        return Err(Error::invalid(
            "limit",
            format!(
                "limit must be >= 1 and limit + offset <= {max_topk} (got limit {limit}, offset {offset})"
            ),
        ));
    }
    // The field searched: `anns_field`, which may be left out only when
    // there is one vector field (as Milvus).
    let schema = &info.schema;
    let field = match param(p, "anns_field").filter(|a| !a.is_empty()) {
        Some(a) => schema
            .field(a)
            .filter(|f| f.data_type.is_vector())
            .ok_or_else(|| {
                Error::invalid(
                    "anns_field",
                    format!("no vector field {a:?} in collection {:?}", schema.name),
                )
            })?,
        None if schema.vector_fields().count() > 1 => {
            return Err(Error::invalid(
                "anns_field",
                format!(
                    "the collection has several vector fields ({}): name the one to search",
                    schema
                        .vector_fields()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        None => schema.vector_field(),
    };
    let metric = info.metric_of(Some(&field.name))?;
    if let Some(m) = param(p, "metric_type").filter(|m| !m.is_empty())
        && Metric::parse(m)? != metric
    {
        return Err(Error::invalid(
            "metric_type",
            format!(
                "field {:?} is indexed with {} (got {m})",
                field.name,
                metric.as_str()
            ),
        ));
    }
    let json: serde_json::Value = match param(p, "params") {
        Some(s) if !s.trim().is_empty() => serde_json::from_str(s)
            .map_err(|e| Error::invalid("params", format!("must be a JSON object: {e}")))?,
        _ => serde_json::Value::Null,
    };
    let range = Range::parse(&json, metric)?;
    let ef = match json.get("ef") {
        None => None,
        Some(v) => Some(v.as_u64().filter(|e| *e >= 1).ok_or_else(|| {
            Error::invalid("params.ef", format!("must be a positive integer (got {v})"))
        })? as usize),
    };
    let drop_ratio = number(
        json.get("drop_ratio_search"),
        "drop_ratio_search",
        "in [0, 1)",
        |x| (0.0..1.0).contains(&x),
    )?
    .unwrap_or(0.0) as f32;
    // Milvus 2.5's HNSW_SQ / HNSW_PQ refine depth; other indexes ignore it.
    let refine_k = number(json.get("refine_k"), "refine_k", ">= 1", |x| {
        x >= 1.0 && x.is_finite()
    })?
    .map(|r| r as f32);
    let round_decimal = int_param(p, "round_decimal")?.unwrap_or(-1);
    if !(-1..=6).contains(&round_decimal) {
        return Err(Error::invalid(
            "round_decimal",
            format!("must be between -1 and 6 (got {round_decimal})"),
        ));
    }
    Ok(Params {
        field: field.clone(),
        drop_ratio,
        limit: limit as usize,
        offset: offset as usize,
        ef,
        refine_k,
        round_decimal,
        range,
    })
}

/// Parameter `params.<key>`'s value `v` as a number (a JSON number or a
/// numeric string: pymilvus may send either) that `ok` accepts; `rule`
/// says what it must be.
pub(crate) fn number(
    v: Option<&serde_json::Value>,
    key: &str,
    rule: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<Option<f64>> {
    let v = match v {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let x = match v {
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        v => v.as_f64(),
    };
    match x.filter(|x| ok(*x)) {
        Some(x) => Ok(Some(x)),
        None => Err(Error::invalid(
            format!("params.{key}"),
            format!("must be a number {rule} (got {v})"),
        )),
    }
}

impl MilvusFront {
    pub(crate) async fn search(&self, req: PbSearch) -> SearchResults {
        match self.search_inner(&req).await {
            // Through a mirrored alias: the collection of the pair that answered.
            Ok((results, served_by)) => SearchResults {
                status: Some(success_with_cost(results.encoded_len())),
                results: Some(results),
                collection_name: super::database::plain(&served_by.unwrap_or(req.collection_name)),
                ..Default::default()
            },
            Err(e) => SearchResults {
                status: Some(failure(&e)),
                ..Default::default()
            },
        }
    }

    async fn search_inner(&self, req: &PbSearch) -> Result<(SearchResultData, Option<String>)> {
        let s = self.search_hits(req).await?;
        Ok((s.encode(s.offset), s.served_by.clone()))
    }

    /// Runs one search request: each query's hits, best first, `offset`
    /// included (see [`Searched::encode`]).
    pub(crate) async fn search_hits(&self, req: &PbSearch) -> Result<Searched> {
        let info = self.proxy.describe(&req.collection_name)?;
        if !req.sub_reqs.is_empty() || req.search_by_primary_keys {
            return Err(Error::invalid(
                "sub_reqs",
                "sub-searches and search by keys are not supported (use HybridSearch)",
            ));
        }
        let expr = self.read_expr(&info, &req.dsl, &req.partition_names, "partition_names")?;
        let p = search_params(req, &info, self.proxy.limits().max_topk)?;
        let decoded = decode_queries(&req.placeholder_group, &p.field, &info.schema)?;
        let nq = decoded.len(p.field.dim.unwrap_or(1) as usize);
        let (mut queries, sparse) = match decoded {
            Queries::Dense(q) => (q, None),
            Queries::Sparse(queries) => (
                Vec::new(),
                Some(SparseQueries {
                    queries,
                    drop_ratio: p.drop_ratio,
                    bm25: None,
                }),
            ),
        };
        let outputs = Outputs::resolve(&info, &req.output_fields)?;
        let filter = filter::compile(
            &self.proxy,
            &info.schema.name,
            &expr,
            &req.expr_template_values,
        )?
        .map(|f| f as std::sync::Arc<dyn RowPredicate>);
        // Through a mirrored alias the proxy keeps the alias (it restarts a
        // search that a flip overtakes on the new target; both sides have
        // this schema). Otherwise the collection resolved above.
        let mirrored = self
            .catalog
            .alias(&req.collection_name)
            .is_some_and(|a| a.mirror.is_some());
        let collection = if mirrored {
            req.collection_name.clone()
        } else {
            info.schema.name.clone()
        };
        let consistency = consistency(
            req.consistency_level,
            req.use_default_consistency,
            req.guarantee_timestamp,
            info.schema.consistency,
        );
        let want = p.limit + p.offset;
        let max_topk = self.proxy.limits().max_topk;
        let group = GroupBy::parse(&req.search_params, &info)?;
        if group.is_some() && p.range.is_some() {
            return Err(Error::invalid(
                "group_by_field",
                "a grouping search cannot be a range search",
            ));
        }
        // A grouping search has the engine return its group field too.
        let mut columns = outputs.engine_names();
        let group_col = group.as_ref().map(|g| {
            let col = columns.iter().position(|c| *c == g.field.name);
            let col = col.unwrap_or_else(|| {
                columns.push(g.field.name.clone());
                columns.len() - 1
            });
            (g.field.clone(), col)
        });
        // A range search asks for more neighbours until each query has
        // `want` hits in range, its hits pass the radius, or the collection
        // (or the top-k limit) is exhausted; a grouping search until its
        // groups are filled or the rows run out.
        let mut k = match &group {
            Some(g) => g.first_k(want, max_topk),
            None => want,
        };
        let mut offset = p.offset;
        let (hits, served_by) = loop {
            let served = self
                .proxy
                .search_served(SearchRequest {
                    collection: collection.clone(),
                    // Only a widening search may need the queries again.
                    queries: if p.range.is_some() || group.is_some() {
                        queries.clone()
                    } else {
                        std::mem::take(&mut queries)
                    },
                    k,
                    ef: p.ef.map(|ef| ef.max(k)),
                    refine_k: p.refine_k,
                    filter: filter.clone(),
                    consistency,
                    output_fields: columns.clone(),
                    with_vectors: outputs.with_vectors,
                    anns_field: Some(p.field.name.clone()),
                    sparse: sparse.clone(),
                })
                .await?;
            let mut hits = served.hits;
            let served_by = mirrored.then_some(served.collection);
            if let (Some(g), Some((_, col))) = (&group, &group_col) {
                let grouped: Vec<(Vec<ShardHit>, bool)> = (hits.iter())
                    .map(|h| g.group(h, *col, p.offset, p.limit, k))
                    .collect();
                if k >= max_topk || grouped.iter().all(|(_, done)| *done) {
                    // The groups skipped for `offset` are gone already.
                    offset = 0;
                    break (grouped.into_iter().map(|(h, _)| h).collect(), served_by);
                }
                k = (k * 4).min(max_topk);
                continue;
            }
            let Some(range) = p.range else {
                break (hits, served_by);
            };
            let complete = k >= max_topk
                || hits.iter().all(|h| {
                    h.len() < k
                        || h.last().is_some_and(|last| range.beyond(last.score))
                        || h.iter().filter(|x| range.contains(x.score)).count() >= want
                });
            if complete {
                for h in &mut hits {
                    h.retain(|x| range.contains(x.score));
                    h.truncate(want);
                }
                break (hits, served_by);
            }
            k = (k * 4).min(max_topk);
        };
        let metric = info.metric_of(Some(&p.field.name))?;
        Ok(Searched {
            info,
            outputs,
            nq,
            hits,
            limit: p.limit,
            offset,
            round_decimal: p.round_decimal,
            metric,
            served_by,
            group_col,
        })
    }
}

/// The hits of a search, before they are encoded for the client.
pub(crate) struct Searched {
    pub info: CollectionInfo,
    pub outputs: Outputs,
    pub nq: usize,
    /// Per query, best first.
    pub hits: Vec<Vec<ShardHit>>,
    pub limit: usize,
    pub offset: usize,
    pub round_decimal: i64,
    /// The metric of the field searched.
    pub metric: Metric,
    /// Through a mirrored alias: the collection that answered.
    pub served_by: Option<String>,
    /// A grouping search: its field and where hits carry its value.
    pub group_col: Option<(FieldSchema, usize)>,
}

impl Searched {
    /// The client's answer: each query's hits after the first `offset`,
    /// scores rounded to `round_decimal` places (-1: as they are).
    pub fn encode(&self, offset: usize) -> SearchResultData {
        let per_query: Vec<&[ShardHit]> = (self.hits.iter())
            .map(|h| h.get(offset.min(h.len())..).unwrap_or(&[]))
            .collect();
        let flat: Vec<&ShardHit> = per_query.iter().flat_map(|h| h.iter()).collect();
        let scale = 10f32.powi(self.round_decimal.max(0) as i32);
        let scores = flat
            .iter()
            .map(|h| {
                if self.round_decimal >= 0 {
                    (h.score * scale).round() / scale
                } else {
                    h.score
                }
            })
            .collect();
        let pks: Vec<_> = flat.iter().map(|h| h.pk.clone()).collect();
        let schema = &self.info.schema;
        SearchResultData {
            num_queries: self.nq as i64,
            top_k: self.limit as i64,
            fields_data: self.outputs.encode(&self.info, &flat),
            scores,
            ids: Some(ids(&pks, schema)),
            topks: per_query.iter().map(|h| h.len() as i64).collect(),
            output_fields: self.outputs.names.clone(),
            primary_field_name: schema.primary_field().name.clone(),
            group_by_field_value: self.group_col.as_ref().map(|(f, col)| {
                let values: Vec<&ScalarValue> = (flat.iter())
                    .map(|h| h.fields.get(*col).unwrap_or(&ScalarValue::Null))
                    .collect();
                encode_scalar(f, &values)
            }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use quiver_common::{ts_physical_ms, wall_ts};

    use super::*;

    #[test]
    fn guarantee_timestamps_pick_the_consistency() {
        use quiver_common::ConsistencyLevel as L;
        let strong = ConsistencyLevel::Strong as i32;
        let bounded = ConsistencyLevel::Bounded as i32;
        let session = ConsistencyLevel::Session as i32;
        assert_eq!(
            consistency(strong, false, 0, L::Eventually),
            Consistency::Strong
        );
        assert_eq!(
            consistency(session, false, 1 << 30, L::Strong),
            Consistency::Session(1 << 30)
        );
        assert_eq!(
            consistency(session, false, 1, L::Strong),
            Consistency::Eventually
        );
        assert_eq!(
            consistency(bounded, false, 2, L::Strong),
            Consistency::Bounded(BOUNDED_STALENESS)
        );
        assert_eq!(
            consistency(ConsistencyLevel::Eventually as i32, false, 1, L::Strong),
            Consistency::Eventually
        );
    }

    #[test]
    fn default_reads_use_the_collections_level_and_the_clients_writes() {
        use quiver_common::ConsistencyLevel as L;
        let bounded = ConsistencyLevel::Bounded as i32;
        // pymilvus sends 1 when the client has not written to the collection.
        assert_eq!(
            consistency(bounded, true, 1, L::Strong),
            Consistency::Strong
        );
        assert_eq!(
            consistency(bounded, true, 1, L::Bounded),
            Consistency::Bounded(BOUNDED_STALENESS)
        );
        assert_eq!(
            consistency(bounded, true, 1, L::Eventually),
            Consistency::Eventually
        );
        assert_eq!(
            consistency(bounded, true, 1, L::Session),
            Consistency::Eventually
        );
        // Its last write timestamp: read-your-writes at every level.
        let recent = wall_ts();
        for level in [L::Session, L::Eventually, L::Customized, L::Bounded] {
            assert_eq!(
                consistency(bounded, true, recent, level),
                Consistency::Session(recent),
                "{level:?}"
            );
        }
        // An old write does not weaken Bounded below its staleness bound.
        let Consistency::Session(t) = consistency(bounded, true, 3, L::Bounded) else {
            panic!("Bounded with a client timestamp waits for a timestamp");
        };
        let bound = ts_physical_ms(wall_ts()) - BOUNDED_STALENESS.as_millis() as u64;
        assert!(ts_physical_ms(t).abs_diff(bound) < 1_000, "{t}");
    }

    #[test]
    fn range_bounds_follow_the_metric() {
        let json = |v: serde_json::Value| v;
        let l2 = Range::parse(
            &json(serde_json::json!({"radius": 2.0, "range_filter": 1.0})),
            Metric::L2,
        )
        .expect("valid")
        .expect("a range");
        assert!(l2.contains(1.0) && l2.contains(1.5));
        assert!(!l2.contains(0.5) && !l2.contains(2.0));
        assert!(l2.beyond(2.0) && !l2.beyond(1.9));
        let ip = Range::parse(
            &json(serde_json::json!({"radius": 0.2, "range_filter": 0.9})),
            Metric::Ip,
        )
        .expect("valid")
        .expect("a range");
        assert!(ip.contains(0.9) && ip.contains(0.5));
        assert!(!ip.contains(0.2) && !ip.contains(0.95));
        assert!(ip.beyond(0.2) && !ip.beyond(0.3));
        let open = Range::parse(&json(serde_json::json!({"radius": 0.5})), Metric::Cosine)
            .expect("valid")
            .expect("a range");
        assert!(open.contains(1.0) && !open.contains(0.5));
        assert_eq!(
            Range::parse(&json(serde_json::json!({"ef": 10})), Metric::L2).expect("valid"),
            None
        );
    }

    #[test]
    fn bad_ranges_name_the_parameter() {
        let bad = |v: serde_json::Value, metric| {
            Range::parse(&v, metric).expect_err("refused").to_string()
        };
        let e = bad(
            serde_json::json!({"radius": 1.0, "range_filter": 2.0}),
            Metric::L2,
        );
        assert!(
            e.contains("params.range_filter") && e.contains("below"),
            "{e}"
        );
        let e = bad(
            serde_json::json!({"radius": 0.5, "range_filter": 0.1}),
            Metric::Ip,
        );
        assert!(
            e.contains("params.range_filter") && e.contains("above"),
            "{e}"
        );
        let e = bad(serde_json::json!({"range_filter": 0.1}), Metric::Ip);
        assert!(e.contains("needs params.radius"), "{e}");
        let e = bad(serde_json::json!({"radius": "far"}), Metric::L2);
        assert!(e.contains("params.radius"), "{e}");
    }

    #[test]
    fn levels_round_trip_and_unknown_ones_are_refused() {
        for n in 0..=4 {
            let level = level_from_proto(n).expect("known level");
            assert_eq!(level_to_proto(level) as i32, n);
        }
        let e = level_from_proto(9).expect_err("unknown level");
        assert!(e.to_string().contains("consistency_level"), "{e}");
    }
}
