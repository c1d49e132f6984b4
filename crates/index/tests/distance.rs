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
        Metric::Ip => ab,
        Metric::Cosine => ab / (aa.sqrt() * bb.sqrt()),
    }
}

/// Scale of the terms, for a tolerance that survives cancellation.
fn magnitude(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    match metric {
        Metric::L2 => reference(Metric::L2, a, b),
        Metric::Ip => a.iter().zip(b).map(|(&x, &y)| f64::from(x * y).abs()).sum(),
        Metric::Cosine => 1.0,
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
