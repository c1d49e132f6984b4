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
    // A sparse set of allowed rows: visit those only.
    if let Some(set) = filter.and_then(|f| f.as_bitset())
        && set.count_ones() < set.len() / 8
    {
        for id in set.iter() {
            let s = id as usize * dim;
            let Some(row) = vectors.get(s..s + dim) else {
                break;
            };
            offer(
                &mut heap,
                k,
                Cand {
                    d: S::dist(query, row),
                    id,
                },
            );
        }
        return into_neighbors(heap, k, S::to_score);
    }
    for (i, row) in vectors.chunks_exact(dim).enumerate() {
        let id = i as u32;
        if let Some(f) = filter
            && !f.allows(id)
        {
            continue;
        }
        offer(
            &mut heap,
            k,
            Cand {
                d: S::dist(query, row),
                id,
            },
        );
    }
    into_neighbors(heap, k, S::to_score)
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
    for c in &found {
        crate::hnsw::prefetch(vectors, c.id as usize * dim, dim);
    }
    found.retain_mut(|c| {
        let s = c.id as usize * dim;
        vectors.get(s..s + dim).is_some_and(|row| {
            c.d = S::dist(query, row);
            true
        })
    });
    found.sort_unstable();
    sorted_into_neighbors(found, k, S::to_score)
}
