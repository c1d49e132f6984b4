//! The widest principal axes of a sample of rows, for `pca.rs`'s head:
//! exactly up to `EXACT_MAX_DIM` dimensions, from the eigenvectors of the
//! rows' covariance (Householder reduction and implicit QL, JAMA's `tred2`
//! and `tql2`); above, by randomized subspace iteration (Halko, Martinsson
//! and Tropp 2011, algorithm 4.4, then Rayleigh–Ritz), because the
//! covariance's eigen-decomposition costs `O(dim³)`: at 768 dimensions it
//! was most of the 2.2 s a 100k-row graph's projection took. Any
//! orthonormal axes keep the head a lower bound of a row's distance; the
//! widest make it hold the most of it.

use crate::distance::dot;

/// Up to this many dimensions the axes are the covariance's eigenvectors.
const EXACT_MAX_DIM: usize = 256;

/// Directions iterated beyond the axes kept (they let the kept ones
/// converge), and the passes of subspace iteration.
const OVERSAMPLE: usize = 20;
const PASSES: usize = 4;

/// The `k` widest principal axes (`k` rows of `dim`, orthonormal, widest
/// first) of `rows` (row-major, already centred), or `None` when they
/// cannot be found (`k > dim`, or QL does not converge).
pub(super) fn widest_axes(rows: &[f32], dim: usize, k: usize) -> Option<Vec<f32>> {
    if k > dim || dim == 0 {
        return None;
    }
    if dim <= EXACT_MAX_DIM {
        exact_axes(rows, dim, k)
    } else {
        subspace_axes(rows, dim, k)
    }
}

/// The covariance's top `k` eigenvectors.
fn exact_axes(rows: &[f32], dim: usize, k: usize) -> Option<Vec<f32>> {
    // Upper triangle, row by row, then mirrored.
    let mut cov = vec![0f64; dim * dim];
    let mut c = vec![0f64; dim];
    for r in rows.chunks_exact(dim) {
        for (c, &x) in c.iter_mut().zip(r) {
            *c = f64::from(x);
        }
        for i in 0..dim {
            axpy(c[i], &c[i..], &mut cov[i * dim + i..(i + 1) * dim]);
        }
    }
    for i in 0..dim {
        for j in 0..i {
            cov[i * dim + j] = cov[j * dim + i];
        }
    }
    let (_, vectors) = sym_eigen(cov, dim)?;
    Some(vectors[..k * dim].iter().map(|&v| v as f32).collect())
}

/// The top `k` eigenvectors of `XᵀX` (`X` the rows) by subspace
/// iteration: `k + OVERSAMPLE` directions, from fixed pseudo-random ones
/// (the same rows give the same axes), multiplied by `XᵀX` and made
/// orthonormal again `PASSES` times; then rotated by the eigenvectors of
/// `XᵀX` restricted to them. Each pass is `2 · rows · dim · (k + 20)`
/// multiply-adds, against `O(dim³)` for the whole eigen-decomposition.
fn subspace_axes(rows: &[f32], dim: usize, k: usize) -> Option<Vec<f32>> {
    let l = (k + OVERSAMPLE).min(dim);
    let m = rows.len() / dim;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut q: Vec<f32> = (0..l * dim).map(|_| uniform(&mut seed)).collect();
    orthonormalize(&mut q, dim, &mut seed)?;
    let mut y = vec![0f32; m * l];
    for _ in 0..PASSES {
        times(rows, &q, dim, &mut y);
        // q_j = Σ_r y[r][j] · row_r
        q.fill(0.0);
        for (r, yr) in rows.chunks_exact(dim).zip(y.chunks_exact(l)) {
            for (qj, &w) in q.chunks_exact_mut(dim).zip(yr) {
                axpy(w, r, qj);
            }
        }
        orthonormalize(&mut q, dim, &mut seed)?;
    }
    // Rayleigh–Ritz: S = (Xq)ᵀ(Xq), l × l; its eigenvectors rotate q.
    times(rows, &q, dim, &mut y);
    let mut s = vec![0f64; l * l];
    for yr in y.chunks_exact(l) {
        for i in 0..l {
            let a = f64::from(yr[i]);
            for (sij, &b) in s[i * l + i..(i + 1) * l].iter_mut().zip(&yr[i..]) {
                *sij += a * f64::from(b);
            }
        }
    }
    for i in 0..l {
        for j in 0..i {
            s[i * l + j] = s[j * l + i];
        }
    }
    let (_, w) = sym_eigen(s, l)?;
    let mut axes = vec![0f32; k * dim];
    for (axis, wk) in axes.chunks_exact_mut(dim).zip(w.chunks_exact(l)) {
        for (qj, &wkj) in q.chunks_exact(dim).zip(wk) {
            axpy(wkj as f32, qj, axis);
        }
    }
    Some(axes)
}

/// `y[r][j] = row_r · q_j`.
fn times(rows: &[f32], q: &[f32], dim: usize, y: &mut [f32]) {
    let l = q.len() / dim;
    for (r, yr) in rows.chunks_exact(dim).zip(y.chunks_exact_mut(l)) {
        for (v, qj) in yr.iter_mut().zip(q.chunks_exact(dim)) {
            *v = dot(r, qj);
        }
    }
}

/// Modified Gram–Schmidt, twice over (enough in f32): the rows of `q`
/// orthonormal, each in the span of itself and those before it. A row
/// that lies in the span of those before it (rows of lower rank than
/// `q` has rows) is replaced by a pseudo-random one. `None` if that fails
/// too (more rows than dimensions).
fn orthonormalize(q: &mut [f32], dim: usize, seed: &mut u64) -> Option<()> {
    for j in 0..q.len() / dim {
        let (done, rest) = q.split_at_mut(j * dim);
        let v = &mut rest[..dim];
        let mut ok = false;
        for _ in 0..3 {
            let before = dot(v, v).sqrt();
            for _ in 0..2 {
                for p in done.chunks_exact(dim) {
                    axpy(-dot(v, p), p, v);
                }
            }
            let norm = dot(v, v).sqrt();
            if norm.is_finite() && norm > 0.0 && norm > 1e-3 * before {
                v.iter_mut().for_each(|x| *x /= norm);
                ok = true;
                break;
            }
            v.iter_mut().for_each(|x| *x = uniform(seed));
        }
        if !ok {
            return None;
        }
    }
    Some(())
}

/// Uniform in [-0.5, 0.5): a linear congruential step.
fn uniform(seed: &mut u64) -> f32 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32) / ((1u64 << 24) as f32) - 0.5
}

/// `y += a * x`, compiled for the widest vectors this CPU has (a
/// training's covariance and every projected row are mostly this).
#[inline]
pub(super) fn axpy<T: Copy + std::ops::Mul<Output = T> + std::ops::AddAssign>(
    a: T,
    x: &[T],
    y: &mut [T],
) {
    #[inline(always)]
    fn body<T: Copy + std::ops::Mul<Output = T> + std::ops::AddAssign>(a: T, x: &[T], y: &mut [T]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y += a * x;
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn wide<T: Copy + std::ops::Mul<Output = T> + std::ops::AddAssign>(
            a: T,
            x: &[T],
            y: &mut [T],
        ) {
            body(a, x, y)
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2<T: Copy + std::ops::Mul<Output = T> + std::ops::AddAssign>(
            a: T,
            x: &[T],
            y: &mut [T],
        ) {
            body(a, x, y)
        }
        use super::kernels::{ISA_AVX2, ISA_AVX512, isa};
        match isa() {
            // SAFETY: `isa` found these features on this CPU.
            ISA_AVX512 => return unsafe { wide(a, x, y) },
            // SAFETY: as above.
            ISA_AVX2 => return unsafe { avx2(a, x, y) },
            _ => {}
        }
    }
    body(a, x, y)
}

/// Eigenvalues (decreasing) and eigenvectors (one a row, in the same
/// order) of the symmetric `n × n` matrix `a` (row-major): Householder
/// reduction to a tridiagonal matrix, then the implicit QL method (JAMA's
/// `tred2` and `tql2`, public domain). `None` if QL does not converge.
pub(super) fn sym_eigen(a: Vec<f64>, n: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    // `v[j * n + i]` is V[i][j]: column j of V is row j, so QL's rotations
    // of two columns touch two contiguous rows.
    let mut v = a; // symmetric: its transpose is itself
    let mut d = vec![0f64; n];
    let mut e = vec![0f64; n];
    tred2(&mut v, &mut d, &mut e, n);
    tql2(&mut v, &mut d, &mut e, n)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| d[y].total_cmp(&d[x]));
    let values = order.iter().map(|&i| d[i]).collect();
    let mut vectors = Vec::with_capacity(n * n);
    for &i in &order {
        vectors.extend_from_slice(&v[i * n..(i + 1) * n]);
    }
    Some((values, vectors))
}

/// Householder tridiagonalisation; `vt` holds Vᵀ (see [`sym_eigen`]).
#[allow(clippy::many_single_char_names)]
fn tred2(vt: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    // V[i][j] is vt[j * n + i].
    macro_rules! v {
        ($i:expr, $j:expr) => {
            vt[($j) * n + ($i)]
        };
    }
    for j in 0..n {
        d[j] = v!(n - 1, j);
    }
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v!(i - 1, j);
                v!(i, j) = 0.0;
                v!(j, i) = 0.0;
            }
        } else {
            for x in &mut d[..i] {
                *x /= scale;
                h += *x * *x;
            }
            let mut f = d[i - 1];
            let mut g = if f > 0.0 { -h.sqrt() } else { h.sqrt() };
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].fill(0.0);
            for j in 0..i {
                f = d[j];
                v!(j, i) = f;
                g = e[j] + v!(j, j) * f;
                for k in j + 1..i {
                    g += v!(k, j) * d[k];
                    e[k] += v!(k, j) * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                f = d[j];
                g = e[j];
                for k in j..i {
                    v!(k, j) -= f * e[k] + g * d[k];
                }
                d[j] = v!(i - 1, j);
                v!(i, j) = 0.0;
            }
        }
        d[i] = h;
    }
    for i in 0..n - 1 {
        v!(n - 1, i) = v!(i, i);
        v!(i, i) = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v!(k, i + 1) / h;
            }
            for j in 0..=i {
                let mut g = 0.0;
                for k in 0..=i {
                    g += v!(k, i + 1) * v!(k, j);
                }
                for k in 0..=i {
                    v!(k, j) -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v!(k, i + 1) = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v!(n - 1, j);
        v!(n - 1, j) = 0.0;
    }
    v!(n - 1, n - 1) = 1.0;
    e[0] = 0.0;
}

/// Implicit QL on the tridiagonal (`d`, `e`), accumulating into `vt`.
fn tql2(vt: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) -> Option<()> {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let (mut f, mut tst1) = (0f64, 0f64);
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            let mut iterations = 0;
            loop {
                iterations += 1;
                if iterations > 60 {
                    return None;
                }
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for x in &mut d[l + 2..n] {
                    *x -= h;
                }
                f += h;
                p = d[m];
                let (mut c, mut c2, mut c3) = (1f64, 1f64, 1f64);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0f64, 0f64);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    let (lo, hi) = vt.split_at_mut((i + 1) * n);
                    let (col_i, col_i1) = (&mut lo[i * n..], &mut hi[..n]);
                    for (a, b) in col_i.iter_mut().zip(col_i1.iter_mut()) {
                        let hh = *b;
                        *b = s * *a + c * hh;
                        *a = c * *a - s * hh;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
    Some(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Uniform in [-0.5, 0.5), for the tests of `sq` (a linear congruential step).
    pub(in crate::sq) fn rng(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64) / ((1u64 << 53) as f64) - 0.5
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // matrix indices read as the maths does
    fn eigenvectors_are_orthonormal_and_diagonalise_the_matrix() {
        let mut seed = 3;
        for n in [1, 2, 3, 7, 40, 97] {
            let mut a = vec![0f64; n * n];
            for i in 0..n {
                for j in 0..=i {
                    let x = rng(&mut seed);
                    a[i * n + j] = x;
                    a[j * n + i] = x;
                }
            }
            let (values, vectors) = sym_eigen(a.clone(), n).expect("converges");
            assert!(values.windows(2).all(|w| w[0] >= w[1]), "{values:?}");
            let row = |i: usize| &vectors[i * n..(i + 1) * n];
            for i in 0..n {
                for j in 0..n {
                    let dot: f64 = row(i).iter().zip(row(j)).map(|(x, y)| x * y).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-9, "n {n}: v{i}·v{j} = {dot}");
                }
                // A v = λ v
                for r in 0..n {
                    let av: f64 = (0..n).map(|k| a[r * n + k] * row(i)[k]).sum();
                    assert!(
                        (av - values[i] * row(i)[r]).abs() < 1e-9,
                        "n {n}, vector {i}"
                    );
                }
            }
        }
        // Repeated eigenvalues (the identity, a zero matrix) are fine too.
        let eye: Vec<f64> = (0..16)
            .map(|i| if i % 5 == 0 { 1.0 } else { 0.0 })
            .collect();
        let (values, _) = sym_eigen(eye, 4).expect("converges");
        assert_eq!(values, vec![1.0; 4]);
        assert!(sym_eigen(vec![0.0; 9], 3).is_some());
    }

    /// Variance of centred `rows` along each of `axes`, summed.
    fn captured(rows: &[f32], axes: &[f32], dim: usize) -> f64 {
        rows.chunks_exact(dim)
            .map(|r| {
                axes.chunks_exact(dim)
                    .map(|a| f64::from(dot(r, a)).powi(2))
                    .sum::<f64>()
            })
            .sum()
    }

    /// Subspace iteration finds axes that hold as much of the spread as the
    /// covariance's eigenvectors, on a falling spectrum and on a flat one.
    #[test]
    fn subspace_axes_hold_the_spread_the_eigenvectors_hold() {
        let (m, dim, k) = (2_000, 300, 60);
        let mut seed = 11;
        for rank in [24, 300] {
            let basis: Vec<f64> = (0..rank * dim).map(|_| rng(&mut seed)).collect();
            let mut rows: Vec<f32> = (0..m)
                .flat_map(|_| {
                    let w: Vec<f64> = (0..rank)
                        .map(|r| rng(&mut seed) / (1.0 + r as f64).sqrt())
                        .collect();
                    (0..dim)
                        .map(|j| {
                            let v: f64 = (0..rank).map(|r| w[r] * basis[r * dim + j]).sum();
                            (v + 0.05 * rng(&mut seed)) as f32
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            let mut mean = vec![0f32; dim];
            for r in rows.chunks_exact(dim) {
                mean.iter_mut().zip(r).for_each(|(m, x)| *m += x / 2_000.0);
            }
            for r in rows.chunks_exact_mut(dim) {
                r.iter_mut().zip(&mean).for_each(|(x, m)| *x -= m);
            }
            let exact = exact_axes(&rows, dim, k).expect("exact");
            let fast = subspace_axes(&rows, dim, k).expect("subspace");
            assert_eq!(widest_axes(&rows, dim, k), Some(fast.clone()));
            for i in 0..k {
                for j in 0..k {
                    let d = dot(&fast[i * dim..][..dim], &fast[j * dim..][..dim]);
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((d - want).abs() < 1e-4, "rank {rank}: a{i}·a{j} = {d}");
                }
            }
            let (e, f) = (captured(&rows, &exact, dim), captured(&rows, &fast, dim));
            assert!(f <= e * 1.0001, "rank {rank}: {f} above the optimum {e}");
            assert!(f >= e * 0.998, "rank {rank}: {f} of the optimum {e}");
            // Widest first.
            let along = |a: &[f32]| {
                rows.chunks_exact(dim)
                    .map(|r| dot(r, a).powi(2))
                    .sum::<f32>()
            };
            assert!(along(&fast[..dim]) >= along(&fast[(k - 1) * dim..]));
        }
        // Rows of lower rank than the directions iterated.
        let few: Vec<f32> = (0..10 * dim).map(|_| rng(&mut seed) as f32).collect();
        let axes = subspace_axes(&few, dim, k).expect("rank 10");
        assert!(axes.iter().all(|x| x.is_finite()));
        assert!(widest_axes(&few, dim, dim + 1).is_none());
    }
}
