//! Searching sealed segments: one loaded without its graph is scanned over
//! 8-bit codes ([`LoadedSegment::quantize`]) and still answers with exact
//! scores; one with a graph is walked unfiltered while all its rows live,
//! and what a search costs is estimated from how it will read each segment.

use std::sync::Arc;

use quiver_api::{CollectionInfo, IndexKind, SegmentInfo};
use quiver_common::{CollectionSchema, Metric, Mutation, PrimaryKey, VectorsRef};
use quiver_index::{HnswIndex, HnswParams, flat_search, score};
use quiver_storage::{MappedSegment, SegmentData, encode_segment};

use crate::search::{Depth, Projection};
use crate::view::{LoadedSegment, QUANTIZED_SCAN_ROWS, ShardView};

const DIM: usize = 16;

pub(crate) fn info(index: IndexKind) -> CollectionInfo {
    CollectionInfo {
        id: 1,
        schema: CollectionSchema::simple("c", DIM as u32),
        shards: 1,
        metric: Metric::L2,
        index,
        index_version: 0,
        field_indexes: Default::default(),
        scalar_indexes: Default::default(),
    }
}

/// Pseudo-random values in [-0.5, 0.5), each dimension on its own scale.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n * DIM)
        .map(|i| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * (1.0 + (i % DIM) as f32 * 0.2)
        })
        .collect()
}

/// A segment of `n` rows with keys `0..n`, not indexed.
fn segment(n: usize, vectors: &[f32]) -> Arc<LoadedSegment> {
    segment_with(n, vectors, None)
}

fn segment_with(n: usize, vectors: &[f32], index: Option<HnswIndex>) -> Arc<LoadedSegment> {
    let data = SegmentData {
        segment_id: 7,
        pks: (0..n as i64).map(PrimaryKey::Int).collect(),
        timestamps: vec![1; n],
        vectors: quiver_common::Vectors::f32(DIM, vectors.to_vec()),
        columns: vec![],
        tombstones: vec![],
        max_ts: 1,
        wal_seq: 1,
    };
    let info = SegmentInfo {
        id: 7,
        rows: n as u64,
        max_ts: 1,
        wal_seq: 1,
        has_index: index.is_some(),
        index_version: 0,
    };
    let data = MappedSegment::from_bytes(encode_segment(&data)).expect("segment");
    Arc::new(LoadedSegment::new(info, data, index))
}

/// A view of one segment holding `vectors`, with a graph of `m` links.
fn indexed_view(vectors: &[f32], m: usize, ef_construction: usize) -> ShardView {
    let params = HnswParams {
        m,
        ef_construction,
        ..Default::default()
    };
    let all = VectorsRef::f32(DIM, vectors);
    let graph = HnswIndex::build(all, Metric::L2, &params, 1, &|_| {}).expect("graph");
    let mut view = ShardView::new(info(IndexKind::Hnsw { m, ef_construction }));
    view.add_initial_segment(segment_with(vectors.len() / DIM, vectors, Some(graph)));
    view
}

fn pool() -> rayon::ThreadPool {
    (rayon::ThreadPoolBuilder::new().num_threads(2).build()).expect("pool")
}

const NO_FIELDS: Projection<'static> = Projection {
    fields: &[],
    with_vectors: false,
};

#[test]
fn a_graph_is_walked_unfiltered_while_every_row_lives_and_never_returns_a_deleted_row() {
    let vectors = values(3_000, 11);
    let mut view = indexed_view(&vectors, 8, 64);
    let graph = view.sealed[0].seg.index.as_ref().expect("graph");
    let all = VectorsRef::f32(DIM, &vectors);
    let expected: Vec<Vec<u32>> = (values(20, 3).chunks_exact(DIM))
        .map(|q| {
            graph
                .search(all, q, 10, 40, None)
                .iter()
                .map(|h| h.id)
                .collect()
        })
        .collect();
    assert!(view.sealed[0].select(None, 0).graph_filter().is_none());
    let keys = |view: &ShardView, q: &[f32]| -> Vec<u32> {
        (view
            .search_one(&pool(), q, Depth::new(10, 40), None, &NO_FIELDS)
            .iter())
        .map(|h| match h.pk {
            PrimaryKey::Int(k) => k as u32,
            _ => panic!("int keys"),
        })
        .collect()
    };
    let queries = values(20, 3);
    for (q, want) in queries.chunks_exact(DIM).zip(&expected) {
        assert_eq!(&keys(&view, q), want, "the same walk as the graph's own");
    }
    // Deleting each query's best row: the segment is filtered from then on.
    let dead: Vec<PrimaryKey> = (expected.iter())
        .map(|w| PrimaryKey::Int(i64::from(w[0])))
        .collect();
    view.apply(&Mutation::Delete { ts: 2, pks: dead });
    assert!(view.sealed[0].select(None, 0).graph_filter().is_some());
    for (q, want) in queries.chunks_exact(DIM).zip(&expected) {
        let got = keys(&view, q);
        assert_eq!(got.len(), 10);
        assert!(!got.contains(&want[0]), "a deleted row came back");
    }
}

#[test]
fn search_work_counts_a_walk_per_graph_and_every_row_of_a_scan() {
    let n = 3_000;
    let vectors = values(n, 13);
    let mut view = indexed_view(&vectors, 8, 32);
    // ef (at least k) × 2m rows, twice under a filter, per query.
    assert_eq!(
        view.search_work(1, Depth::new(10, 50), false),
        50 * 16 * DIM
    );
    assert_eq!(
        view.search_work(1, Depth::new(60, 50), false),
        60 * 16 * DIM
    );
    assert_eq!(
        view.search_work(3, Depth::new(10, 50), true),
        3 * 2 * 50 * 16 * DIM
    );
    // Never more than the segment's rows; a segment without a graph is
    // scanned whole.
    assert_eq!(view.search_work(1, Depth::new(10, 1_000), false), n * DIM);
    view.add_initial_segment(segment(500, &vectors[..500 * DIM]));
    assert_eq!(
        view.search_work(1, Depth::new(10, 50), false),
        (50 * 16 + 500) * DIM
    );
}

#[test]
fn an_unindexed_segment_is_scanned_over_codes_and_answers_with_exact_scores() {
    let n = QUANTIZED_SCAN_ROWS + 3_000;
    let vectors = values(n, 5);
    let hnsw = info(IndexKind::Hnsw {
        m: 16,
        ef_construction: 100,
    });
    let seg = segment(n, &vectors);
    seg.quantize(&hnsw);
    let codes = seg.quantized(Metric::L2).expect("codes made at load");
    assert_eq!(codes.len(), n);
    assert!(seg.quantized(Metric::Ip).is_none(), "codes are per metric");
    // A FLAT collection promises exact answers, and small segments are
    // scanned exactly: no codes.
    let flat = segment(n, &vectors);
    flat.quantize(&info(IndexKind::Flat));
    assert!(flat.quantized(Metric::L2).is_none());
    let small = segment(1_000, &vectors[..1_000 * DIM]);
    small.quantize(&hnsw);
    assert!(small.quantized(Metric::L2).is_none());

    let mut view = ShardView::new(hnsw);
    view.add_initial_segment(seg);
    let pool = pool();
    let proj = NO_FIELDS;
    let all = VectorsRef::f32(DIM, &vectors);
    let queries = values(40, 99);
    let scanned = || crate::search::SCANNED_CODES.get();
    let before = scanned();
    let mut hits = 0;
    for q in queries.chunks_exact(DIM) {
        let got = view.search_one(&pool, q, Depth::new(10, 64), None, &proj);
        assert_eq!(got.len(), 10);
        let exact = flat_search(all, Metric::L2, q, 10, None);
        for h in &got {
            let PrimaryKey::Int(row) = h.pk else {
                panic!("int keys")
            };
            let row = &vectors[row as usize * DIM..(row as usize + 1) * DIM];
            assert_eq!(h.score, score(Metric::L2, q, row), "exact score");
            hits += usize::from(
                exact
                    .iter()
                    .any(|e| PrimaryKey::Int(i64::from(e.id)) == h.pk),
            );
        }
    }
    assert!(hits >= 396, "recall@10 {hits} of 400 against an exact scan");
    // Every search read the segment's codes (no other test makes codes).
    assert_eq!(scanned() - before, 40 * n as u64);
}

#[test]
fn an_8_bit_graph_re_ranks_as_deep_as_a_search_asks() {
    let vectors = values(4_000, 13);
    let (m, ef_construction) = (8, 64);
    let params = HnswParams {
        m,
        ef_construction,
        ..Default::default()
    };
    let all = VectorsRef::f32(DIM, &vectors);
    let graph = HnswIndex::build_sq(all, Metric::L2, &params, 1, &|_| {}).expect("graph");
    let mut view = ShardView::new(info(IndexKind::HnswSq { m, ef_construction }));
    view.add_initial_segment(segment_with(4_000, &vectors, Some(graph)));
    let graph = view.sealed[0].seg.index.as_ref().expect("graph");
    let pool = pool();
    let keys = |depth: Depth, q: &[f32]| -> Vec<PrimaryKey> {
        let hits = view.search_one(&pool, q, depth, None, &NO_FIELDS);
        hits.into_iter().map(|h| h.pk).collect()
    };
    let (mut deeper, queries) = (0, values(30, 21));
    for q in queries.chunks_exact(DIM) {
        let want: Vec<PrimaryKey> = (graph.search_refined(all, q, 10, 10, 200, None).iter())
            .map(|h| PrimaryKey::Int(i64::from(h.id)))
            .collect();
        let deep = keys(
            Depth {
                k: 10,
                ef: 10,
                rerank: 200,
            },
            q,
        );
        assert_eq!(deep, want);
        deeper += usize::from(deep != keys(Depth::new(10, 10), q));
    }
    assert!(deeper > 0, "re-ranking 200 rows changed no answer");
}
