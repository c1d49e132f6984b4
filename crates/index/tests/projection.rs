//! An 8-bit L2 or COSINE graph's codes along the rows' principal axes
//! (`sq/pca.rs`) find what its plain codes find; how they are stored and
//! projected at load (`HnswIndex::open`, `HnswIndex::project`).

use quiver_common::VectorsRef;
use quiver_index::{HnswIndex, HnswParams, Metric, flat_search};

fn rng(s: &mut u64) -> f64 {
    *s = s
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*s >> 11) as f64) / ((1u64 << 53) as f64) - 0.5
}

/// `n` rows of `dim` near a `rank`-dimensional subspace whose spread falls
/// off (as embeddings' does), plus noise.
fn low_rank(n: usize, dim: usize, rank: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let basis: Vec<f64> = (0..rank * dim).map(|_| rng(&mut s)).collect();
    (0..n)
        .flat_map(|_| {
            let w: Vec<f64> = (0..rank)
                .map(|r| rng(&mut s) / (1.0 + r as f64).sqrt())
                .collect();
            (0..dim)
                .map(|j| {
                    ((0..rank).map(|r| w[r] * basis[r * dim + j]).sum::<f64>() + 0.05 * rng(&mut s))
                        as f32
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn version(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"))
}

/// A build codes rows along their principal axes (L2, COSINE, and IP when
/// every row is a unit vector) and finds what plain codes find; how each is
/// stored and opened.
#[test]
fn projected_codes_find_what_plain_codes_find() {
    let (n, dim, nq, k) = (12_000, 160, 100, 10);
    let rows = low_rank(n + nq, dim, 24, 3);
    // Unit rows (and queries three times as long) for IP.
    let mut unit = rows.clone();
    for (i, r) in unit.chunks_exact_mut(dim).enumerate() {
        let norm = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        let scale = if i < n { 1.0 } else { 3.0 };
        r.iter_mut().for_each(|x| *x *= scale / norm);
    }
    let params = HnswParams {
        m: 12,
        ef_construction: 80,
        ..Default::default()
    };
    for metric in [Metric::L2, Metric::Cosine, Metric::Ip] {
        let rows = if metric == Metric::Ip { &unit } else { &rows };
        let (base, queries) = rows.split_at(n * dim);
        let vectors = VectorsRef::f32(dim, base);
        let index = HnswIndex::build_sq(vectors, metric, &params, 2, &|_| {}).expect("build");
        let truth: Vec<Vec<u32>> = queries
            .chunks_exact(dim)
            .map(|q| {
                flat_search(vectors, metric, q, k, None)
                    .iter()
                    .map(|h| h.id)
                    .collect()
            })
            .collect();
        let recall = |index: &HnswIndex, ef: usize| {
            let mut found = 0;
            for (q, want) in queries.chunks_exact(dim).zip(&truth) {
                let got = index.search(vectors, q, k, ef, None);
                found += got.iter().filter(|h| want.contains(&h.id)).count();
            }
            found as f64 / (nq * k) as f64
        };
        // The same graph over plain codes: what the release before stored.
        let plain_bytes = index.to_bytes_with(false);
        assert_eq!(version(&plain_bytes), 2, "{metric:?}");
        let mut plain = HnswIndex::from_bytes(&plain_bytes).expect("plain bytes");
        let before: Vec<f64> = [20, 40].iter().map(|&ef| recall(&plain, ef)).collect();
        let after: Vec<f64> = [20, 40].iter().map(|&ef| recall(&index, ef)).collect();
        for (b, a) in before.iter().zip(&after) {
            assert!(
                *a >= b - 0.01,
                "{metric:?}: recall {a} projected, {b} plain"
            );
        }
        assert!(after[1] >= 0.95, "{metric:?}: {after:?}");
        // A head line a row and the axes: a little more memory.
        let plain_memory = plain.memory_bytes();
        assert!(index.memory_bytes() > plain_memory, "{metric:?}");
        assert!(index.memory_bytes() < plain_memory * 13 / 10, "{metric:?}");
        let alike = |other: &HnswIndex| {
            for q in queries.chunks_exact(dim).take(20) {
                assert_eq!(
                    other.search(vectors, q, k, 40, None),
                    index.search(vectors, q, k, 40, None),
                    "{metric:?}"
                );
            }
        };
        // Projected codes round-trip (format version 3) and search alike.
        let back = HnswIndex::from_bytes(&index.to_bytes_with(true)).expect("projected bytes");
        assert!(back.memory_bytes() > plain_memory, "{metric:?}");
        alike(&back);
        // What a build stores: the projected codes as they are, for every
        // metric (the previous release reads version 3 for all three).
        let stored = index.to_bytes();
        assert_eq!(version(&stored), 3, "{metric:?}");
        // What a querynode serves from either: projected, the same results.
        for bytes in [&stored, &plain_bytes] {
            let opened = HnswIndex::open(bytes, vectors).expect("open");
            assert!(opened.memory_bytes() > plain_memory, "{metric:?} projected");
            alike(&opened);
        }
        assert!(plain.project(vectors).expect("project"), "{metric:?}");
        assert!(!plain.project(vectors).expect("again"), "projected once");
        alike(&plain);
        // An f32 graph of these rows is linked over projected codes too.
        let f32_graph = HnswIndex::build(vectors, metric, &params, 2, &|_| {}).expect("build");
        assert!(f32_graph.built_over_codes(), "{metric:?}");
        let f32_recall = recall(&f32_graph, 40);
        assert!(
            f32_recall >= 0.95,
            "{metric:?}: f32 graph recall {f32_recall}"
        );
    }
}

#[test]
fn narrow_few_or_mismatched_rows_are_not_projected() {
    let params = HnswParams {
        m: 8,
        ef_construction: 40,
        ..Default::default()
    };
    let narrow = low_rank(12_000, 64, 8, 4);
    let mut index = HnswIndex::build_sq(
        VectorsRef::f32(64, &narrow),
        Metric::L2,
        &params,
        2,
        &|_| {},
    )
    .expect("build");
    assert!(!index.project(VectorsRef::f32(64, &narrow)).expect("narrow"));
    let few = low_rank(2_000, 160, 8, 5);
    let mut index =
        HnswIndex::build_sq(VectorsRef::f32(160, &few), Metric::L2, &params, 2, &|_| {})
            .expect("build");
    assert!(!index.project(VectorsRef::f32(160, &few)).expect("few"));
    assert!(
        !index
            .project(VectorsRef::f32(160, &few[..1_000 * 160]))
            .expect("other rows")
    );
    let wide = low_rank(10_000, 160, 8, 6);
    let mut index =
        HnswIndex::build_sq(VectorsRef::f32(160, &wide), Metric::Ip, &params, 2, &|_| {})
            .expect("build");
    assert!(
        !index.project(VectorsRef::f32(160, &wide)).expect("IP"),
        "IP rows that are not unit vectors"
    );
    assert_eq!(version(&index.to_bytes()), 2);
    let mut f32_graph =
        HnswIndex::build(VectorsRef::f32(160, &wide), Metric::L2, &params, 2, &|_| {})
            .expect("build");
    assert!(
        !f32_graph
            .project(VectorsRef::f32(160, &wide))
            .expect("no codes")
    );
}
