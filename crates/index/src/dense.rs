//! A query's f32 distances to a list of rows in one call (L2, inner
//! product, cosine): what the graph over f32 vectors computes for each
//! neighbour list it reads.
//!
//! A distance at a time went through simsimd's C entry point (a function
//! pointer picked at run time, the result returned through memory as f64)
//! for a few dozen products: at 50 dimensions the call cost about what the
//! products did. Here the loop over the list sits inside one function
//! compiled for AVX-512 (and one for AVX2 + FMA), chosen once per list, so
//! the query stays in registers and the tail of a row is one masked load.
//! Sums are f32 with fused multiply-adds, as simsimd's f32 kernels keep
//! them. Without either instruction set, simsimd a row at a time.
//!
//! One row's distance ([`one`], behind `distance::l2sq` and `dot`, so
//! behind every score) runs the same code as a row of a list, so a row
//! scores the same, bit for bit, whichever path found it (a graph, a flat
//! scan, a re-rank, a growing row).

use crate::distance::{simsimd_cos as cos, simsimd_dot as dot, simsimd_l2sq as l2sq};
use crate::sq::kernels::{ISA_AVX2, ISA_AVX512, isa};

/// Which sum a kernel takes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Sum {
    /// Squared Euclidean distance.
    L2,
    /// Inner product, negated (smaller is closer).
    NegDot,
    /// Cosine similarity, negated (0 when either vector is all zeros).
    NegCos,
}

/// `-cos` from a dot product and the two squared norms (f32 sums; the
/// division in f64, as the scalar reference does).
#[inline(always)]
fn neg_cos(dot: f32, qq: f32, rr: f32) -> f32 {
    if qq <= 0.0 || rr <= 0.0 {
        return -0.0;
    }
    -((f64::from(dot) / (f64::from(qq).sqrt() * f64::from(rr).sqrt())) as f32)
}

/// `out[i]` = the `sum` of `q` with row `ids[i]` of `rows` (rows of
/// `q.len()` floats; an id past them is infinitely far).
pub(crate) fn rows(sum: Sum, q: &[f32], rows: &[f32], ids: &[u32], out: &mut Vec<f32>) {
    out.clear();
    out.resize(ids.len(), 0.0);
    into(sum, q, rows, ids, out);
}

/// The `sum` of `q` and `r` over their common length: [`rows`] of one row,
/// so one row's distance is a list's, bit for bit.
#[inline]
pub(crate) fn one(sum: Sum, q: &[f32], r: &[f32]) -> f32 {
    let n = q.len().min(r.len());
    let mut out = [0f32];
    into(sum, &q[..n], &r[..n], &[0], &mut out);
    out[0]
}

/// [`rows`] into `out` (as long as `ids`), on the best instruction set.
#[inline]
fn into(sum: Sum, q: &[f32], rows: &[f32], ids: &[u32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        match isa() {
            // SAFETY: `isa` found these features on this CPU.
            ISA_AVX512 => return unsafe { x86::rows_avx512(sum, q, rows, ids, out) },
            // SAFETY: as above.
            ISA_AVX2 => return unsafe { x86::rows_avx2(sum, q, rows, ids, out) },
            _ => {}
        }
    }
    let _ = (ISA_AVX2, ISA_AVX512);
    each_row(q, rows, ids, out, |r| match sum {
        Sum::L2 => l2sq(q, r),
        Sum::NegDot => -dot(q, r),
        Sum::NegCos => -cos(q, r),
    });
}

/// `out[i] = f(row ids[i])`, infinity for an id past the rows.
#[inline(always)]
pub(crate) fn each_row(
    q: &[f32],
    rows: &[f32],
    ids: &[u32],
    out: &mut [f32],
    f: impl Fn(&[f32]) -> f32,
) {
    let dim = q.len();
    for (&id, o) in ids.iter().zip(out.iter_mut()) {
        let s = id as usize * dim;
        *o = match rows.get(s..s + dim) {
            Some(r) => f(r),
            None => f32::INFINITY,
        };
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Sum, each_row, neg_cos};

    /// `sum` of `q` and `r` (same length), 16 lanes at a time, the tail
    /// one masked load.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn sum_avx512<const L2: bool>(q: &[f32], r: &[f32]) -> f32 {
        let n = q.len().min(r.len());
        let (qp, rp) = (q.as_ptr(), r.as_ptr());
        let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut i = 0;
        let step = |a: __m512, x: __m512, y: __m512| match L2 {
            true => {
                let d = _mm512_sub_ps(x, y);
                _mm512_fmadd_ps(d, d, a)
            }
            false => _mm512_fmadd_ps(x, y, a),
        };
        while i + 32 <= n {
            // SAFETY: i + 32 <= n, within both slices.
            let (x0, y0, x1, y1) = unsafe {
                (
                    _mm512_loadu_ps(qp.add(i)),
                    _mm512_loadu_ps(rp.add(i)),
                    _mm512_loadu_ps(qp.add(i + 16)),
                    _mm512_loadu_ps(rp.add(i + 16)),
                )
            };
            a0 = step(a0, x0, y0);
            a1 = step(a1, x1, y1);
            i += 32;
        }
        if i + 16 <= n {
            // SAFETY: i + 16 <= n.
            let (x, y) = unsafe { (_mm512_loadu_ps(qp.add(i)), _mm512_loadu_ps(rp.add(i))) };
            a0 = step(a0, x, y);
            i += 16;
        }
        if i < n {
            let m: __mmask16 = (1u16 << (n - i)) - 1;
            // SAFETY: the mask covers the n - i < 16 elements left; masked
            // lanes are not read.
            let (x, y) = unsafe {
                (
                    _mm512_maskz_loadu_ps(m, qp.add(i)),
                    _mm512_maskz_loadu_ps(m, rp.add(i)),
                )
            };
            a1 = step(a1, x, y);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(a0, a1))
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) fn rows_avx512(sum: Sum, q: &[f32], rows: &[f32], ids: &[u32], out: &mut [f32]) {
        match sum {
            Sum::L2 => each_row(q, rows, ids, out, |r| sum_avx512::<true>(q, r)),
            Sum::NegDot => each_row(q, rows, ids, out, |r| -sum_avx512::<false>(q, r)),
            Sum::NegCos => {
                let qq = sum_avx512::<false>(q, q);
                each_row(q, rows, ids, out, |r| {
                    neg_cos(sum_avx512::<false>(q, r), qq, sum_avx512::<false>(r, r))
                })
            }
        }
    }

    /// `sum` of `q` and `r` (same length), 8 lanes at a time, the tail
    /// one masked load.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn sum_avx2<const L2: bool>(q: &[f32], r: &[f32]) -> f32 {
        let n = q.len().min(r.len());
        let (qp, rp) = (q.as_ptr(), r.as_ptr());
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        let step = |a: __m256, x: __m256, y: __m256| match L2 {
            true => {
                let d = _mm256_sub_ps(x, y);
                _mm256_fmadd_ps(d, d, a)
            }
            false => _mm256_fmadd_ps(x, y, a),
        };
        while i + 16 <= n {
            // SAFETY: i + 16 <= n, within both slices.
            let (x0, y0, x1, y1) = unsafe {
                (
                    _mm256_loadu_ps(qp.add(i)),
                    _mm256_loadu_ps(rp.add(i)),
                    _mm256_loadu_ps(qp.add(i + 8)),
                    _mm256_loadu_ps(rp.add(i + 8)),
                )
            };
            a0 = step(a0, x0, y0);
            a1 = step(a1, x1, y1);
            i += 16;
        }
        if i + 8 <= n {
            // SAFETY: i + 8 <= n.
            let (x, y) = unsafe { (_mm256_loadu_ps(qp.add(i)), _mm256_loadu_ps(rp.add(i))) };
            a0 = step(a0, x, y);
            i += 8;
        }
        if i < n {
            let left = (n - i) as i32;
            let m = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let m = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), m);
            // SAFETY: the mask covers the n - i < 8 elements left; masked
            // lanes are not read.
            let (x, y) = unsafe {
                (
                    _mm256_maskload_ps(qp.add(i), m),
                    _mm256_maskload_ps(rp.add(i), m),
                )
            };
            a1 = step(a1, x, y);
        }
        let a = _mm256_add_ps(a0, a1);
        let h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        let h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 0b01));
        _mm_cvtss_f32(h)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn rows_avx2(sum: Sum, q: &[f32], rows: &[f32], ids: &[u32], out: &mut [f32]) {
        match sum {
            Sum::L2 => each_row(q, rows, ids, out, |r| sum_avx2::<true>(q, r)),
            Sum::NegDot => each_row(q, rows, ids, out, |r| -sum_avx2::<false>(q, r)),
            Sum::NegCos => {
                let qq = sum_avx2::<false>(q, q);
                each_row(q, rows, ids, out, |r| {
                    neg_cos(sum_avx2::<false>(q, r), qq, sum_avx2::<false>(r, r))
                })
            }
        }
    }

    /// Each build this CPU runs, for tests: (name, kernel).
    #[cfg(test)]
    pub(super) fn builds() -> Vec<(&'static str, super::Kernel)> {
        let mut out: Vec<(&'static str, super::Kernel)> = Vec::new();
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            // SAFETY: checked just above.
            out.push(("avx512", |s, q, r, i, o| unsafe {
                rows_avx512(s, q, r, i, o)
            }));
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: checked just above.
            out.push(("avx2", |s, q, r, i, o| unsafe { rows_avx2(s, q, r, i, o) }));
        }
        out
    }
}

#[cfg(test)]
type Kernel = fn(Sum, &[f32], &[f32], &[u32], &mut [f32]);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every build (dispatched, and each instruction set this CPU has)
    /// against an f64 sum, at lengths around each chunk size, with an id
    /// past the rows.
    #[test]
    fn every_build_matches_an_f64_sum() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for dim in [1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 50, 64, 100, 768] {
            let n = 20;
            let rows_: Vec<f32> = (0..n * dim).map(|_| next()).collect();
            let q: Vec<f32> = (0..dim).map(|_| next()).collect();
            let ids: Vec<u32> = vec![3, 0, 19, 7, n as u32, 11];
            let want = |sum: Sum, id: u32| -> f64 {
                let Some(r) = rows_.get(id as usize * dim..(id as usize + 1) * dim) else {
                    return f64::INFINITY;
                };
                let pairs = q.iter().zip(r).map(|(&a, &b)| (f64::from(a), f64::from(b)));
                match sum {
                    Sum::L2 => pairs.map(|(a, b)| (a - b) * (a - b)).sum(),
                    Sum::NegDot => -pairs.map(|(a, b)| a * b).sum::<f64>(),
                    Sum::NegCos => {
                        let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
                        for (a, b) in pairs {
                            (ab, aa, bb) = (ab + a * b, aa + a * a, bb + b * b);
                        }
                        -ab / (aa.sqrt() * bb.sqrt())
                    }
                }
            };
            let mut builds: Vec<(&str, Kernel)> = vec![
                ("dispatched", |s, q, r, i, o| {
                    let mut v = Vec::new();
                    rows(s, q, r, i, &mut v);
                    o.copy_from_slice(&v);
                }),
                ("per row", |s, q, r, i, o| {
                    each_row(q, r, i, o, |row| match s {
                        Sum::L2 => l2sq(q, row),
                        Sum::NegDot => -dot(q, row),
                        Sum::NegCos => -cos(q, row),
                    })
                }),
            ];
            #[cfg(target_arch = "x86_64")]
            builds.extend(x86::builds());
            // One row's distance is a list's, bit for bit.
            for sum in [Sum::L2, Sum::NegDot, Sum::NegCos] {
                let mut listed = Vec::new();
                rows(sum, &q, &rows_, &ids, &mut listed);
                for (&id, &d) in ids.iter().zip(&listed) {
                    let r = rows_.get(id as usize * dim..(id as usize + 1) * dim);
                    let single = r.map_or(f32::INFINITY, |r| one(sum, &q, r));
                    assert_eq!(single.to_bits(), d.to_bits(), "{sum:?} dim {dim} id {id}");
                }
            }
            for (name, kernel) in builds {
                for sum in [Sum::L2, Sum::NegDot, Sum::NegCos] {
                    let mut out = vec![0f32; ids.len()];
                    kernel(sum, &q, &rows_, &ids, &mut out);
                    for (&id, &got) in ids.iter().zip(&out) {
                        let w = want(sum, id);
                        let ok = match w.is_finite() {
                            true => {
                                (f64::from(got) - w).abs() <= 1e-5 * (1.0 + w.abs()) * dim as f64
                            }
                            false => got == f32::INFINITY,
                        };
                        assert!(ok, "{name} {sum:?} dim {dim} id {id}: {got} against {w}");
                    }
                }
            }
        }
    }
}
