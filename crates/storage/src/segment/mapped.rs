//! A segment opened for reading: vectors zero-copy from the mmap, the rest decoded at open.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;
use quiver_common::{PrimaryKey, StoredColumn, Timestamp, VectorSlice, VectorsRef};

use super::format::{self, Decoded};
use crate::error::{Result, StorageError};

/// Where the F32 rows of a segment (format version 1) live.
enum Storage {
    /// Rows of f32 read in place from the map (`range` is in bytes, 4-byte aligned).
    Mapped {
        map: Mmap,
        range: std::ops::Range<usize>,
    },
    Owned(Vec<f32>),
}

/// A validated, immutable segment. The file behind a mapped segment must not be modified or
/// truncated while it is open (cache files are only ever created by rename).
pub struct MappedSegment {
    vectors: Storage,
    /// The scalar columns, by type where they allow it (`meta.columns` is
    /// left empty).
    columns: Vec<StoredColumn>,
    meta: Decoded,
}

impl MappedSegment {
    /// Maps the file at `path`, validates header and checksum and decodes all but the vectors.
    pub fn open(path: &Path) -> Result<MappedSegment> {
        let what = path.display().to_string();
        let file = File::open(path).map_err(|e| StorageError::io(&what, e))?;
        // SAFETY: segment files are immutable once renamed into place (see the type's docs);
        // nothing writes to or truncates a file while it is mapped.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| StorageError::io(&what, e))?;
        let mut meta = format::decode(&map, &what)?;
        let columns = stored(&mut meta);
        let range = meta.vectors.clone();
        let aligned =
            (map.as_ptr() as usize + range.start).is_multiple_of(std::mem::align_of::<f32>());
        let vectors = if cfg!(target_endian = "little") && aligned {
            Storage::Mapped { map, range }
        } else {
            Storage::Owned(decode_f32s(&map[range]))
        };
        Ok(MappedSegment {
            vectors,
            columns,
            meta,
        })
    }

    /// Validates and reads a segment held in memory (vectors are copied out).
    pub fn from_bytes(b: Vec<u8>) -> Result<MappedSegment> {
        let mut meta = format::decode(&b, "segment bytes")?;
        let columns = stored(&mut meta);
        let vectors = Storage::Owned(decode_f32s(&b[meta.vectors.clone()]));
        Ok(MappedSegment {
            vectors,
            columns,
            meta,
        })
    }

    pub fn segment_id(&self) -> u64 {
        self.meta.segment_id
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.meta.rows
    }

    pub fn is_empty(&self) -> bool {
        self.meta.rows == 0
    }

    pub fn dim(&self) -> usize {
        self.meta.dim
    }

    /// All vectors (`len()` rows of `dim()`).
    pub fn vectors(&self) -> VectorsRef<'_> {
        VectorsRef::f32(self.meta.dim, self.f32s())
    }

    fn f32s(&self) -> &[f32] {
        match &self.vectors {
            Storage::Mapped { map, range } => {
                let bytes = &map[range.clone()];
                // SAFETY: `open` checked that the start is aligned for f32 and that the target
                // is little-endian; the length is a multiple of 4 (rows * dim * 4, checked by
                // `format::decode`), every bit pattern is a valid f32, and the slice borrows
                // the map, which lives as long as `self`.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), bytes.len() / 4) }
            }
            Storage::Owned(v) => v,
        }
    }

    /// The vector of row `row`. Panics if `row >= len()`.
    pub fn vector(&self, row: usize) -> VectorSlice<'_> {
        self.vectors().row(row)
    }

    /// Primary key of row `row`. Panics if `row >= len()`.
    pub fn pk(&self, row: usize) -> &PrimaryKey {
        &self.meta.pks[row]
    }

    pub fn pks(&self) -> &[PrimaryKey] {
        &self.meta.pks
    }

    /// Timestamp of row `row`. Panics if `row >= len()`.
    pub fn timestamp(&self, row: usize) -> Timestamp {
        self.meta.timestamps[row]
    }

    pub fn timestamps(&self) -> &[Timestamp] {
        &self.meta.timestamps
    }

    pub fn columns(&self) -> &[StoredColumn] {
        &self.columns
    }

    pub fn tombstones(&self) -> &[(PrimaryKey, Timestamp)] {
        &self.meta.tombstones
    }

    pub fn max_ts(&self) -> Timestamp {
        self.meta.max_ts
    }

    pub fn wal_seq(&self) -> u64 {
        self.meta.wal_seq
    }

    /// True when the vectors are read in place from a memory map.
    pub fn is_mapped(&self) -> bool {
        matches!(self.vectors, Storage::Mapped { .. })
    }
}

impl std::fmt::Debug for MappedSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedSegment")
            .field("segment_id", &self.meta.segment_id)
            .field("rows", &self.meta.rows)
            .field("dim", &self.meta.dim)
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

/// Moves the decoded columns out of `meta`, stored by type.
fn stored(meta: &mut Decoded) -> Vec<StoredColumn> {
    std::mem::take(&mut meta.columns)
        .into_iter()
        .map(StoredColumn::new)
        .collect()
}

fn decode_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
