//! Which indexes a shard's segments use ([`WarmKeys`]): what a segment that
//! loads builds before it serves ([`crate::view::LoadedSegment::warm`]).
//! They are the keys the shard's loaded segments have built — at load, or
//! by the first search that needed one — and they are kept next to the
//! shard's cached segment files (`warm.json`: written as segments come and
//! go, when the replica stops, and as a filtered request that built an
//! index answers), so that a restarted querynode — even one killed — warms
//! what searches used before, not only the declared indexes. The file is a hint: a missing or unreadable one warms nothing
//! extra, and a key that no longer applies (a dropped column) builds
//! nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::terms::TermKey;
use crate::view::LoadedSegment;

/// Index keys by kind: term indexes (column or JSON path, analyzer),
/// sorted indexes and sparse inverted indexes.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WarmKeys {
    pub terms: BTreeSet<TermKey>,
    pub sorted: BTreeSet<String>,
    pub sparse: BTreeSet<String>,
    /// JSON paths whose values were extracted (`paths.rs`); absent from
    /// files written before session 29.
    #[serde(default)]
    pub paths: BTreeSet<String>,
}

/// The file of a shard's keys, in its segment cache directory.
pub(crate) fn warm_file(cache_dir: &Path, collection_id: u64, shard: u32) -> PathBuf {
    cache_dir
        .join(collection_id.to_string())
        .join(shard.to_string())
        .join("warm.json")
}

impl WarmKeys {
    /// The keys whose index exists in any of `segs`.
    pub fn of(segs: &[Arc<LoadedSegment>]) -> WarmKeys {
        let mut keys = WarmKeys::default();
        for seg in segs {
            keys.terms.extend(seg.terms.keys());
            keys.sorted.extend(seg.sorted.keys());
            keys.sparse.extend(seg.sparse.keys());
            keys.paths.extend(seg.paths.keys());
        }
        keys
    }

    pub fn extend(&mut self, other: &WarmKeys) {
        self.terms.extend(other.terms.iter().cloned());
        self.sorted.extend(other.sorted.iter().cloned());
        self.sparse.extend(other.sparse.iter().cloned());
        self.paths.extend(other.paths.iter().cloned());
    }

    /// The keys `path` holds; none when it is missing or unreadable.
    pub fn read(path: &Path) -> WarmKeys {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable warm-up file");
                WarmKeys::default()
            }),
            Err(_) => WarmKeys::default(),
        }
    }

    /// Replaces `path` (through a temporary file and a rename, so a reader
    /// never sees half a file). A hint: no fsync.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    }
}
