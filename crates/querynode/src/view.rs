//! The queryable state of one shard: sealed segments, growing rows, and a
//! primary-key index that makes the last write of each key the only live row.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use quiver_api::{CollectionInfo, ScalarIndexKind, SegmentInfo, is_json_path_key};
use quiver_common::{Mutation, PrimaryKey, Timestamp};
use quiver_index::{Bitset, HnswIndex, QuantizedRows};
use quiver_storage::MappedSegment;

use crate::built::When;
use crate::growing::Growing;
use crate::warm::WarmKeys;

/// A sealed segment as loaded (shared by every view that holds it).
pub(crate) struct LoadedSegment {
    pub info: SegmentInfo,
    pub data: MappedSegment,
    pub index: Option<HnswIndex>,
    /// Digest hashes of every row, computed by the first digest.
    pub row_hashes: std::sync::OnceLock<Vec<u64>>,
    /// Rows by value of the columns filters have named (`terms.rs`).
    pub terms: crate::terms::TermIndexes,
    /// Rows in value order of the number columns ranges have named
    /// (`sorted.rs`).
    pub sorted: crate::sorted::SortedIndexes,
    /// Inverted indexes of the sparse columns searches have named
    /// (`sparse.rs`).
    pub sparse: crate::sparse::SparseIndexes,
    /// The values of JSON paths, one column per path keyed by it
    /// (`paths.rs`): declared JSON path indexes' as the segment loads, and
    /// those filters have tested.
    pub paths: crate::paths::PathColumns,
    /// 8-bit codes of the rows of a segment loaded without its graph, set
    /// as it loads ([`Self::quantize`]); dropped with the segment when its
    /// graph takes its place.
    pub codes: std::sync::OnceLock<QuantizedRows>,
}

/// A sealed segment without its graph is scanned over 8-bit codes from
/// this many rows (smaller ones are scanned exactly, in well under a
/// millisecond).
pub(crate) const QUANTIZED_SCAN_ROWS: usize = 32_768;

impl LoadedSegment {
    /// A segment as read, its graph (if built) loaded; nothing else built yet.
    pub fn new(info: SegmentInfo, data: MappedSegment, index: Option<HnswIndex>) -> Self {
        LoadedSegment {
            info,
            data,
            index,
            row_hashes: Default::default(),
            terms: Default::default(),
            sorted: Default::default(),
            sparse: Default::default(),
            paths: Default::default(),
            codes: Default::default(),
        }
    }

    /// [`Self::new`] charging the entries of JSON paths to `ledger`.
    #[cfg(test)]
    pub(crate) fn charging(
        info: SegmentInfo,
        data: MappedSegment,
        ledger: &'static crate::path_cache::Ledger,
    ) -> Self {
        LoadedSegment {
            terms: crate::terms::TermIndexes::charging(ledger),
            sorted: crate::sorted::SortedIndexes::charging(ledger),
            paths: crate::paths::PathColumns::charging(ledger),
            ..Self::new(info, data, None)
        }
    }

    /// Makes the 8-bit codes a search scans while the segment has no graph
    /// (sealed while builds were behind): a quarter of the bytes of its
    /// f32 vectors, the best `refine(k)` rows re-ranked with them. Only for
    /// a collection searched through a graph index (a FLAT index promises
    /// an exact answer) and a metric the codes support.
    pub fn quantize(&self, info: &CollectionInfo) {
        let graph_kind = matches!(
            info.index,
            quiver_api::IndexKind::Hnsw { .. } | quiver_api::IndexKind::HnswSq { .. }
        );
        let vectors = self.data.vectors();
        if self.index.is_some() || !graph_kind || vectors.len() < QUANTIZED_SCAN_ROWS {
            return;
        }
        if let Ok(codes) = QuantizedRows::train(vectors, info.metric) {
            let _ = self.codes.set(codes);
        }
    }

    /// The codes of [`Self::quantize`], when made for `metric`.
    pub fn quantized(&self, metric: quiver_common::Metric) -> Option<&QuantizedRows> {
        self.codes.get().filter(|c| c.metric() == metric)
    }

    /// The values of JSON path `key` (a filter tests it), extracted now if
    /// they were not; None when `key` is no path of a JSON column.
    pub fn path_column(&self, key: &str) -> Option<Arc<quiver_common::StoredColumn>> {
        self.paths.get(self.data.columns(), key, When::Search)
    }

    /// Builds, before the segment serves, the indexes its searches will
    /// want: those the shard's segments have built (`used`, `warm.rs`) —
    /// what its filters and sparse searches use, so a hand-off, a
    /// compaction's output or a restart does not make the next search wait
    /// for a build —
    /// and those of the collection's declared scalar indexes (a term index
    /// for INVERTED, BITMAP, Trie and AUTOINDEX, a sorted one for INVERTED,
    /// STL_SORT and AUTOINDEX, where the column's values allow).
    pub fn warm(&self, used: &WarmKeys, declared: &BTreeMap<String, ScalarIndexKind>) {
        use ScalarIndexKind::*;
        let WarmKeys {
            mut terms,
            mut sorted,
            sparse,
            paths,
        } = used.clone();
        for (field, kind) in declared {
            if matches!(kind, Inverted | Bitmap | Trie | Auto) {
                terms.insert((field.clone(), None));
            }
            if matches!(kind, Inverted | StlSort | Auto) || is_json_path_key(field) {
                sorted.insert(field.clone());
            }
        }
        let columns = self.data.columns();
        // The values of each JSON path to index (declared, or indexed by
        // the shard's other segments), extracted once (`paths.rs`): its
        // indexes are built from them and filters bind to them.
        let path_keys: BTreeSet<&String> = (terms.iter().map(|(k, _)| k))
            .chain(&sorted)
            .chain(&paths)
            .filter(|k| is_json_path_key(k))
            .collect();
        // A declared index's are kept as long as the segment; those of keys
        // the shard used, within the JSON path budget (`path_cache.rs`).
        let when = |key: &str| match declared.contains_key(key) {
            true => When::Declared,
            false => When::Load,
        };
        let paths: Vec<Arc<quiver_common::StoredColumn>> = (path_keys.into_iter())
            .filter_map(|k| self.paths.get(columns, k, when(k)))
            .collect();
        let of = |key: &str| {
            if is_json_path_key(key) {
                (paths.iter().find(|c| c.name == key))
                    .map_or(&[][..], |c| std::slice::from_ref(&**c))
            } else {
                columns
            }
        };
        for key in &terms {
            self.terms.get(of(&key.0), key, when(&key.0));
        }
        for name in &sorted {
            self.sorted.build(of(name), name, when(name));
        }
        for name in &sparse {
            self.sparse.build(columns, name, When::Load);
        }
    }
}

/// A loaded segment plus which of its rows are dead in this view.
pub(crate) struct SealedSeg {
    pub seg: Arc<LoadedSegment>,
    /// Rows that are the live version of their key.
    pub alive: Bitset,
}

impl SealedSeg {
    fn new(seg: Arc<LoadedSegment>) -> Self {
        let alive = Bitset::new_full(seg.data.len());
        Self { seg, alive }
    }

    pub fn live(&self) -> usize {
        self.alive.count_ones()
    }

    fn delete(&mut self, row: u32) {
        self.alive.remove(row);
    }
}

/// Where each key's live version is. foldhash (randomly seeded, so keys a
/// client picks cannot be made to collide) hashes a key in a few
/// nanoseconds where std's SipHash takes tens: a seal looks up every key
/// of the segment under the view's write lock.
pub(crate) type PkIndex = HashMap<PrimaryKey, Loc, foldhash::fast::RandomState>;

/// Where the live version of a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loc {
    Sealed { seg: u32, row: u32 },
    Growing { row: u32 },
}

impl Loc {
    fn growing_row(self) -> Option<usize> {
        match self {
            Loc::Growing { row } => Some(row as usize),
            Loc::Sealed { .. } => None,
        }
    }
}

pub(crate) struct ShardView {
    pub info: CollectionInfo,
    pub scalar_names: Vec<String>,
    pub sealed: Vec<SealedSeg>,
    pub growing: Growing,
    pub pk_index: PkIndex,
    /// Everything with a timestamp <= this has been applied.
    pub applied_ts: Timestamp,
}

impl ShardView {
    pub fn new(info: CollectionInfo) -> Self {
        let scalar_names: Vec<String> = info
            .schema
            .column_fields()
            .map(|f| f.name.clone())
            .collect();
        let growing = Growing::new(
            info.schema.element_type(),
            info.schema.dim(),
            scalar_names.len(),
        );
        Self {
            info,
            scalar_names,
            sealed: Vec::new(),
            growing,
            pk_index: PkIndex::default(),
            applied_ts: 0,
        }
    }

    pub fn live_rows(&self) -> usize {
        self.pk_index.len()
    }

    fn ts_of(&self, loc: Loc) -> Timestamp {
        match loc {
            Loc::Sealed { seg, row } => self.sealed[seg as usize].seg.data.timestamp(row as usize),
            Loc::Growing { row } => self.growing.timestamps[row as usize],
        }
    }

    fn kill(&mut self, loc: Loc) {
        match loc {
            Loc::Sealed { seg, row } => self.sealed[seg as usize].delete(row),
            Loc::Growing { row } => self.growing.delete(row),
        }
    }

    /// Applies a live mutation (always newer than anything applied before).
    pub fn apply(&mut self, m: &Mutation) {
        match m {
            Mutation::Upsert { ts, rows } => {
                for r in 0..rows.len() {
                    let row = self.growing.push(*ts, rows, r, &self.scalar_names);
                    if let Some(old) = self
                        .pk_index
                        .insert(rows.pks[r].clone(), Loc::Growing { row })
                    {
                        self.kill(old);
                    }
                }
            }
            Mutation::Delete { pks, .. } => {
                for pk in pks {
                    if let Some(old) = self.pk_index.remove(pk) {
                        self.kill(old);
                    }
                }
            }
        }
        self.applied_ts = self.applied_ts.max(m.ts());
    }

    /// Adds a segment while loading a shard from scratch: segments come in
    /// seal order, before any growing data; a later version of a key wins.
    pub fn add_initial_segment(&mut self, seg: Arc<LoadedSegment>) {
        let si = self.sealed.len() as u32;
        let max_ts = seg.info.max_ts;
        self.sealed.push(SealedSeg::new(seg.clone()));
        let data = &seg.data;
        for row in 0..data.len() {
            let new = Loc::Sealed {
                seg: si,
                row: row as u32,
            };
            let ts = data.timestamp(row);
            match self.pk_index.get(data.pk(row)).copied() {
                Some(old) if self.ts_of(old) > ts => self.kill(new),
                Some(old) => {
                    self.kill(old);
                    self.pk_index.insert(data.pk(row).clone(), new);
                }
                None => {
                    self.pk_index.insert(data.pk(row).clone(), new);
                }
            }
        }
        for (pk, del_ts) in data.tombstones() {
            if let Some(old) = self.pk_index.get(pk).copied()
                && self.ts_of(old) < *del_ts
            {
                self.kill(old);
                self.pk_index.remove(pk);
            }
        }
        self.applied_ts = self.applied_ts.max(max_ts);
    }

    /// Hands growing rows over to a freshly sealed segment: every row of the
    /// segment was applied from the stream, so a segment row is live exactly
    /// when the key's live version is that same growing row. Growing rows up
    /// to the seal cut are then dropped. Searches never see a gap or a
    /// duplicate because this runs under the view's write lock.
    pub fn hand_off(&mut self, seg: Arc<LoadedSegment>) {
        let si = self.sealed.len() as u32;
        let cut = seg.info.max_ts;
        self.sealed.push(SealedSeg::new(seg.clone()));
        let data = &seg.data;
        // One lookup a row, the entry changed in place: the write lock is
        // held throughout (a seal of 100k rows with 30k growing after the
        // cut: 22-32 ms with a lookup and an insert of a cloned key a row
        // hashed by SipHash, 7-16 ms now).
        let stamps = &self.growing.timestamps;
        for row in 0..data.len() {
            match self.pk_index.get_mut(data.pk(row)) {
                Some(loc @ Loc::Growing { .. })
                    if loc.growing_row().map(|g| stamps[g]) == Some(data.timestamp(row)) =>
                {
                    *loc = Loc::Sealed {
                        seg: si,
                        row: row as u32,
                    };
                }
                _ => self.sealed[si as usize].delete(row as u32),
            }
        }
        let prefix = self.growing.timestamps.partition_point(|ts| *ts <= cut);
        self.growing.drop_prefix(prefix);
        // The growing rows left move down by `prefix`: their keys point at
        // them already, one row later.
        for (g, pk) in self.growing.pks.iter().enumerate() {
            if !self.growing.deleted[g] {
                let now = Loc::Growing { row: g as u32 };
                match self.pk_index.get_mut(pk) {
                    Some(loc) => *loc = now,
                    None => {
                        self.pk_index.insert(pk.clone(), now);
                    }
                }
            }
        }
    }
}

impl ShardView {
    /// Replaces sealed segments `inputs` by their compacted `output` (None:
    /// none of their rows was live). A row of the output is live exactly
    /// when its key's live version is the same version (same timestamp) in
    /// one of the inputs; rows superseded or deleted while the compaction ran
    /// stay dead. Runs under the view's write lock: no gap, no duplicate.
    /// Returns false (and changes nothing) if an input's live row is missing
    /// from the output, which a correct compaction never produces.
    pub fn swap(&mut self, inputs: &[u64], output: Option<Arc<LoadedSegment>>) -> bool {
        let mut slots: Vec<usize> = (0..self.sealed.len())
            .filter(|&i| inputs.contains(&self.sealed[i].seg.info.id))
            .collect();
        // The same rows in the same order (a sealed segment's graph built
        // after its seal): the output takes the input's place with its
        // liveness, and every key keeps its location. No key is re-pointed,
        // so the write lock is held for a moment whatever the size.
        if let ([slot], Some(out)) = (slots.as_slice(), &output) {
            let old = &self.sealed[*slot].seg.data;
            if old.pks() == out.data.pks() && old.timestamps() == out.data.timestamps() {
                let alive = self.sealed[*slot].alive.clone();
                self.sealed[*slot] = SealedSeg {
                    seg: out.clone(),
                    alive,
                };
                return true;
            }
        }
        let is_input = |loc: Option<&Loc>, slots: &[usize]| match loc {
            Some(Loc::Sealed { seg, .. }) => slots.contains(&(*seg as usize)),
            _ => false,
        };
        // Which output rows take over a live input row.
        let mut takes_over: Vec<u32> = Vec::new();
        if let Some(out) = &output {
            let data = &out.data;
            for row in 0..data.len() {
                let loc = self.pk_index.get(data.pk(row));
                if is_input(loc, &slots)
                    && let Some(loc) = loc
                    && self.ts_of(*loc) == data.timestamp(row)
                {
                    takes_over.push(row as u32);
                }
            }
        }
        let live_in_inputs: usize = slots.iter().map(|&i| self.sealed[i].live()).sum();
        if live_in_inputs != takes_over.len() {
            tracing::error!(
                ?inputs,
                live_in_inputs,
                in_output = takes_over.len(),
                "a compaction's output lacks live rows of its inputs; keeping the inputs"
            );
            return false;
        }
        let Some(keep) = slots.first().copied() else {
            // None of the inputs is here (this view was built after the swap).
            return true;
        };
        if let Some(out) = output {
            let mut seg = SealedSeg::new(out.clone());
            seg.alive = Bitset::from_ids(out.data.len(), takes_over.iter().copied());
            self.sealed[keep] = seg;
            for &row in &takes_over {
                self.pk_index.insert(
                    out.data.pk(row as usize).clone(),
                    Loc::Sealed {
                        seg: keep as u32,
                        row,
                    },
                );
            }
            slots.remove(0);
        }
        // Highest first, so the slot that moves into a freed one is never an input.
        for &slot in slots.iter().rev() {
            self.remove_slot(slot);
        }
        true
    }

    /// Removes sealed slot `slot` (its rows must all be dead); the last slot
    /// moves into its place and its live keys follow it.
    fn remove_slot(&mut self, slot: usize) {
        self.sealed.swap_remove(slot);
        let Some(moved) = self.sealed.get(slot) else {
            return;
        };
        let seg = moved.seg.clone();
        for row in 0..seg.data.len() {
            if moved.alive.contains(row as u32) {
                self.pk_index.insert(
                    seg.data.pk(row).clone(),
                    Loc::Sealed {
                        seg: slot as u32,
                        row: row as u32,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
}
