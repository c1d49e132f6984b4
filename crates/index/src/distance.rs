//! Distance kernels (simsimd) and the metric-specific "space" used internally.
//!
//! Public scores follow Milvus: L2 is the squared Euclidean distance (smaller is
//! closer), IP the inner product and COSINE the cosine similarity (larger is
//! closer). Internally every search minimises a *distance* `d` where smaller is
//! closer: `d = l2sq` for L2, `d = -dot` for IP and `d = -cos_sim` for COSINE.

use quiver_common::Metric;
use simsimd::SpatialSimilarity;

/// Milvus-convention score of `a` against `b` for `metric`.
///
/// If the slices differ in length, the score is computed over the common prefix
/// (never panics).
pub fn score(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::L2 => l2sq(a, b),
        // BM25 never meets dense vectors (coord refuses it there).
        Metric::Ip | Metric::Bm25 => dot(a, b),
        Metric::Cosine => cos_sim(a, b),
        Metric::Hamming => l2sq(a, b),
        Metric::Jaccard => jaccard(a, b),
    }
}

/// Jaccard distance of two bit vectors widened to 0.0 / 1.0 per bit
/// (`ElementType::widen`): 1 - |a and b| / |a or b|, 0 for two empty sets.
#[inline]
pub(crate) fn jaccard(a: &[f32], b: &[f32]) -> f32 {
    let both = dot(a, b);
    let either = dot(a, a) + dot(b, b) - both;
    if either <= 0.0 {
        0.0
    } else {
        1.0 - both / either
    }
}

/// Squared L2 distance over the common length (`crate::dense`: the same
/// sums, bit for bit, as a graph's neighbour lists and the flat scans).
#[inline]
pub(crate) fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    crate::dense::one(crate::dense::Sum::L2, a, b)
}

/// Inner product over the common length (as [`l2sq`]).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    -crate::dense::one(crate::dense::Sum::NegDot, a, b)
}

/// simsimd's squared L2 distance (CPUs without AVX2 and FMA).
#[inline]
pub(crate) fn simsimd_l2sq(a: &[f32], b: &[f32]) -> f32 {
    match <f32 as SpatialSimilarity>::l2sq(a, b) {
        Some(d) => d as f32,
        None => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
    }
}

/// simsimd's inner product (CPUs without AVX2 and FMA).
#[inline]
pub(crate) fn simsimd_dot(a: &[f32], b: &[f32]) -> f32 {
    match <f32 as SpatialSimilarity>::dot(a, b) {
        Some(d) => d as f32,
        None => a.iter().zip(b).map(|(x, y)| x * y).sum(),
    }
}

/// Cosine similarity over the common length, 0 when either vector is all
/// zeros (as [`l2sq`]).
#[inline]
pub(crate) fn cos_sim(a: &[f32], b: &[f32]) -> f32 {
    -crate::dense::one(crate::dense::Sum::NegCos, a, b)
}

/// simsimd's cosine similarity (CPUs without AVX2 and FMA).
#[inline]
pub(crate) fn simsimd_cos(a: &[f32], b: &[f32]) -> f32 {
    if a.iter().all(|&x| x == 0.0) || b.iter().all(|&x| x == 0.0) {
        return 0.0;
    }
    match <f32 as SpatialSimilarity>::cos(a, b) {
        // simsimd returns the cosine *distance* 1 - cos.
        Some(d) => (1.0 - d) as f32,
        None => scalar_cos_sim(a, b),
    }
}

fn scalar_cos_sim(a: &[f32], b: &[f32]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    (ab / (aa.sqrt() * bb.sqrt())) as f32
}

/// A metric as a zero-sized type so that hot loops are monomorphised.
pub(crate) trait Space: Copy + Send + Sync + 'static {
    /// Internal distance, smaller is closer.
    fn dist(a: &[f32], b: &[f32]) -> f32;
    /// [`Self::dist`] of `q` to each of the rows `ids` of `rows` (rows of
    /// `q.len()` floats; an id past them is infinitely far), into `out`.
    #[inline]
    fn dists(q: &[f32], rows: &[f32], ids: &[u32], out: &mut Vec<f32>) {
        out.clear();
        out.resize(ids.len(), 0.0);
        crate::dense::each_row(q, rows, ids, out, |r| Self::dist(q, r));
    }
    /// Converts an internal distance back to the Milvus score.
    fn to_score(d: f32) -> f32;
}

#[derive(Clone, Copy)]
pub(crate) struct L2Space;
#[derive(Clone, Copy)]
pub(crate) struct IpSpace;
#[derive(Clone, Copy)]
pub(crate) struct CosSpace;

impl Space for L2Space {
    #[inline]
    fn dist(a: &[f32], b: &[f32]) -> f32 {
        l2sq(a, b)
    }
    #[inline]
    fn dists(q: &[f32], rows: &[f32], ids: &[u32], out: &mut Vec<f32>) {
        crate::dense::rows(crate::dense::Sum::L2, q, rows, ids, out);
    }
    #[inline]
    fn to_score(d: f32) -> f32 {
        d
    }
}

impl Space for IpSpace {
    #[inline]
    fn dist(a: &[f32], b: &[f32]) -> f32 {
        -dot(a, b)
    }
    #[inline]
    fn dists(q: &[f32], rows: &[f32], ids: &[u32], out: &mut Vec<f32>) {
        crate::dense::rows(crate::dense::Sum::NegDot, q, rows, ids, out);
    }
    #[inline]
    fn to_score(d: f32) -> f32 {
        -d
    }
}

impl Space for CosSpace {
    #[inline]
    fn dist(a: &[f32], b: &[f32]) -> f32 {
        -cos_sim(a, b)
    }
    #[inline]
    fn dists(q: &[f32], rows: &[f32], ids: &[u32], out: &mut Vec<f32>) {
        crate::dense::rows(crate::dense::Sum::NegCos, q, rows, ids, out);
    }
    #[inline]
    fn to_score(d: f32) -> f32 {
        -d
    }
}

/// Bit vectors widened to 0.0 / 1.0: the Hamming distance is their squared
/// L2 distance, exactly.
#[derive(Clone, Copy)]
pub(crate) struct HammingSpace;
#[derive(Clone, Copy)]
pub(crate) struct JaccardSpace;

impl Space for HammingSpace {
    #[inline]
    fn dist(a: &[f32], b: &[f32]) -> f32 {
        l2sq(a, b)
    }
    #[inline]
    fn to_score(d: f32) -> f32 {
        d
    }
}

impl Space for JaccardSpace {
    #[inline]
    fn dist(a: &[f32], b: &[f32]) -> f32 {
        jaccard(a, b)
    }
    #[inline]
    fn to_score(d: f32) -> f32 {
        d
    }
}

/// Calls `$body` with `$S` bound to the space type of `$metric`.
macro_rules! with_space {
    ($metric:expr, $S:ident => $body:expr) => {
        match $metric {
            quiver_common::Metric::L2 => {
                type $S = $crate::distance::L2Space;
                $body
            }
            quiver_common::Metric::Ip | quiver_common::Metric::Bm25 => {
                type $S = $crate::distance::IpSpace;
                $body
            }
            quiver_common::Metric::Cosine => {
                type $S = $crate::distance::CosSpace;
                $body
            }
            quiver_common::Metric::Hamming => {
                type $S = $crate::distance::HammingSpace;
                $body
            }
            quiver_common::Metric::Jaccard => {
                type $S = $crate::distance::JaccardSpace;
                $body
            }
        }
    };
}
pub(crate) use with_space;
