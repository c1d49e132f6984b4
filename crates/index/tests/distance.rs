//! score() against a scalar f64 reference for every metric.

use proptest::prelude::*;
use quiver_index::{Metric, score};

fn reference(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb, mut l2) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
        l2 += (x - y) * (x - y);
    }
    match metric {
        Metric::L2 => l2,
        Metric::Ip | Metric::Bm25 => ab,
        Metric::Cosine => ab / (aa.sqrt() * bb.sqrt()),
        Metric::Hamming => l2,
        Metric::Jaccard if aa + bb - ab == 0.0 => 0.0,
        Metric::Jaccard => 1.0 - ab / (aa + bb - ab),
    }
}

/// Scale of the terms, for a tolerance that survives cancellation.
fn magnitude(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    match metric {
        Metric::L2 => reference(Metric::L2, a, b),
        Metric::Ip | Metric::Bm25 => a.iter().zip(b).map(|(&x, &y)| f64::from(x * y).abs()).sum(),
        Metric::Cosine | Metric::Hamming | Metric::Jaccard => 1.0,
    }
}

fn pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    (1usize..300).prop_flat_map(|d| {
        (
            prop::collection::vec(-10.0f32..10.0, d),
            prop::collection::vec(-10.0f32..10.0, d),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn score_matches_f64_reference((a, b) in pair()) {
        // Cosine is undefined for (near) zero vectors; skip those.
        let nonzero = a.iter().any(|x| x.abs() > 1e-3) && b.iter().any(|x| x.abs() > 1e-3);
        for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
            if metric == Metric::Cosine && !nonzero {
                continue;
            }
            let got = f64::from(score(metric, &a, &b));
            let want = reference(metric, &a, &b);
            let tol = 1e-4 * magnitude(metric, &a, &b).max(1e-6);
            prop_assert!((got - want).abs() <= tol, "{metric:?} dim {}: got {got} want {want}", a.len());
        }
    }
}

fn bits() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    (1usize..40).prop_flat_map(|bytes| {
        let row = prop::collection::vec(prop::bool::ANY.prop_map(f32::from), bytes * 8);
        (row.clone(), row)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Bit vectors widened to 0.0 / 1.0: HAMMING counts the bits that
    /// differ, JACCARD is 1 - |a and b| / |a or b|, counted on the bits.
    #[test]
    fn binary_metrics_count_bits((a, b) in bits()) {
        let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count() as f64;
        let both = a.iter().zip(&b).filter(|(x, y)| **x == 1.0 && **y == 1.0).count() as f64;
        let either = a.iter().zip(&b).filter(|(x, y)| **x == 1.0 || **y == 1.0).count() as f64;
        prop_assert_eq!(f64::from(score(Metric::Hamming, &a, &b)), differ);
        let jaccard = if either == 0.0 { 0.0 } else { 1.0 - both / either };
        prop_assert!((f64::from(score(Metric::Jaccard, &a, &b)) - jaccard).abs() < 1e-6);
        prop_assert!((reference(Metric::Jaccard, &a, &b) - jaccard).abs() < 1e-9);
    }
}

#[test]
fn score_conventions() {
    let a = [1.0f32, 0.0, 0.0];
    let b = [0.0f32, 2.0, 0.0];
    assert!((score(Metric::L2, &a, &b) - 5.0).abs() < 1e-6);
    assert!(score(Metric::Ip, &a, &b).abs() < 1e-6);
    assert!((score(Metric::Ip, &b, &b) - 4.0).abs() < 1e-6);
    assert!(score(Metric::Cosine, &a, &b).abs() < 1e-4);
    assert!((score(Metric::Cosine, &b, &b) - 1.0).abs() < 1e-4);
    assert!((score(Metric::Cosine, &a, &[-3.0, 0.0, 0.0]) + 1.0).abs() < 1e-4);
}

#[test]
fn mismatched_lengths_do_not_panic() {
    let a = [1.0f32, 2.0, 3.0];
    let b = [1.0f32, 2.0];
    assert_eq!(score(Metric::L2, &a, &b), 0.0);
    assert!((score(Metric::Ip, &a, &b) - 5.0).abs() < 1e-6);
    assert!((score(Metric::Cosine, &a, &b) - 1.0).abs() < 1e-4);
}
