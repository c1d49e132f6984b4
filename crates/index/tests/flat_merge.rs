//! flat_search against a brute-force reference; merge_topk for both orderings.

use proptest::prelude::*;
use quiver_common::VectorsRef;
use quiver_index::{Bitset, FnFilter, Metric, RowFilter, flat_search, merge_topk, score};

fn brute(
    vectors: &[f32],
    dim: usize,
    metric: Metric,
    q: &[f32],
    k: usize,
    allow: impl Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    let mut all: Vec<(u32, f32)> = vectors
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| (i as u32, score(metric, q, v)))
        .filter(|(i, _)| allow(*i))
        .collect();
    all.sort_by(|x, y| match metric.higher_is_closer() {
        false => x.1.total_cmp(&y.1),
        true => y.1.total_cmp(&x.1),
    });
    all.truncate(k);
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]
    #[test]
    fn flat_matches_brute_force(
        dim in 1usize..40,
        n in 1usize..200,
        k in 1usize..30,
        seed in prop::collection::vec(-1.0f32..1.0, 40 * 201),
        modulo in 1u32..5,
    ) {
        let vectors = &seed[..n * dim];
        let q = &seed[200 * 40..200 * 40 + dim];
        for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
            let f = FnFilter(|id: u32| id.is_multiple_of(modulo));
            let got = flat_search(VectorsRef::f32(dim, vectors), metric, q, k, Some(&f));
            let want = brute(vectors, dim, metric, q, k, |id| id.is_multiple_of(modulo));
            prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                // Same scores in order (ids may differ only on exact ties).
                prop_assert!((g.score - w.1).abs() <= 1e-5 * (1.0 + w.1.abs()), "{:?} {:?}", g, w);
                prop_assert!(g.id.is_multiple_of(modulo));
                // The row's own score, to f32 rounding (the search sums a
                // row in its own order: `dense.rs`).
                let own = score(metric, q, &vectors[g.id as usize * dim..][..dim]);
                prop_assert!((own - g.score).abs() <= 1e-6 * (1.0 + own.abs()), "{} {}", own, g.score);
            }
        }
    }
}

#[test]
fn flat_edge_cases() {
    let v = [0.0f32, 0.0, 1.0, 1.0, 2.0, 2.0];
    assert!(
        flat_search(VectorsRef::f32(2, &v), Metric::L2, &[0.0], 3, None).is_empty(),
        "wrong query dim"
    );
    assert!(flat_search(VectorsRef::f32(0, &v), Metric::L2, &[], 3, None).is_empty());
    assert!(flat_search(VectorsRef::f32(2, &v), Metric::L2, &[0.0, 0.0], 0, None).is_empty());
    let all = flat_search(VectorsRef::f32(2, &v), Metric::L2, &[2.1, 2.1], 10, None);
    assert_eq!(all.iter().map(|n| n.id).collect::<Vec<_>>(), vec![2, 1, 0]);
    let none = Bitset::new_empty(3);
    assert!(
        flat_search(
            VectorsRef::f32(2, &v),
            Metric::L2,
            &[0.0, 0.0],
            3,
            Some(&none)
        )
        .is_empty()
    );
}

#[test]
fn bitset_behaves() {
    let mut b = Bitset::new_full(130);
    assert_eq!(b.count_ones(), 130);
    assert!(b.allows(129) && !b.allows(130));
    assert!(b.remove(64));
    assert!(!b.remove(64));
    assert_eq!(b.estimated_allowed(), Some(129));
    assert_eq!(b.iter().count(), 129);
    let s = Bitset::from_ids(100, [3, 70, 99, 500]);
    assert_eq!(s.iter().collect::<Vec<_>>(), vec![3, 70, 99]);
    assert_eq!(s.count_ones(), 3);
}

#[test]
fn a_bitset_from_words_drops_bits_past_its_length_and_intersects_by_word() {
    // Bits 0, 5, 64 and 70 set; 70 is past a length of 66.
    let b = Bitset::from_words(vec![1 | 1 << 5, 1 | 1 << 6], 66);
    assert_eq!(b.iter().collect::<Vec<_>>(), vec![0, 5, 64]);
    assert_eq!(b.count_ones(), 3);
    assert_eq!(b.words().len(), 2);
    // Missing words are zero.
    let short = Bitset::from_words(vec![u64::MAX], 130);
    assert_eq!(short.count_ones(), 64);
    assert!(!short.contains(64));
    let mut c = Bitset::new_full(66);
    c.remove(5);
    c.intersect(&b);
    assert_eq!(c.iter().collect::<Vec<_>>(), vec![0, 64]);
    assert_eq!(c.count_ones(), 2);
}

#[test]
fn retain_asks_about_each_allowed_id_once_in_order() {
    let mut b = Bitset::from_ids(200, [3, 64, 65, 130, 199]);
    let mut asked = Vec::new();
    b.retain(|id| {
        asked.push(id);
        id % 2 == 1
    });
    assert_eq!(asked, vec![3, 64, 65, 130, 199]);
    assert_eq!(b.iter().collect::<Vec<_>>(), vec![3, 65, 199]);
    assert_eq!(b.count_ones(), 3);
}

#[test]
fn merge_topk_l2_ascending() {
    let lists = vec![
        vec![("a", 0.1), ("b", 0.5), ("c", 0.9)],
        vec![("d", 0.2), ("e", 0.3)],
        vec![],
        vec![("f", 0.05)],
    ];
    let got = merge_topk(lists, 4, Metric::L2);
    assert_eq!(got, vec![("f", 0.05), ("a", 0.1), ("d", 0.2), ("e", 0.3)]);
}

#[test]
fn merge_topk_similarity_descending() {
    for metric in [Metric::Ip, Metric::Cosine] {
        let lists = vec![
            vec![(1u64, 0.9), (2, 0.4)],
            vec![(3, 0.95), (4, 0.5), (5, 0.1)],
        ];
        let got = merge_topk(lists, 10, metric);
        assert_eq!(got, vec![(3, 0.95), (1, 0.9), (4, 0.5), (2, 0.4), (5, 0.1)]);
    }
    assert!(merge_topk::<u8>(vec![], 3, Metric::Ip).is_empty());
    assert!(merge_topk(vec![vec![(1u8, 1.0)]], 0, Metric::Ip).is_empty());
}

proptest! {
    #[test]
    fn merge_topk_equals_sort_of_concat(lists in prop::collection::vec(prop::collection::vec(-100.0f32..100.0, 0..20), 0..6), k in 0usize..50, l2 in any::<bool>()) {
        let metric = if l2 { Metric::L2 } else { Metric::Ip };
        let cmp = |x: &f32, y: &f32| if l2 { x.total_cmp(y) } else { y.total_cmp(x) };
        let lists: Vec<Vec<(usize, f32)>> = lists.into_iter().map(|mut l| { l.sort_by(cmp); l.into_iter().enumerate().collect() }).collect();
        let mut all: Vec<f32> = lists.iter().flatten().map(|x| x.1).collect();
        all.sort_by(cmp);
        all.truncate(k);
        let got: Vec<f32> = merge_topk(lists, k, metric).into_iter().map(|x| x.1).collect();
        prop_assert_eq!(got, all);
    }
}

#[test]
fn a_sparse_bitset_gives_the_same_hits_as_testing_every_row() {
    let dim = 4;
    let n = 1000u32;
    let vectors: Vec<f32> = (0..n * dim as u32)
        .map(|i| ((i * 37) % 101) as f32)
        .collect();
    let query = [5.0, 50.0, 20.0, 80.0];
    let set = Bitset::from_ids(n as usize, (0..n).filter(|i| i % 17 == 3));
    let by_closure = FnFilter(|id: u32| id % 17 == 3);
    for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
        let v = VectorsRef::f32(dim, &vectors);
        let a = flat_search(v, metric, &query, 10, Some(&set));
        let b = flat_search(v, metric, &query, 10, Some(&by_closure));
        assert_eq!(a, b, "{metric:?}");
        assert!(a.iter().all(|h| h.id % 17 == 3));
    }
}
