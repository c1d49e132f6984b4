//! Exact (brute-force) search.

use std::collections::BinaryHeap;

use quiver_common::{Metric, VectorSlice, VectorsRef};

use crate::distance::{Space, with_space};
use crate::filter::RowFilter;
use crate::topk::{Cand, Neighbor, into_neighbors};

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

pub(crate) fn flat_impl<S: Space>(
    vectors: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
    filter: Option<&dyn RowFilter>,
) -> Vec<Neighbor> {
    let mut heap: BinaryHeap<Cand> = BinaryHeap::with_capacity(k.min(vectors.len() / dim) + 1);
    for (i, row) in vectors.chunks_exact(dim).enumerate() {
        let id = i as u32;
        if let Some(f) = filter
            && !f.allows(id)
        {
            continue;
        }
        let d = S::dist(query, row);
        if heap.len() < k {
            heap.push(Cand { d, id });
        } else if heap.peek().is_some_and(|top| Cand { d, id } < *top) {
            heap.pop();
            heap.push(Cand { d, id });
        }
    }
    into_neighbors(heap, k, S::to_score)
}
