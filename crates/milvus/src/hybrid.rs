//! HybridSearch, as Milvus does it: several searches of one collection —
//! each with its own vector field, queries, filter and limit — whose hit
//! lists are fused into one per query by a ranker:
//!
//! - `rrf` (reciprocal rank fusion): a hit scores Σ 1 / (k + rank), its rank
//!   (from 1) in each list it is in; `k` in (0, 16384), 60 by default;
//! - `weighted`: a hit scores Σ weight × score, one weight in [0, 1] per
//!   search; with `norm_score` (the default) each score is first mapped onto
//!   [0, 1] so that closer is higher whatever the metric, as Milvus does
//!   (COSINE (1 + s) / 2, IP 1/2 + atan(s) / π, L2 / HAMMING / JACCARD
//!   1 − 2·atan(s) / π); without it, distances count negatively.
//!
//! Then `limit` hits after `offset`, scores rounded to `round_decimal`. With
//! `group_by_field` every search is a grouping search (`group_by.rs`) and
//! the fused hits are grouped again: `limit` groups after `offset` groups. The
//! searches run with the hybrid request's collection, output fields and
//! consistency (a sub-request naming another collection searches this one:
//! the caller was authorized for it).

use std::collections::HashMap;

use quiver_api::ShardHit;
use quiver_common::{Error, Metric, PrimaryKey, Result};
use quiver_proto::common::KeyValuePair;
use quiver_proto::milvus::{HybridSearchRequest, SearchResults};

use super::MilvusFront;
use super::group_by::GroupBy;
use super::search::{Searched, param};

/// The grouping parameters a hybrid search passes on to its searches.
const GROUP_KEYS: [&str; 3] = ["group_by_field", "group_size", "strict_group_size"];
use super::status::{failure, success_with_cost};

/// Milvus's bound on the searches of one hybrid search.
const MAX_REQUESTS: usize = 1024;
/// RRF's default and exclusive upper bound of `k`.
const RRF_K: f64 = 60.0;
const RRF_MAX_K: f64 = 16384.0;

#[derive(Debug, Clone, PartialEq)]
enum Ranker {
    Rrf { k: f64 },
    Weighted { weights: Vec<f64>, norm: bool },
}

fn int(params: &[KeyValuePair], key: &str) -> Result<Option<i64>> {
    param(params, key)
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                Error::invalid(
                    format!("rank_params.{key}"),
                    format!("must be an integer (got {v:?})"),
                )
            })
        })
        .transpose()
}

/// The ranker `rank_params` names, for `searches` searches.
fn ranker(params: &[KeyValuePair], searches: usize) -> Result<Ranker> {
    let json: serde_json::Value = match param(params, "params") {
        Some(p) if !p.trim().is_empty() => serde_json::from_str(p).map_err(|e| {
            Error::invalid("rank_params.params", format!("must be a JSON object: {e}"))
        })?,
        _ => serde_json::Value::Null,
    };
    let strategy = param(params, "strategy")
        .unwrap_or("rrf")
        .trim()
        .to_lowercase();
    match strategy.as_str() {
        "rrf" => {
            let k = match json.get("k") {
                None => RRF_K,
                Some(v) => v.as_f64().ok_or_else(|| {
                    Error::invalid(
                        "rank_params.params.k",
                        format!("must be a number (got {v})"),
                    )
                })?,
            };
            if !(k > 0.0 && k < RRF_MAX_K) {
                return Err(Error::invalid(
                    "rank_params.params.k",
                    format!("the range of k is (0, {RRF_MAX_K}) (got {k})"),
                ));
            }
            Ok(Ranker::Rrf { k })
        }
        "weighted" => {
            let weights: Vec<f64> = match json.get("weights") {
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .map(|w| {
                        w.as_f64()
                            .filter(|w| (0.0..=1.0).contains(w))
                            .ok_or_else(|| {
                                Error::invalid(
                                    "rank_params.params.weights",
                                    format!("each weight must be a number in [0, 1] (got {w})"),
                                )
                            })
                    })
                    .collect::<Result<_>>()?,
                _ => {
                    return Err(Error::invalid(
                        "rank_params.params.weights",
                        "the weighted ranker needs a list of weights",
                    ));
                }
            };
            if weights.len() != searches {
                return Err(Error::invalid(
                    "rank_params.params.weights",
                    format!(
                        "one weight per search: {} weights for {searches} searches",
                        weights.len()
                    ),
                ));
            }
            let norm = json
                .get("norm_score")
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            Ok(Ranker::Weighted { weights, norm })
        }
        other => Err(Error::invalid(
            "rank_params.strategy",
            format!("{other:?} is not a ranker (rrf, weighted are)"),
        )),
    }
}

/// A search's score on a scale where higher is closer (see the module docs).
fn normalized(metric: Metric, score: f32, norm: bool) -> f64 {
    let s = f64::from(score);
    let pi = std::f64::consts::PI;
    match (norm, metric) {
        (true, Metric::Cosine) => (1.0 + s) / 2.0,
        (true, Metric::Ip) => 0.5 + s.atan() / pi,
        (true, Metric::Bm25) => 2.0 * s.atan() / pi,
        (true, Metric::L2 | Metric::Hamming | Metric::Jaccard) => 1.0 - 2.0 * s.atan() / pi,
        (false, m) if m.higher_is_closer() => s,
        (false, _) => -s,
    }
}

/// Query `q`'s fused hits, best first (ties: the order they were first seen).
fn fuse(ranker: &Ranker, searches: &[Searched], q: usize, keep: usize) -> Vec<ShardHit> {
    let mut at: HashMap<PrimaryKey, usize> = HashMap::new();
    let mut fused: Vec<(f64, ShardHit)> = Vec::new();
    for (i, s) in searches.iter().enumerate() {
        let Some(hits) = s.hits.get(q) else { continue };
        for (rank, hit) in hits.iter().enumerate() {
            let score = match ranker {
                Ranker::Rrf { k } => 1.0 / (k + rank as f64 + 1.0),
                Ranker::Weighted { weights, norm } => {
                    weights[i] * normalized(s.metric, hit.score, *norm)
                }
            };
            match at.get(&hit.pk) {
                Some(&j) => fused[j].0 += score,
                None => {
                    at.insert(hit.pk.clone(), fused.len());
                    fused.push((score, hit.clone()));
                }
            }
        }
    }
    fused.sort_by(|a, b| b.0.total_cmp(&a.0));
    fused.truncate(keep);
    fused
        .into_iter()
        .map(|(score, mut hit)| {
            hit.score = score as f32;
            hit
        })
        .collect()
}

impl MilvusFront {
    pub(crate) async fn hybrid_search(&self, req: HybridSearchRequest) -> SearchResults {
        match self.hybrid_inner(&req).await {
            Ok(s) => {
                let results = s.encode(s.offset);
                SearchResults {
                    status: Some(success_with_cost(results_len(&results))),
                    results: Some(results),
                    collection_name: super::database::plain(
                        &s.served_by.clone().unwrap_or(req.collection_name),
                    ),
                    ..Default::default()
                }
            }
            Err(e) => SearchResults {
                status: Some(failure(&e)),
                ..Default::default()
            },
        }
    }

    async fn hybrid_inner(&self, req: &HybridSearchRequest) -> Result<Searched> {
        let n = req.requests.len();
        if !(1..=MAX_REQUESTS).contains(&n) {
            return Err(Error::invalid(
                "requests",
                format!("a hybrid search holds 1 to {MAX_REQUESTS} searches (got {n})"),
            ));
        }
        let ranker = ranker(&req.rank_params, n)?;
        let info = self.proxy.describe(&req.collection_name)?;
        // Grouped: every search groups alike, then the fused hits are grouped.
        let group = GroupBy::parse(&req.rank_params, &info)?;
        let group_params: Vec<KeyValuePair> = (req.rank_params.iter())
            .filter(|kv| GROUP_KEYS.contains(&kv.key.as_str()))
            .cloned()
            .collect();
        let limit = int(&req.rank_params, "limit")?
            .ok_or_else(|| Error::invalid("rank_params.limit", "limit is required"))?;
        let offset = int(&req.rank_params, "offset")?.unwrap_or(0);
        let round_decimal = int(&req.rank_params, "round_decimal")?.unwrap_or(-1);
        let max_topk = self.proxy.limits().max_topk as i64;
        if limit < 1 || offset < 0 || limit.saturating_add(offset) > max_topk {
            return Err(Error::invalid(
                "rank_params.limit",
                format!(
                    "limit must be >= 1 and limit + offset <= {max_topk} (got limit {limit}, offset {offset})"
                ),
            ));
        }
        if !(-1..=6).contains(&round_decimal) {
            return Err(Error::invalid(
                "rank_params.round_decimal",
                format!("must be between -1 and 6 (got {round_decimal})"),
            ));
        }
        let subs = req.requests.iter().map(|r| {
            let mut r = r.clone();
            r.collection_name = req.collection_name.clone();
            if r.partition_names.is_empty() {
                r.partition_names = req.partition_names.clone();
            }
            r.output_fields = req.output_fields.clone();
            r.consistency_level = req.consistency_level;
            r.use_default_consistency = req.use_default_consistency;
            r.guarantee_timestamp = req.guarantee_timestamp;
            r.search_params
                .retain(|kv| kv.key != "offset" && !GROUP_KEYS.contains(&kv.key.as_str()));
            r.search_params.extend(group_params.iter().cloned());
            async move { self.search_hits(&r).await }
        });
        let mut searches = futures::future::try_join_all(subs).await?;
        let nq = searches[0].nq;
        if let Some(s) = searches.iter().find(|s| s.nq != nq) {
            return Err(Error::invalid(
                "requests",
                format!(
                    "every search must have the same number of queries ({nq} and {})",
                    s.nq
                ),
            ));
        }
        let keep = (limit + offset) as usize;
        let group_col = searches[0].group_col.clone();
        let hits = (0..nq).map(|q| match (&group, &group_col) {
            (Some(g), Some((_, col))) => {
                let fused = fuse(&ranker, &searches, q, usize::MAX);
                let skip = offset as usize;
                g.group(&fused, *col, skip, limit as usize, usize::MAX).0
            }
            _ => fuse(&ranker, &searches, q, keep),
        });
        let hits = hits.collect();
        let mut out = searches.swap_remove(0);
        out.hits = hits;
        out.limit = limit as usize;
        // Grouped, the groups skipped for `offset` are gone already.
        out.offset = if group.is_some() { 0 } else { offset as usize };
        out.round_decimal = round_decimal;
        Ok(out)
    }
}

fn results_len(r: &quiver_proto::schema::SearchResultData) -> usize {
    prost::Message::encoded_len(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> KeyValuePair {
        KeyValuePair {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn rankers_are_parsed_and_checked() {
        assert_eq!(ranker(&[], 2).expect("rrf"), Ranker::Rrf { k: 60.0 });
        let rrf = [kv("strategy", "rrf"), kv("params", r#"{"k": 10}"#)];
        assert_eq!(ranker(&rrf, 3).expect("rrf"), Ranker::Rrf { k: 10.0 });
        for bad in [r#"{"k": 0}"#, r#"{"k": 16384}"#, r#"{"k": "x"}"#] {
            let e = ranker(&[kv("strategy", "rrf"), kv("params", bad)], 1).expect_err(bad);
            assert!(e.to_string().contains("params.k"), "{e}");
        }
        let w = [
            kv("strategy", "weighted"),
            kv("params", r#"{"weights": [0.2, 0.8], "norm_score": false}"#),
        ];
        assert_eq!(
            ranker(&w, 2).expect("weighted"),
            Ranker::Weighted {
                weights: vec![0.2, 0.8],
                norm: false
            }
        );
        let e = ranker(&w, 3).expect_err("count");
        assert!(e.to_string().contains("2 weights for 3 searches"), "{e}");
        let e = ranker(
            &[
                kv("strategy", "weighted"),
                kv("params", r#"{"weights": [1.5]}"#),
            ],
            1,
        )
        .expect_err("range");
        assert!(e.to_string().contains("[0, 1]"), "{e}");
        let e = ranker(&[kv("strategy", "nope")], 1).expect_err("strategy");
        assert!(e.to_string().contains("rank_params.strategy"), "{e}");
    }

    #[test]
    fn normalized_scores_put_closer_higher() {
        for m in [Metric::L2, Metric::Hamming, Metric::Jaccard] {
            assert!(normalized(m, 0.1, true) > normalized(m, 5.0, true));
            assert!(normalized(m, 0.1, false) > normalized(m, 5.0, false));
            assert_eq!(normalized(m, 0.0, true), 1.0);
        }
        for m in [Metric::Ip, Metric::Cosine] {
            assert!(normalized(m, 0.9, true) > normalized(m, 0.1, true));
        }
        assert_eq!(normalized(Metric::Cosine, -1.0, true), 0.0);
        assert_eq!(normalized(Metric::Ip, 0.0, true), 0.5);
    }
}
