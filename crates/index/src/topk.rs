//! Scored hits, the internal candidate type and the cross-segment merge.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use quiver_common::Metric;

/// A scored hit; `id` is the row offset within the vectors given to the
/// index or segment, `score` follows the Milvus convention of the metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbor {
    pub id: u32,
    pub score: f32,
}

/// Internal candidate: distance (smaller is closer) and row id.
/// Ordered by distance, then id (total order, NaN sorts last).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cand {
    pub d: f32,
    pub id: u32,
}

impl PartialEq for Cand {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        self.d.total_cmp(&o.d).then(self.id.cmp(&o.id))
    }
}

/// Head of one input list inside the merge heap; the heap pops the best head.
struct Head {
    key: f32, // score negated for L2 so that "larger key = better" always holds
    list: usize,
    pos: usize,
}

impl PartialEq for Head {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head {
    fn cmp(&self, o: &Self) -> Ordering {
        // Better key first; on ties prefer the earlier list (stable merge).
        self.key.total_cmp(&o.key).then(o.list.cmp(&self.list))
    }
}

/// Merges per-segment result lists (each sorted best first) into the global
/// top-`k` for `metric` (ascending scores for L2, descending for IP/COSINE).
pub fn merge_topk<T: Clone>(lists: Vec<Vec<(T, f32)>>, k: usize, metric: Metric) -> Vec<(T, f32)> {
    let higher = metric.higher_is_closer();
    let key = |s: f32| if higher { s } else { -s };
    let mut heap: BinaryHeap<Head> = lists
        .iter()
        .enumerate()
        .filter_map(|(list, l)| {
            l.first().map(|(_, s)| Head {
                key: key(*s),
                list,
                pos: 0,
            })
        })
        .collect();
    let mut out = Vec::with_capacity(k.min(lists.iter().map(Vec::len).sum()));
    while out.len() < k {
        let Some(h) = heap.pop() else { break };
        let l = &lists[h.list];
        out.push(l[h.pos].clone());
        if let Some((_, s)) = l.get(h.pos + 1) {
            heap.push(Head {
                key: key(*s),
                list: h.list,
                pos: h.pos + 1,
            });
        }
    }
    out
}

/// Turns a max-heap of the best candidates into hits sorted best first.
pub(crate) fn into_neighbors(
    heap: BinaryHeap<Cand>,
    k: usize,
    to_score: fn(f32) -> f32,
) -> Vec<Neighbor> {
    sorted_into_neighbors(heap.into_sorted_vec(), k, to_score)
}

/// The first `k` of `sorted` (closest first) as hits.
pub(crate) fn sorted_into_neighbors(
    mut sorted: Vec<Cand>,
    k: usize,
    to_score: fn(f32) -> f32,
) -> Vec<Neighbor> {
    sorted.truncate(k);
    sorted
        .into_iter()
        .map(|c| Neighbor {
            id: c.id,
            score: to_score(c.d),
        })
        .collect()
}
