//! Search and query over one shard view: sealed segments through their HNSW
//! index (or exactly), growing rows exactly, all minus dead rows and rows the
//! filter rejects, merged into one top-k.

use quiver_api::{
    DigestBuilder, DigestRequest, IndexKind, QueryResult, RowAccess, RowPredicate, ShardDigest,
    ShardHit, row_hash,
};
use quiver_common::{PrimaryKey, ScalarValue, ValueRef, VectorSlice, VectorsRef};
use quiver_index::{HnswIndex, Neighbor, RowFilter, flat_search, merge_topk};

use crate::growing::{GrowingFilter, GrowingRow};
use crate::select::SealedRow;
use crate::view::{Loc, SealedSeg, ShardView};

/// What a search or query returns per row besides its key.
pub(crate) struct Projection<'a> {
    pub fields: &'a [String],
    pub with_vectors: bool,
}

/// How deep a search goes: the top `k`, a graph beam `ef` wide (at least
/// `k`), and at least `rerank` rows of an 8-bit index re-ranked exactly
/// (0: the index's default; see `ShardSearch::rerank`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub k: usize,
    pub ef: usize,
    pub rerank: usize,
}

impl Depth {
    #[cfg(test)]
    pub fn new(k: usize, ef: usize) -> Depth {
        Depth { k, ef, rerank: 0 }
    }

    /// The widest beam a graph walks for it.
    fn beam(&self) -> usize {
        self.ef.max(self.k).max(self.rerank)
    }
}

impl ShardView {
    /// The graph a search of `seg` walks. None for a graph built under
    /// another metric (the index was dropped and created again; its owner
    /// re-indexes the segment) or a flat index: exact search then, with the
    /// collection's metric.
    fn graph<'s>(&self, seg: &'s SealedSeg) -> Option<&'s HnswIndex> {
        match (&seg.seg.index, self.info.index) {
            (Some(index), IndexKind::Hnsw { .. } | IndexKind::HnswSq { .. })
                if index.metric() == self.info.metric =>
            {
                Some(index)
            }
            _ => None,
        }
    }

    /// Roughly how many vector components [`ShardView::search_one`] reads
    /// for `nq` queries: a graph walk about `ef · 2m` rows a segment (twice
    /// that under a filter, which expands rows it rejects), an exact scan
    /// every row. The querynode runs cheap searches without a thread
    /// hand-off (`node.rs`, `INLINE_WORK`).
    pub fn search_work(&self, nq: usize, depth: Depth, filtered: bool) -> usize {
        let walk = depth.beam().saturating_mul(1 + usize::from(filtered));
        let rows = (self.sealed.iter())
            .map(|seg| match self.graph(seg) {
                Some(g) => walk
                    .saturating_mul(2 * g.params().0)
                    .min(seg.seg.data.len()),
                None => seg.seg.data.len(),
            })
            .fold(self.growing.live, usize::saturating_add);
        (rows.saturating_mul(self.info.schema.dim())).saturating_mul(nq)
    }

    /// Top-k of one query over the whole shard, best first.
    pub fn search_one(
        &self,
        pool: &rayon::ThreadPool,
        query: &[f32],
        depth: Depth,
        predicate: Option<&dyn RowPredicate>,
        proj: &Projection<'_>,
    ) -> Vec<ShardHit> {
        let metric = self.info.metric;
        let Depth { k, ef, rerank } = depth;
        let mut lists: Vec<Vec<(Loc, f32)>> = Vec::with_capacity(self.sealed.len() + 1);
        for (si, seg) in self.sealed.iter().enumerate() {
            if seg.live() == 0 {
                continue;
            }
            let vectors = seg.seg.data.vectors();
            let graph = self.graph(seg);
            // A filter its indexes say accepts at most a tenth of the
            // segment, or few enough rows that the index scans them exactly:
            // the index gets exactly those rows. Else rows are tested as the
            // graph visits them.
            let exact_below = graph.map_or(usize::MAX, |g| g.exact_below(ef.max(k)));
            let selection = seg.select(predicate, (seg.alive.len() / 10).max(exact_below));
            if selection.is_empty() {
                continue;
            }
            let filter = selection.filter();
            let at = |row: u32| Loc::Sealed {
                seg: si as u32,
                row,
            };
            match graph {
                Some(index) => {
                    let filter = selection.graph_filter();
                    let hits = index.search_refined(vectors, query, k, ef, rerank, filter);
                    lists.push(hits.into_iter().map(|n| (at(n.id), n.score)).collect());
                }
                // A few named rows are visited one by one on one thread.
                None if filter
                    .as_bitset()
                    .is_some_and(|b| b.count_ones() < PARALLEL_SCAN_ROWS) =>
                {
                    let hits = flat_search(vectors, metric, query, k, Some(filter));
                    lists.push(hits.into_iter().map(|n| (at(n.id), n.score)).collect());
                }
                // No graph yet (sealed while builds were behind): its
                // 8-bit codes scanned and the best re-ranked exactly
                // (`LoadedSegment::quantize`), or scanned like growing rows.
                None => match seg.seg.quantized(metric) {
                    Some(codes) => {
                        SCANNED_CODES.inc_by(vectors.len() as u64);
                        lists.extend(scan(pool, vectors.len(), at, |rows| {
                            codes.search(vectors, query, k, rerank, Some(filter), rows)
                        }))
                    }
                    None => lists.extend(scan_exact(pool, vectors, query, k, filter, metric, at)),
                },
            }
        }
        if self.growing.live > 0 {
            let filter = GrowingFilter::new(&self.growing, &self.scalar_names, predicate);
            let at = |row: u32| Loc::Growing { row };
            let vectors = self.growing.vectors.view();
            match filter.at_most() {
                0 => {}
                // A few rows the filter named are visited one by one on one thread.
                n if predicate.is_some() && n < PARALLEL_SCAN_ROWS => {
                    let hits = flat_search(vectors, metric, query, k, Some(&filter));
                    lists.push(hits.into_iter().map(|n| (at(n.id), n.score)).collect());
                }
                _ => lists.extend(scan_exact(pool, vectors, query, k, &filter, metric, at)),
            }
        }
        merge_topk(lists, k, metric)
            .into_iter()
            .map(|(loc, score)| self.materialize(loc, score, proj))
            .collect()
    }

    /// Rows by key (`pks`) or by filter, ordered by key, at most `limit`.
    pub fn query(
        &self,
        pks: Option<&[PrimaryKey]>,
        predicate: Option<&dyn RowPredicate>,
        limit: usize,
        proj: &Projection<'_>,
    ) -> QueryResult {
        let mut locs: Vec<(&PrimaryKey, Loc)> = match (pks, predicate) {
            (Some(pks), _) => pks
                .iter()
                .filter_map(|pk| self.pk_index.get_key_value(pk).map(|(k, l)| (k, *l)))
                .collect(),
            // Each segment's scalar indexes name the rows worth testing.
            (None, Some(p)) => self.matching(p),
            (None, None) => self.pk_index.iter().map(|(k, l)| (k, *l)).collect(),
        };
        if let Some(p) = predicate
            && pks.is_some()
        {
            locs.retain(|(_, loc)| self.eval(*loc, p));
        }
        locs.sort_by(|a, b| a.0.cmp(b.0));
        locs.dedup_by(|a, b| a.0 == b.0);
        locs.truncate(limit);
        QueryResult {
            rows: locs
                .into_iter()
                .map(|(_, loc)| self.materialize(loc, 0.0, proj))
                .collect(),
        }
    }

    /// The live rows `p` accepts: sealed rows as their segment selects them
    /// (`select.rs`: named by its indexes, else each live row tested),
    /// growing rows tested.
    fn matching(&self, p: &dyn RowPredicate) -> Vec<(&PrimaryKey, Loc)> {
        let mut out = Vec::new();
        for (si, seg) in self.sealed.iter().enumerate() {
            let at = |row: u32| Loc::Sealed {
                seg: si as u32,
                row,
            };
            let selection = seg.select(Some(p), usize::MAX);
            let rows: Vec<u32> = selection.rows().collect();
            out.extend(
                rows.into_iter()
                    .map(|row| (seg.seg.data.pk(row as usize), at(row))),
            );
        }
        out.extend(
            (self.growing_matching(p).rows())
                .map(|row| (&self.growing.pks[row as usize], Loc::Growing { row })),
        );
        out
    }

    /// How many live rows `p` accepts: [`Self::matching`] counted where
    /// each segment's selection holds them, no row materialized.
    pub fn count_matching(&self, p: &dyn RowPredicate) -> usize {
        let sealed: usize = (self.sealed.iter())
            .map(|seg| seg.select(Some(p), usize::MAX).count())
            .sum();
        sealed + self.growing_matching(p).count()
    }

    /// The live growing rows `p` accepts (the live version of their key).
    fn growing_matching<'a>(&'a self, p: &'a dyn RowPredicate) -> GrowingFilter<'a> {
        GrowingFilter::new(&self.growing, &self.scalar_names, Some(p))
    }

    /// The digest of the live rows (see [`quiver_api::ShardDigest`]): each
    /// row hashed over its key, vector and scalar fields in schema order.
    pub fn digest(&self, req: &DigestRequest) -> ShardDigest {
        // Row hashes are cached: a sealed segment's on first use, growing
        // rows up to where the last digest got (rows never change).
        let sealed: Vec<&[u64]> = self
            .sealed
            .iter()
            .map(|s| {
                s.seg
                    .row_hashes
                    .get_or_init(|| self.sealed_hashes(s))
                    .as_slice()
            })
            .collect();
        let mut growing = self.growing.hashes.lock();
        for r in growing.len()..self.growing.len() {
            growing.push(row_hash(
                &self.growing.pks[r],
                self.growing.vector(r),
                self.growing
                    .columns
                    .iter()
                    .map(|c| c.get(r).map(ValueRef::of)),
            ));
        }
        let mut out = DigestBuilder::new(req);
        let rows: Box<dyn Iterator<Item = (&PrimaryKey, &Loc)>> = if req.pks_only {
            Box::new(
                req.pks
                    .iter()
                    .filter_map(|pk| self.pk_index.get_key_value(pk)),
            )
        } else {
            Box::new(self.pk_index.iter())
        };
        for (pk, loc) in rows {
            let hash = match *loc {
                Loc::Sealed { seg, row } => sealed[seg as usize][row as usize],
                Loc::Growing { row } => growing[row as usize],
            };
            out.add(pk, hash);
        }
        out.finish()
    }

    /// The digest hash of every row of a sealed segment.
    fn sealed_hashes(&self, s: &SealedSeg) -> Vec<u64> {
        let vectors = s.seg.data.vectors();
        (0..s.seg.data.len())
            .map(|row| {
                let access = SealedRow { seg: s, row };
                row_hash(
                    access.pk(),
                    vectors.row(row),
                    self.scalar_names.iter().map(|n| access.field(n)),
                )
            })
            .collect()
    }

    fn eval(&self, loc: Loc, p: &dyn RowPredicate) -> bool {
        match loc {
            Loc::Sealed { seg, row } => p.eval(&SealedRow {
                seg: &self.sealed[seg as usize],
                row: row as usize,
            }),
            Loc::Growing { row } => p.eval(&GrowingRow {
                growing: &self.growing,
                names: &self.scalar_names,
                row: row as usize,
            }),
        }
    }

    pub(crate) fn materialize(&self, loc: Loc, score: f32, proj: &Projection<'_>) -> ShardHit {
        match loc {
            Loc::Sealed { seg, row } => {
                let s = &self.sealed[seg as usize];
                let access = SealedRow {
                    seg: s,
                    row: row as usize,
                };
                ShardHit {
                    pk: access.pk().clone(),
                    score,
                    fields: project(&access, proj.fields),
                    vector: proj
                        .with_vectors
                        .then(|| hit_vector(s.seg.data.vector(row as usize))),
                }
            }
            Loc::Growing { row } => {
                let access = GrowingRow {
                    growing: &self.growing,
                    names: &self.scalar_names,
                    row: row as usize,
                };
                ShardHit {
                    pk: access.pk().clone(),
                    score,
                    fields: project(&access, proj.fields),
                    vector: proj
                        .with_vectors
                        .then(|| hit_vector(self.growing.vector(row as usize))),
                }
            }
        }
    }
}

/// Rows searched without a graph, by how.
static SCANNED: std::sync::LazyLock<quiver_metrics::IntCounterVec> = std::sync::LazyLock::new(
    || {
        quiver_metrics::counter_vec(
            "quiver_querynode_scanned_rows_total",
            "Rows searches read one by one instead of through a graph (growing rows, and sealed segments whose graph is not built yet), by how: exact (f32 vectors) or codes (8-bit codes, the best re-ranked exactly)",
            &["how"],
        )
    },
);
/// [`SCANNED`]'s two series, resolved once (searches count on every call).
pub(crate) static SCANNED_EXACT: std::sync::LazyLock<quiver_metrics::IntCounter> =
    std::sync::LazyLock::new(|| SCANNED.with_label_values(&["exact"]));
pub(crate) static SCANNED_CODES: std::sync::LazyLock<quiver_metrics::IntCounter> =
    std::sync::LazyLock::new(|| SCANNED.with_label_values(&["codes"]));

/// Rows scanned exactly (growing rows; a sealed segment without its graph
/// yet) at or above this many are scanned in parallel chunks on the scan
/// pool: over a freshly written shard a query would otherwise take
/// milliseconds on one core.
const PARALLEL_SCAN_ROWS: usize = 32_768;
/// Rows per chunk of a parallel scan.
const SCAN_CHUNK_ROWS: usize = 16_384;

/// A hit's vector as returned to clients.
fn hit_vector(v: VectorSlice<'_>) -> Vec<f32> {
    let VectorSlice::F32(v) = v;
    v.to_vec()
}

/// Exact top-k of `vectors`: one hit list, or one per chunk when there are
/// many rows; `at` names row `i` of `vectors`.
fn scan_exact<F: RowFilter + ?Sized>(
    pool: &rayon::ThreadPool,
    vectors: VectorsRef<'_>,
    query: &[f32],
    k: usize,
    filter: &F,
    metric: quiver_common::Metric,
    at: impl Fn(u32) -> Loc + Sync,
) -> Vec<Vec<(Loc, f32)>> {
    SCANNED_EXACT.inc_by(vectors.len() as u64);
    scan(pool, vectors.len(), at, |rows| {
        let offset = rows.start as u32;
        let part = Offset {
            inner: filter,
            offset,
        };
        let mut hits = flat_search(vectors.rows(rows), metric, query, k, Some(&part));
        for h in &mut hits {
            h.id += offset;
        }
        hits
    })
}

/// `search(range)` (hits named by row of the whole) over `0..rows`: at once,
/// or in chunks on the scan pool when there are many rows; one hit list per
/// call, rows named by `at`.
fn scan(
    pool: &rayon::ThreadPool,
    rows: usize,
    at: impl Fn(u32) -> Loc + Sync,
    search: impl Fn(std::ops::Range<usize>) -> Vec<Neighbor> + Sync,
) -> Vec<Vec<(Loc, f32)>> {
    let to_locs = |hits: Vec<Neighbor>| -> Vec<(Loc, f32)> {
        hits.into_iter().map(|n| (at(n.id), n.score)).collect()
    };
    if rows < PARALLEL_SCAN_ROWS {
        return vec![to_locs(search(0..rows))];
    }
    use rayon::prelude::*;
    pool.install(|| {
        (0..rows.div_ceil(SCAN_CHUNK_ROWS))
            .into_par_iter()
            .map(|c| {
                to_locs(search(
                    c * SCAN_CHUNK_ROWS..((c + 1) * SCAN_CHUNK_ROWS).min(rows),
                ))
            })
            .collect()
    })
}

/// A filter over a chunk of rows starting at `offset`.
struct Offset<'a, F: ?Sized> {
    inner: &'a F,
    offset: u32,
}

impl<F: RowFilter + ?Sized> RowFilter for Offset<'_, F> {
    fn allows(&self, id: u32) -> bool {
        self.inner.allows(id + self.offset)
    }
}

fn project(row: &dyn RowAccess, fields: &[String]) -> Vec<ScalarValue> {
    fields
        .iter()
        .map(|f| row.field(f).map_or(ScalarValue::Null, ValueRef::to_scalar))
        .collect()
}
