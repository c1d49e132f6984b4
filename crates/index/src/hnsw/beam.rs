//! The beam of a graph search: the best `width` candidates found so far in
//! one array sorted closest first, each marked once its links are expanded
//! (the "linear pool" of NSG and glass). It stands for hnswlib's two heaps
//! (candidates to expand and results): a candidate that falls out of the
//! best `width` would never be expanded by the heaps either (the search
//! stops at the first candidate farther than the worst result), so both
//! expand the same nodes in the same order, and the beam needs no pops: an
//! insertion is a binary search and a short move of the slots after it.

use crate::topk::Cand;

/// Ids of a graph are below this (`HnswIndex` refuses more rows), which
/// leaves a slot's top id bit for its mark.
pub(crate) const MAX_NODES: usize = 1 << 31;
const EXPANDED: u32 = 1 << 31;

/// A candidate in one word: the distance's bits in an order that sorts as
/// the distance does ([`f32::total_cmp`]'s), then the id, whose top bit
/// marks an expanded candidate. Eight bytes, so that an insertion moves as
/// few as it can, and a slot sorts as its [`Cand`] does by one integer
/// comparison (a beam's insertion is a binary search: a chain of loads and
/// comparisons, each waiting on the one before).
#[derive(Clone, Copy)]
struct Slot(u64);

/// The bits of `d` as an integer that sorts as `d` does under `total_cmp`.
#[inline(always)]
fn ordered(d: f32) -> u32 {
    let b = d.to_bits();
    if b >> 31 == 1 { !b } else { b | 1 << 31 }
}

#[inline(always)]
fn unordered(k: u32) -> f32 {
    f32::from_bits(if k >> 31 == 1 { k & !(1 << 31) } else { !k })
}

impl Slot {
    #[inline(always)]
    fn of(c: Cand) -> Slot {
        Slot(u64::from(ordered(c.d)) << 32 | u64::from(c.id))
    }

    /// The distance part, as [`ordered`] gives it.
    #[inline(always)]
    fn key(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The slot without its mark, to compare with [`Slot::of`].
    #[inline(always)]
    fn unmarked(self) -> u64 {
        self.0 & !u64::from(EXPANDED)
    }

    #[inline]
    fn cand(self) -> Cand {
        Cand {
            d: unordered(self.key()),
            id: self.0 as u32 & !EXPANDED,
        }
    }

    #[inline]
    fn expanded(self) -> bool {
        self.0 as u32 & EXPANDED != 0
    }

    #[inline]
    fn mark(&mut self) {
        self.0 |= u64::from(EXPANDED);
    }
}

pub(crate) struct Beam {
    /// Sorted by [`Cand`]'s order; at most `width`.
    slots: Vec<Slot>,
    width: usize,
    /// No slot before this one is unexpanded.
    cursor: usize,
}

impl Default for Beam {
    fn default() -> Self {
        Beam {
            slots: Vec::new(),
            width: 1,
            cursor: 0,
        }
    }
}

impl Beam {
    /// Empties the beam for a search of width `width` (at least 1).
    pub fn reset(&mut self, width: usize) {
        self.slots.clear();
        self.width = width.max(1);
        self.slots.reserve(self.width + 1);
        self.cursor = 0;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether a candidate at distance `d` would enter the beam.
    #[inline]
    pub fn admits(&self, d: f32) -> bool {
        self.slots.len() < self.width || self.slots.last().is_some_and(|w| ordered(d) < w.key())
    }

    /// A distance above which no candidate is admitted: the farthest slot's
    /// when the beam is full, else infinity.
    #[inline]
    pub fn bound(&self) -> f32 {
        match self.slots.last() {
            Some(w) if self.slots.len() >= self.width => w.cand().d,
            _ => f32::INFINITY,
        }
    }

    /// Adds `c` if the beam admits it, dropping the farthest slot when full.
    #[inline]
    pub fn insert(&mut self, c: Cand) {
        if !self.admits(c.d) {
            return;
        }
        debug_assert!((c.id as usize) < MAX_NODES);
        let slot = Slot::of(c);
        let at = self.slots.partition_point(|s| s.unmarked() < slot.0);
        if self.slots.len() >= self.width {
            self.slots.pop();
        }
        self.slots.insert(at, slot);
        self.cursor = self.cursor.min(at);
    }

    /// The closest unexpanded candidate, marked expanded.
    #[inline]
    pub fn next(&mut self) -> Option<Cand> {
        let at = self.skip_expanded();
        let slot = self.slots.get_mut(at)?;
        let c = slot.cand();
        slot.mark();
        self.cursor = at + 1;
        Some(c)
    }

    /// The candidate [`Beam::next`] would return, left unexpanded.
    #[inline]
    pub fn peek(&mut self) -> Option<Cand> {
        let at = self.skip_expanded();
        self.slots.get(at).map(|s| s.cand())
    }

    fn skip_expanded(&mut self) -> usize {
        while self.slots.get(self.cursor).is_some_and(|s| s.expanded()) {
            self.cursor += 1;
        }
        self.cursor
    }

    /// The candidates, closest first.
    pub fn sorted(&self) -> impl ExactSizeIterator<Item = Cand> + '_ {
        self.slots.iter().map(|s| s.cand())
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use super::*;

    /// A small deterministic graph: node i links to a few pseudo-random nodes.
    fn links(i: u32, n: u32) -> Vec<u32> {
        (1..6u32)
            .map(|k| (i.wrapping_mul(2_654_435_761).wrapping_add(k * 40_503)) % n)
            .collect()
    }

    /// Distinct for every id below 8,192 (ties would let the heaps expand
    /// a candidate equal to the worst result, which the beam has dropped).
    fn dist(i: u32) -> f32 {
        (i.wrapping_mul(97) % 1_013) as f32 + i as f32 / 8_192.0
    }

    /// hnswlib's search with two heaps, as `search_level0` had it.
    fn with_heaps(n: u32, width: usize) -> (Vec<u32>, Vec<Cand>) {
        let mut seen = vec![false; n as usize];
        seen[0] = true;
        let ep = Cand { d: dist(0), id: 0 };
        let mut cands = BinaryHeap::from([Reverse(ep)]);
        let mut res = BinaryHeap::from([ep]);
        let mut order = Vec::new();
        while let Some(Reverse(c)) = cands.pop() {
            if res.len() >= width && res.peek().is_some_and(|w| c.d > w.d) {
                break;
            }
            order.push(c.id);
            for nb in links(c.id, n) {
                if std::mem::replace(&mut seen[nb as usize], true) {
                    continue;
                }
                let d = dist(nb);
                if res.len() < width || res.peek().is_some_and(|w| d < w.d) {
                    cands.push(Reverse(Cand { d, id: nb }));
                    res.push(Cand { d, id: nb });
                    if res.len() > width {
                        res.pop();
                    }
                }
            }
        }
        (order, res.into_sorted_vec())
    }

    fn with_beam(n: u32, width: usize) -> (Vec<u32>, Vec<Cand>) {
        let mut seen = vec![false; n as usize];
        seen[0] = true;
        let mut beam = Beam::default();
        beam.reset(width);
        beam.insert(Cand { d: dist(0), id: 0 });
        let mut order = Vec::new();
        while let Some(c) = beam.next() {
            order.push(c.id);
            for nb in links(c.id, n) {
                if !std::mem::replace(&mut seen[nb as usize], true) {
                    beam.insert(Cand {
                        d: dist(nb),
                        id: nb,
                    });
                }
            }
            assert!(beam.len() <= width);
        }
        (order, beam.sorted().collect())
    }

    #[test]
    fn the_beam_expands_what_the_two_heaps_expand_and_keeps_their_results() {
        for (n, width) in [
            (1_000, 1),
            (1_000, 10),
            (5_000, 64),
            (5_000, 300),
            (50, 100),
        ] {
            let (heap_order, heap_res) = with_heaps(n, width);
            let (beam_order, beam_res) = with_beam(n, width);
            assert_eq!(
                beam_order, heap_order,
                "n {n} width {width}: expansion order"
            );
            assert_eq!(beam_res, heap_res, "n {n} width {width}: results");
            assert!(beam_res.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn slots_sort_as_their_candidates_and_give_them_back() {
        let ds = [
            f32::NEG_INFINITY,
            -3.5e30,
            -2.0,
            -1e-40,
            -0.0,
            0.0,
            1e-40,
            0.5,
            7.25,
            3.4e38,
            f32::INFINITY,
        ];
        let cands: Vec<Cand> = ds
            .iter()
            .flat_map(|&d| [3u32, 0, (MAX_NODES - 1) as u32].map(|id| Cand { d, id }))
            .collect();
        for a in &cands {
            let s = Slot::of(*a);
            let back = s.cand();
            assert!(
                back.d.to_bits() == a.d.to_bits() && back.id == a.id,
                "{a:?}"
            );
            let mut marked = s;
            marked.mark();
            assert!(marked.expanded() && !s.expanded());
            assert_eq!(marked.unmarked(), s.0);
            assert_eq!(marked.cand(), *a);
            for b in &cands {
                assert_eq!(s.0.cmp(&Slot::of(*b).0), a.cmp(b), "{a:?} against {b:?}");
            }
        }
    }

    #[test]
    fn peek_is_next_and_a_full_beam_refuses_farther_candidates() {
        let mut b = Beam::default();
        b.reset(2);
        b.insert(Cand { d: 3.0, id: 3 });
        b.insert(Cand { d: 1.0, id: 1 });
        assert!(!b.admits(3.0) && b.admits(2.0));
        b.insert(Cand { d: 5.0, id: 5 });
        assert_eq!(b.peek().map(|c| c.id), Some(1));
        assert_eq!(b.next().map(|c| c.id), Some(1));
        // A closer candidate after an expansion is expanded next.
        b.insert(Cand { d: 0.5, id: 9 });
        assert_eq!(b.sorted().map(|c| c.id).collect::<Vec<_>>(), [9, 1]);
        assert_eq!(b.next().map(|c| c.id), Some(9));
        assert_eq!(b.next(), None);
        assert_eq!(b.peek(), None);
    }
}
