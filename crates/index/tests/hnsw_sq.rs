//! HNSW over 8-bit codes (`HnswIndex::build_sq`) on the checked-in
//! glove50-10k data, and the byte format of both index kinds.

use std::sync::OnceLock;

use quiver_common::VectorsRef;
use quiver_index::bench::{read_fvecs, read_ivecs};
use quiver_index::{
    Bitset, FnFilter, HnswIndex, HnswParams, Metric, Neighbor, QuantizedRows, RowFilter,
    flat_search, score,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/glove50-10k");
/// Written by the release before `HNSW_SQ` (format version 1): 300 rows of
/// `fixture_rows()`, L2, m 6, ef_construction 40, seed 11, one thread.
const V1_BLOB: &[u8] = include_bytes!("data/hnsw_v1_l2_300x8.bin");
/// Written by release b0755b4 (format version 2, `HNSW_SQ`): `build_sq`
/// over the same rows with the same parameters, one thread.
const V2_SQ_BLOB: &[u8] = include_bytes!("data/hnsw_v2_sq_l2_300x8.bin");

struct Data {
    dim: usize,
    base: Vec<f32>,
    queries: Vec<f32>,
    gt: Vec<i32>,
    gdim: usize,
    index: HnswIndex,
}

fn params() -> HnswParams {
    HnswParams {
        m: 16,
        ef_construction: 100,
        seed: 7,
        ..Default::default()
    }
}

/// Built once per test binary.
fn data() -> &'static Data {
    static D: OnceLock<Data> = OnceLock::new();
    D.get_or_init(|| {
        let (dim, base) = read_fvecs(format!("{DATA}/base.fvecs")).expect("base");
        let (_, queries) = read_fvecs(format!("{DATA}/query.fvecs")).expect("queries");
        let (gdim, gt) = read_ivecs(format!("{DATA}/groundtruth.ivecs")).expect("gt");
        let index = HnswIndex::build_sq(
            VectorsRef::f32(dim, &base),
            Metric::L2,
            &params(),
            2,
            &|_| {},
        )
        .expect("build");
        Data {
            dim,
            base,
            queries,
            gt,
            gdim,
            index,
        }
    })
}

impl Data {
    fn vectors(&self) -> VectorsRef<'_> {
        VectorsRef::f32(self.dim, &self.base)
    }
    fn query(&self, i: usize) -> &[f32] {
        &self.queries[i * self.dim..(i + 1) * self.dim]
    }
    fn nq(&self) -> usize {
        self.queries.len() / self.dim
    }
    fn row<'a>(&self, base: &'a [f32], id: u32) -> &'a [f32] {
        &base[id as usize * self.dim..(id as usize + 1) * self.dim]
    }
}

fn ids(v: &[Neighbor]) -> Vec<u32> {
    v.iter().map(|n| n.id).collect()
}

fn overlap(a: &[u32], b: &[u32]) -> usize {
    a.iter().filter(|x| b.contains(x)).count()
}

/// Every hit's score is the exact one of its row (`row(id)`), best first.
fn assert_exact_and_ordered<'a>(
    metric: Metric,
    q: &[f32],
    got: &[Neighbor],
    row: impl Fn(u32) -> &'a [f32],
) {
    for h in got {
        assert_eq!(h.score, score(metric, q, row(h.id)), "{metric:?}");
    }
    let higher = metric.higher_is_closer();
    assert!(
        got.windows(2)
            .all(|w| (w[0].score >= w[1].score) == higher || w[0].score == w[1].score),
        "{metric:?} order"
    );
}

#[test]
fn recall_at_10_ef64_against_ground_truth() {
    let d = data();
    assert!(d.index.is_quantized());
    assert_eq!(d.index.len(), 10_000);
    let mut hits = 0;
    for i in 0..d.nq() {
        let res = d.index.search(d.vectors(), d.query(i), 10, 64, None);
        assert_eq!(res.len(), 10);
        assert!(res.windows(2).all(|w| w[0].score <= w[1].score), "sorted");
        let truth: Vec<u32> = d.gt[i * d.gdim..i * d.gdim + 10]
            .iter()
            .map(|&x| x as u32)
            .collect();
        hits += overlap(&ids(&res), &truth);
    }
    let recall = hits as f64 / (d.nq() * 10) as f64;
    eprintln!("hnsw_sq recall@10 ef=64: {recall}");
    assert!(recall >= 0.9, "recall {recall}");
}

#[test]
fn re_ranking_the_best_of_the_beam_finds_what_re_ranking_all_of_it_finds() {
    // A top-10 re-ranks the best 42 of the 200 rows the beam holds; a
    // top-200 re-ranks them all. Their first ten must agree.
    let d = data();
    let (mut same, mut truth_hits, mut all_hits) = (0, 0, 0);
    for i in 0..d.nq() {
        let few = d.index.search(d.vectors(), d.query(i), 10, 200, None);
        let all = d.index.search(d.vectors(), d.query(i), 200, 200, None);
        let all10 = ids(&all[..10]);
        same += overlap(&ids(&few), &all10);
        let truth: Vec<u32> = d.gt[i * d.gdim..i * d.gdim + 10]
            .iter()
            .map(|&x| x as u32)
            .collect();
        truth_hits += overlap(&ids(&few), &truth);
        all_hits += overlap(&all10, &truth);
    }
    let n = d.nq() * 10;
    eprintln!("same {same}/{n}, recall {truth_hits} against {all_hits}");
    assert!(
        same as f64 >= 0.995 * n as f64,
        "{same}/{n} of the top 10 agree"
    );
    assert!(truth_hits as f64 >= 0.995 * all_hits as f64);
}

#[test]
fn a_search_asking_to_re_rank_more_re_ranks_them_and_widens_a_narrower_beam() {
    let d = data();
    let truth = |i: usize| -> Vec<u32> {
        let g = &d.gt[i * d.gdim..i * d.gdim + 10];
        g.iter().map(|&x| x as u32).collect()
    };
    let (mut narrow_hits, mut widened_hits) = (0, 0);
    for i in 0..d.nq() {
        let (v, q) = (d.vectors(), d.query(i));
        // Re-ranking all 200 of the beam: the first ten of a top-200.
        let deep = d.index.search_refined(v, q, 10, 200, 200, None);
        let all = d.index.search(v, q, 200, 200, None);
        assert_eq!(ids(&deep), ids(&all[..10]), "query {i}");
        // A beam of 10 asked to re-rank 100 is a beam of 100.
        let widened = d.index.search_refined(v, q, 10, 10, 100, None);
        let wide = d.index.search_refined(v, q, 10, 100, 100, None);
        assert_eq!(ids(&widened), ids(&wide), "query {i}");
        narrow_hits += overlap(&ids(&d.index.search(v, q, 10, 10, None)), &truth(i));
        widened_hits += overlap(&ids(&widened), &truth(i));
    }
    eprintln!("recall hits: ef 10 {narrow_hits}, re-ranking 100 {widened_hits}");
    assert!(widened_hits > narrow_hits);
    // The codes' scan re-ranks as deep: the best 500 by code distance, as
    // a top-125 does (4 × 125).
    let codes = QuantizedRows::train(d.vectors(), Metric::L2).expect("codes");
    let n = d.base.len() / d.dim;
    for i in 0..d.nq() {
        let (v, q) = (d.vectors(), d.query(i));
        let deep = codes.search(v, q, 10, 500, None, 0..n);
        let all = codes.search(v, q, 125, 0, None, 0..n);
        assert_eq!(ids(&deep), ids(&all[..10]), "query {i}");
    }
}

#[test]
fn hits_carry_exact_scores_of_the_vectors_passed() {
    let d = data();
    for i in 0..d.nq() {
        for hit in d.index.search(d.vectors(), d.query(i), 10, 40, None) {
            let want = score(Metric::L2, d.query(i), d.row(&d.base, hit.id));
            assert_eq!(hit.score, want, "query {i} row {}", hit.id);
        }
    }
    // The scores are computed from the vectors passed, not from the codes:
    // other vectors of the same shape give their own exact scores.
    let shifted: Vec<f32> = d.base.iter().map(|x| x + 0.25).collect();
    let q = d.query(0);
    for hit in d
        .index
        .search(VectorsRef::f32(d.dim, &shifted), q, 10, 40, None)
    {
        assert_eq!(hit.score, score(Metric::L2, q, d.row(&shifted, hit.id)));
    }
}

#[test]
fn filters_are_respected() {
    let d = data();
    let half = FnFilter(|id: u32| id.is_multiple_of(2));
    let third = Bitset::from_ids(10_000, (0..10_000).filter(|i| i % 10 < 3));
    for (filter, name) in [(&half as &dyn RowFilter, "half"), (&third, "30%")] {
        let mut hits = 0;
        for i in 0..d.nq() {
            let got = d
                .index
                .search(d.vectors(), d.query(i), 10, 64, Some(filter));
            assert_eq!(got.len(), 10);
            assert!(got.iter().all(|n| filter.allows(n.id)), "{name}");
            let exact = flat_search(d.vectors(), Metric::L2, d.query(i), 10, Some(filter));
            hits += overlap(&ids(&got), &ids(&exact));
        }
        let recall = hits as f64 / (d.nq() * 10) as f64;
        assert!(recall >= 0.9, "{name}: filtered recall {recall}");
    }
    // Selective filters fall back to exact search, as for f32 graphs.
    let few = Bitset::from_ids(10_000, (0..10_000).step_by(100));
    let alive = FnFilter(|id: u32| id % 250 == 7);
    for i in 0..d.nq() {
        let exact = flat_search(d.vectors(), Metric::L2, d.query(i), 10, Some(&few));
        assert_eq!(
            d.index.search(d.vectors(), d.query(i), 10, 64, Some(&few)),
            exact
        );
        let got = d
            .index
            .search(d.vectors(), d.query(i), 100, 64, Some(&alive));
        assert_eq!(
            got,
            flat_search(d.vectors(), Metric::L2, d.query(i), 100, Some(&alive))
        );
    }
}

#[test]
fn resident_memory_is_far_below_an_f32_graph_with_its_vectors() {
    // 768-d rows: what the quantized index keeps against what an f32 graph
    // needs resident (graph + vectors).
    let (n, dim) = (600, 768);
    let mut s: u64 = 5;
    let base: Vec<f32> = (0..n * dim)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let p = HnswParams {
        m: 16,
        ef_construction: 20,
        ..Default::default()
    };
    let v = VectorsRef::f32(dim, &base);
    let sq = HnswIndex::build_sq(v, Metric::L2, &p, 2, &|_| {}).expect("sq");
    let f32_graph = HnswIndex::build(v, Metric::L2, &p, 2, &|_| {}).expect("f32");
    let fp32_resident = f32_graph.memory_bytes() + n * dim * 4;
    let ratio = sq.memory_bytes() as f64 / fp32_resident as f64;
    eprintln!("768-d resident ratio {ratio:.3}");
    assert!(ratio <= 0.35, "ratio {ratio}");
    // The codes are one byte a dimension, on top of a graph of the same
    // size; a row is padded to 16 bytes past a 4-byte norm at most.
    assert!(sq.memory_bytes() >= f32_graph.memory_bytes() + n * dim);
    assert!(sq.memory_bytes() <= f32_graph.memory_bytes() + n * (dim + 20) + 16 * dim + 4096);
}

#[test]
fn every_metric_has_good_recall_and_exact_scores() {
    let d = data();
    let n = 3_000;
    // Rows of different lengths, so that IP, COSINE and L2 rank differently.
    let base: Vec<f32> = d.base[..n * d.dim]
        .chunks_exact(d.dim)
        .enumerate()
        .flat_map(|(i, r)| {
            let f = 0.5 + (i % 7) as f32 * 0.25;
            r.iter().map(move |x| x * f)
        })
        .collect();
    let v = VectorsRef::f32(d.dim, &base);
    let p = HnswParams {
        m: 12,
        ef_construction: 60,
        seed: 1,
        ..Default::default()
    };
    for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
        let idx = HnswIndex::build_sq(v, metric, &p, 2, &|_| {}).expect("build");
        let mut hits = 0;
        for i in 0..d.nq() {
            let q = d.query(i);
            let got = idx.search(v, q, 10, 64, None);
            let exact = flat_search(v, metric, q, 10, None);
            assert_exact_and_ordered(metric, q, &got, |id| d.row(&base, id));
            hits += overlap(&ids(&got), &ids(&exact));
        }
        let recall = hits as f64 / (d.nq() * 10) as f64;
        eprintln!("{metric:?} hnsw_sq recall {recall}");
        assert!(recall >= 0.9, "{metric:?} recall {recall}");
    }
    for metric in [Metric::Hamming, Metric::Jaccard, Metric::Bm25] {
        assert!(HnswIndex::build_sq(v, metric, &p, 1, &|_| {}).is_err());
    }
}

#[test]
fn bytes_round_trip_gives_identical_results() {
    let d = data();
    let bytes = d.index.to_bytes();
    assert_eq!(&bytes[8..12], &2u32.to_le_bytes(), "format version 2");
    let back = HnswIndex::from_bytes(&bytes).expect("round trip");
    assert!(back.is_quantized());
    assert_eq!(back.memory_bytes(), d.index.memory_bytes());
    assert_eq!(back.to_bytes(), bytes);
    for i in 0..d.nq() {
        assert_eq!(
            back.search(d.vectors(), d.query(i), 10, 40, None),
            d.index.search(d.vectors(), d.query(i), 10, 40, None)
        );
    }
    // Truncations and bit flips anywhere are refused.
    for len in [0, 40, bytes.len() / 2, bytes.len() - 300, bytes.len() - 1] {
        assert!(HnswIndex::from_bytes(&bytes[..len]).is_err(), "len {len}");
    }
    for pos in [9, 12, bytes.len() / 3, bytes.len() - 200, bytes.len() - 9] {
        let mut b = bytes.clone();
        b[pos] ^= 0x10;
        assert!(HnswIndex::from_bytes(&b).is_err(), "flip at {pos}");
    }
}

fn fixture_rows() -> Vec<f32> {
    let mut s: u64 = 0x1234_5678;
    (0..300 * 8)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

/// The parameters the fixture files were built with (one thread).
fn fixture_params() -> HnswParams {
    HnswParams {
        m: 6,
        ef_construction: 40,
        seed: 11,
        yield_every: None,
        construction: quiver_index::Construction::Exact,
    }
}

/// `new` and `old` encode the same graph of `n` nodes built with `m`: equal
/// bytes but for the checksum and the words after each level-0 count, which
/// are 0 in `new`.
fn same_but_stale_words(new: &[u8], old: &[u8], n: usize, m: usize) {
    assert_eq!(new.len(), old.len());
    // Magic, 8 header words, the level-0 length; then n rows of 2m + 1 words.
    let start = 8 + 8 * 4 + 8;
    let end = start + n * (2 * m + 1) * 4;
    assert_eq!(new[..start], old[..start]);
    assert_eq!(new[end..new.len() - 8], old[end..old.len() - 8]);
    let words = |b: &[u8]| -> Vec<u32> {
        (b[start..end].chunks_exact(4))
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect()
    };
    let (a, b) = (words(new), words(old));
    let mut stale = 0;
    for (ra, rb) in a.chunks_exact(2 * m + 1).zip(b.chunks_exact(2 * m + 1)) {
        let cnt = rb[0] as usize;
        assert_eq!(ra[..=cnt], rb[..=cnt], "count and links");
        assert!(ra[cnt + 1..].iter().all(|&w| w == 0));
        stale += rb[cnt + 1..].iter().filter(|&&w| w != 0).count();
    }
    assert!(stale > 0, "the fixture has stale words");
}

#[test]
fn an_index_written_by_the_previous_release_opens_unchanged() {
    assert_eq!(&V1_BLOB[8..12], &1u32.to_le_bytes());
    let old = HnswIndex::from_bytes(V1_BLOB).expect("version 1 decodes");
    assert!(!old.is_quantized());
    assert_eq!((old.len(), old.dim(), old.metric()), (300, 8, Metric::L2));
    // Re-encoding gives the same bytes, nothing added to version 1, but for
    // words after a node's level-0 link count: not links, now written as 0.
    let again = old.to_bytes();
    same_but_stale_words(&again, V1_BLOB, 300, 6);
    assert_eq!(
        HnswIndex::from_bytes(&again).expect("decodes").to_bytes(),
        again
    );
    // The f32 build is unchanged: one thread builds the very same graph.
    let rows = fixture_rows();
    let v = VectorsRef::f32(8, &rows);
    let p = fixture_params();
    let fresh = HnswIndex::build(v, Metric::L2, &p, 1, &|_| {}).expect("build");
    assert_eq!(fresh.to_bytes(), again);
    let mut hits = 0;
    for q in rows.chunks_exact(8).take(50) {
        let got = old.search(v, q, 5, 20, None);
        hits += overlap(&ids(&got), &ids(&flat_search(v, Metric::L2, q, 5, None)));
    }
    assert!(hits >= 240, "old graph recall {hits}/250");
}

#[test]
fn an_hnsw_sq_index_written_by_the_previous_release_opens_unchanged() {
    assert_eq!(&V2_SQ_BLOB[8..12], &2u32.to_le_bytes());
    let old = HnswIndex::from_bytes(V2_SQ_BLOB).expect("version 2 decodes");
    assert!(old.is_quantized());
    assert_eq!((old.len(), old.dim(), old.metric()), (300, 8, Metric::L2));
    // Written back byte for byte, and one thread still builds the same graph.
    assert_eq!(old.to_bytes(), V2_SQ_BLOB);
    let rows = fixture_rows();
    let v = VectorsRef::f32(8, &rows);
    let p = fixture_params();
    let fresh = HnswIndex::build_sq(v, Metric::L2, &p, 1, &|_| {}).expect("build");
    assert_eq!(fresh.to_bytes(), V2_SQ_BLOB);
    let even = FnFilter(|id: u32| id.is_multiple_of(2));
    let mut hits = 0;
    for q in rows.chunks_exact(8).take(50) {
        let got = old.search(v, q, 5, 20, None);
        assert_eq!(got, fresh.search(v, q, 5, 20, None));
        hits += overlap(&ids(&got), &ids(&flat_search(v, Metric::L2, q, 5, None)));
        let filtered = old.search(v, q, 5, 20, Some(&even));
        assert!(filtered.iter().all(|h| h.id % 2 == 0));
    }
    assert!(hits >= 240, "old graph recall {hits}/250");
}

#[test]
fn tiny_empty_and_bad_inputs() {
    let empty = HnswIndex::build_sq(
        VectorsRef::f32(4, &[]),
        Metric::Cosine,
        &HnswParams::default(),
        2,
        &|_| {},
    )
    .expect("empty");
    assert!(empty.is_empty() && empty.is_quantized());
    assert!(
        empty
            .search(VectorsRef::f32(4, &[]), &[0.0; 4], 5, 10, None)
            .is_empty()
    );
    let back = HnswIndex::from_bytes(&empty.to_bytes()).expect("empty round trip");
    assert!(back.is_empty() && back.is_quantized());
    let v = [1.0f32, 0.0, 0.0, 1.0, 0.7, 0.7, 0.0, 0.0];
    for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
        let idx = HnswIndex::build_sq(
            VectorsRef::f32(2, &v),
            metric,
            &HnswParams::default(),
            3,
            &|_| {},
        )
        .expect("tiny");
        let got = idx.search(VectorsRef::f32(2, &v), &[1.0, 0.1], 4, 10, None);
        let exact = flat_search(VectorsRef::f32(2, &v), metric, &[1.0, 0.1], 4, None);
        assert_eq!(got, exact, "{metric:?}");
    }
    let d = data();
    assert!(
        d.index
            .search(d.vectors(), &[0.0; 3], 10, 64, None)
            .is_empty()
    );
    let few = VectorsRef::f32(d.dim, &d.base[..100]);
    assert!(d.index.search(few, d.query(0), 10, 64, None).is_empty());
    assert_eq!(
        d.index.search(d.vectors(), d.query(0), 200, 10, None).len(),
        200
    );
    assert!(
        HnswIndex::build_sq(
            VectorsRef::f32(2, &[1.0; 7]),
            Metric::L2,
            &HnswParams::default(),
            1,
            &|_| {}
        )
        .is_err()
    );
}

#[test]
fn a_quantized_scan_finds_the_exact_top_k_with_exact_scores() {
    let d = data();
    let v = d.vectors();
    let n = v.len();
    for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
        let codes = QuantizedRows::train(v, metric).expect("train");
        assert_eq!((codes.len(), codes.metric()), (n, metric));
        let mut hits = 0;
        for i in 0..d.nq() {
            let q = d.query(i);
            let got = codes.search(v, q, 10, 0, None, 0..n);
            let exact = flat_search(v, metric, q, 10, None);
            assert_eq!(got.len(), 10);
            assert_exact_and_ordered(metric, q, &got, |id| d.row(&d.base, id));
            hits += overlap(&ids(&got), &ids(&exact));
        }
        let recall = hits as f64 / (d.nq() * 10) as f64;
        eprintln!("{metric:?} quantized scan recall {recall}");
        assert!(recall >= 0.99, "{metric:?} recall {recall}");
    }
    // A filter and a range of rows are honoured: the answer is the exact
    // top-10 of the allowed rows of the range.
    let codes = QuantizedRows::train(v, Metric::L2).expect("train");
    let even = FnFilter(|id: u32| id.is_multiple_of(2));
    let mut hits = 0;
    for i in 0..d.nq() {
        let q = d.query(i);
        let got = codes.search(v, q, 10, 0, Some(&even), 1_000..5_000);
        assert!(
            got.iter()
                .all(|h| h.id % 2 == 0 && (1_000..5_000).contains(&h.id))
        );
        let inside = FnFilter(|id: u32| id.is_multiple_of(2) && (1_000..5_000).contains(&id));
        hits += overlap(
            &ids(&got),
            &ids(&flat_search(v, Metric::L2, q, 10, Some(&inside))),
        );
    }
    assert!(
        hits as f64 >= 0.99 * (d.nq() * 10) as f64,
        "filtered hits {hits}"
    );
    // Vectors or a query that do not match the codes give nothing.
    assert!(
        codes
            .search(v, &d.query(0)[1..], 10, 0, None, 0..n)
            .is_empty()
    );
    let short = VectorsRef::f32(d.dim, &d.base[..d.dim * 100]);
    assert!(
        codes
            .search(short, d.query(0), 10, 0, None, 0..n)
            .is_empty()
    );
    assert!(QuantizedRows::train(v, Metric::Hamming).is_err());
}
