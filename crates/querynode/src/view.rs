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

    /// Hands growing rows over to a freshly sealed segment, all at once
    /// (see [`ShardView::begin_hand_off`]).
    #[cfg(test)]
    pub fn hand_off(&mut self, seg: Arc<LoadedSegment>) {
        let mut h = self.begin_hand_off(seg);
        while !self.hand_off_step(&mut h, usize::MAX) {}
    }

    /// Starts handing growing rows over to a freshly sealed segment: every
    /// row of the segment was applied from the stream, so a segment row is
    /// live exactly when the key's live version is that same growing row.
    /// The segment joins with no row live; each [`ShardView::hand_off_step`]
    /// then moves a run of rows, each key from its growing row to its
    /// segment row in one step, so between steps (the view's write lock let
    /// go for searches) every live key is in the view exactly once. The last
    /// step drops the growing rows up to the seal cut.
    pub fn begin_hand_off(&mut self, seg: Arc<LoadedSegment>) -> HandOff {
        let slot = self.sealed.len() as u32;
        let alive = Bitset::new_empty(seg.data.len());
        self.sealed.push(SealedSeg {
            seg: seg.clone(),
            alive,
        });
        HandOff { seg, slot, next: 0 }
    }

    /// Moves up to `rows` more rows of `h` (see
    /// [`ShardView::begin_hand_off`]); true once the hand-off is done.
    pub fn hand_off_step(&mut self, h: &mut HandOff, rows: usize) -> bool {
        let data = &h.seg.data;
        let end = h.next.saturating_add(rows).min(data.len());
        // One lookup a row, the entry changed in place (a whole hand-off of
        // 100k rows with 30k growing after the cut: 22-32 ms with a lookup
        // and an insert of a cloned key a row hashed by SipHash, 8-11 ms
        // now: runs of 8,192 rows 0.5-1.3 ms each, the last 1.4-2.6 ms).
        for row in h.next..end {
            let Some(loc) = self.pk_index.get_mut(data.pk(row)) else {
                continue;
            };
            let Loc::Growing { row: g } = *loc else {
                continue;
            };
            if self.growing.timestamps[g as usize] != data.timestamp(row) {
                continue;
            }
            *loc = Loc::Sealed {
                seg: h.slot,
                row: row as u32,
            };
            self.sealed[h.slot as usize].alive.insert(row as u32);
            self.growing.delete(g);
        }
        h.next = end;
        if end < data.len() {
            return false;
        }
        let prefix = (self.growing.timestamps).partition_point(|ts| *ts <= h.seg.info.max_ts);
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
        true
    }
}

/// A hand-off under way ([`ShardView::begin_hand_off`]).
pub(crate) struct HandOff {
    seg: Arc<LoadedSegment>,
    /// The segment's slot in `sealed`.
    slot: u32,
    /// The first segment row not handed over yet.
    next: usize,
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
#[path = "view_tests.rs"]
mod tests;
