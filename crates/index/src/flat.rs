//! Exact (brute-force) search.

use std::collections::BinaryHeap;

use quiver_common::{Metric, VectorSlice, VectorsRef};

use crate::distance::{Space, with_space};
use crate::filter::RowFilter;
use crate::topk::{Cand, Neighbor, into_neighbors, sorted_into_neighbors};

/// Exact top-`k` of `query` among `vectors`, honouring `filter`; sorted best
/// first. Returns nothing when the dimension is 0 or `query.len()` differs
/// from it; a trailing partial row is ignored.
pub fn flat_search(
    vectors: VectorsRef<'_>,
    metric: Metric,
    query: &[f32],
    k: usize,
    filter: Option<&dyn RowFilter>,
) -> Vec<Neighbor> {
    let dim = vectors.dim();
    if dim == 0 || query.len() != dim || k == 0 {
        return Vec::new();
    }
    let VectorSlice::F32(vectors) = vectors.data();
    with_space!(metric, S => flat_impl::<S>(vectors, dim, query, k, filter))
}

/// Exact top-k over rows given one by one as `(id, vector)` (vectors kept
/// apart, such as a collection's further vector fields, which are columns).
/// A row whose length is not the query's is skipped.
pub fn flat_search_rows<'a>(
    rows: impl Iterator<Item = (u32, &'a [f32])>,
    metric: Metric,
    query: &[f32],
    k: usize,
) -> Vec<Neighbor> {
    if k == 0 || query.is_empty() {
        return Vec::new();
    }
    with_space!(metric, S => {
        let mut heap: BinaryHeap<Cand> = BinaryHeap::with_capacity(k + 1);
        for (id, row) in rows.filter(|(_, r)| r.len() == query.len()) {
            offer(&mut heap, k, Cand { d: S::dist(query, row), id });
        }
        into_neighbors(heap, k, S::to_score)
    })
}

pub(crate) fn flat_impl<S: Space>(
    vectors: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
    filter: Option<&dyn RowFilter>,
) -> Vec<Neighbor> {
    let mut heap: BinaryHeap<Cand> = BinaryHeap::with_capacity(k.min(vectors.len() / dim) + 1);
    let rows = (vectors.len() / dim) as u32;
    // A sparse set of allowed rows: visit those only.
    if let Some(set) = filter.and_then(|f| f.as_bitset())
        && set.count_ones() < set.len() / 8
    {
        offer_rows::<S>(
            &mut heap,
            k,
            vectors,
            query,
            set.iter().take_while(|&id| id < rows),
        );
        return into_neighbors(heap, k, S::to_score);
    }
    let allowed = (0..rows).filter(|&id| filter.is_none_or(|f| f.allows(id)));
    offer_rows::<S>(&mut heap, k, vectors, query, allowed);
    into_neighbors(heap, k, S::to_score)
}

/// Rows whose distances [`offer_rows`] computes in one call.
const CHUNK: usize = 64;

/// [`offer`]s each row of `ids` (all within `vectors`), their distances
/// computed [`CHUNK`] rows a call ([`Space::dists`]).
fn offer_rows<S: Space>(
    heap: &mut BinaryHeap<Cand>,
    k: usize,
    vectors: &[f32],
    query: &[f32],
    mut ids: impl Iterator<Item = u32>,
) {
    let (mut chunk, mut dists) = (Vec::with_capacity(CHUNK), Vec::with_capacity(CHUNK));
    loop {
        chunk.clear();
        chunk.extend(ids.by_ref().take(CHUNK));
        if chunk.is_empty() {
            return;
        }
        S::dists(query, vectors, &chunk, &mut dists);
        for (&id, &d) in chunk.iter().zip(&dists) {
            offer(heap, k, Cand { d, id });
        }
    }
}

/// Keeps the `k` closest candidates seen.
#[inline]
pub(crate) fn offer(heap: &mut BinaryHeap<Cand>, k: usize, c: Cand) {
    if heap.len() < k {
        heap.push(c);
    } else if heap.peek().is_some_and(|top| c < *top) {
        heap.pop();
        heap.push(c);
    }
}

/// The top `k` of `found` by exact distance to `query` over `vectors`
/// (`dim` floats a row; ids past the end are dropped).
pub(crate) fn rerank<S: Space>(
    vectors: &[f32],
    dim: usize,
    query: &[f32],
    mut found: Vec<Cand>,
    k: usize,
) -> Vec<Neighbor> {
    found.retain(|c| (c.id as usize + 1) * dim <= vectors.len());
    for c in &found {
        crate::hnsw::prefetch(vectors, c.id as usize * dim, dim);
    }
    let ids: Vec<u32> = found.iter().map(|c| c.id).collect();
    let mut dists = Vec::with_capacity(ids.len());
    S::dists(query, vectors, &ids, &mut dists);
    for (c, d) in found.iter_mut().zip(dists) {
        c.d = d;
    }
    found.sort_unstable();
    sorted_into_neighbors(found, k, S::to_score)
}
