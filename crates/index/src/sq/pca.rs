//! Principal axes for code rows. A row `x` is coded as `[y, 0, x]`: `y`
//! its coordinates along the `AXES` widest principal axes of the rows
//! (then four zeros, so this head is one cache line of codes, its norm in
//! the zeros' bytes), then the row itself, coded as plain codes code it.
//! `|y_x - y_z|²` is the squared distance of the rows' projections on
//! those axes, a lower bound of `|x - z|²` that, on real embeddings, holds
//! most of it. A search reads a code row's head, and the row only when the
//! head does not already put it past what the beam admits
//! (`SqQuery::dists_below`); a distance read whole is the plain codes'.
//! COSINE rows (and queries) are projected as unit rows and compared by
//! squared L2, which orders unit rows as COSINE does.
//! Projecting costs `AXES · dim` multiply-adds a row, where a rotation of
//! the whole row would cost `dim²` (a 2.4 MB matrix at 768 dimensions,
//! read for every query).
//!
//! The bound is the codes' estimate of the head's distance: 8-bit steps
//! along the widest axes are wide, so a row whose whole distance is within
//! a step of the bound may be cut (recall is unchanged in tests/projection.rs
//! and on wide768-100k).

use std::borrow::Cow;

use super::axes::widest_axes;
use super::kernels::dot_i16_rows_below;

/// Rows trained on for the covariance (evenly spaced).
const SAMPLE: usize = 4096;

/// Principal axes in a coded row's head.
pub(crate) const AXES: usize = 60;

/// Coded dimensions before the row: the axes and four zeros, whose
/// bytes in a code row hold the head's norm.
pub(crate) const HEAD: usize = 64;

/// `x -> [axes · (x - mean), 0, 0, 0, 0, x]`.
pub(crate) struct Projection {
    dim: usize,
    mean: Vec<f32>,
    /// `AXES` rows of `dim`, orthonormal: the rows' widest principal axes
    /// (`axes.rs`), widest first.
    axes: Vec<f32>,
}

impl Projection {
    /// The widest principal axes of `rows` (`dim > AXES` floats a row,
    /// each as `prepared` gives it, e.g. normalised; non-finite values read
    /// as 0), found in 4,096 evenly spaced rows, or `None` when the rows
    /// are too narrow or the axes cannot be found (`axes.rs`).
    pub fn train<'r>(
        rows: &'r [f32],
        dim: usize,
        prepared: impl Fn(&'r [f32]) -> Cow<'r, [f32]>,
    ) -> Option<Projection> {
        let n = rows.len() / dim.max(1);
        if n == 0 || dim <= AXES {
            return None;
        }
        let every = n.div_ceil(SAMPLE).max(1);
        let picked: Vec<Cow<'r, [f32]>> = rows
            .chunks_exact(dim)
            .step_by(every)
            .map(prepared)
            .collect();
        let finite = |x: f32| if x.is_finite() { f64::from(x) } else { 0.0 };
        let mut mean = vec![0f64; dim];
        for r in &picked {
            for (m, &x) in mean.iter_mut().zip(r.iter()) {
                *m += finite(x);
            }
        }
        mean.iter_mut().for_each(|m| *m /= picked.len() as f64);
        let centred: Vec<f32> = picked
            .iter()
            .flat_map(|r| r.iter().zip(&mean).map(|(&x, m)| (finite(x) - m) as f32))
            .collect();
        let axes = widest_axes(&centred, dim, AXES)?;
        Some(Projection {
            dim,
            mean: mean.iter().map(|&m| m as f32).collect(),
            axes,
        })
    }

    /// Rebuilds a stored projection; `None` when the sizes do not match or a
    /// value is not finite.
    pub fn from_parts(mean: Vec<f32>, axes: Vec<f32>) -> Option<Projection> {
        let dim = mean.len();
        (dim > AXES && axes.len() == AXES * dim && mean.iter().chain(&axes).all(|x| x.is_finite()))
            .then_some(Projection { dim, mean, axes })
    }

    /// Dimensions of the rows projected.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Dimensions of a projected row.
    pub fn coded_dim(&self) -> usize {
        HEAD + self.dim
    }

    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    pub fn axes(&self) -> &[f32] {
        &self.axes
    }

    /// `row` (`dim` floats; non-finite values read as 0 in the head)
    /// projected into `out` (`coded_dim` floats).
    pub fn apply(&self, row: &[f32], out: &mut [f32]) {
        let (head, rest) = out.split_at_mut(HEAD);
        for ((r, &x), m) in rest.iter_mut().zip(row).zip(&self.mean) {
            *r = if x.is_finite() { x - m } else { 0.0 };
        }
        head.fill(0.0);
        for (y, axis) in head.iter_mut().zip(self.axes.chunks_exact(self.dim)) {
            *y = crate::distance::dot(axis, rest);
        }
        for (r, &x) in rest.iter_mut().zip(row) {
            *r = x;
        }
    }

    pub fn memory_bytes(&self) -> usize {
        4 * (self.mean.len() + self.axes.len())
    }
}

/// Where checkpoint `c`'s partial norm sits in a projected code row.
#[inline(always)]
pub(super) fn check_at(stride: usize, c: usize) -> usize {
    if c == 0 { AXES } else { stride + 4 * (c - 1) }
}

impl super::SqQuery<'_> {
    /// [`SqQuery::dists`], except that a row of projected codes whose head
    /// (or first dimensions) already puts it past `bound` gets that
    /// partial distance, above `bound`, its other codes unread: the head's
    /// distance is a lower bound of the row's (as the codes estimate it),
    /// and so is a distance over some of the row's dimensions.
    #[inline]
    pub fn dists_below(&self, ids: &[u32], bound: f32, out: &mut Vec<f32>) {
        if self.sq.checks == 0 {
            return self.dists(ids, out);
        }
        out.resize(ids.len(), 0.0);
        self.projected_dists(ids, bound, out);
    }

    /// [`SqQuery::dists_below`] over projected codes.
    #[inline]
    pub(super) fn projected_dists(&self, ids: &[u32], bound: f32, out: &mut [f32]) {
        let sq = self.sq;
        let (unscale, head, konst, kpref) =
            (self.unscale, self.unscale_head, self.konst, &self.kpref);
        let (stride, norm_at) = (sq.stride, sq.rows.pitch() - 4);
        let read = |row: &[u8], at: usize| match row.get(at..at + 4) {
            Some(&[a, b, c, d]) => f32::from_le_bytes([a, b, c, d]),
            _ => 0.0,
        };
        dot_i16_rows_below(
            &self.wide,
            sq.rows.bytes(),
            sq.rows.pitch(),
            (ids, bound),
            out,
            (
                |row: &[u8], c: usize, (h, rest): (i32, i32)| {
                    let dot = if c == 0 {
                        head * h as f32
                    } else {
                        unscale * rest as f32
                    };
                    kpref.get(c).copied().unwrap_or(0.0) + read(row, check_at(stride, c)) + dot
                },
                |row: &[u8], (_, rest): (i32, i32)| {
                    konst + read(row, norm_at) + unscale * rest as f32
                },
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sq::axes::tests::rng;

    #[test]
    fn projections_keep_distances_and_put_the_spread_in_the_head() {
        let (n, dim) = (3000, 96);
        let mut seed = 9;
        // Rows near a plane tilted through all dimensions, plus a little noise.
        let rows: Vec<f32> = (0..n)
            .flat_map(|_| {
                let (s, t) = (rng(&mut seed) * 10.0, rng(&mut seed) * 4.0);
                (0..dim)
                    .map(|j| {
                        let j = j as f64 + 1.0;
                        (s * j / 96.0 + t * (j * 0.37).sin() + 0.01 * rng(&mut seed)) as f32
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let p = Projection::train(&rows, dim, Cow::Borrowed).expect("trained");
        let (mut a, mut b) = (vec![0f32; p.coded_dim()], vec![0f32; p.coded_dim()]);
        for (x, y) in [(0, 1), (5, 900), (17, 2999)] {
            let (rx, ry) = (&rows[x * dim..][..dim], &rows[y * dim..][..dim]);
            p.apply(rx, &mut a);
            p.apply(ry, &mut b);
            assert!(a[AXES..HEAD].iter().all(|&z| z == 0.0));
            assert_eq!(&a[HEAD..], rx, "the row itself follows the head");
            let after = crate::distance::l2sq(rx, ry);
            let head = crate::distance::l2sq(&a[..HEAD], &b[..HEAD]);
            assert!(head <= after * (1.0 + 1e-4), "the head is a lower bound");
            assert!(
                head >= 0.99 * after,
                "the head holds the distance: {head} of {after}"
            );
        }
        assert!(Projection::from_parts(p.mean().to_vec(), p.axes().to_vec()).is_some());
        assert!(Projection::from_parts(vec![0.0; 61], vec![0.0; 8]).is_none());
        assert!(Projection::from_parts(vec![f32::NAN; 61], vec![1.0; 61 * 60]).is_none());
        assert!(
            Projection::train(&rows[..60 * 100], 60, Cow::Borrowed).is_none(),
            "too narrow"
        );
    }

    /// `n` rows of `dim` near a `rank`-dimensional subspace (the spectrum
    /// of embeddings falls off like this), plus a little noise.
    fn low_rank(n: usize, dim: usize, rank: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        let basis: Vec<f64> = (0..rank * dim).map(|_| rng(&mut s)).collect();
        (0..n)
            .flat_map(|_| {
                let w: Vec<f64> = (0..rank).map(|r| rng(&mut s) / (1.0 + r as f64)).collect();
                let mut row = vec![0f32; dim];
                for (j, x) in row.iter_mut().enumerate() {
                    let v: f64 = (0..rank).map(|r| w[r] * basis[r * dim + j]).sum();
                    *x = (v + 0.02 * rng(&mut s)) as f32;
                }
                row
            })
            .collect()
    }

    #[test]
    fn distances_within_a_bound_are_whole_and_the_others_lower_bounds_past_it() {
        use crate::sq::SqCodes;
        use quiver_common::Metric;
        let (n, dim) = (10_000, 128);
        let rows = low_rank(n + 3, dim, 12, 5);
        let (base, queries) = rows.split_at(n * dim);
        let sq = SqCodes::train_projected(base, dim, Metric::L2).expect("train");
        assert!(sq.projection().is_some(), "wide and many enough to project");
        let narrow =
            SqCodes::train_projected(&base[..9_000 * dim], dim, Metric::L2).expect("train");
        assert!(narrow.projection().is_none(), "too few rows");
        let plain = SqCodes::train(base, dim, Metric::L2).expect("train");
        let ids: Vec<u32> = (0..400u32).map(|i| (i * 23) % n as u32).collect();
        for q in queries.chunks_exact(dim) {
            let prepared = sq.query(q);
            let mut whole = Vec::new();
            prepared.dists(&ids, &mut whole);
            // The codes' distances are the rows' as nearly as plain codes'.
            let (mut plain_err, mut err) = (0f64, 0f64);
            let mut plain_d = Vec::new();
            plain.query(q).dists(&ids, &mut plain_d);
            for ((&id, &d), &p) in ids.iter().zip(&whole).zip(&plain_d) {
                let exact = crate::distance::l2sq(q, &base[id as usize * dim..][..dim]);
                assert!(
                    (d - exact).abs() <= 0.1 * exact,
                    "row {id}: {d} against {exact}"
                );
                err += f64::from((d - exact).abs() / exact);
                plain_err += f64::from((p - exact).abs() / exact);
            }
            // A whole distance is the plain codes' (its weights scaled apart
            // from the head's: the same up to their rounding).
            assert!(
                (err - plain_err).abs() <= 0.01 * plain_err + 1e-6,
                "error {err} against plain codes' {plain_err}"
            );
            let mut sorted = whole.clone();
            sorted.sort_by(f32::total_cmp);
            for (rank, bound) in [(10, sorted[10]), (200, sorted[200])] {
                let mut got = Vec::new();
                prepared.dists_below(&ids, bound, &mut got);
                let (mut cut, mut cut_within) = (0, 0);
                for (&g, &w) in got.iter().zip(&whole) {
                    if g != w {
                        assert!(g > bound, "{g} was cut short within the bound {bound}");
                        cut += 1;
                        // The head's estimate: within a few of its steps of
                        // the whole distance, or below it.
                        assert!(g <= w * 1.05 + 1e-4, "{g} is no lower bound of {w}");
                        cut_within += usize::from(w <= bound);
                    }
                }
                assert!(
                    cut_within <= 4,
                    "{cut_within} rows within the bound were cut"
                );
                if rank == 10 {
                    assert!(
                        cut >= 300,
                        "most rows are ruled out by their head: {cut} of 400"
                    );
                }
            }
            let mut got = Vec::new();
            prepared.dists_below(&ids, f32::INFINITY, &mut got);
            assert_eq!(got, whole, "no bound: every distance whole");
        }
    }

    /// COSINE codes along principal axes are L2 codes of the unit rows:
    /// `|q - x|² / 2 - 1` is `-q·x`, as nearly as plain COSINE codes give it.
    #[test]
    fn cosine_rows_are_coded_as_unit_rows() {
        use crate::sq::SqCodes;
        use quiver_common::Metric;
        let (n, dim) = (10_000, 128);
        let rows = low_rank(n + 3, dim, 12, 7);
        let (base, queries) = rows.split_at(n * dim);
        let sq = SqCodes::train_projected(base, dim, Metric::Cosine).expect("train");
        assert!(sq.projection().is_some(), "COSINE is projected");
        assert!(
            SqCodes::train_projected(base, dim, Metric::Ip)
                .expect("train")
                .projection()
                .is_none(),
            "IP is not, unless every row is a unit vector"
        );
        let plain = SqCodes::train(base, dim, Metric::Cosine).expect("train");
        let unit = |v: &[f32]| {
            let norm = crate::distance::dot(v, v).sqrt();
            v.iter().map(|x| x / norm).collect::<Vec<f32>>()
        };
        let ids: Vec<u32> = (0..400u32).map(|i| (i * 23) % n as u32).collect();
        for q in queries.chunks_exact(dim) {
            let (mut d, mut p) = (Vec::new(), Vec::new());
            sq.query(q).dists(&ids, &mut d);
            plain.query(q).dists(&ids, &mut p);
            let (mut err, mut plain_err) = (0f64, 0f64);
            for ((&id, &d), &p) in ids.iter().zip(&d).zip(&p) {
                let x = unit(&base[id as usize * dim..][..dim]);
                let exact = -crate::distance::dot(&unit(q), &x);
                err += f64::from((d / 2.0 - 1.0 - exact).abs());
                plain_err += f64::from((p - exact).abs());
            }
            // Plus `(|x̂|² - 1) / 2 ≈ x·e` for the code's error `e = x̂ - x`:
            // about √2 times plain codes' error over far rows; near `q` it
            // cancels their `-q·e`.
            assert!(
                err <= 1.6 * plain_err,
                "error {err} against plain codes' {plain_err}"
            );
            // A bound rules rows out by their heads, as for L2.
            let mut sorted = d.clone();
            sorted.sort_by(f32::total_cmp);
            let mut got = Vec::new();
            sq.query(q).dists_below(&ids, sorted[10], &mut got);
            let cut = got.iter().zip(&d).filter(|(g, w)| g != w).count();
            assert!(cut >= 200, "{cut} of 400 rows ruled out");
        }
    }

    /// IP codes of unit rows along principal axes are L2 codes of the rows
    /// themselves: for one query `(|q - x|² - |q|² - 1) / 2` is `-q·x`, as
    /// nearly as plain IP codes give it; one row off the unit sphere keeps
    /// them plain.
    #[test]
    fn ip_rows_that_are_all_unit_vectors_are_coded_by_l2() {
        use crate::sq::SqCodes;
        use quiver_common::Metric;
        let (n, dim) = (10_000, 128);
        let mut rows = low_rank(n + 3, dim, 12, 9);
        for r in rows.chunks_exact_mut(dim) {
            let norm = crate::distance::dot(r, r).sqrt();
            r.iter_mut().for_each(|x| *x /= norm);
        }
        let (base, queries) = rows.split_at(n * dim);
        let sq = SqCodes::train_projected(base, dim, Metric::Ip).expect("train");
        assert!(sq.projection().is_some(), "unit rows are projected");
        let plain = SqCodes::train(base, dim, Metric::Ip).expect("train");
        let ids: Vec<u32> = (0..400u32).map(|i| (i * 23) % n as u32).collect();
        for q in queries.chunks_exact(dim) {
            // Not a unit query: IP does not normalise it.
            let q: Vec<f32> = q.iter().map(|x| x * 3.0).collect();
            let q2 = crate::distance::dot(&q, &q);
            let (mut d, mut p) = (Vec::new(), Vec::new());
            sq.query(&q).dists(&ids, &mut d);
            plain.query(&q).dists(&ids, &mut p);
            let (mut err, mut plain_err) = (0f64, 0f64);
            for ((&id, &d), &p) in ids.iter().zip(&d).zip(&p) {
                let exact = -crate::distance::dot(&q, &base[id as usize * dim..][..dim]);
                err += f64::from(((d - q2 - 1.0) / 2.0 - exact).abs());
                plain_err += f64::from((p - exact).abs());
            }
            assert!(
                err <= 1.6 * plain_err,
                "error {err} against plain codes' {plain_err}"
            );
        }
        let mut off = base.to_vec();
        off[..dim].iter_mut().for_each(|x| *x *= 1.01);
        let sq = SqCodes::train_projected(&off, dim, Metric::Ip).expect("train");
        assert!(sq.projection().is_none(), "one row is not a unit vector");
    }
}
