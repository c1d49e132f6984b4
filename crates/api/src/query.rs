//! The read path: front door -> querynode, per shard.

use std::sync::Arc;

use async_trait::async_trait;
use quiver_common::{PrimaryKey, Result, ScalarValue, Timestamp, ValueRef};
use serde::{Deserialize, Serialize};

use crate::digest::{DigestRequest, ShardDigest};
use crate::meta::ShardId;

/// Read access to one row, for filter predicates.
pub trait RowAccess {
    fn pk(&self) -> &PrimaryKey;
    /// The value of a scalar field (None when the field does not exist).
    fn field(&self, name: &str) -> Option<ValueRef<'_>>;
}

/// A compiled filter expression.
pub trait RowPredicate: Send + Sync {
    fn eval(&self, row: &dyn RowAccess) -> bool;

    /// The predicate as bytes that a remote querynode can decode (for a
    /// compiled expression: `quiver_expr::CompiledFilter::decode`). None when
    /// the predicate cannot cross the network; a network client must then
    /// refuse the request rather than drop the filter.
    fn encode(&self) -> Option<Vec<u8>> {
        None
    }

    /// Equality terms every accepted row meets (conjuncts of the shape
    /// `column == v` / `column in [..]` at the top of the predicate), so an
    /// index of the column's values can name the only rows worth
    /// evaluating. Empty when there are none (the default).
    fn column_terms(&self) -> &[ColumnTerms] {
        &[]
    }

    /// The predicate's conditions on single scalar columns, as a plan a
    /// querynode answers from its scalar indexes and typed scans
    /// ([`crate::ColumnPlan`]). None when no part of it is one (the default).
    fn column_plan(&self) -> Option<&crate::ColumnPlan> {
        None
    }
}

/// Rows a predicate accepts have `column` equal to one of `values` (ints
/// and strings only); with `analyzer`, the column's text analysed with
/// those parameters holds one of the tokens `values` (`TEXT_MATCH`).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnTerms {
    pub column: String,
    pub values: Vec<quiver_common::ScalarValue>,
    pub analyzer: Option<String>,
}

/// A top-k search of one shard for `nq` queries.
#[derive(Clone)]
pub struct ShardSearch {
    pub shard: ShardId,
    /// `nq * dim` floats.
    pub queries: Arc<Vec<f32>>,
    pub k: usize,
    pub ef: usize,
    /// At least this many of an 8-bit index's best rows by code distance
    /// are re-ranked exactly, the beam widened to hold them (Milvus's
    /// `refine_k × k`); 0: the index's default, `max(4k, k + 32)`.
    pub rerank: usize,
    /// Wait until the shard has applied everything up to this timestamp.
    pub guarantee_ts: Timestamp,
    pub filter: Option<Arc<dyn RowPredicate>>,
    /// Scalar fields to return with each hit.
    pub output_fields: Vec<String>,
    pub with_vectors: bool,
    /// The vector field searched when it is not the first one.
    pub anns: Option<AnnsField>,
}

/// A vector field other than a collection's first dense one, as a search
/// names it: its vectors are a column, searched exactly with the metric of
/// its index (a sparse field with the queries in `sparse`).
#[derive(Debug, Clone, PartialEq)]
pub struct AnnsField {
    pub name: String,
    pub metric: quiver_common::Metric,
    pub sparse: Option<Arc<SparseQueries>>,
}

/// The queries of a search of a sparse vector field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparseQueries {
    /// One sparse vector per query, indices increasing (a BM25 search:
    /// the text's term ids and counts).
    pub queries: Vec<Vec<(u32, f32)>>,
    /// The fraction of each query's smallest values left out (Milvus's
    /// `drop_ratio_search`, 0 <= r < 1).
    pub drop_ratio: f32,
    /// BM25 (`k1`, `b`) when the field is a BM25 function's output: scores
    /// use the shard's corpus statistics; otherwise inner products.
    pub bm25: Option<(f32, f32)>,
}

impl SparseQueries {
    /// Query `q` without the `drop_ratio` fraction of its smallest values
    /// (by absolute value, as Milvus).
    pub fn effective(&self, q: usize) -> Vec<(u32, f32)> {
        let Some(query) = self.queries.get(q) else {
            return Vec::new();
        };
        let drop = (query.len() as f32 * self.drop_ratio) as usize;
        if drop == 0 {
            return query.clone();
        }
        let mut by_size: Vec<f32> = query.iter().map(|(_, v)| v.abs()).collect();
        by_size.sort_by(f32::total_cmp);
        let threshold = by_size[drop.min(by_size.len() - 1)];
        query
            .iter()
            .filter(|(_, v)| v.abs() >= threshold)
            .copied()
            .collect()
    }
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardHit {
    pub pk: PrimaryKey,
    /// Milvus convention: L2 = squared distance, IP/COSINE = similarity.
    pub score: f32,
    pub fields: Vec<ScalarValue>,
    pub vector: Option<Vec<f32>>,
}

/// A scan of one shard (Query / Get).
#[derive(Clone)]
pub struct ShardQuery {
    pub shard: ShardId,
    pub guarantee_ts: Timestamp,
    pub filter: Option<Arc<dyn RowPredicate>>,
    /// Only these keys (Get); None = every row passing the filter.
    pub pks: Option<Vec<PrimaryKey>>,
    pub limit: usize,
    pub output_fields: Vec<String>,
    pub with_vectors: bool,
}

/// Rows found by a query (ordered by primary key).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    pub rows: Vec<ShardHit>,
}

/// The querynode as seen by the front door.
#[async_trait]
pub trait QueryClient: Send + Sync {
    /// One hit list per query, best first.
    async fn search(&self, req: ShardSearch) -> Result<Vec<Vec<ShardHit>>>;
    async fn query(&self, req: ShardQuery) -> Result<QueryResult>;
    /// Number of live rows of the shard that `filter` accepts (all of them
    /// without one), counted where they are found: no row is materialized.
    async fn count(
        &self,
        shard: ShardId,
        guarantee_ts: Timestamp,
        filter: Option<Arc<dyn RowPredicate>>,
    ) -> Result<u64>;
    /// The shard's digest (see [`crate::ShardDigest`]).
    async fn digest(&self, req: DigestRequest) -> Result<ShardDigest>;
}

#[cfg(test)]
mod tests {
    use super::SparseQueries;

    #[test]
    fn drop_ratio_leaves_out_the_smallest_values_by_magnitude() {
        let q = |drop_ratio| SparseQueries {
            queries: vec![vec![(1, 0.5), (2, -3.0), (3, 0.1), (4, 2.0)]],
            drop_ratio,
            bm25: None,
        };
        assert_eq!(q(0.0).effective(0).len(), 4);
        assert_eq!(q(0.5).effective(0), vec![(2, -3.0), (4, 2.0)]);
        assert_eq!(q(0.3).effective(0), vec![(1, 0.5), (2, -3.0), (4, 2.0)]);
        assert!(q(0.5).effective(1).is_empty());
    }
}
