//! Reads through the front door: searches (with a mirrored alias's flip and hedge),
//! queries and counts, each shard read at the consistency asked for.

use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use quiver_api::{
    AliasMeta, AnnsField, CollectionInfo, IndexKind, RowPredicate, ShardHit, ShardId, ShardQuery,
    ShardSearch, SparseQueries,
};
use quiver_common::{
    DataType, Error, PrimaryKey, Result, Timestamp, compose_ts, ts_physical_ms, wall_ts,
};
use quiver_index::merge_topk;

use super::{Consistency, Proxy, shards};
use crate::routing::shard_of;

/// A search's hits and the collection that answered (through a mirrored
/// alias, either side of the pair).
#[derive(Debug)]
pub struct Served {
    pub hits: Vec<Vec<ShardHit>>,
    pub collection: String,
}

pub struct SearchRequest {
    pub collection: String,
    /// `nq * dim` floats.
    pub queries: Vec<f32>,
    pub k: usize,
    pub ef: Option<usize>,
    /// An 8-bit index re-ranks at least `refine_k × k` of its best rows by
    /// code distance exactly (Milvus's `refine_k`, >= 1); None: the
    /// index's default depth, `max(4k, k + 32)`.
    pub refine_k: Option<f32>,
    pub filter: Option<Arc<dyn RowPredicate>>,
    pub consistency: Consistency,
    pub output_fields: Vec<String>,
    pub with_vectors: bool,
    /// The vector field to search (None: the collection's main one).
    pub anns_field: Option<String>,
    /// The queries of a search of a sparse field (`queries` is empty then;
    /// the proxy sets `bm25` from the field's index).
    pub sparse: Option<SparseQueries>,
}

/// How often a search through a mirrored alias checks whether the alias
/// flipped under it.
const FLIP_CHECK: std::time::Duration = std::time::Duration::from_millis(20);
/// How long a hedged search through a mirrored alias waits for the other
/// side's lag before it gives up hedging.
const MIRROR_LAG_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

impl Proxy {
    /// Reads one shard at the consistency `c` asks for: `read` gets the
    /// guarantee timestamp. A Bounded read does not wait on a stalled shard
    /// longer than `stale_read_after_ms` (`stale.rs`).
    async fn read_shard<T, F, Fut>(&self, shard: ShardId, c: Consistency, read: F) -> Result<T>
    where
        F: Fn(Timestamp) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let ts = self.guarantee(shard, c).await?;
        let after = Duration::from_millis(self.limits.stale_read_after_ms);
        match c {
            Consistency::Bounded(_) if !after.is_zero() => {
                crate::stale::read_bounded(after, ts, read).await
            }
            _ => read(ts).await,
        }
    }

    async fn guarantee(&self, shard: ShardId, c: Consistency) -> Result<Timestamp> {
        Ok(match c {
            Consistency::Strong => self.data.last_ts(shard).await?,
            Consistency::Session(ts) => ts,
            Consistency::Bounded(staleness) => bounded_ts(staleness),
            Consistency::Eventually => 0,
        })
    }

    /// Top-k per query, best first (see [`Proxy::search_served`]).
    pub async fn search(&self, req: SearchRequest) -> Result<Vec<Vec<ShardHit>>> {
        self.search_served(req).await.map(|s| s.hits)
    }

    /// Top-k per query, best first, and the collection that answered.
    ///
    /// Through a mirrored alias the request is pinned to the collection the
    /// alias names when it starts; if the alias flips while the search is
    /// still waiting (its target is failing over), the whole search starts
    /// again on the new target — never a mix of the two collections. A
    /// Bounded or Eventually search the target has not answered within
    /// `mirror_hedge_ms` also goes to the other collection of the pair when
    /// that one is within the alias's allowed lag; the first answer wins
    /// (`mirror_hedge`).
    pub async fn search_served(&self, mut req: SearchRequest) -> Result<Served> {
        let queries = Arc::new(std::mem::take(&mut req.queries));
        loop {
            let info = self.describe(&req.collection)?;
            let target = info.schema.name.clone();
            let alias = self
                .catalog
                .alias(&req.collection)
                .filter(|a| a.mirror.is_some());
            let run = self.search_on(&info, &req, queries.clone());
            let served = |hits| Served {
                hits,
                collection: target.clone(),
            };
            let Some(alias) = alias else {
                return run.await.map(served);
            };
            tokio::pin!(run);
            let hedge = self.mirror_hedge(&alias, &target, &req, queries.clone());
            tokio::pin!(hedge);
            let flipped = async {
                loop {
                    tokio::time::sleep(FLIP_CHECK).await;
                    if self.catalog.collection(&req.collection).map(|c| c.id) != Some(info.id) {
                        return;
                    }
                }
            };
            tokio::select! {
                r = &mut run => return r.map(served),
                Some(r) = &mut hedge => return Ok(r),
                () = flipped => {
                    tracing::debug!(alias = req.collection, from = target, "alias flipped during a search: starting it again on the new target");
                }
            }
        }
    }

    /// The other side of a mirrored alias's search (see
    /// [`Proxy::search_served`]); never resolves when it does not apply.
    async fn mirror_hedge(
        &self,
        alias: &AliasMeta,
        target: &str,
        req: &SearchRequest,
        queries: Arc<Vec<f32>>,
    ) -> Option<Served> {
        let after = Duration::from_millis(self.limits.mirror_hedge_ms);
        let soft = matches!(
            req.consistency,
            Consistency::Bounded(_) | Consistency::Eventually
        );
        let mirror = alias.mirror.as_ref()?;
        if !soft || after.is_zero() {
            return None;
        }
        tokio::time::sleep(after).await;
        let other = mirror.other(target).to_string();
        // The lag as coord last heard it from the datanodes (one call, only
        // for a search that is already late).
        let lag = tokio::time::timeout(MIRROR_LAG_WAIT, self.catalog.mirror_lag_ms(target))
            .await
            .ok()
            .flatten()?;
        if lag > mirror.max_lag_ms {
            return None;
        }
        let info = self.describe(&other).ok()?;
        match self.search_on(&info, req, queries).await {
            Ok(hits) => {
                tracing::debug!(
                    target,
                    served_by = other,
                    lag,
                    "mirrored search hedged to the other side"
                );
                Some(Served {
                    hits,
                    collection: other,
                })
            }
            Err(e) => {
                tracing::debug!(target, other, error = %e, "hedged search on the other side failed");
                None
            }
        }
    }

    async fn search_on(
        &self,
        info: &CollectionInfo,
        req: &SearchRequest,
        queries: Arc<Vec<f32>>,
    ) -> Result<Vec<Vec<ShardHit>>> {
        self.check_loaded(info)?;
        // The field searched: the collection's main vector field, or another
        // one named. Every field but the first dense one is a column,
        // searched exactly with its own index's metric; sparse fields with
        // sparse queries.
        let main = info.schema.vector_field().name.as_str();
        let field_name = req.anns_field.as_deref().unwrap_or(main);
        let metric = info.metric_of(Some(field_name))?;
        let field = info.schema.field(field_name);
        let sparse_field = field.is_some_and(|f| f.data_type == DataType::SparseFloatVector);
        let sparse = match (&req.sparse, sparse_field) {
            (Some(s), true) => {
                let bm25 = (metric == quiver_common::Metric::Bm25).then(|| {
                    let p = info.index_of(field_name).unwrap_or(IndexKind::None).bm25();
                    (p.k1, p.b)
                });
                Some(Arc::new(SparseQueries { bm25, ..s.clone() }))
            }
            (None, false) => None,
            (None, true) => {
                return Err(Error::invalid(
                    field_name,
                    "a sparse vector field is searched with sparse vectors (or, for a BM25 function's output, with text)",
                ));
            }
            (Some(_), false) => {
                return Err(Error::invalid(
                    field_name,
                    "sparse vectors search sparse vector fields only (the field is dense)",
                ));
            }
        };
        let anns =
            (info.schema.dense_field().map(|f| f.name.as_str()) != Some(field_name)).then(|| {
                AnnsField {
                    name: field_name.to_string(),
                    metric,
                    sparse: sparse.clone(),
                }
            });
        let dim = field.and_then(|f| f.dim).unwrap_or(0) as usize;
        if req.k == 0 || req.k > self.limits.max_topk {
            return Err(Error::invalid(
                "limit",
                format!(
                    "must be between 1 and {} (got {})",
                    self.limits.max_topk, req.k
                ),
            ));
        }
        let nq = match &sparse {
            Some(s) if s.queries.is_empty() => {
                return Err(Error::invalid(field_name, "no query vectors"));
            }
            Some(s) => s.queries.len(),
            None => {
                if queries.is_empty() || !queries.len().is_multiple_of(dim.max(1)) {
                    return Err(Error::invalid(
                        field_name,
                        format!(
                            "query vectors must have dim {dim} (got {} floats)",
                            queries.len()
                        ),
                    ));
                }
                queries.len() / dim.max(1)
            }
        };
        if nq > self.limits.max_nq {
            return Err(Error::invalid(
                "nq",
                format!("at most {} queries per search", self.limits.max_nq),
            ));
        }
        // Held until the results are merged and returned.
        let _admitted = self.admission.search(nq.saturating_mul(req.k))?;
        if let Some(pos) = queries.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                field_name,
                format!(
                    "query values must be finite (query {} has {})",
                    pos / dim,
                    queries[pos]
                ),
            ));
        }
        for f in &req.output_fields {
            if info.schema.field(f).is_none() {
                return Err(Error::invalid(
                    "output_fields",
                    format!("no field {f:?} in the collection"),
                ));
            }
        }
        let ef = req.ef.unwrap_or(self.limits.default_ef).max(req.k);
        let rerank = match req.refine_k {
            None => 0,
            Some(r) if r.is_finite() && r >= 1.0 => {
                quiver_index::refine_k_rows(r, req.k).min(self.limits.max_topk)
            }
            Some(r) => {
                return Err(Error::invalid(
                    "refine_k",
                    format!("must be a number >= 1 (got {r})"),
                ));
            }
        };
        let per_shard = shards(info).map(|shard| {
            let queries = queries.clone();
            let filter = req.filter.clone();
            let output_fields = req.output_fields.clone();
            let anns = anns.clone();
            let read = move |guarantee_ts| {
                self.query.search(ShardSearch {
                    shard,
                    queries: queries.clone(),
                    k: req.k,
                    ef,
                    rerank,
                    guarantee_ts,
                    filter: filter.clone(),
                    output_fields: output_fields.clone(),
                    with_vectors: req.with_vectors,
                    anns: anns.clone(),
                })
            };
            self.read_shard(shard, req.consistency, read)
        });
        let mut results = try_join_all(per_shard).await?;
        if results.len() == 1 {
            return Ok(results.pop().unwrap_or_default());
        }
        Ok((0..nq)
            .map(|q| {
                let lists = results
                    .iter_mut()
                    .map(|r| {
                        std::mem::take(&mut r[q])
                            .into_iter()
                            .map(|h| {
                                let s = h.score;
                                (h, s)
                            })
                            .collect()
                    })
                    .collect();
                merge_topk(lists, req.k, metric)
                    .into_iter()
                    .map(|(h, _)| h)
                    .collect()
            })
            .collect())
    }

    /// Rows by key (pymilvus `get`) or by filter, ordered by key.
    #[allow(clippy::too_many_arguments)]
    pub async fn query(
        &self,
        collection: &str,
        pks: Option<Vec<PrimaryKey>>,
        filter: Option<Arc<dyn RowPredicate>>,
        limit: usize,
        output_fields: Vec<String>,
        with_vectors: bool,
        consistency: Consistency,
    ) -> Result<Vec<ShardHit>> {
        let info = self.describe(collection)?;
        self.check_loaded(&info)?;
        for f in &output_fields {
            if info.schema.field(f).is_none() {
                return Err(Error::invalid(
                    "output_fields",
                    format!("no field {f:?} in the collection"),
                ));
            }
        }
        let per_shard = shards(&info).map(|shard| {
            let pks = pks.as_ref().map(|p| {
                p.iter()
                    .filter(|pk| shard_of(pk, info.shards) == shard.shard)
                    .cloned()
                    .collect()
            });
            let filter = filter.clone();
            let output_fields = output_fields.clone();
            let read = move |guarantee_ts| {
                self.query.query(ShardQuery {
                    shard,
                    guarantee_ts,
                    filter: filter.clone(),
                    pks: pks.clone(),
                    limit,
                    output_fields: output_fields.clone(),
                    with_vectors,
                })
            };
            self.read_shard(shard, consistency, read)
        });
        let mut rows: Vec<ShardHit> = try_join_all(per_shard)
            .await?
            .into_iter()
            .flat_map(|r| r.rows)
            .collect();
        rows.sort_by(|a, b| a.pk.cmp(&b.pk));
        rows.truncate(limit);
        Ok(rows)
    }

    /// Live rows of the collection.
    pub async fn count(&self, collection: &str, consistency: Consistency) -> Result<u64> {
        self.count_where(collection, None, consistency).await
    }

    /// Live rows of the collection that `filter` accepts (all without one),
    /// counted by each querynode without sending a row.
    pub async fn count_where(
        &self,
        collection: &str,
        filter: Option<Arc<dyn RowPredicate>>,
        consistency: Consistency,
    ) -> Result<u64> {
        let info = self.describe(collection)?;
        self.check_loaded(&info)?;
        let filter = &filter;
        let counts = shards(&info).map(|shard| {
            self.read_shard(shard, consistency, move |ts| {
                self.query.count(shard, ts, filter.clone())
            })
        });
        Ok(try_join_all(counts).await?.into_iter().sum())
    }
}

/// The guarantee timestamp of a Bounded read: `staleness` before now.
pub fn bounded_ts(staleness: Duration) -> Timestamp {
    let now = ts_physical_ms(wall_ts());
    compose_ts(now.saturating_sub(staleness.as_millis() as u64), 0)
}
