//! Immutable segment files: encoding, memory-mapped reading, upload and cached download.

mod format;
mod mapped;
mod remote;

use quiver_common::{CollectionSchema, Column, PrimaryKey, Timestamp, Vectors};

pub use format::{SegmentKeys, encode_segment};
pub use mapped::MappedSegment;
pub use remote::{fetch_segment, prune_segment_cache, put_segment, read_segment_keys};

/// The contents of a sealed segment: `pks[i]`, `timestamps[i]`,
/// `vectors.row(i)` and `columns[c].values[i]` make row `i`. `tombstones` are the
/// deletes sealed with it; `wal_seq` is the last WAL seq it covers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentData {
    pub segment_id: u64,
    pub pks: Vec<PrimaryKey>,
    pub timestamps: Vec<Timestamp>,
    /// The rows' vectors; their dimension is the segment's.
    pub vectors: Vectors,
    pub columns: Vec<Column>,
    pub tombstones: Vec<(PrimaryKey, Timestamp)>,
    pub max_ts: Timestamp,
    pub wal_seq: u64,
}

impl SegmentData {
    /// A segment with no row yet: an empty column per scalar field of
    /// `schema`, in schema order, and `vectors` to append to.
    pub fn empty(
        segment_id: u64,
        schema: &CollectionSchema,
        vectors: Vectors,
        max_ts: Timestamp,
        wal_seq: u64,
    ) -> Self {
        Self {
            segment_id,
            pks: Vec::new(),
            timestamps: Vec::new(),
            vectors,
            columns: schema
                .column_fields()
                .map(|f| Column {
                    name: f.name.clone(),
                    values: Vec::new(),
                })
                .collect(),
            tombstones: Vec::new(),
            max_ts,
            wal_seq,
        }
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.vectors.dim()
    }

    /// Checks that the per-row arrays agree; a segment that fails this cannot be stored.
    pub fn check(&self) -> crate::Result<()> {
        let n = self.pks.len();
        let bad = |m: String| Err(crate::StorageError::Invalid(m));
        if self.timestamps.len() != n {
            return bad(format!("{} timestamps for {n} rows", self.timestamps.len()));
        }
        if self.vectors.raw_len() != n * self.vectors.dim() {
            return bad(format!(
                "{} floats for {n} rows of dim {}",
                self.vectors.raw_len(),
                self.vectors.dim()
            ));
        }
        if let Some(c) = self.columns.iter().find(|c| c.values.len() != n) {
            return bad(format!(
                "column {} has {} values for {n} rows",
                c.name,
                c.values.len()
            ));
        }
        Ok(())
    }
}
