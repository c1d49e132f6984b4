//! Search over the frozen graph.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::marker::PhantomData;

use super::HnswIndex;
use super::links0::NO_LINK;
use super::points::{Exact, QueryDist};
use super::visited::Visited;
use crate::distance::Space;
use crate::filter::RowFilter;
use crate::flat::{flat_impl, rerank};
use crate::sq::refine;
use crate::topk::{Cand, Neighbor, sorted_into_neighbors};

/// Below this many allowed rows a filtered search is done exactly. An
/// exact scan costs a distance per allowed row; a graph search under a
/// filter that allows a fraction `s` of the `n` rows expands about `ef / s`
/// nodes of up to `2m` neighbours each. Scanning wins while
/// `allowed² < ef · 2m · n`, times a factor of 3/4 measured with
/// `quiver bench search` (glove50-100k, README "Filtered search").
pub(crate) fn flat_threshold(n: usize, ef: usize, m: usize) -> usize {
    let graph = (0.75 * ef as f64 * (2 * m) as f64 * n as f64).sqrt() as usize;
    graph.max(ef.saturating_mul(10))
}

impl HnswIndex {
    /// `vectors` holds exactly `n * dim` floats, `query` exactly `dim`.
    pub(crate) fn search_impl<S: Space>(
        &self,
        vectors: &[f32],
        query: &[f32],
        k: usize,
        ef: usize,
        rerank_rows: usize,
        filter: Option<&dyn RowFilter>,
    ) -> Vec<Neighbor> {
        // The beam holds at least the rows a search asks to re-rank.
        let ef = match self.sq {
            Some(_) => ef.max(k).max(rerank_rows),
            None => ef.max(k),
        };
        // A beam as wide as the graph visits everything anyway: be exact.
        if ef >= self.n {
            return flat_impl::<S>(vectors, self.dim, query, k, filter);
        }
        if let Some(est) = filter.and_then(|f| f.estimated_allowed())
            && est < flat_threshold(self.n, ef, self.m)
        {
            return flat_impl::<S>(vectors, self.dim, query, k, filter);
        }
        let hits = match &self.sq {
            None => {
                let q = Exact::<S> {
                    rows: vectors,
                    dim: self.dim,
                    q: query,
                    _space: PhantomData,
                };
                sorted_into_neighbors(self.traverse(&q, ef, filter), k, S::to_score)
            }
            Some(sq) => {
                // Only the best `refine(k, rerank_rows)` by code distance are re-ranked:
                // the true top k is among them unless quantization moved a
                // row past dozens of others, and each re-ranked row is a
                // random read of its f32 vector (re-ranking all `ef` took
                // 12% of a search at 50 dimensions, 18% at 768, for the
                // same recall on glove50-400k and wide768-100k).
                let mut found = self.traverse(&sq.query(query), ef, filter);
                found.truncate(refine(k, rerank_rows));
                rerank::<S>(vectors, self.dim, query, found, k)
            }
        };
        // Fewer than k hits under a filter means the filter is selective
        // (and may have cut the graph's paths): exact search finds them all.
        if filter.is_some() && hits.len() < k {
            return flat_impl::<S>(vectors, self.dim, query, k, filter);
        }
        hits
    }

    /// The best `ef` allowed rows the graph leads `q` to, closest first.
    fn traverse<Q: QueryDist>(
        &self,
        q: &Q,
        ef: usize,
        filter: Option<&dyn RowFilter>,
    ) -> Vec<Cand> {
        let g = &self.graph;
        let mut cur = Cand {
            d: q.dist(g.entry),
            id: g.entry,
        };
        let mut vis = self.visited.get();
        for lev in (1..=g.max_level as usize).rev() {
            cur = self.greedy(q, cur, lev, &mut vis.dists);
        }
        let res = match filter {
            None => self.search_level0(q, cur, ef, &mut vis),
            Some(f) => self.search_level0_filtered(q, cur, ef, f, &mut vis),
        };
        self.visited.put(vis);
        res
    }

    fn greedy<Q: QueryDist>(&self, q: &Q, mut cur: Cand, lev: usize, dists: &mut Vec<f32>) -> Cand {
        loop {
            let links = self.graph.upper_links(cur.id as usize, lev, self.m);
            for &nb in links.iter().take(q.prefetch_ahead()) {
                q.prefetch(nb);
            }
            q.dists_below(links, cur.d, dists);
            match closest_below(links, dists, cur.d) {
                (d, Some(id)) => cur = Cand { d, id },
                (_, None) => return cur,
            }
        }
    }

    /// Beam search on level 0: the best `ef` rows, closest first.
    fn search_level0<Q: QueryDist>(
        &self,
        q: &Q,
        ep: Cand,
        ef: usize,
        vis: &mut Visited,
    ) -> Vec<Cand> {
        let level0 = &self.graph.level0;
        let mut buf = std::mem::take(&mut vis.buf);
        let mut dists = std::mem::take(&mut vis.dists);
        let mut beam = std::mem::take(&mut vis.beam);
        vis.insert(ep.id);
        beam.reset(ef);
        beam.insert(ep);
        while let Some(c) = beam.next() {
            self.fresh_links(q, c.id, vis, &mut buf);
            // The next candidate's links: the current best, prefetched
            // while the distances are computed, unless a neighbour beats it
            // (then its links are fetched as soon as the distances are in).
            let next = beam.peek().map_or(f32::INFINITY, |c| {
                level0.prefetch(c.id as usize);
                c.d
            });
            q.dists_below(&buf, beam.bound(), &mut dists);
            if let (_, Some(nb)) = closest_below(&buf, &dists, next) {
                level0.prefetch(nb as usize);
            }
            for (&nb, &d) in buf.iter().zip(&dists) {
                beam.insert(Cand { d, id: nb });
            }
        }
        let res = beam.sorted().collect();
        vis.buf = buf;
        vis.dists = dists;
        vis.beam = beam;
        res
    }

    /// [`Self::search_level0`] returning only rows `filter` allows: the
    /// others are still expanded, so the candidates (a heap) and the
    /// results are kept apart, as hnswlib does.
    fn search_level0_filtered<Q: QueryDist>(
        &self,
        q: &Q,
        ep: Cand,
        ef: usize,
        filter: &dyn RowFilter,
        vis: &mut Visited,
    ) -> Vec<Cand> {
        let level0 = &self.graph.level0;
        let mut buf = std::mem::take(&mut vis.buf);
        let mut dists = std::mem::take(&mut vis.dists);
        vis.insert(ep.id);
        let mut cands: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(ef.min(self.n) * 4);
        cands.push(Reverse(ep));
        let mut res: BinaryHeap<Cand> = BinaryHeap::with_capacity(ef.min(self.n) + 1);
        if filter.allows(ep.id) {
            res.push(ep);
        }
        while let Some(Reverse(c)) = cands.pop() {
            if res.len() >= ef && res.peek().is_some_and(|w| c.d > w.d) {
                break;
            }
            self.fresh_links(q, c.id, vis, &mut buf);
            for &nb in &buf {
                filter.prefetch(nb);
            }
            let next = cands.peek().map_or(f32::INFINITY, |Reverse(c)| {
                level0.prefetch(c.id as usize);
                c.d
            });
            let bound = match res.peek() {
                Some(w) if res.len() >= ef => w.d,
                _ => f32::INFINITY,
            };
            q.dists_below(&buf, bound, &mut dists);
            if let (_, Some(nb)) = closest_below(&buf, &dists, next) {
                level0.prefetch(nb as usize);
            }
            for (&nb, &d) in buf.iter().zip(&dists) {
                if res.len() < ef || res.peek().is_some_and(|w| d < w.d) {
                    cands.push(Reverse(Cand { d, id: nb }));
                    if filter.allows(nb) {
                        res.push(Cand { d, id: nb });
                        if res.len() > ef {
                            res.pop();
                        }
                    }
                }
            }
        }
        vis.buf = buf;
        vis.dists = dists;
        res.into_sorted_vec()
    }

    /// The level-0 neighbours of `id` not visited yet, into `buf` (now
    /// marked), the first [`QueryDist::prefetch_ahead`] of them prefetched.
    #[inline]
    fn fresh_links<Q: QueryDist>(&self, q: &Q, id: u32, vis: &mut Visited, buf: &mut Vec<u32>) {
        let ahead = q.prefetch_ahead();
        buf.clear();
        for &nb in self.graph.level0.row(id as usize) {
            if nb == NO_LINK {
                break;
            }
            if vis.insert(nb) {
                if buf.len() < ahead {
                    q.prefetch(nb);
                }
                buf.push(nb);
            }
        }
    }
}

/// The closest of `ids` (at `dists`) if closer than `bound`.
#[inline]
pub(crate) fn closest_below(ids: &[u32], dists: &[f32], bound: f32) -> (f32, Option<u32>) {
    dists.iter().zip(ids).fold(
        (bound, None),
        |b, (&d, &nb)| if d < b.0 { (d, Some(nb)) } else { b },
    )
}
