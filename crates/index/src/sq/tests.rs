//! Tests of the quantizer and its query distances.
use super::*;
use crate::distance::{dot, l2sq};

fn rows(n: usize, dim: usize) -> Vec<f32> {
    let mut s: u64 = 99;
    (0..n * dim)
        .map(|i| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Dimensions with different ranges and offsets.
            let u = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            u * (1.0 + (i % dim) as f32) + (i % 3) as f32
        })
        .collect()
}

fn decode(sq: &SqCodes, id: u32) -> Vec<f32> {
    (0..sq.dim)
        .map(|j| sq.lo[j] + sq.step[j] * f32::from(sq.code(id)[j]))
        .collect()
}

#[test]
fn blur_is_judged_over_distinct_rows() {
    // 300 rows in [0, 1)^4, and one outlier of 1,000 in dimension 0:
    // there every other row rounds to code 0 of 255.
    let dim = 4;
    let spread = rows(300, dim);
    let mut v: Vec<f32> = spread.iter().map(|x| x.rem_euclid(1.0)).collect();
    let fine = SqCodes::train(&v, dim, Metric::L2).expect("train");
    assert!(fine.blur(&v, 4096) < 1e-4, "{}", fine.blur(&v, 4096));
    v.extend([1_000.0, 0.5, 0.5, 0.5]);
    let coarse = SqCodes::train(&v, dim, Metric::L2).expect("train");
    let blurred = coarse.blur(&v, 4096);
    assert!(blurred > 0.05, "{blurred}");
    // 2,000 copies of a row the codes hold exactly (all zeros, the
    // ranges' lower ends) among them: still judged by the 300.
    let mut copies = vec![0f32; 2_000 * dim];
    copies.extend_from_slice(&v);
    let with_copies = SqCodes::train(&copies, dim, Metric::L2).expect("train");
    let b = with_copies.blur(&copies, 4096);
    assert!(b > blurred / 2.0, "{b} against {blurred}");
    // Rows that are all alike: nothing to blur.
    let same = vec![0.25f32; 50 * dim];
    let sq = SqCodes::train(&same, dim, Metric::L2).expect("train");
    assert_eq!(sq.blur(&same, 4096), 0.0);
}

#[test]
fn refine_k_rows_rounds_refine_k_times_k_up() {
    assert_eq!(refine_k_rows(1.0, 10), 10);
    assert_eq!(refine_k_rows(1.01, 10), 11);
    assert_eq!(refine_k_rows(2.5, 3), 8);
    assert_eq!(refine_k_rows(4.0, 0), 0);
}

#[test]
fn codes_decode_within_half_a_step() {
    let dim = 37;
    let v = rows(200, dim);
    let sq = SqCodes::train(&v, dim, Metric::L2).expect("train");
    assert_eq!((sq.len(), sq.stride), (200, 48));
    for (i, r) in v.chunks_exact(dim).enumerate() {
        let back = decode(&sq, i as u32);
        for j in 0..dim {
            assert!(
                (back[j] - r[j]).abs() <= sq.step[j] * 0.5 + 1e-5,
                "row {i} dim {j}: {} vs {}",
                back[j],
                r[j]
            );
        }
    }
    // The range is the data's: some row hits each end of every dimension.
    for j in 0..dim {
        let col = || (0..200u32).map(|i| sq.code(i)[j]);
        assert_eq!((col().min(), col().max()), (Some(0), Some(255)), "dim {j}");
    }
}

#[test]
fn distances_match_the_decoded_vectors() {
    // The norm in the padding (40, 12), or in a row of its own (14, 16).
    for dim in [40, 12, 14, 16] {
        distances_match_the_decoded_vectors_at(dim);
    }
}

fn distances_match_the_decoded_vectors_at(dim: usize) {
    let v = rows(50, dim);
    let q: Vec<f32> = v[..dim].iter().map(|x| x * 0.9 + 0.1).collect();
    for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
        let sq = SqCodes::train(&v, dim, metric).expect("train");
        let terms = sq.dot_terms();
        let prepared = sq.query(&q);
        let qn = if metric == Metric::Cosine {
            normalized(&q)
        } else {
            q.clone()
        };
        let want = |x: &[f32], y: &[f32]| match metric {
            Metric::L2 => l2sq(x, y),
            _ => -dot(x, y),
        };
        for id in 0..50u32 {
            let d = decode(&sq, id);
            let tol = |w: f32| 1e-3 * w.abs().max(1.0);
            let w = want(&qn, &d);
            // What the integer weights' rounding moves the sum by, at
            // most 1/65,534 of the largest weight for each code unit.
            let (mut rounding, top) = (0f32, prepared.pre.iter().fold(0f32, |m, p| m.max(p.abs())));
            for ((c, wi), p) in sq.code(id).iter().zip(&prepared.wide).zip(&prepared.pre) {
                let off = (f32::from(*wi) * prepared.unscale - p).abs();
                assert!(
                    off <= top / 65_534.0 * 1.001,
                    "{metric:?} weight off by {off}"
                );
                rounding += off * f32::from(*c);
            }
            assert!(
                (prepared.dist(id) - w).abs() <= tol(w) + rounding,
                "{metric:?} {dim} {id}"
            );
            // A neighbour list's distances in one call are these.
            let mut batch = Vec::new();
            prepared.dists(&[id, 7, id], &mut batch);
            let one = [prepared.dist(id), prepared.dist(7), prepared.dist(id)];
            assert_eq!(batch, one, "{metric:?} {dim} {id} batch");
            let other = decode(&sq, 7);
            let w = want(&d, &other);
            let got = sq.dist_codes(id, 7, &terms);
            assert!((got - w).abs() <= tol(w), "{metric:?} pair {id}");
        }
    }
}

#[test]
fn stored_form_round_trips_and_bad_ranges_are_refused() {
    let dim = 20;
    let v = rows(30, dim);
    let sq = SqCodes::train(&v, dim, Metric::Ip).expect("train");
    let (lo, step, codes) = sq.stored_parts(true);
    let back =
        SqCodes::from_ranges(Metric::Ip, lo.to_vec(), step.to_vec(), codes, None).expect("back");
    assert_eq!(back.rows.bytes(), sq.rows.bytes());
    assert_eq!(back.lo, sq.lo);
    let bad = |lo: Vec<f32>, step: Vec<f32>, codes: Vec<u8>| {
        SqCodes::from_ranges(Metric::L2, lo, step, codes, None).is_err()
    };
    assert!(bad(vec![0.0; 4], vec![1.0; 3], vec![0; 8]));
    assert!(bad(vec![0.0; 4], vec![1.0; 4], vec![0; 7]));
    assert!(bad(vec![f32::NAN; 4], vec![1.0; 4], vec![0; 8]));
    assert!(bad(vec![0.0; 4], vec![-1.0; 4], vec![0; 8]));
    assert!(bad(vec![], vec![], vec![]));
    assert!(SqCodes::train(&v, dim, Metric::Hamming).is_err());
}

#[test]
fn constant_and_non_finite_dimensions_do_not_break_encoding() {
    let v = vec![1.0, f32::NAN, 1.0, 2.0, 1.0, f32::INFINITY];
    let sq = SqCodes::train(&v, 2, Metric::L2).expect("train");
    assert_eq!(sq.stored_parts(true).1, &[0.0, 0.0]);
    assert_eq!(decode(&sq, 0), vec![1.0, 2.0]);
    assert!(sq.query(&[1.0, 2.0]).dist(1).abs() < 1e-6);
}
