//! A quantized scan: rows' 8-bit codes scanned for a short list, re-ranked
//! with exact distances.
//!
//! For rows a graph does not cover yet (a sealed segment waiting for its
//! build while ingest runs ahead of the builders). The codes are a quarter
//! of the bytes of the f32 rows, stored in blocks of 16 rows, dimensions in
//! pairs, so that one pass of 16-bit multiply-adds with the query's integer
//! weights (as the graph search's) scores 16 rows in the 16 lanes of a
//! vector register (`kernels::dot_i16_blocked`). The best `refine(k)` rows
//! by code distance are re-ranked with the f32 vectors, so the scores
//! returned are exact.

use std::collections::BinaryHeap;
use std::ops::Range;

use quiver_common::{Metric, VectorSlice, VectorsRef};

use super::kernels::{BLOCK_ROWS, block_at, block_bytes, dot_i16_blocked, pack_pairs};
use super::refine;
use super::{CodeRows, Kind, SqCodes};
use crate::distance::with_space;
use crate::error::Result;
use crate::filter::RowFilter;
use crate::flat::{offer, rerank};
use crate::topk::{Cand, Neighbor};

/// Blocks scored per kernel call.
const CALL_BLOCKS: usize = 16;

/// 8-bit codes of a set of rows, for [`QuantizedRows::search`].
pub struct QuantizedRows {
    /// The quantizer (its own code rows dropped once moved to `blocks`).
    sq: SqCodes,
    metric: Metric,
    n: usize,
    /// `ceil(n / 16)` blocks of `block_bytes(dim)`: dimension j of row
    /// `16 b + r` at `b * block_bytes(dim) + block_at(r, j)`.
    blocks: Vec<u8>,
    /// L2: each row's decoded squared offset from `lo` (see `SqCodes`).
    norms: Vec<f32>,
}

impl std::fmt::Debug for QuantizedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantizedRows")
            .field("metric", &self.metric)
            .field("rows", &self.n)
            .finish()
    }
}

impl QuantizedRows {
    /// Learns per-dimension ranges from `vectors` and encodes them. L2, IP
    /// and COSINE only.
    pub fn train(vectors: VectorsRef<'_>, metric: Metric) -> Result<QuantizedRows> {
        let VectorSlice::F32(rows) = vectors.data();
        let dim = vectors.dim();
        let whole = rows.get(..vectors.len() * dim).unwrap_or(&[]);
        let mut sq = SqCodes::train(whole, dim, metric)?;
        let n = sq.len();
        let per = block_bytes(dim);
        let mut blocks = vec![0u8; n.div_ceil(BLOCK_ROWS) * per];
        for id in 0..n {
            let (b, lane) = (id / BLOCK_ROWS, id % BLOCK_ROWS);
            let block = &mut blocks[b * per..(b + 1) * per];
            for (j, &c) in sq.rows.row(id).iter().take(dim).enumerate() {
                block[block_at(lane, j)] = c;
            }
        }
        let norms = match sq.kind {
            Kind::L2 { .. } => (0..n as u32).map(|id| sq.norm(id)).collect(),
            Kind::Dot { .. } => Vec::new(),
        };
        sq.rows = CodeRows::zeroed(0, sq.rows.pitch());
        Ok(QuantizedRows {
            sq,
            metric,
            n,
            blocks,
            norms,
        })
    }

    /// Rows encoded.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The metric the codes were made for.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Bytes held (codes, norms and ranges).
    pub fn memory_bytes(&self) -> usize {
        self.sq.memory_bytes() + self.blocks.len() + 4 * self.norms.len()
    }

    /// Top-`k` of `query` among rows `rows` (ids are row offsets into
    /// `vectors`, the rows the codes were made from) that `filter` allows,
    /// sorted best first, with exact scores: the best `max(4k, k + 32,
    /// rerank_rows)` by code distance are re-ranked. Nothing when `vectors` or
    /// `query` do not match the codes.
    pub fn search(
        &self,
        vectors: VectorsRef<'_>,
        query: &[f32],
        k: usize,
        rerank_rows: usize,
        filter: Option<&dyn RowFilter>,
        rows: Range<usize>,
    ) -> Vec<Neighbor> {
        let dim = vectors.dim();
        if k == 0 || dim != self.sq.dim || query.len() != dim || vectors.len() < self.n {
            return Vec::new();
        }
        let keep = refine(k, rerank_rows);
        let q = self.sq.query(query);
        let packed = pack_pairs(&q.wide, dim);
        let per = block_bytes(dim);
        let mut short: BinaryHeap<Cand> = BinaryHeap::with_capacity(keep + 1);
        let mut ints = [0i32; CALL_BLOCKS * BLOCK_ROWS];
        let mut dots = [0f32; CALL_BLOCKS * BLOCK_ROWS];
        let (start, end) = (rows.start.min(self.n), rows.end.min(self.n));
        let span = CALL_BLOCKS * BLOCK_ROWS;
        let mut first = start / BLOCK_ROWS * BLOCK_ROWS;
        let mut bound = f32::INFINITY;
        while first < end {
            let count = span.min(end.next_multiple_of(BLOCK_ROWS) - first);
            let bytes = first / BLOCK_ROWS * per..(first + count) / BLOCK_ROWS * per;
            dot_i16_blocked(&packed, &self.blocks[bytes], &mut ints[..count]);
            let ds = &mut dots[..count];
            for (d, i) in ds.iter_mut().zip(&ints) {
                *d = q.unscale * *i as f32;
            }
            match self.sq.kind {
                Kind::L2 { .. } => {
                    let norms = &self.norms[first..(first + count).min(self.n)];
                    for (d, norm) in ds.iter_mut().zip(norms) {
                        *d += q.konst + norm;
                    }
                }
                Kind::Dot { .. } => ds.iter_mut().for_each(|d| *d = -(q.konst + *d)),
            }
            // Rows of the block inside the range, worse than the short
            // list's worst once it is full, are passed over.
            let (from, to) = (start.max(first) - first, end.min(first + count) - first);
            for (i, &d) in ds.iter().enumerate().take(to).skip(from) {
                if d < bound {
                    let id = (first + i) as u32;
                    if filter.is_none_or(|f| f.allows(id)) {
                        offer(&mut short, keep, Cand { d, id });
                        if short.len() == keep {
                            bound = short.peek().map_or(f32::INFINITY, |w| w.d);
                        }
                    }
                }
            }
            first += count;
        }
        let VectorSlice::F32(all) = vectors.data();
        with_space!(self.metric, S => rerank::<S>(all, dim, query, short.into_vec(), k))
    }
}
