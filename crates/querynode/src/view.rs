//! The queryable state of one shard: sealed segments, growing rows, and a
//! primary-key index that makes the last write of each key the only live row.

use std::collections::HashMap;
use std::sync::Arc;

use quiver_api::{CollectionInfo, SegmentInfo};
use quiver_common::{Mutation, PrimaryKey, Timestamp};
use quiver_index::{Bitset, HnswIndex};
use quiver_storage::MappedSegment;

use crate::growing::Growing;

/// A sealed segment as loaded (shared by every view that holds it).
pub(crate) struct LoadedSegment {
    pub info: SegmentInfo,
    pub data: MappedSegment,
    pub index: Option<HnswIndex>,
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
    pub pk_index: HashMap<PrimaryKey, Loc>,
    /// Everything with a timestamp <= this has been applied.
    pub applied_ts: Timestamp,
}

impl ShardView {
    pub fn new(info: CollectionInfo) -> Self {
        let scalar_names: Vec<String> = info
            .schema
            .scalar_fields()
            .map(|f| f.name.clone())
            .collect();
        let growing = Growing::new(info.schema.dim(), scalar_names.len());
        Self {
            info,
            scalar_names,
            sealed: Vec::new(),
            growing,
            pk_index: HashMap::new(),
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
        for row in 0..data.len() {
            let pk = data.pk(row);
            let same = match self.pk_index.get(pk) {
                Some(Loc::Growing { row: g }) => {
                    self.growing.timestamps[*g as usize] == data.timestamp(row)
                }
                _ => false,
            };
            if same {
                self.pk_index.insert(
                    pk.clone(),
                    Loc::Sealed {
                        seg: si,
                        row: row as u32,
                    },
                );
            } else {
                self.sealed[si as usize].delete(row as u32);
            }
        }
        let prefix = self.growing.timestamps.partition_point(|ts| *ts <= cut);
        self.growing.drop_prefix(prefix);
        for (g, pk) in self.growing.pks.iter().enumerate() {
            if !self.growing.deleted[g] {
                self.pk_index
                    .insert(pk.clone(), Loc::Growing { row: g as u32 });
            }
        }
    }
}
