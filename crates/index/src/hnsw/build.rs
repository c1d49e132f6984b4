//! Parallel HNSW construction, hnswlib style: every node's adjacency list sits
//! behind its own lock, worker threads pull the next row id from an atomic
//! counter, and neighbours are chosen with the heuristic of the HNSW paper
//! (Malkov & Yashunin, alg. 4, without extension or kept pruned links).

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::links0::Links0;
use super::points::{Points, QueryDist};
use super::search::closest_below;
use super::visited::{Visited, VisitedPool};
use super::{Graph, prefetch};
use crate::topk::Cand;

/// Highest level a node may get (keeps `u8` levels and bounds the work).
const MAX_LEVEL: usize = 30;

/// Deterministic level of node `i` from `seed` (geometric, factor 1/ln m).
pub(crate) fn random_level(seed: u64, i: usize, m: usize) -> u8 {
    let mut z = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let u = 1.0 - (z >> 11) as f64 / (1u64 << 53) as f64; // (0, 1]
    let level = (-u.ln() / (m as f64).ln()).floor();
    level.min(MAX_LEVEL as f64) as u8
}

struct Builder<'a, P> {
    points: &'a P,
    m: usize,
    efc: usize,
    levels: Vec<u8>,
    /// Level 0: `n` rows of `1 + 2m` words (count, ids). Readers take no lock
    /// (they may see a list mid-update, which is harmless: every word is a
    /// valid id); writers hold `locks0[node]` and write ids before the count.
    level0: Vec<AtomicU32>,
    locks0: Vec<Mutex<()>>,
    /// `upper[node][level - 1]` for levels >= 1.
    upper: Vec<Box<[Mutex<Vec<u32>>]>>,
    /// (entry point, its level)
    entry: Mutex<(u32, usize)>,
}

/// Builds the graph over rows `0..n` of `points` on `threads` threads.
/// With `base`, a graph (built with the same `m`) over rows
/// `0..base.levels.len()` of `points`, those rows keep their levels and
/// links, and only the rows after them are inserted (each as an incremental
/// HNSW insert, as every row of a fresh build is).
pub(crate) fn build_graph<P: Points>(
    points: &P,
    n: usize,
    params: &super::HnswParams,
    efc: usize,
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
    base: Option<&Graph>,
) -> Graph {
    let (m, seed) = (params.m, params.seed);
    let n0 = base.map_or(0, |g| g.levels.len().min(n));
    let levels: Vec<u8> = (0..n)
        .map(|i| match base {
            Some(g) if i < n0 => g.levels[i],
            _ => random_level(seed, i, m),
        })
        .collect();
    let upper = levels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            (0..l as usize)
                .map(|lev| {
                    let mut list = Vec::with_capacity(m + 1);
                    if let Some(g) = base.filter(|_| i < n0) {
                        list.extend_from_slice(g.upper_links(i, lev + 1, m));
                    }
                    Mutex::new(list)
                })
                .collect()
        })
        .collect();
    let words0 = 2 * m + 1;
    let copied = base.map_or_else(Vec::new, |g| g.level0.to_counted());
    // Read at random by every insert, like a search reads the frozen rows:
    // on huge pages, or nearly every row read is a TLB miss.
    let mut level0 = crate::huge::with_capacity(n * words0);
    level0.extend((0..n * words0).map(|w| AtomicU32::new(copied.get(w).copied().unwrap_or(0))));
    let locks0 = (0..n).map(|_| Mutex::new(())).collect();
    let entry = match base.filter(|_| n0 > 0) {
        Some(g) => Mutex::new((g.entry, g.max_level as usize)),
        None => Mutex::new((0, levels.first().map_or(0, |&l| l as usize))),
    };
    let first = n0.max(1);
    let b = Builder {
        points,
        m,
        efc,
        levels,
        level0,
        locks0,
        upper,
        entry,
    };
    if n > first {
        let pool = VisitedPool::new(n);
        let next = AtomicUsize::new(first);
        let done = AtomicUsize::new(first);
        let step = (n / 100).max(1);
        std::thread::scope(|s| {
            for _ in 0..threads.clamp(1, n - first) {
                s.spawn(|| {
                    let mut vis = pool.get();
                    let mut worked = std::time::Instant::now();
                    loop {
                        if let Some(every) = params.yield_every
                            && worked.elapsed() >= every
                        {
                            std::thread::yield_now();
                            worked = std::time::Instant::now();
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        b.insert(i as u32, &mut vis);
                        let c = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if c.is_multiple_of(step) || c == n {
                            progress(c);
                        }
                    }
                });
            }
        });
        b.repair_reachability(&mut pool.get());
    } else if n > 0 {
        progress(n);
    }
    b.freeze()
}

impl<P: Points> Builder<'_, P> {
    /// Where the level-0 row of `id` (its count, then `2m` ids) starts.
    fn row0(&self, id: u32) -> usize {
        id as usize * (2 * self.m + 1)
    }

    /// How many level-0 links `id` has.
    fn count0(&self, id: u32) -> usize {
        (self.level0[self.row0(id)].load(Ordering::Relaxed) as usize).min(2 * self.m)
    }

    /// Copies the adjacency list of `id` at `lev` into `buf`.
    fn read_links(&self, id: u32, lev: usize, buf: &mut Vec<u32>) {
        buf.clear();
        if lev == 0 {
            let (base, cnt) = (self.row0(id), self.count0(id));
            buf.extend(
                self.level0[base + 1..=base + cnt]
                    .iter()
                    .map(|x| x.load(Ordering::Relaxed)),
            );
        } else if let Some(l) = self.upper[id as usize].get(lev - 1) {
            buf.extend_from_slice(&l.lock());
        }
    }

    /// Replaces the level-0 list of `id`; the caller holds `locks0[id]`.
    fn write_level0(&self, id: u32, ids: impl ExactSizeIterator<Item = u32>) {
        let base = self.row0(id);
        let cnt = ids.len().min(2 * self.m);
        for (slot, x) in self.level0[base + 1..=base + cnt].iter().zip(ids) {
            slot.store(x, Ordering::Relaxed);
        }
        self.level0[base].store(cnt as u32, Ordering::Release);
    }

    fn insert(&self, q: u32, vis: &mut Visited) {
        let level = self.levels[q as usize] as usize;
        let qv = self.points.query(q);
        let guard = self.entry.lock();
        let (ep, max_level) = *guard;
        // A node that raises the top level keeps the entry lock while inserting.
        let hold = if level > max_level {
            Some(guard)
        } else {
            drop(guard);
            None
        };
        let mut buf = std::mem::take(&mut vis.buf);
        let mut cur = Cand {
            d: qv.dist(ep),
            id: ep,
        };
        for lev in (level + 1..=max_level).rev() {
            cur = self.greedy(&qv, cur, lev, &mut buf, &mut vis.dists);
        }
        for lev in (0..=level.min(max_level)).rev() {
            let mut w = self.search_layer(&qv, cur, lev, vis, &mut buf);
            w.retain(|c| c.id != q);
            let sel = self.select(&w, self.m);
            if lev == 0 {
                let _g = self.locks0[q as usize].lock();
                self.write_level0(q, sel.iter().map(|c| c.id));
            } else {
                *self.upper[q as usize][lev - 1].lock() = sel.iter().map(|c| c.id).collect();
            }
            let cap = if lev == 0 { 2 * self.m } else { self.m };
            for s in &sel {
                self.connect(s.id, q, s.d, lev, cap);
            }
            if let Some(best) = w.first() {
                cur = *best;
            }
        }
        vis.buf = buf;
        if let Some(mut g) = hold {
            *g = (q, level);
        }
    }

    fn greedy(
        &self,
        q: &P::Query<'_>,
        mut cur: Cand,
        lev: usize,
        buf: &mut Vec<u32>,
        dists: &mut Vec<f32>,
    ) -> Cand {
        loop {
            self.read_links(cur.id, lev, buf);
            q.dists_below(buf, cur.d, dists);
            match closest_below(buf, dists, cur.d) {
                (d, Some(id)) => cur = Cand { d, id },
                (_, None) => return cur,
            }
        }
    }

    /// Beam search at one level with width `efc`; result sorted closest first.
    fn search_layer(
        &self,
        q: &P::Query<'_>,
        ep: Cand,
        lev: usize,
        vis: &mut Visited,
        buf: &mut Vec<u32>,
    ) -> Vec<Cand> {
        vis.clear();
        vis.insert(ep.id);
        let mut beam = std::mem::take(&mut vis.beam);
        let mut dists = std::mem::take(&mut vis.dists);
        beam.reset(self.efc);
        beam.insert(ep);
        while let Some(c) = beam.next() {
            self.read_links(c.id, lev, buf);
            buf.retain(|&nb| vis.insert(nb));
            for &nb in buf.iter().take(q.prefetch_ahead()) {
                q.prefetch(nb);
            }
            if lev == 0
                && let Some(next) = beam.peek()
            {
                prefetch(&self.level0, self.row0(next.id), 2 * self.m + 1);
            }
            q.dists_below(buf, beam.bound(), &mut dists);
            for (&nb, &d) in buf.iter().zip(&dists) {
                beam.insert(Cand { d, id: nb });
            }
        }
        let res = beam.sorted().collect();
        vis.beam = beam;
        vis.dists = dists;
        res
    }

    /// Heuristic selection of at most `max` neighbours from `cands` (sorted
    /// closest first): keep a candidate only if it is closer to the base than
    /// to every neighbour kept so far.
    fn select(&self, cands: &[Cand], max: usize) -> Vec<Cand> {
        if cands.len() <= max {
            return cands.to_vec();
        }
        let mut out: Vec<Cand> = Vec::with_capacity(max);
        for &c in cands {
            if out.len() >= max {
                break;
            }
            if out
                .iter()
                .all(|s| self.points.dist_between(c.id, s.id) >= c.d)
            {
                out.push(c);
            }
        }
        out
    }

    /// Adds the back link `s -> q` at `lev`, pruning `s`'s list if full.
    fn connect(&self, s: u32, q: u32, d: f32, lev: usize, cap: usize) {
        if lev == 0 {
            let _g = self.locks0[s as usize].lock();
            let mut cur = Vec::with_capacity(cap + 1);
            self.read_links(s, 0, &mut cur);
            if let Some(new) = self.add_link(s, q, d, cur, cap) {
                self.write_level0(s, new.into_iter());
            }
        } else if let Some(lock) = self.upper[s as usize].get(lev - 1) {
            let mut l = lock.lock();
            if let Some(new) = self.add_link(s, q, d, l.clone(), cap) {
                *l = new;
            }
        }
    }

    /// The list `cur` of `s` with `q` added (pruned to `cap`), or None if unchanged.
    fn add_link(&self, s: u32, q: u32, d: f32, mut cur: Vec<u32>, cap: usize) -> Option<Vec<u32>> {
        if cur.contains(&q) {
            return None;
        }
        if cur.len() < cap {
            cur.push(q);
            return Some(cur);
        }
        let mut c: Vec<Cand> = cur
            .iter()
            .map(|&x| Cand {
                d: self.points.dist_between(s, x),
                id: x,
            })
            .collect();
        c.push(Cand { d, id: q });
        c.sort_unstable();
        Some(self.select(&c, cap).iter().map(|c| c.id).collect())
    }

    /// Makes every row findable: reachable at level 0 from the entry point
    /// ([`connect_unreachable`](Self::connect_unreachable)) and from every
    /// node a search may start its level-0 walk at
    /// ([`connect_starts_to_entry`](Self::connect_starts_to_entry)). A link
    /// one pass replaces can undo what the other did, so they alternate
    /// until the second adds none (in practice one round; at most four).
    /// On glove50-400k (390k rows, 2 threads) it took 0.45 s of a 45.6 s
    /// build: 19 rows were linked, and no start needed a link.
    fn repair_reachability(&self, vis: &mut Visited) {
        for _ in 0..4 {
            self.connect_unreachable(vis);
            // Only a link this pass replaced can have cut a row off again.
            if self.connect_starts_to_entry(vis) == 0 {
                return;
            }
        }
    }

    /// Makes every row reachable at level 0 from the entry point. Rows
    /// inserted at the same time do not see each other, so a parallel build
    /// can leave a row that every neighbour has pruned from its list (on
    /// rows with many equal distances, 7% of 300 rows on a line), and no
    /// search finds it. Each such row gets a link from the nearest reachable
    /// row a search for it finds that has room, else from the nearest one,
    /// whose farthest link it replaces.
    fn connect_unreachable(&self, vis: &mut Visited) {
        let n = self.levels.len();
        let entry = self.entry.lock().0;
        if n < 2 {
            return;
        }
        let mut reached = vec![false; n];
        let mut buf = Vec::new();
        self.reach_from(entry, &mut reached, &mut buf);
        for u in 0..n as u32 {
            if reached[u as usize] {
                continue;
            }
            let found = self.search_for(u, entry, vis, &mut buf);
            let full = |id: u32| self.count0(id) >= 2 * self.m;
            let from = (found.iter().find(|c| c.id != u && !full(c.id)))
                .or_else(|| found.iter().find(|c| c.id != u));
            if let Some(r) = from {
                // A full list drops its farthest link for the row nothing reaches.
                self.link0(r.id, u, |_| true);
            }
            self.reach_from(u, &mut reached, &mut buf);
        }
    }

    /// Gives every node of level >= 1 that cannot reach the entry point at
    /// level 0 a link to the nearest node a search for it finds that can.
    /// A search's level-0 walk starts where the descent through the upper
    /// levels ends, at such a node (or at the entry): one that reaches the
    /// entry reaches every row the entry reaches, and one that does not may
    /// be stuck in a corner of the graph (rows with many equal distances
    /// leave such corners). A full list gives up its farthest link whose
    /// target keeps another in-link. Returns the number of links added.
    fn connect_starts_to_entry(&self, vis: &mut Visited) -> usize {
        let n = self.levels.len();
        let entry = self.entry.lock().0;
        if n < 2 || self.levels.iter().all(|&l| l == 0) {
            return 0;
        }
        let mut rev = Reverse0::of(self, n);
        let mut reaches = vec![false; n];
        rev.mark_reaching(entry, &mut reaches);
        let (mut added, mut buf) = (0, Vec::new());
        for u in 0..n as u32 {
            if self.levels[u as usize] == 0 || reaches[u as usize] {
                continue;
            }
            let found = self.search_for(u, entry, vis, &mut buf);
            let to = (found.iter())
                .find(|c| c.id != u && reaches[c.id as usize])
                .map_or(entry, |c| c.id);
            let may_drop = |x: u32| rev.in_degree[x as usize] > 1;
            let Some(dropped) = self.link0(u, to, may_drop) else {
                continue;
            };
            if let Some(x) = dropped {
                rev.in_degree[x as usize] -= 1;
            }
            rev.in_degree[to as usize] += 1;
            added += 1;
            // u reaches the entry now, and so does every node reaching u.
            rev.mark_reaching(u, &mut reaches);
        }
        added
    }

    /// The build's beam search at level 0 for row `u`, from `entry`.
    fn search_for(&self, u: u32, entry: u32, vis: &mut Visited, buf: &mut Vec<u32>) -> Vec<Cand> {
        let q = self.points.query(u);
        let ep = Cand {
            d: q.dist(entry),
            id: entry,
        };
        self.search_layer(&q, ep, 0, vis, buf)
    }

    /// Adds the level-0 link `from -> to`. A full list first gives up its
    /// farthest link whose target `may_drop` allows. Returns None if the
    /// list was full and none may go (nothing changed), else the target
    /// given up, if any.
    fn link0(&self, from: u32, to: u32, may_drop: impl Fn(u32) -> bool) -> Option<Option<u32>> {
        let _g = self.locks0[from as usize].lock();
        let mut links = Vec::with_capacity(2 * self.m);
        self.read_links(from, 0, &mut links);
        let mut dropped = None;
        if links.len() >= 2 * self.m {
            let far = (0..links.len())
                .filter(|&i| may_drop(links[i]))
                .max_by(|&a, &b| {
                    let d = |i: usize| self.points.dist_between(from, links[i]);
                    d(a).total_cmp(&d(b))
                })?;
            dropped = Some(links.swap_remove(far));
        }
        links.push(to);
        self.write_level0(from, links.into_iter());
        Some(dropped)
    }

    /// Marks in `reached` every row level-0 links lead to from `start`.
    fn reach_from(&self, start: u32, reached: &mut [bool], buf: &mut Vec<u32>) {
        reached[start as usize] = true;
        let mut stack = vec![start];
        while let Some(x) = stack.pop() {
            self.read_links(x, 0, buf);
            for &nb in buf.iter() {
                if !reached[nb as usize] {
                    reached[nb as usize] = true;
                    stack.push(nb);
                }
            }
        }
    }
}

/// The level-0 links reversed (who links to each node), as they were when
/// taken, and every node's in-degree, kept current by the caller.
struct Reverse0 {
    /// `from[start[v]..start[v + 1]]` link to `v`.
    start: Vec<u32>,
    from: Vec<u32>,
    in_degree: Vec<u32>,
}

impl Reverse0 {
    fn of<P: Points>(b: &Builder<'_, P>, n: usize) -> Reverse0 {
        let mut start = vec![0u32; n + 1];
        let mut buf = Vec::new();
        for u in 0..n as u32 {
            b.read_links(u, 0, &mut buf);
            for &v in &buf {
                start[v as usize + 1] += 1;
            }
        }
        let in_degree = start[1..].to_vec();
        for v in 0..n {
            start[v + 1] += start[v];
        }
        let mut at = start.clone();
        let mut from = vec![0u32; start[n] as usize];
        for u in 0..n as u32 {
            b.read_links(u, 0, &mut buf);
            for &v in &buf {
                from[at[v as usize] as usize] = u;
                at[v as usize] += 1;
            }
        }
        Reverse0 {
            start,
            from,
            in_degree,
        }
    }

    /// Marks in `reaches` `target` and every node whose level-0 links lead
    /// to it, stopping at nodes already marked.
    fn mark_reaching(&self, target: u32, reaches: &mut [bool]) {
        reaches[target as usize] = true;
        let mut stack = vec![target];
        while let Some(v) = stack.pop() {
            let (a, b) = (self.start[v as usize], self.start[v as usize + 1]);
            for &u in &self.from[a as usize..b as usize] {
                if !reaches[u as usize] {
                    reaches[u as usize] = true;
                    stack.push(u);
                }
            }
        }
    }
}

impl<P: Points> Builder<'_, P> {
    /// Converts to the compact read-only layout.
    fn freeze(self) -> Graph {
        let n = self.levels.len();
        let stride_up = self.m + 1;
        let (entry, max_level) = self.entry.into_inner();
        let counted: Vec<u32> = self.level0.into_iter().map(AtomicU32::into_inner).collect();
        let level0 = Links0::from_counted(&counted, self.m);
        let mut upper_start = vec![u32::MAX; n];
        let mut upper = Vec::new();
        for (i, node) in self.upper.into_iter().enumerate() {
            for (lev, l) in node.into_iter().enumerate() {
                let l = l.into_inner();
                if lev == 0 {
                    upper_start[i] = upper.len() as u32;
                }
                let cnt = l.len().min(self.m);
                let at = upper.len();
                upper.resize(at + stride_up, 0);
                upper[at] = cnt as u32;
                upper[at + 1..at + 1 + cnt].copy_from_slice(&l[..cnt]);
            }
        }
        Graph {
            entry,
            max_level: max_level as u32,
            level0,
            levels: self.levels,
            upper_start,
            upper,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::marker::PhantomData;

    use super::*;
    use crate::distance::L2Space;
    use crate::hnsw::points::ExactPoints;

    /// Rows level-0 links lead to from `start` in a frozen graph.
    fn reached_from(g: &Graph, start: u32) -> usize {
        let n = g.levels.len();
        let mut seen = vec![false; n];
        seen[start as usize] = true;
        let (mut stack, mut count) = (vec![start], 1);
        while let Some(x) = stack.pop() {
            for &nb in g.level0.row(x as usize) {
                if nb != super::super::links0::NO_LINK && !seen[nb as usize] {
                    seen[nb as usize] = true;
                    count += 1;
                    stack.push(nb);
                }
            }
        }
        count
    }

    /// Rows on a line with many equal distances, built on two threads: rows
    /// inserted at the same time do not see each other, and without the
    /// repair some rows were reached from no node and some nodes a search
    /// starts at (level >= 1) reached only a corner of the graph. Every
    /// such start must now reach every row.
    #[test]
    fn every_row_is_reached_from_every_node_a_level_0_walk_starts_at() {
        let n = 300usize;
        let rows: Vec<f32> = (0..n)
            .flat_map(|pk| [pk as f32, 0.0, (pk % 7) as f32, 1.0])
            .collect();
        let points = ExactPoints::<L2Space> {
            rows: &rows,
            dim: 4,
            _space: PhantomData,
        };
        let mut short = Vec::new();
        for seed in 0..20u64 {
            let params = crate::hnsw::HnswParams {
                m: 8,
                ef_construction: 64,
                seed,
                ..Default::default()
            };
            let g = build_graph(&points, n, &params, 64, 2, &|_| {}, None);
            let starts = (0..n as u32).filter(|&i| g.levels[i as usize] > 0 || i == g.entry);
            for s in starts {
                let r = reached_from(&g, s);
                if r < n {
                    short.push((seed, s, r));
                }
            }
        }
        assert!(
            short.is_empty(),
            "(seed, start, rows reached of {n}): {short:?}"
        );
    }
}
