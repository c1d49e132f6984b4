//! The shard view's bookkeeping: live mutations, hand-offs, compaction
//! swaps, digests.

use super::*;
use crate::search::Depth;
use quiver_api::IndexKind;
use quiver_common::{CollectionSchema, Metric, RowBatch};
use quiver_storage::{SegmentData, encode_segment};

fn info() -> CollectionInfo {
    CollectionInfo {
        id: 1,
        schema: CollectionSchema::simple("c", 2),
        shards: 1,
        metric: Metric::L2,
        index: IndexKind::Flat,
        index_version: 0,
        field_indexes: Default::default(),
        scalar_indexes: Default::default(),
    }
}

fn upsert(ts: Timestamp, pks: &[i64]) -> Mutation {
    Mutation::Upsert {
        ts,
        rows: RowBatch {
            pks: pks.iter().map(|p| PrimaryKey::Int(*p)).collect(),
            vectors: quiver_common::Vectors::f32(
                2,
                pks.iter().flat_map(|p| [*p as f32, ts as f32]).collect(),
            ),
            columns: vec![],
        },
    }
}

fn delete(ts: Timestamp, pks: &[i64]) -> Mutation {
    Mutation::Delete {
        ts,
        pks: pks.iter().map(|p| PrimaryKey::Int(*p)).collect(),
    }
}

/// A segment holding `rows` (pk, ts) and `tombstones`, cut at `max_ts`.
fn segment(
    id: u64,
    rows: &[(i64, Timestamp)],
    tombstones: &[(i64, Timestamp)],
    max_ts: Timestamp,
) -> Arc<LoadedSegment> {
    let data = SegmentData {
        segment_id: id,
        pks: rows.iter().map(|(p, _)| PrimaryKey::Int(*p)).collect(),
        timestamps: rows.iter().map(|(_, t)| *t).collect(),
        vectors: quiver_common::Vectors::f32(
            2,
            rows.iter()
                .flat_map(|(p, t)| [*p as f32, *t as f32])
                .collect(),
        ),
        columns: vec![],
        tombstones: tombstones
            .iter()
            .map(|(p, t)| (PrimaryKey::Int(*p), *t))
            .collect(),
        max_ts,
        wal_seq: id,
    };
    let info = SegmentInfo {
        id,
        rows: rows.len() as u64,
        max_ts,
        wal_seq: id,
        has_index: false,
        index_version: 0,
    };
    let data = MappedSegment::from_bytes(encode_segment(&data)).expect("segment");
    Arc::new(LoadedSegment::new(info, data, None))
}

/// Live rows as (pk, ts), sorted.
fn live(v: &ShardView) -> Vec<(i64, Timestamp)> {
    let mut out: Vec<_> = v
        .pk_index
        .iter()
        .map(|(pk, loc)| {
            let PrimaryKey::Int(p) = pk else {
                panic!("int")
            };
            (*p, v.ts_of(*loc))
        })
        .collect();
    out.sort_unstable();
    let alive = v.sealed.iter().map(|s| s.live()).sum::<usize>() + v.growing.live;
    assert_eq!(alive, out.len(), "alive rows and the key index disagree");
    out
}

#[test]
fn live_mutations_keep_the_last_write_of_each_key() {
    let mut v = ShardView::new(info());
    v.apply(&upsert(10, &[1, 2, 3]));
    v.apply(&upsert(11, &[2]));
    v.apply(&delete(12, &[3, 99]));
    assert_eq!(live(&v), vec![(1, 10), (2, 11)]);
    assert_eq!(v.applied_ts, 12);
}

#[test]
fn hand_off_moves_rows_to_the_segment_and_keeps_later_writes() {
    let mut v = ShardView::new(info());
    v.apply(&upsert(10, &[1, 2, 3]));
    v.apply(&upsert(11, &[2]));
    v.apply(&delete(12, &[3]));
    // Written after the cut at ts 12: must survive the hand-off.
    v.apply(&upsert(13, &[1, 4]));
    v.apply(&delete(14, &[2]));
    // The sealed cut: final versions up to ts 12.
    v.hand_off(segment(7, &[(1, 10), (2, 11)], &[(3, 12)], 12));
    assert_eq!(live(&v), vec![(1, 13), (4, 13)]);
    assert_eq!(v.growing.len(), 2, "only rows after the cut stay growing");
    assert_eq!(
        v.sealed[0].live(),
        0,
        "both segment rows were superseded later"
    );
}

/// Rows of every sealed slot agree with the key index, slot by slot.
fn check_slots(v: &ShardView) {
    for (pk, loc) in &v.pk_index {
        if let Loc::Sealed { seg, row } = loc {
            let s = &v.sealed[*seg as usize];
            assert!(s.alive.contains(*row), "{pk:?} points at a dead row");
            assert_eq!(s.seg.data.pk(*row as usize), pk);
        }
    }
}

#[test]
fn a_compaction_swap_keeps_exactly_the_live_rows() {
    let mut v = ShardView::new(info());
    v.add_initial_segment(segment(1, &[(1, 10), (2, 10), (3, 10)], &[], 10));
    v.add_initial_segment(segment(2, &[(2, 20), (4, 20)], &[(3, 20)], 20));
    v.add_initial_segment(segment(3, &[(5, 30)], &[], 30));
    // Written while the compaction ran: must win over the compacted copy.
    v.apply(&upsert(40, &[4]));
    v.apply(&delete(41, &[1]));
    assert_eq!(live(&v), vec![(2, 20), (4, 40), (5, 30)]);
    // Compacting 1 and 2: the live versions at the time (1@10, 2@20,
    // 4@20) and the tombstone of 3.
    let out = segment(9, &[(1, 10), (2, 20), (4, 20)], &[(3, 20)], 20);
    assert!(v.swap(&[1, 2], Some(out)));
    assert_eq!(live(&v), vec![(2, 20), (4, 40), (5, 30)]);
    let ids: Vec<u64> = v.sealed.iter().map(|s| s.seg.info.id).collect();
    assert_eq!(ids, vec![9, 3]);
    check_slots(&v);
    // A segment whose every row is dead goes without an output.
    v.apply(&upsert(50, &[5]));
    assert!(v.swap(&[3], None));
    assert_eq!(live(&v), vec![(2, 20), (4, 40), (5, 50)]);
    check_slots(&v);
}

#[test]
fn a_graph_swap_of_the_same_rows_keeps_liveness_and_keys() {
    let mut v = ShardView::new(info());
    v.add_initial_segment(segment(1, &[(1, 10), (2, 10)], &[], 10));
    v.add_initial_segment(segment(2, &[(3, 20), (4, 20)], &[(1, 20)], 20));
    v.apply(&delete(30, &[3]));
    v.apply(&upsert(31, &[4]));
    let before = live(&v);
    // Segment 2 again, with its graph: the same rows and tombstone.
    assert!(v.swap(&[2], Some(segment(9, &[(3, 20), (4, 20)], &[(1, 20)], 20))));
    assert_eq!(live(&v), before);
    let ids: Vec<u64> = v.sealed.iter().map(|s| s.seg.info.id).collect();
    assert_eq!(ids, vec![1, 9]);
    assert_eq!(
        v.sealed[1].live(),
        0,
        "3 deleted, 4 rewritten: both stay dead"
    );
    check_slots(&v);
    // A later write of a key in it still kills its row there.
    v.apply(&upsert(40, &[2]));
    check_slots(&v);
    assert_eq!(live(&v), vec![(2, 40), (4, 31)]);
}

#[test]
fn a_swap_whose_output_lacks_a_live_row_changes_nothing() {
    let mut v = ShardView::new(info());
    v.add_initial_segment(segment(1, &[(1, 10), (2, 10)], &[], 10));
    let before = live(&v);
    assert!(!v.swap(&[1], Some(segment(9, &[(1, 10)], &[], 10))));
    assert!(!v.swap(&[1], None));
    assert_eq!(live(&v), before);
    assert_eq!(v.sealed.len(), 1);
}

#[test]
fn removing_a_middle_slot_moves_the_last_one_with_its_keys() {
    let mut v = ShardView::new(info());
    v.add_initial_segment(segment(1, &[(1, 10)], &[], 10));
    v.add_initial_segment(segment(2, &[(2, 20)], &[], 20));
    v.add_initial_segment(segment(3, &[(3, 30)], &[], 30));
    v.apply(&delete(40, &[1]));
    assert!(v.swap(&[1], None));
    check_slots(&v);
    assert_eq!(live(&v), vec![(2, 20), (3, 30)]);
}

#[test]
fn hand_off_repoints_rows_still_live() {
    let mut v = ShardView::new(info());
    v.apply(&upsert(10, &[1, 2]));
    v.apply(&upsert(11, &[3]));
    v.hand_off(segment(7, &[(1, 10), (2, 10)], &[], 10));
    assert_eq!(live(&v), vec![(1, 10), (2, 10), (3, 11)]);
    assert!(matches!(
        v.pk_index[&PrimaryKey::Int(1)],
        Loc::Sealed { seg: 0, .. }
    ));
    assert!(matches!(
        v.pk_index[&PrimaryKey::Int(3)],
        Loc::Growing { row: 0 }
    ));
    assert_eq!(v.growing.live, 1);
}

#[test]
fn loading_from_scratch_applies_segments_in_order_with_tombstones() {
    let mut v = ShardView::new(info());
    v.add_initial_segment(segment(1, &[(1, 10), (2, 10), (3, 10)], &[], 10));
    // Segment 2: 2 replaced, 3 deleted, 4 deleted before it ever existed.
    v.add_initial_segment(segment(2, &[(2, 20)], &[(3, 21), (4, 22)], 22));
    v.apply(&upsert(30, &[3]));
    assert_eq!(live(&v), vec![(1, 10), (2, 20), (3, 30)]);
    assert_eq!(v.applied_ts, 30);
}

#[test]
fn large_growing_and_unindexed_sealed_sets_are_scanned_in_chunks_with_the_same_answer() {
    use crate::search::Projection;
    let mut v = ShardView::new(info());
    // 40,000 rows (over the parallel threshold), vector (pk, ts): the
    // nearest rows to (30000.2, 1) are 30000, 30001, 29999, ...; a few
    // deleted ones (30000, 16384 at a chunk edge) must not come back.
    let pks: Vec<i64> = (0..40_000).collect();
    v.apply(&upsert(1, &pks));
    v.apply(&delete(2, &[30_000, 16_384]));
    let proj = Projection {
        fields: &[],
        with_vectors: false,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("pool");
    let hits = v.search_one(&pool, &[30_000.2, 1.0], Depth::new(4, 16), None, &proj);
    let got: Vec<PrimaryKey> = hits.into_iter().map(|h| h.pk).collect();
    let want: Vec<PrimaryKey> = [30_001, 29_999, 30_002, 29_998]
        .into_iter()
        .map(PrimaryKey::Int)
        .collect();
    assert_eq!(got, want);
    let edge = v.search_one(&pool, &[16_384.0, 1.0], Depth::new(3, 16), None, &proj);
    let got: Vec<PrimaryKey> = edge.into_iter().map(|h| h.pk).collect();
    assert_eq!(
        got,
        [16_383, 16_385, 16_382].map(PrimaryKey::Int).to_vec(),
        "across the chunk edge"
    );
    // The same rows handed off to a sealed segment without a graph (as
    // sealed while builds are behind): the same answers.
    let rows: Vec<(i64, Timestamp)> = pks.iter().map(|p| (*p, 1)).collect();
    v.hand_off(segment(9, &rows, &[], 1));
    assert_eq!((v.growing.live, v.sealed[0].live()), (0, 39_998));
    let hits = v.search_one(&pool, &[30_000.2, 1.0], Depth::new(4, 16), None, &proj);
    let sealed: Vec<PrimaryKey> = hits.into_iter().map(|h| h.pk).collect();
    assert_eq!(sealed, want);
    let edge = v.search_one(&pool, &[16_384.0, 1.0], Depth::new(3, 16), None, &proj);
    let sealed: Vec<PrimaryKey> = edge.into_iter().map(|h| h.pk).collect();
    assert_eq!(
        sealed,
        [16_383, 16_385, 16_382].map(PrimaryKey::Int).to_vec()
    );
}

#[test]
fn digests_agree_across_growing_sealed_and_cached_rows() {
    let req = quiver_api::DigestRequest {
        shard: quiver_api::ShardId {
            collection_id: 1,
            shard: 0,
        },
        guarantee_ts: 0,
        buckets: 4,
        detail_buckets: vec![],
        pks: vec![],
        pks_only: false,
    };
    let mut v = ShardView::new(info());
    v.apply(&upsert(10, &[1, 2, 3]));
    v.apply(&upsert(11, &[4]));
    let growing = v.digest(&req);
    assert_eq!(growing.rows, 4);
    // The same rows, now read from a segment (and hashes cached before
    // the hand-off dropped): the same digest.
    v.hand_off(segment(7, &[(1, 10), (2, 10), (3, 10)], &[], 10));
    assert_eq!(v.digest(&req), growing);
    // A rewritten row changes it; a view built from scratch with the
    // same final rows agrees.
    v.apply(&upsert(12, &[1]));
    let changed = v.digest(&req);
    assert_eq!(changed.rows, 4);
    assert_ne!(changed, growing);
    let mut fresh = ShardView::new(info());
    fresh.add_initial_segment(segment(8, &[(1, 10), (2, 10), (3, 10)], &[], 10));
    fresh.apply(&upsert(11, &[4]));
    fresh.apply(&upsert(12, &[1]));
    fresh.apply(&upsert(13, &[9]));
    fresh.apply(&delete(14, &[9]));
    assert_eq!(fresh.digest(&req), changed);
}

#[test]
fn a_hand_off_in_steps_keeps_each_live_key_once_between_steps() {
    // Keys 0..40 written at ts 10, 20..30 again at 11, 35..40 deleted at
    // 12: the seal cut at 12 holds 35 rows. Then 5..8 written again at 13,
    // after the cut.
    let history = |v: &mut ShardView| {
        v.apply(&upsert(10, &(0..40).collect::<Vec<_>>()));
        v.apply(&upsert(11, &(20..30).collect::<Vec<_>>()));
        v.apply(&delete(12, &(35..40).collect::<Vec<_>>()));
        v.apply(&upsert(13, &[5, 6, 7]));
    };
    let rows: Vec<(i64, Timestamp)> = (0..35)
        .map(|p| (p, if (20..30).contains(&p) { 11 } else { 10 }))
        .collect();
    let tombstones: Vec<(i64, Timestamp)> = (35..40).map(|p| (p, 12)).collect();
    let seal = || segment(7, &rows, &tombstones, 12);
    let mut whole = ShardView::new(info());
    history(&mut whole);
    let before = live(&whole);
    let mut stepped = ShardView::new(info());
    history(&mut stepped);
    let mut h = stepped.begin_hand_off(seal());
    assert_eq!(live(&stepped), before, "the segment joins with no row live");
    // Writes between steps: a key already handed over (2), one not yet
    // (33), and a delete of one not yet (31).
    let between = [upsert(20, &[2]), upsert(21, &[33]), delete(22, &[31])];
    // The live keys after the history and the first `j` writes between
    // steps: what a hand-off, whole or in steps, must never change.
    let expected = |j: usize| {
        let mut v = ShardView::new(info());
        history(&mut v);
        for m in &between[..j] {
            v.apply(m);
        }
        live(&v)
    };
    let mut steps = 0;
    while !stepped.hand_off_step(&mut h, 4) {
        steps += 1;
        check_slots(&stepped);
        if let Some(m) = between.get(steps - 1) {
            stepped.apply(m);
        }
        let j = steps.min(between.len());
        assert_eq!(live(&stepped), expected(j), "after step {steps}");
    }
    assert!(steps >= 8, "35 rows 4 at a time: {steps} steps");
    whole.hand_off(seal());
    for m in &between {
        whole.apply(m);
    }
    assert_eq!(live(&stepped), live(&whole));
    check_slots(&stepped);
    assert_eq!(stepped.growing.len(), whole.growing.len());
    assert_eq!(stepped.growing.live, whole.growing.live);
    assert_eq!(stepped.sealed[0].live(), whole.sealed[0].live());
}
