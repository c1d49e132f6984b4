//! A quantized scan: rows' 8-bit codes scanned for a short list, re-ranked
//! with exact distances.
//!
//! For rows a graph does not cover yet (a sealed segment waiting for its
//! build while ingest runs ahead of the builders). The codes are a quarter
//! of the bytes of the f32 rows, stored in blocks of 16 rows dimension by
//! dimension, so that one pass of multiply-adds scores 16 rows in the 16
//! lanes of a vector register (`kernels::dot_asym_blocked`). The best
//! `refine(k)` rows by code distance are re-ranked with the f32 vectors,
//! so the scores returned are exact.

use std::collections::BinaryHeap;
use std::ops::Range;

use quiver_common::{Metric, VectorSlice, VectorsRef};

use super::kernels::{BLOCK_ROWS, dot_asym_blocked};
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
    /// `ceil(n / 16)` blocks of `16 * dim` bytes: dimension j of row
    /// `16 b + r` at `b * 16 * dim + j * 16 + r`.
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
        let mut blocks = vec![0u8; n.div_ceil(BLOCK_ROWS) * BLOCK_ROWS * dim];
        for id in 0..n {
            let (b, lane) = (id / BLOCK_ROWS, id % BLOCK_ROWS);
            let block = &mut blocks[b * BLOCK_ROWS * dim..(b + 1) * BLOCK_ROWS * dim];
            for (j, &c) in sq.rows.row(id).iter().take(dim).enumerate() {
                block[j * BLOCK_ROWS + lane] = c;
            }
        }
        let norms = match sq.kind {
            Kind::L2 => (0..n as u32).map(|id| sq.norm(id)).collect(),
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
    /// sorted best first, with exact scores. Nothing when `vectors` or
    /// `query` do not match the codes.
    pub fn search(
        &self,
        vectors: VectorsRef<'_>,
        query: &[f32],
        k: usize,
        filter: Option<&dyn RowFilter>,
        rows: Range<usize>,
    ) -> Vec<Neighbor> {
        let dim = vectors.dim();
        if k == 0 || dim != self.sq.dim || query.len() != dim || vectors.len() < self.n {
            return Vec::new();
        }
        let keep = refine(k);
        let q = self.sq.query(query);
        let pre = &q.pre[..dim];
        let mut short: BinaryHeap<Cand> = BinaryHeap::with_capacity(keep + 1);
        let mut dots = [0f32; CALL_BLOCKS * BLOCK_ROWS];
        let (start, end) = (rows.start.min(self.n), rows.end.min(self.n));
        let span = CALL_BLOCKS * BLOCK_ROWS;
        let mut first = start / BLOCK_ROWS * BLOCK_ROWS;
        let mut bound = f32::INFINITY;
        while first < end {
            let count = span.min(end.next_multiple_of(BLOCK_ROWS) - first);
            let bytes = first * dim..(first + count) * dim;
            let ds = &mut dots[..count];
            dot_asym_blocked(pre, &self.blocks[bytes], ds);
            match self.sq.kind {
                Kind::L2 => {
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
