//! 8-bit scalar quantization: a per-dimension range learnt from the rows
//! being indexed, one `u8` code per dimension, and distances between an f32
//! query and a code (asymmetric) or between two codes (symmetric).
//!
//! Dimension `j` of a row decodes to `lo[j] + step[j] * code[j]`, where
//! `[lo, lo + 255 * step]` is the dimension's range over the training rows.
//! COSINE rows and queries are normalised first, so that COSINE is the inner
//! product of the codes. Internal distances follow `distance.rs` (smaller is
//! closer): squared L2 for L2, the negated inner product for IP and COSINE,
//! except that COSINE codes along principal axes (`pca.rs`) are compared by
//! squared L2 between the unit rows (`2 - 2 q·x`: the same order), and so
//! are IP codes along them (only of unit rows: `|q|² + 1 - 2 q·x`).

mod axes;
pub(crate) mod kernels;
mod pca;
mod rows;
mod scan;

use std::borrow::Cow;

use quiver_common::Metric;

use crate::error::{IndexError, Result};
pub use kernels::kernel_isa;
use kernels::{CHUNK, LANES, dot_asym, dot_i16, dot_i16_rows, dot_sym, i16_weight_max};
pub(crate) use pca::Projection;
use pca::check_at;
use rows::CodeRows;
pub use scan::QuantizedRows;

/// How many rows by code distance are re-ranked exactly for a top-`k`: the
/// true top-k sits within `max(4k, k + 32)` unless quantization moved a row
/// past many others (recall@10 against an exact scan: see the tests), or
/// within `rerank_rows` when a search asks for more (Milvus's `refine_k`).
pub(crate) fn refine(k: usize, rerank_rows: usize) -> usize {
    k.saturating_mul(4)
        .max(k.saturating_add(32))
        .max(rerank_rows)
}

/// The rows Milvus's `refine_k` asks an 8-bit index to re-rank at top-`k`:
/// `refine_k × k`, rounded up (the one place this rounding is done; the
/// proxy caps it at its largest top-k).
pub fn refine_k_rows(refine_k: f32, k: usize) -> usize {
    (f64::from(refine_k) * k as f64).ceil() as usize
}

/// How distances are computed over the codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Squared L2; `normalize` for COSINE coded along principal axes
    /// (`pca.rs`): between unit rows `|q - x|² = 2 - 2 q·x` orders rows as
    /// COSINE does, and the codes' distances are only ever compared with
    /// each other (results are re-ranked exactly). IP rows that are all
    /// unit vectors are coded so too, not normalised: for one query
    /// `|q - x|² = |q|² + 1 - 2 q·x` orders them as IP does.
    L2 { normalize: bool },
    /// Inner product; `normalize` for COSINE.
    Dot { normalize: bool },
}

impl Kind {
    /// How codes of `metric` are compared: `projected` (along principal
    /// axes) needs squared L2, so COSINE is then L2 between unit rows.
    fn of(metric: Metric, projected: bool) -> Result<Kind> {
        match (metric, projected) {
            (Metric::L2, _) => Ok(Kind::L2 { normalize: false }),
            (Metric::Cosine, true) => Ok(Kind::L2 { normalize: true }),
            (Metric::Ip, true) => Ok(Kind::L2 { normalize: false }),
            (Metric::Ip, false) => Ok(Kind::Dot { normalize: false }),
            (Metric::Cosine, false) => Ok(Kind::Dot { normalize: true }),
            (other, _) => Err(IndexError::InvalidArgument(format!(
                "8-bit quantization supports L2, IP and COSINE, not {other:?}"
            ))),
        }
    }

    fn is_l2(self) -> bool {
        matches!(self, Kind::L2 { .. })
    }

    /// Whether rows and queries are normalised first (COSINE).
    fn normalizes(self) -> bool {
        matches!(
            self,
            Kind::L2 { normalize: true } | Kind::Dot { normalize: true }
        )
    }

    /// `v` as the codes represent it: normalised for COSINE.
    fn prepared(self, v: &[f32]) -> Cow<'_, [f32]> {
        if self.normalizes() {
            Cow::Owned(normalized(v))
        } else {
            Cow::Borrowed(v)
        }
    }
}

/// `v` scaled to unit length (unchanged if it is all zeros).
fn normalized(v: &[f32]) -> Vec<f32> {
    let mut out = v.to_vec();
    normalize(&mut out);
    out
}

/// Scales `v` to unit length (leaves it if it is all zeros).
fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if norm > 0.0 {
        let inv = 1.0 / norm;
        v.iter_mut().for_each(|x| *x = (f64::from(*x) * inv) as f32);
    }
}

/// Whether every row of `rows` is a unit vector (squared length within
/// 1e-3 of 1): then IP orders them as L2 does, for any one query.
fn unit_rows(rows: &[f32], dim: usize) -> bool {
    rows.chunks_exact(dim).all(|r| {
        let n2 = crate::distance::dot(r, r);
        (n2 - 1.0).abs() <= 1e-3
    })
}

/// `row` as codes represent it: normalised for COSINE, projected when the
/// codes are.
fn coded<'a>(kind: Kind, proj: Option<&Projection>, row: &'a [f32]) -> Cow<'a, [f32]> {
    let row = kind.prepared(row);
    match proj {
        Some(proj) => {
            let mut out = vec![0f32; proj.coded_dim()];
            proj.apply(&row, &mut out);
            Cow::Owned(out)
        }
        None => row,
    }
}

/// The quantizer and the codes of rows `0..n`.
pub(crate) struct SqCodes {
    kind: Kind,
    /// Dimensions of the rows coded.
    in_dim: usize,
    /// Dimensions of a code: `in_dim`, or [`Projection::coded_dim`].
    dim: usize,
    /// `dim` rounded up to a multiple of `LANES`: the length of the codes a
    /// kernel reads and of every per-dimension array (padding is zero).
    stride: usize,
    lo: Vec<f32>,
    step: Vec<f32>,
    /// `step^2`.
    step2: Vec<f32>,
    /// Per row: the codes (`stride` bytes, zero-padded) and, in the row's
    /// last 4 bytes, for L2 the squared length of its decoded offset from
    /// `lo` (`sum step^2 * code^2`), so that a distance is one product read
    /// from one place. The norm sits in the padding when there is room
    /// (the kernels multiply it by a zero weight); a row is one cache line
    /// up to 60 dimensions. Projected codes also hold a partial norm for
    /// each checkpoint `c < checks`: the head's (`c == 0`) in the head's
    /// last 4 bytes (see `pca::HEAD`), then, after the codes, that of the
    /// row's first `CHUNK * c` dimensions.
    rows: CodeRows,
    /// The principal axes the rows are coded along (L2 and COSINE; see
    /// [`SqCodes::train_projected`]).
    proj: Option<Projection>,
    /// Checkpoints whose partial norms a row holds (0 without `proj`).
    checks: usize,
}

/// Projected codes need this many dimensions: below, a row is two cache
/// lines or less, and stopping early saves little.
const PROJECT_MIN_DIM: usize = 128;

/// ...and this many rows: finding the axes takes about a second at 768
/// dimensions, whatever the rows.
const PROJECT_MIN_ROWS: usize = 10_000;

/// Bytes of a code row of `stride` kernel bytes: room for a 4-byte norm
/// after `dim` codes.
fn pitch(dim: usize, stride: usize, checks: usize) -> usize {
    if checks > 0 {
        // The partial norms past the head's, then the norm; the row a
        // whole number of lines.
        (check_at(stride, checks) + 4).next_multiple_of(64)
    } else if stride - dim >= 4 {
        stride
    } else {
        stride + LANES
    }
}

/// The parts of the inner product of two decoded rows `lo + step * code`
/// that are not their codes' product: `sum lo^2`, and per row
/// `sum lo * step * code` (kept only while building).
#[derive(Default)]
pub(crate) struct DotTerms {
    lo2: f32,
    rows: Vec<f32>,
}

/// A query prepared against [`SqCodes`].
pub(crate) struct SqQuery<'a> {
    sq: &'a SqCodes,
    /// L2: `-2 * (q - lo) * step`; inner product: `q * step` (the exact
    /// weights `wide` rounds; kept to test the rounding).
    #[cfg(test)]
    pre: Vec<f32>,
    /// L2: `sum (q - lo)^2`; inner product: `sum q * lo`.
    konst: f32,
    /// `pre` in integers, `pre * scale` rounded, for [`dot_i16`].
    wide: Vec<i16>,
    /// Projected codes: `konst` over the head (checkpoint 0), and over the
    /// row's first `CHUNK * c` dimensions (checkpoint `c`); `konst` itself
    /// is over the row, past the head.
    kpref: Vec<f32>,
    /// `1 / scale` (of the weights past the head, for projected codes).
    unscale: f32,
    /// Projected codes: `1 / scale` of the head's weights.
    unscale_head: f32,
}

impl SqCodes {
    /// Learns the per-dimension ranges of `rows` (row-major, `dim` floats a
    /// row) and encodes them.
    pub fn train(rows: &[f32], dim: usize, metric: Metric) -> Result<SqCodes> {
        Self::train_with(rows, dim, metric, false)
    }

    /// [`SqCodes::train`], coding L2 and COSINE rows of at least 128
    /// dimensions (and 10,000 rows) with their coordinates along their
    /// widest principal axes first (`pca.rs`): a search then reads a row's
    /// first line of codes, and the rest only when that line does not
    /// already put the row past what its beam admits
    /// ([`SqQuery::dists_below`]). The projection keeps distances, so the
    /// codes mean what plain codes mean (COSINE rows are compared by L2
    /// between unit rows, which orders them alike; IP rows too, when every
    /// one is a unit vector).
    pub fn train_projected(rows: &[f32], dim: usize, metric: Metric) -> Result<SqCodes> {
        Self::train_with(rows, dim, metric, true)
    }

    /// Whether [`SqCodes::train_projected`] projects `rows` (`dim` floats a
    /// row) under `metric` (IP: only if every row is a unit vector, see
    /// [`unit_rows`]), so that a caller need not train codes to find out.
    pub fn projects(metric: Metric, rows: &[f32], dim: usize) -> bool {
        matches!(metric, Metric::L2 | Metric::Cosine | Metric::Ip)
            && dim >= PROJECT_MIN_DIM
            && rows.len() / dim >= PROJECT_MIN_ROWS
            && (metric != Metric::Ip || unit_rows(rows, dim))
    }

    fn train_with(rows: &[f32], dim: usize, metric: Metric, project: bool) -> Result<SqCodes> {
        Kind::of(metric, false)?;
        if dim == 0 || !rows.len().is_multiple_of(dim) {
            return Err(IndexError::InvalidArgument(format!(
                "{} floats are not a whole number of rows of dimension {dim}",
                rows.len()
            )));
        }
        let n = rows.len() / dim;
        let projected_kind = Kind::of(metric, true);
        let proj = match projected_kind {
            Ok(k) if project && Self::projects(metric, rows, dim) => {
                Projection::train(rows, dim, |r| k.prepared(r))
            }
            _ => None,
        };
        let kind = Kind::of(metric, proj.is_some())?;
        let coded_dim = proj.as_ref().map_or(dim, Projection::coded_dim);
        let mut min = vec![f32::INFINITY; coded_dim];
        let mut max = vec![f32::NEG_INFINITY; coded_dim];
        // Each row as coded, into one buffer: the row (normalised for
        // COSINE) after the head of projected codes. The heads are kept
        // for the encoding pass (a head is `AXES` dot products of the row).
        let h = if proj.is_some() { pca::HEAD } else { 0 };
        let mut buf = vec![0f32; coded_dim];
        let mut heads = Vec::with_capacity(n * h);
        let prepare = |r: &[f32], rest: &mut [f32]| {
            rest.copy_from_slice(r);
            if kind.normalizes() {
                normalize(rest);
            }
        };
        let mut prepared = vec![0f32; dim];
        for r in rows.chunks_exact(dim) {
            match &proj {
                Some(p) => {
                    prepare(r, &mut prepared);
                    p.apply(&prepared, &mut buf);
                    heads.extend_from_slice(&buf[..h]);
                }
                None => prepare(r, &mut buf),
            }
            for ((x, lo), hi) in buf.iter().zip(&mut min).zip(&mut max) {
                // NaN and infinities do not widen the range (they clamp).
                if x.is_finite() {
                    *lo = lo.min(*x);
                    *hi = hi.max(*x);
                }
            }
        }
        let (lo, step): (Vec<f32>, Vec<f32>) = min
            .iter()
            .zip(&max)
            .map(|(&lo, &hi)| {
                if lo <= hi {
                    (lo, ((hi - lo) / 255.0).max(0.0))
                } else {
                    (0.0, 0.0) // no finite value in this dimension
                }
            })
            .unzip();
        let mut sq = SqCodes::from_ranges(metric, lo, step, Vec::new(), proj)?;
        let mut codes = CodeRows::zeroed(n, sq.pitch());
        let inv = sq.inverse_steps();
        for (i, (r, out)) in rows.chunks_exact(dim).zip(codes.rows_mut()).enumerate() {
            let (head, rest) = buf.split_at_mut(h);
            head.copy_from_slice(heads.get(i * h..(i + 1) * h).unwrap_or(&[]));
            prepare(r, rest);
            sq.encode(&inv, &buf, out);
        }
        sq.rows = codes;
        sq.fill_norms();
        Ok(sq)
    }

    /// Rebuilds from the stored ranges and codes (`n * dim` bytes, unpadded)
    /// and the projection they were coded in, if any.
    pub fn from_ranges(
        metric: Metric,
        lo: Vec<f32>,
        step: Vec<f32>,
        codes: Vec<u8>,
        proj: Option<Projection>,
    ) -> Result<SqCodes> {
        let dim = lo.len();
        if dim == 0 || step.len() != dim || !codes.len().is_multiple_of(dim) {
            return Err(IndexError::InvalidArgument(
                "quantizer ranges and codes do not match".into(),
            ));
        }
        if !lo.iter().chain(&step).all(|x| x.is_finite()) || step.iter().any(|s| *s < 0.0) {
            return Err(IndexError::InvalidArgument(
                "quantizer ranges are not finite".into(),
            ));
        }
        let kind = Kind::of(metric, proj.is_some())?;
        if proj.as_ref().is_some_and(|p| p.coded_dim() != dim) {
            return Err(IndexError::InvalidArgument(
                "a quantizer's projection does not match its dimension".into(),
            ));
        }
        let in_dim = proj.as_ref().map_or(dim, Projection::dim);
        let stride = dim.next_multiple_of(LANES);
        let checks = if proj.is_some() { (dim - 1) / CHUNK } else { 0 };
        let pad = |mut v: Vec<f32>| {
            v.resize(stride, 0.0);
            v
        };
        let (lo, mut step) = (pad(lo), pad(step));
        if proj.is_some() {
            // The head's last codes are always 0; their bytes hold its norm.
            step[pca::AXES..pca::HEAD].fill(0.0);
        }
        let step2 = step.iter().map(|s| s * s).collect();
        let mut rows = CodeRows::zeroed(codes.len() / dim, pitch(dim, stride, checks));
        for (r, out) in codes.chunks_exact(dim).zip(rows.rows_mut()) {
            out[..dim].copy_from_slice(r);
        }
        let mut sq = SqCodes {
            kind,
            in_dim,
            dim,
            stride,
            lo,
            step,
            step2,
            rows,
            proj,
            checks,
        };
        sq.fill_norms();
        Ok(sq)
    }

    fn pitch(&self) -> usize {
        pitch(self.dim, self.stride, self.checks)
    }

    /// Where a code's own row starts: after the head of projected codes.
    #[inline]
    fn head(&self) -> usize {
        if self.checks > 0 { pca::HEAD } else { 0 }
    }

    /// The projection the codes are in, if any.
    pub fn projection(&self) -> Option<&Projection> {
        self.proj.as_ref()
    }

    /// Writes the norm of every row into its last 4 bytes (L2 only).
    fn fill_norms(&mut self) {
        if !self.kind.is_l2() {
            return;
        }
        let (stride, step2, checks, h) = (self.stride, &self.step2, self.checks, self.head());
        let norm_of = |row: &[u8], r: std::ops::Range<usize>| {
            dot_sym(&step2[r.clone()], &row[r.clone()], &row[r])
        };
        for row in self.rows.rows_mut() {
            // The norm's own bytes are still zero here, or weighed by zero.
            // A projected row's distance is its row's, past the head.
            let norm = norm_of(row, h..stride);
            let at = row.len() - 4;
            row[at..].copy_from_slice(&norm.to_le_bytes());
            for c in 0..checks {
                // Checkpoint 0 is the head; the others, the row's first
                // `CHUNK * c` dimensions.
                let part = if c == 0 {
                    norm_of(row, 0..h)
                } else {
                    norm_of(row, h..h + CHUNK * c)
                };
                row[check_at(stride, c)..][..4].copy_from_slice(&part.to_le_bytes());
            }
        }
    }

    /// The norm written by [`SqCodes::fill_norms`] (0 unless L2).
    #[inline]
    fn norm(&self, id: u32) -> f32 {
        let row = self.rows.row(id as usize);
        match row.len().checked_sub(4).and_then(|at| row.get(at..)) {
            Some(&[a, b, c, d]) if self.kind.is_l2() => f32::from_le_bytes([a, b, c, d]),
            _ => 0.0,
        }
    }

    /// Writes the code of `row` (already normalised for COSINE) into `out`.
    /// `inv` is [`SqCodes::inverse_steps`].
    fn encode(&self, inv: &[f32], row: &[f32], out: &mut [u8]) {
        for ((o, x), (lo, inv)) in out.iter_mut().zip(row).zip(self.lo.iter().zip(inv)) {
            // Rounded half away from zero, as `round` does for the clamped
            // (non-negative) value, without a call to `roundf`; `as`
            // truncates, and NaN becomes 0.
            *o = (((x - lo) * inv).clamp(0.0, 255.0) + 0.5) as u8;
        }
    }

    /// `1 / step`, 0 where a step is 0: multiplied by in [`SqCodes::encode`]
    /// (a division a code was most of a training's time at 768 dimensions).
    fn inverse_steps(&self) -> Vec<f32> {
        self.step
            .iter()
            .map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// How much the codes blur the rows: over the distinct rows among up to
    /// `sample` evenly spaced rows of `rows` (the rows trained on), the
    /// median squared distance of a row from its decoded code, over the
    /// median squared distance between two of those rows next to each
    /// other. About 1e-4 for embeddings whose dimensions are spread alike;
    /// a dimension that one far outlier stretches (its step too coarse for
    /// the other values) raises it by orders of magnitude. Medians, so the
    /// outlier itself counts for one row; distinct rows, so copies of one
    /// row (however many) count for one too. 0 when the rows do not differ.
    pub fn blur(&self, rows: &[f32], sample: usize) -> f64 {
        let n = rows.len() / self.in_dim.max(1);
        let every = n.div_ceil(sample.max(1)).max(1);
        let mut seen = std::collections::HashSet::new();
        let picked: Vec<Cow<'_, [f32]>> = rows
            .chunks_exact(self.in_dim)
            .step_by(every)
            .filter(|r| seen.insert(r.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()))
            .map(|r| coded(self.kind, self.proj.as_ref(), r))
            .collect();
        let mut code = vec![0u8; self.dim];
        let inv = self.inverse_steps();
        // Projected codes: the row's own, past the head.
        let h = self.head();
        let mut lost: Vec<f64> = picked
            .iter()
            .map(|r| {
                self.encode(&inv, r, &mut code);
                r.iter()
                    .zip(&code)
                    .enumerate()
                    .skip(h)
                    .filter(|(_, (x, _))| x.is_finite())
                    .map(|(j, (x, c))| {
                        let decoded = self.lo[j] + self.step[j] * f32::from(*c);
                        f64::from(x - decoded).powi(2)
                    })
                    .sum()
            })
            .collect();
        let mut apart: Vec<f64> = picked
            .windows(2)
            .map(|w| {
                w[0].iter()
                    .zip(w[1].iter())
                    .skip(h)
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .map(|(x, y)| f64::from(x - y).powi(2))
                    .sum()
            })
            .collect();
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        let (lost, apart) = (median(&mut lost), median(&mut apart));
        if apart > 0.0 { lost / apart } else { 0.0 }
    }

    /// What a graph file stores: the per-dimension lower bounds and steps
    /// and the codes of every row (unpadded, row-major), either as they are
    /// (`keep_projection`) or, for projected codes, only the rows' plain
    /// codes past the head: what [`SqCodes::train`] gives for the same rows.
    pub fn stored_parts(&self, keep_projection: bool) -> (&[f32], &[f32], Vec<u8>) {
        let from = if keep_projection { 0 } else { self.head() };
        let width = self.dim - from;
        let mut codes = Vec::with_capacity(self.len() * width);
        for id in 0..self.len() {
            codes.extend_from_slice(self.rows.row(id).get(from..self.dim).unwrap_or(&[]));
        }
        (&self.lo[from..self.dim], &self.step[from..self.dim], codes)
    }

    /// Bytes held (codes, row norms and ranges).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.rows.memory_bytes()
            + 4 * 3 * self.stride
            + self.proj.as_ref().map_or(0, Projection::memory_bytes)
    }

    #[inline]
    fn code(&self, id: u32) -> &[u8] {
        let row = self.rows.row(id as usize);
        row.get(..self.stride).unwrap_or(&[])
    }

    /// Prepares `query` (`dim` floats) for distances to codes.
    pub fn query(&self, query: &[f32]) -> SqQuery<'_> {
        let mut pre = vec![0f32; self.stride];
        let mut konst = 0.0;
        let mut kpref = Vec::with_capacity(self.checks);
        match self.kind {
            Kind::L2 { .. } => {
                let query = coded(self.kind, self.proj.as_ref(), query);
                // Projected codes: the head's sum, then the row's past the
                // head, restarted at the head's end (see `fill_norms`).
                let h = self.head();
                let mut sum = 0f64;
                for (j, (p, q)) in pre.iter_mut().zip(query.iter()).enumerate() {
                    let a = q - self.lo[j];
                    *p = -2.0 * a * self.step[j];
                    sum += f64::from(a) * f64::from(a);
                    if (j + 1) % CHUNK == 0 && kpref.len() < self.checks {
                        kpref.push(sum as f32);
                    }
                    if j + 1 == h {
                        sum = 0.0;
                    }
                }
                konst = sum as f32;
            }
            Kind::Dot { .. } => {
                let q = self.kind.prepared(query);
                for (j, (p, q)) in pre.iter_mut().zip(q.iter()).enumerate() {
                    *p = q * self.step[j];
                    konst += q * self.lo[j];
                }
            }
        }
        // The largest weight becomes the largest integer the sum allows
        // (32,767 up to 257 dimensions, 10,965 at 768): each weight is off
        // by at most 1/21,930 of the largest, far below a code's own error
        // (half a step in 255).
        // Projected codes: the head's weights and the rest's are scaled
        // apart (a head axis spans far more than one of the row's dimensions,
        // whose weights one scale would round to a few steps).
        let head = if self.checks > 0 { pca::HEAD } else { 0 };
        let (head_pre, rest_pre) = pre.split_at(head);
        let scale = |part: &[f32]| {
            let top = part.iter().fold(0f32, |m, p| m.max(p.abs()));
            if top > 0.0 && top.is_finite() {
                i16_weight_max(part.len()) as f32 / top
            } else {
                0.0
            }
        };
        let (head_scale, rest_scale) = (scale(head_pre), scale(rest_pre));
        let wide = (head_pre.iter().map(|p| (p * head_scale).round() as i16))
            .chain(rest_pre.iter().map(|p| (p * rest_scale).round() as i16))
            .collect();
        let un = |s: f32| if s > 0.0 { 1.0 / s } else { 0.0 };
        SqQuery {
            sq: self,
            #[cfg(test)]
            pre,
            konst,
            wide,
            kpref,
            unscale: un(rest_scale),
            unscale_head: un(head_scale),
        }
    }

    /// What the inner product of two codes needs besides their product
    /// (empty for L2, which needs none of it).
    pub fn dot_terms(&self) -> DotTerms {
        if self.kind.is_l2() {
            return DotTerms::default();
        }
        let lo_step: Vec<f32> = self.lo.iter().zip(&self.step).map(|(l, s)| l * s).collect();
        let rows = (0..self.len() as u32)
            .map(|id| dot_asym(&lo_step, self.code(id)))
            .collect();
        DotTerms {
            lo2: self.lo.iter().map(|l| l * l).sum(),
            rows,
        }
    }

    /// Distance between the codes of rows `a` and `b`; `terms` from
    /// [`SqCodes::dot_terms`] (unused for L2).
    #[inline]
    pub fn dist_codes(&self, a: u32, b: u32, terms: &DotTerms) -> f32 {
        let (x, y) = (self.code(a), self.code(b));
        match self.kind {
            Kind::L2 { .. } => {
                let h = self.head().min(x.len()).min(y.len());
                self.norm(a) + self.norm(b) - 2.0 * dot_sym(&self.step2[h..], &x[h..], &y[h..])
            }
            Kind::Dot { .. } => {
                let row = |r: u32| terms.rows.get(r as usize).copied().unwrap_or(0.0);
                -(terms.lo2 + row(a) + row(b) + dot_sym(&self.step2, x, y))
            }
        }
    }

    /// Hints the CPU to load the code of `id`.
    #[inline]
    pub fn prefetch(&self, id: u32) {
        // A whole code row (768 dimensions are 13 lines): it is read at
        // once. A projected row's head (one line) is read first, and often
        // alone.
        let pitch = if self.checks > 0 {
            64
        } else {
            self.rows.pitch()
        };
        crate::hnsw::prefetch_up_to::<u8, 1024>(self.rows.bytes(), id as usize * pitch, pitch);
    }
}

impl SqQuery<'_> {
    /// Approximate internal distance of the query to the code of `id`.
    #[inline(always)]
    pub fn dist(&self, id: u32) -> f32 {
        let sq = self.sq;
        if sq.checks > 0 {
            let mut out = [0f32];
            self.projected_dists(&[id], f32::INFINITY, &mut out);
            return out[0];
        }
        let code = sq.code(id);
        let dot = self.unscale * dot_i16(&self.wide, code) as f32;
        match sq.kind {
            Kind::L2 { .. } => self.konst + sq.norm(id) + dot,
            Kind::Dot { .. } => -(self.konst + dot),
        }
    }

    /// [`SqQuery::dist`] to each of `ids`, into `out` (resized to match).
    #[inline]
    pub fn dists(&self, ids: &[u32], out: &mut Vec<f32>) {
        out.resize(ids.len(), 0.0);
        let sq = self.sq;
        if sq.checks > 0 {
            return self.projected_dists(ids, f32::INFINITY, out);
        }
        let (unscale, konst, l2) = (self.unscale, self.konst, sq.kind.is_l2());
        let norm_at = sq.rows.pitch().saturating_sub(4);
        dot_i16_rows(
            &self.wide,
            sq.rows.bytes(),
            (sq.rows.pitch(), self.prefetch_ahead()),
            ids,
            out,
            |row, dot| {
                let dot = unscale * dot as f32;
                if l2 {
                    let norm = match row.get(norm_at..) {
                        Some(&[a, b, c, d]) => f32::from_le_bytes([a, b, c, d]),
                        _ => 0.0,
                    };
                    konst + norm + dot
                } else {
                    -(konst + dot)
                }
            },
        );
    }

    #[inline]
    pub fn prefetch(&self, id: u32) {
        self.sq.prefetch(id);
    }

    /// How many rows of a neighbour list to prefetch before the first
    /// distance. Long code rows (768 dimensions are 13 lines) are read
    /// right after they are prefetched: prefetching two rows ahead keeps
    /// the loads in flight without stalling on them (about 10% of an
    /// HNSW_SQ build at 768 dimensions). Rows of a few lines are all
    /// prefetched at once, like f32 rows (12% more searches a second on
    /// 390,000 × 50). Projected rows: none, their distances prefetch every
    /// head at once themselves, and the rest of a row when its head does
    /// not rule it out (`kernels::dot_i16_rows_below`).
    #[inline]
    pub fn prefetch_ahead(&self) -> usize {
        if self.sq.checks > 0 {
            0
        } else if self.sq.rows.pitch() <= 256 {
            usize::MAX
        } else {
            2
        }
    }
}

#[cfg(test)]
mod tests;
