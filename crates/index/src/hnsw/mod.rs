//! HNSW graph index: parallel build, compact frozen layout, search.

mod beam;
mod build;
mod codec;
mod links0;
mod points;
mod search;
mod visited;

use quiver_common::{Metric, VectorSlice, VectorsRef};

use crate::distance::with_space;
use crate::error::{IndexError, Result};
use crate::filter::RowFilter;
use crate::sq::SqCodes;
use crate::topk::Neighbor;
use links0::Links0;
use points::{CodePoints, ExactPoints};
use visited::VisitedPool;

/// Hints the CPU to load the cache lines holding `s[idx..idx + len]` (up to 4 lines).
#[inline(always)]
pub fn prefetch<T>(s: &[T], idx: usize, len: usize) {
    prefetch_up_to::<T, 256>(s, idx, len);
}

/// Hints the CPU to load the cache lines holding `s[idx..idx + len]`, at
/// most `MAX` bytes of them.
#[inline(always)]
pub(crate) fn prefetch_up_to<T, const MAX: usize>(s: &[T], idx: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = (len * std::mem::size_of::<T>()).min(MAX);
        let Some(p) = s.get(idx) else { return };
        let p = (p as *const T).cast::<i8>();
        for off in (0..bytes).step_by(64) {
            // SAFETY: prefetching is only a hint; it never faults, even past the end.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    p.wrapping_add(off),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (s, idx, len);
}

/// Build parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node on the upper levels; level 0 keeps up to `2 * m`.
    pub m: usize,
    /// Beam width while inserting.
    pub ef_construction: usize,
    /// Seeds the level assignment (the graph also depends on thread timing).
    pub seed: u64,
    /// A background build: each build thread offers its CPU to any thread
    /// waiting for it (`sched_yield`) after this much work, so that a build
    /// running next to searches delays them by at most about this long
    /// (instead of a scheduler slice, several milliseconds). None: never.
    pub yield_every: Option<std::time::Duration>,
    /// What an f32 graph's links are chosen by ([`HnswIndex::build`] and
    /// [`HnswIndex::extend`]; an 8-bit graph always uses its codes).
    pub construction: Construction,
}

/// How the links of an f32 graph are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Construction {
    /// By distances to temporary 8-bit codes of the rows (as
    /// [`HnswIndex::build_sq`] does, about twice as fast), when there are at
    /// least [`CODES_MIN_ROWS`] rows and the codes keep them apart (they
    /// blur them at most [`CODES_MAX_BLUR`]); else exactly. The
    /// codes are dropped once the graph is built; searches use the f32 rows.
    #[default]
    Auto,
    /// By exact f32 distances.
    Exact,
}

/// Fewer rows than this are linked exactly: their build is short anyway.
pub const CODES_MIN_ROWS: usize = 10_000;

/// The most temporary codes may blur the rows ([`SqCodes::blur`]) and
/// still choose an f32 graph's links: 40 times what embeddings give (GloVe
/// 50-d 4.7e-5, a 768-d projection of it 4.2e-5). One dimension of 50 whose
/// range an outlier stretches 100-fold gives about 100 times their blur.
pub const CODES_MAX_BLUR: f64 = 2e-3;

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            seed: 0x5157_4956_4552,
            yield_every: None,
            construction: Construction::Auto,
        }
    }
}

/// The frozen adjacency structure.
pub(crate) struct Graph {
    pub entry: u32,
    pub max_level: u32,
    /// Level-0 links, `2m` a node (`links0.rs`; the file keeps a count
    /// first, `1 + 2m` words a node).
    pub level0: Links0,
    /// Top level of every node.
    pub levels: Vec<u8>,
    /// Offset into `upper` of node i's level-1 row, `u32::MAX` if level 0 only.
    pub upper_start: Vec<u32>,
    /// Per node with level `L > 0`: `L` rows of `1 + m` words (levels 1..=L).
    pub upper: Vec<u32>,
}

impl Graph {
    /// The links of node `i` at upper level `lev` (1..=its level) in a
    /// graph built with `m`.
    pub(crate) fn upper_links(&self, i: usize, lev: usize, m: usize) -> &[u32] {
        let start = self.upper_start.get(i).copied().unwrap_or(u32::MAX);
        let level = self.levels.get(i).copied().unwrap_or(0) as usize;
        if start == u32::MAX || lev == 0 || lev > level {
            return &[];
        }
        let at = start as usize + (lev - 1) * (m + 1);
        let cnt = (self.upper.get(at).copied().unwrap_or(0) as usize).min(m);
        self.upper.get(at + 1..at + 1 + cnt).unwrap_or(&[])
    }
}

/// A frozen HNSW graph over row offsets `0..n`. It does not own the vectors:
/// pass the same vectors to [`HnswIndex::search`] that were used to build it.
///
/// Built with [`HnswIndex::build_sq`] (Milvus `HNSW_SQ`), it also holds an
/// 8-bit code of every row: the graph is built and searched over the codes,
/// and only the best `max(ef, k)` rows a search finds are read from the
/// vectors, to re-rank them exactly. Only the codes and the graph need to
/// stay in memory then; the vectors may be a memory map.
pub struct HnswIndex {
    metric: Metric,
    dim: usize,
    n: usize,
    m: usize,
    ef_construction: usize,
    graph: Graph,
    visited: VisitedPool,
    sq: Option<SqCodes>,
    /// An f32 graph's links were chosen by distances between codes (not
    /// recorded in a graph file: false once loaded). An 8-bit graph's
    /// always are.
    over_codes: bool,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("metric", &self.metric)
            .field("dim", &self.dim)
            .field("n", &self.n)
            .field("m", &self.m)
            .field("ef_construction", &self.ef_construction)
            .field("max_level", &self.graph.max_level)
            .field("quantized", &self.sq.is_some())
            .finish()
    }
}

impl HnswIndex {
    /// Builds the graph over `vectors` on `threads` threads;
    /// `progress(rows_inserted)` is called about every 1%.
    pub fn build(
        vectors: VectorsRef<'_>,
        metric: Metric,
        params: &HnswParams,
        threads: usize,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<HnswIndex> {
        let (dim, n, efc, rows) = check_build(vectors, params)?;
        let (graph, over_codes) =
            build_f32(metric, rows, dim, n, params, efc, threads, progress, None);
        let mut index = HnswIndex::from_parts(metric, dim, n, params.m, efc, graph, None);
        index.over_codes = over_codes;
        Ok(index)
    }

    /// Like [`HnswIndex::build`] over `vectors`, whose first `base.len()`
    /// rows are the rows `base` was built over (in the same order): the
    /// graph starts as `base`'s and only the rows after them are inserted,
    /// with `base`'s `m` and `ef_construction`. Not for quantized graphs
    /// (their codes' ranges were learnt from the base rows alone).
    pub fn extend(
        base: &HnswIndex,
        vectors: VectorsRef<'_>,
        params: &HnswParams,
        threads: usize,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<HnswIndex> {
        let params = HnswParams {
            m: base.m,
            ef_construction: base.ef_construction,
            ..*params
        };
        let (dim, n, efc, rows) = check_build(vectors, &params)?;
        if base.sq.is_some() || dim != base.dim || n < base.n {
            return Err(IndexError::InvalidArgument(format!(
                "cannot extend a graph of {} rows × {} (quantized: {}) over {n} rows × {dim}",
                base.n,
                base.dim,
                base.sq.is_some()
            )));
        }
        let metric = base.metric;
        let (graph, over_codes) = build_f32(
            metric,
            rows,
            dim,
            n,
            &params,
            efc,
            threads,
            progress,
            Some(&base.graph),
        );
        let mut index = HnswIndex::from_parts(metric, dim, n, params.m, efc, graph, None);
        index.over_codes = over_codes;
        Ok(index)
    }

    /// Like [`HnswIndex::build`], over 8-bit scalar-quantized codes of
    /// `vectors` (per-dimension ranges learnt from them): the graph is built
    /// with distances between codes, searches traverse it with distances
    /// between the query and codes and re-rank with exact distances. L2, IP
    /// and COSINE only.
    pub fn build_sq(
        vectors: VectorsRef<'_>,
        metric: Metric,
        params: &HnswParams,
        threads: usize,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<HnswIndex> {
        let (dim, n, efc, rows) = check_build(vectors, params)?;
        // Codes along the rows' principal axes when they are wide enough
        // (`sq/pca.rs`: most distances of a search read one line of codes).
        let sq = SqCodes::train_projected(rows, dim, metric)?;
        let points = CodePoints::new(&sq, rows, dim);
        let graph = build::build_graph(&points, n, params, efc, threads, progress, None);
        drop(points);
        Ok(HnswIndex::from_parts(
            metric,
            dim,
            n,
            params.m,
            efc,
            graph,
            Some(sq),
        ))
    }

    fn from_parts(
        metric: Metric,
        dim: usize,
        n: usize,
        m: usize,
        efc: usize,
        graph: Graph,
        sq: Option<SqCodes>,
    ) -> Self {
        HnswIndex {
            metric,
            dim,
            n,
            m,
            ef_construction: efc,
            graph,
            visited: VisitedPool::new(n),
            sq,
            over_codes: false,
        }
    }

    /// Top-`k` of `query`, sorted best first, with beam width `max(ef, k)`.
    /// Only ids allowed by `filter` are returned (others are still traversed);
    /// a very selective filter (small `estimated_allowed`) switches to exact
    /// search. `vectors` are the rows the graph was built over. Returns
    /// nothing if `query.len()` or `vectors.dim()` is not `dim()` or `vectors`
    /// holds fewer than `len()` rows.
    pub fn search(
        &self,
        vectors: VectorsRef<'_>,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&dyn RowFilter>,
    ) -> Vec<Neighbor> {
        self.search_refined(vectors, query, k, ef, 0, filter)
    }

    /// [`search`](Self::search) re-ranking at least `rerank_rows` rows of an
    /// 8-bit graph's beam exactly (Milvus's `refine_k × k`; the default is
    /// `max(4k, k + 32)`), the beam widened to hold them. A graph over f32
    /// vectors ranks exactly already and ignores `rerank_rows`.
    pub fn search_refined(
        &self,
        vectors: VectorsRef<'_>,
        query: &[f32],
        k: usize,
        ef: usize,
        rerank_rows: usize,
        filter: Option<&dyn RowFilter>,
    ) -> Vec<Neighbor> {
        if self.n == 0
            || k == 0
            || query.len() != self.dim
            || vectors.dim() != self.dim
            || vectors.len() < self.n
        {
            return Vec::new();
        }
        let VectorSlice::F32(vectors) = vectors.data();
        let vectors = &vectors[..self.n * self.dim];
        with_space!(self.metric, S => self.search_impl::<S>(vectors, query, k, ef, rerank_rows, filter))
    }

    /// Under a filter allowing fewer rows than this (its
    /// `estimated_allowed`), a search with beam width `ef` scans the
    /// allowed rows exactly instead of walking the graph.
    pub fn exact_below(&self, ef: usize) -> usize {
        search::flat_threshold(self.n, ef, self.m)
    }

    /// Number of rows in the graph.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// `(m, ef_construction)` the graph was built with.
    pub fn params(&self) -> (usize, usize) {
        (self.m, self.ef_construction)
    }

    /// Whether the links were chosen by distances between 8-bit codes
    /// (always for [`HnswIndex::build_sq`]; see [`Construction`]). False for
    /// an f32 graph read from a file, which does not record it.
    pub fn built_over_codes(&self) -> bool {
        self.over_codes || self.sq.is_some()
    }

    /// Whether the graph is over 8-bit codes ([`HnswIndex::build_sq`]).
    pub fn is_quantized(&self) -> bool {
        self.sq.is_some()
    }

    /// Codes an 8-bit L2 or COSINE graph's rows again (IP: if every row is
    /// a unit vector), along their principal axes, when they are wide and
    /// many enough (128 dimensions, 10,000 rows;
    /// `SqCodes::train_projected`): a search then reads the
    /// first line of most rows' codes only. `vectors` are the rows the
    /// graph was built over. The graph and its results are unchanged (the
    /// codes order rows as plain codes do, up to rounding). Returns whether
    /// the codes changed.
    ///
    /// For graphs stored with plain codes (format version 2) by older
    /// releases: COSINE and IP graphs up to a2fe35c, L2 graphs up to
    /// 9a5326e. A querynode does it for each such segment it loads.
    pub fn project(&mut self, vectors: VectorsRef<'_>) -> Result<bool> {
        self.project_with(vectors)
    }

    /// What a querynode serves from a stored graph: the graph in `bytes`
    /// (see [`HnswIndex::from_bytes`]), its codes projected when they
    /// qualify ([`HnswIndex::project`]).
    pub fn open(bytes: &[u8], vectors: VectorsRef<'_>) -> Result<HnswIndex> {
        let mut index = HnswIndex::from_bytes(bytes)?;
        // Projecting fails only where training codes would: then the codes
        // are searched as stored.
        let _ = index.project_with(vectors);
        Ok(index)
    }

    fn project_with(&mut self, vectors: VectorsRef<'_>) -> Result<bool> {
        let Some(sq) = &self.sq else { return Ok(false) };
        if sq.projection().is_some() || vectors.dim() != self.dim || vectors.len() != self.n {
            return Ok(false);
        }
        let VectorSlice::F32(rows) = vectors.data();
        let rows = rows.get(..self.n * self.dim).unwrap_or(&[]);
        if !SqCodes::projects(self.metric, rows, self.dim) {
            return Ok(false);
        }
        let projected = SqCodes::train_projected(rows, self.dim, self.metric)?;
        if projected.projection().is_none() {
            return Ok(false);
        }
        self.sq = Some(projected);
        Ok(true)
    }

    /// Bytes held by the graph and, if quantized, the codes and their ranges
    /// (the vectors are not held: pass them to [`HnswIndex::search`]).
    pub fn memory_bytes(&self) -> usize {
        let g = &self.graph;
        std::mem::size_of::<Self>()
            + g.level0.memory_bytes()
            + 4 * (g.upper_start.len() + g.upper.len())
            + g.levels.len()
            + self.sq.as_ref().map_or(0, SqCodes::memory_bytes)
    }
}

/// The graph of f32 `rows` (those after `base`'s when given), its links
/// chosen as `params.construction` says; true when by codes.
#[allow(clippy::too_many_arguments)]
fn build_f32(
    metric: Metric,
    rows: &[f32],
    dim: usize,
    n: usize,
    params: &HnswParams,
    efc: usize,
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
    base: Option<&Graph>,
) -> (Graph, bool) {
    let codes = (params.construction == Construction::Auto && n >= CODES_MIN_ROWS)
        .then(|| SqCodes::train_projected(rows, dim, metric).ok())
        .flatten()
        .filter(|sq| sq.blur(rows, 4096) <= CODES_MAX_BLUR);
    match codes {
        Some(sq) => {
            let points = CodePoints::new(&sq, rows, dim);
            let graph = build::build_graph(&points, n, params, efc, threads, progress, base);
            (graph, true)
        }
        None => {
            let graph = with_space!(metric, S => build::build_graph(
                &ExactPoints::<S> { rows, dim, _space: std::marker::PhantomData },
                n, params, efc, threads, progress, base
            ));
            (graph, false)
        }
    }
}

/// Checks a build's input: (dim, n, effective ef_construction, the floats).
fn check_build<'v>(
    vectors: VectorsRef<'v>,
    params: &HnswParams,
) -> Result<(usize, usize, usize, &'v [f32])> {
    let dim = vectors.dim();
    if dim == 0 || !vectors.is_whole_rows() {
        return Err(IndexError::InvalidArgument(format!(
            "{} floats are not a whole number of rows of dimension {dim}",
            vectors.raw_len()
        )));
    }
    let n = vectors.len();
    if n >= beam::MAX_NODES {
        return Err(IndexError::InvalidArgument(format!("{n} rows is too many")));
    }
    if params.m < 2 || params.m > 2048 || params.ef_construction == 0 {
        return Err(IndexError::InvalidArgument(format!(
            "m must be in 2..=2048 and ef_construction > 0 (got {params:?})"
        )));
    }
    let efc = params.ef_construction.max(params.m);
    let VectorSlice::F32(rows) = vectors.data();
    Ok((dim, n, efc, rows))
}
