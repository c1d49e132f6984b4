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
fn offer(heap: &mut BinaryHeap<Cand>, k: usize, c: Cand) {
    if heap.len() < k {
        heap.push(c);
    } else if heap.peek().is_some_and(|top| c < *top) {
        heap.pop();
        heap.push(c);
    }
}
