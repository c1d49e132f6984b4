//! The Raft log file format.
//!
//! ```text
//! file   := MAGIC record*
//! record := len: u32 LE | crc32(payload): u32 LE | payload: [u8; len]
//! payload = serde_json of openraft::Entry<TypeConfig>
//! ```
//! Records are only ever appended (then fsynced) or cut off at a record
//! boundary (truncate). A crash during an append leaves at most one torn
//! record at the very end: [`scan`] detects it (short header, short payload
//! or checksum mismatch reaching to the end of the file) and reports the
//! length of the intact prefix. A bad record followed by more data is
//! corruption, not a torn write, and is an error.

use std::path::Path;

use super::Entry;
use crate::error::{CoordError, Result};

pub(crate) const MAGIC: &[u8; 8] = b"QVRLOG1\n";
const HEADER: usize = 8;

/// Appends the encoded record of `entry` to `buf`.
pub(crate) fn encode(entry: &Entry, buf: &mut Vec<u8>) -> Result<()> {
    let payload = serde_json::to_vec(entry)
        .map_err(|e| CoordError::Raft(format!("cannot encode log entry: {e}")))?;
    let len = u32::try_from(payload.len())
        .map_err(|_| CoordError::Raft("log entry larger than 4 GiB".into()))?;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    buf.extend_from_slice(&payload);
    Ok(())
}

/// The intact records of a log file.
pub(crate) struct Scanned {
    /// Each entry with the file offset its record starts at.
    pub(crate) entries: Vec<(Entry, u64)>,
    /// Length of the intact prefix; anything after it is a torn tail.
    pub(crate) good_len: u64,
}

pub(crate) fn scan(path: &Path, bytes: &[u8]) -> Result<Scanned> {
    if bytes.len() < MAGIC.len() {
        // A crash while creating the file; nothing was ever appended.
        return Ok(Scanned {
            entries: Vec::new(),
            good_len: 0,
        });
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(CoordError::corrupt(
            path,
            "not a coord raft log (bad magic)",
        ));
    }
    let mut entries = Vec::new();
    let mut pos = MAGIC.len();
    while pos < bytes.len() {
        let Some(header) = bytes.get(pos..pos + HEADER) else {
            break; // torn header at the end
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let end = pos + HEADER + len;
        let Some(payload) = bytes.get(pos + HEADER..end) else {
            break; // torn payload at the end
        };
        if crc32fast::hash(payload) != crc {
            if end == bytes.len() {
                break; // the last record is torn
            }
            return Err(CoordError::corrupt(
                path,
                format!("checksum mismatch in the record at offset {pos}, with records after it"),
            ));
        }
        let entry: Entry = serde_json::from_slice(payload).map_err(|e| {
            CoordError::corrupt(path, format!("undecodable record at offset {pos}: {e}"))
        })?;
        entries.push((entry, pos as u64));
        pos = end;
    }
    Ok(Scanned {
        entries,
        good_len: pos as u64,
    })
}
