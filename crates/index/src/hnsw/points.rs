//! What the graph is built and searched over: exact f32 rows, or 8-bit codes.
//! Build and search are written once over these traits and monomorphised.

use std::marker::PhantomData;

use super::prefetch;
use crate::distance::Space;
use crate::sq::{DotTerms, SqCodes, SqQuery};

/// A query's distance to the stored rows (smaller is closer).
pub(crate) trait QueryDist {
    fn dist(&self, id: u32) -> f32;
    /// Hints the CPU to load row `id`.
    fn prefetch(&self, id: u32);
    /// How many rows of a neighbour list to prefetch before computing the
    /// first distance; the others are prefetched this many rows ahead.
    fn prefetch_ahead(&self) -> usize {
        usize::MAX
    }
    /// The distances to `ids`, in order, into `out` (replacing what it
    /// held): one call for a neighbour list.
    fn dists(&self, ids: &[u32], out: &mut Vec<f32>);
    /// [`QueryDist::dists`], except that a distance above `bound` may be
    /// any value above `bound` (a lower bound, computed for less).
    #[inline]
    fn dists_below(&self, ids: &[u32], bound: f32, out: &mut Vec<f32>) {
        let _ = bound;
        self.dists(ids, out);
    }
}

/// The rows a graph is built over.
pub(crate) trait Points: Sync {
    type Query<'a>: QueryDist
    where
        Self: 'a;
    /// Row `id` as a query.
    fn query(&self, id: u32) -> Self::Query<'_>;
    /// Distance between rows `a` and `b`.
    fn dist_between(&self, a: u32, b: u32) -> f32;
}

/// Exact distances to f32 rows under metric space `S`.
pub(crate) struct Exact<'a, S> {
    pub rows: &'a [f32],
    pub dim: usize,
    pub q: &'a [f32],
    pub _space: PhantomData<S>,
}

impl<S: Space> QueryDist for Exact<'_, S> {
    #[inline]
    fn dist(&self, id: u32) -> f32 {
        let s = id as usize * self.dim;
        S::dist(self.q, &self.rows[s..s + self.dim])
    }
    #[inline]
    fn prefetch(&self, id: u32) {
        prefetch(self.rows, id as usize * self.dim, self.dim);
    }
    /// One call for the list (`crate::dense` for L2 and IP).
    #[inline]
    fn dists(&self, ids: &[u32], out: &mut Vec<f32>) {
        S::dists(self.q, self.rows, ids, out);
    }
}

/// f32 rows under metric space `S`.
pub(crate) struct ExactPoints<'a, S> {
    pub rows: &'a [f32],
    pub dim: usize,
    pub _space: PhantomData<S>,
}

impl<S: Space> ExactPoints<'_, S> {
    #[inline]
    fn row(&self, id: u32) -> &[f32] {
        let s = id as usize * self.dim;
        &self.rows[s..s + self.dim]
    }
}

impl<S: Space> Points for ExactPoints<'_, S> {
    type Query<'a>
        = Exact<'a, S>
    where
        Self: 'a;

    #[inline]
    fn query(&self, id: u32) -> Exact<'_, S> {
        Exact {
            rows: self.rows,
            dim: self.dim,
            q: self.row(id),
            _space: PhantomData,
        }
    }

    #[inline]
    fn dist_between(&self, a: u32, b: u32) -> f32 {
        S::dist(self.row(a), self.row(b))
    }
}

impl QueryDist for SqQuery<'_> {
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        SqQuery::dist(self, id)
    }
    #[inline]
    fn prefetch(&self, id: u32) {
        SqQuery::prefetch(self, id);
    }
    #[inline]
    fn prefetch_ahead(&self) -> usize {
        SqQuery::prefetch_ahead(self)
    }
    #[inline]
    fn dists(&self, ids: &[u32], out: &mut Vec<f32>) {
        SqQuery::dists(self, ids, out);
    }
    #[inline]
    fn dists_below(&self, ids: &[u32], bound: f32, out: &mut Vec<f32>) {
        SqQuery::dists_below(self, ids, bound, out);
    }
}

/// 8-bit codes being indexed: a row inserted is the query in f32 (its exact
/// values against the others' codes); the links are chosen by distances
/// between codes.
pub(crate) struct CodePoints<'a> {
    pub sq: &'a SqCodes,
    pub rows: &'a [f32],
    pub dim: usize,
    /// [`SqCodes::dot_terms`].
    pub terms: DotTerms,
}

impl<'a> CodePoints<'a> {
    /// The codes `sq` of `rows` (`dim` floats a row), ready to build over.
    pub fn new(sq: &'a SqCodes, rows: &'a [f32], dim: usize) -> Self {
        CodePoints {
            sq,
            rows,
            dim,
            terms: sq.dot_terms(),
        }
    }
}

impl Points for CodePoints<'_> {
    type Query<'a>
        = SqQuery<'a>
    where
        Self: 'a;

    #[inline]
    fn query(&self, id: u32) -> SqQuery<'_> {
        let s = id as usize * self.dim;
        self.sq.query(&self.rows[s..s + self.dim])
    }

    #[inline]
    fn dist_between(&self, a: u32, b: u32) -> f32 {
        self.sq.dist_codes(a, b, &self.terms)
    }
}
