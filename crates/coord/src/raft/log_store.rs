//! `RaftLogStorage` on disk: the log file (see `log_file`) plus a small
//! `raft-state.json` (vote, committed, purged), written atomically.
//!
//! All entries since the last purge are also kept in memory: coord's log is
//! small because it is compacted into snapshots, so reads never touch disk.
//! Writes are synchronous (write + fsync) — metadata writes are rare and tiny.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::Vote;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::durable::{read_optional, sync_parent, write_atomic};
use super::log_file::{MAGIC, encode, scan};
use super::{Entry, LogId};
use crate::error::{CoordError, Result};

const LOG_FILE: &str = "raft-log";
const STATE_FILE: &str = "raft-state.json";
const LOCK_FILE: &str = "LOCK";

/// What must survive a restart besides the entries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct HardState {
    pub(super) vote: Option<Vote<u64>>,
    pub(super) committed: Option<LogId>,
    pub(super) purged: Option<LogId>,
}

/// Writes the hard state of a directory rebuilt from a snapshot at
/// `applied` (`crate::backup::restore`): the log counts as purged up to the
/// snapshot, and the vote is for the term that wrote its last entry, so the
/// next election is in a later term than every entry it holds.
pub(crate) fn write_restored_hard_state(dir: &Path, applied: LogId) -> Result<()> {
    let hard = HardState {
        vote: Some(Vote::new(applied.leader_id.term, applied.leader_id.node_id)),
        committed: Some(applied),
        purged: Some(applied),
    };
    let bytes = serde_json::to_vec(&hard)
        .map_err(|e| CoordError::Raft(format!("cannot encode the hard state: {e}")))?;
    super::durable::write_atomic(&dir.join(STATE_FILE), &bytes)
}

pub(super) struct Inner {
    dir: PathBuf,
    file: File,
    /// Current length of the log file.
    len: u64,
    /// index -> (entry, offset of its record in the file).
    pub(super) entries: BTreeMap<u64, (Entry, u64)>,
    pub(super) hard: HardState,
    /// Held (flock) for as long as the log is open: one coord per directory.
    _lock: File,
}

/// Cheap to clone; clones share one log (the log reader is a clone).
#[derive(Clone)]
pub(crate) struct LogStore {
    pub(super) inner: Arc<Mutex<Inner>>,
}

impl LogStore {
    /// Opens the log in `dir` (created if missing), dropping a torn last record.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let lock = lock_dir(dir)?;
        let hard: HardState = match read_optional(&dir.join(STATE_FILE))? {
            Some(b) => serde_json::from_slice(&b)
                .map_err(|e| CoordError::corrupt(dir.join(STATE_FILE), e.to_string()))?,
            None => HardState::default(),
        };
        let path = dir.join(LOG_FILE);
        let bytes = read_optional(&path)?.unwrap_or_default();
        let scanned = scan(&path, &bytes)?;
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| CoordError::io(&path, e))?;
        let mut len = scanned.good_len;
        if len < bytes.len() as u64 || len == 0 {
            if len < bytes.len() as u64 {
                tracing::warn!(path = %path.display(), dropped = bytes.len() as u64 - len, "dropping a torn last log record");
            }
            if len == 0 {
                file.set_len(0).map_err(|e| CoordError::io(&path, e))?;
                file.write_all(MAGIC)
                    .map_err(|e| CoordError::io(&path, e))?;
                len = MAGIC.len() as u64;
            } else {
                file.set_len(len).map_err(|e| CoordError::io(&path, e))?;
            }
            file.sync_all().map_err(|e| CoordError::io(&path, e))?;
            sync_parent(&path)?;
        }
        let purged = hard.purged.map_or(0, |p| p.index + 1);
        let mut entries = BTreeMap::new();
        for (entry, offset) in scanned.entries {
            // Entries at or below `purged` are left over from an interrupted purge.
            if entry.log_id.index >= purged {
                entries.insert(entry.log_id.index, (entry, offset));
            }
        }
        let mut expect = None;
        for &index in entries.keys() {
            if expect.is_some_and(|e| e != index) {
                return Err(CoordError::corrupt(
                    &path,
                    format!("log index gap before {index}"),
                ));
            }
            expect = Some(index + 1);
        }
        let mut inner = Inner {
            dir: dir.to_path_buf(),
            file,
            len,
            entries,
            hard,
            _lock: lock,
        };
        inner.seek_end()?;
        Ok(Self {
            inner: Arc::new(Mutex::new(inner)),
        })
    }
}

/// Takes the directory's lock, or fails with [`CoordError::Locked`].
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| CoordError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(CoordError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(CoordError::io(&path, e)),
    }
}

impl Inner {
    fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    fn seek_end(&mut self) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        let path = self.log_path();
        self.file
            .seek(SeekFrom::Start(self.len))
            .map_err(|e| CoordError::io(path, e))?;
        Ok(())
    }

    pub(super) fn save_hard(&self) -> Result<()> {
        let bytes = serde_json::to_vec(&self.hard)
            .map_err(|e| CoordError::Raft(format!("cannot encode raft state: {e}")))?;
        write_atomic(&self.dir.join(STATE_FILE), &bytes)
    }

    pub(super) fn append(&mut self, entries: Vec<Entry>) -> Result<()> {
        let mut buf = Vec::new();
        let mut placed = Vec::with_capacity(entries.len());
        let mut next = self.entries.keys().next_back().map(|i| i + 1);
        for entry in entries {
            if next.is_some_and(|n| n != entry.log_id.index) {
                return Err(CoordError::Raft(format!(
                    "append of index {} does not follow the log's last index",
                    entry.log_id.index
                )));
            }
            next = Some(entry.log_id.index + 1);
            let offset = self.len + buf.len() as u64;
            encode(&entry, &mut buf)?;
            placed.push((entry, offset));
        }
        let path = self.log_path();
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Cut what part of the batch reached the file, so a retry
            // appends the whole batch again at the same offset (after a
            // failed fsync the kernel may have dropped those pages: they are
            // written again from `buf`, not trusted).
            let _ = self.file.set_len(self.len);
            let _ = self.seek_end();
            return Err(CoordError::io(&path, e));
        }
        self.len += buf.len() as u64;
        for (entry, offset) in placed {
            self.entries.insert(entry.log_id.index, (entry, offset));
        }
        Ok(())
    }

    /// Deletes entries with index >= `index`.
    pub(super) fn truncate(&mut self, index: u64) -> Result<()> {
        let Some(&(_, offset)) = self.entries.get(&index) else {
            return Ok(());
        };
        let path = self.log_path();
        self.file
            .set_len(offset)
            .map_err(|e| CoordError::io(&path, e))?;
        self.file.sync_all().map_err(|e| CoordError::io(&path, e))?;
        self.len = offset;
        self.seek_end()?;
        self.entries.split_off(&index);
        Ok(())
    }

    /// Deletes entries with index <= `log_id.index`: records the purge mark
    /// first, then rewrites the log file without the purged records.
    pub(super) fn purge(&mut self, log_id: LogId) -> Result<()> {
        self.hard.purged = Some(log_id);
        self.save_hard()?;
        self.entries = self.entries.split_off(&(log_id.index + 1));
        let mut buf = MAGIC.to_vec();
        let mut offsets = Vec::with_capacity(self.entries.len());
        for (entry, _) in self.entries.values() {
            offsets.push(buf.len() as u64);
            encode(entry, &mut buf)?;
        }
        let path = self.log_path();
        // The old file stays valid until the rename (open skips records at or
        // below the purge mark), so a failed rewrite leaves the offsets as
        // they are and a retry starts over.
        write_atomic(&path, &buf)?;
        for ((_, offset), new) in self.entries.values_mut().zip(offsets) {
            *offset = new;
        }
        self.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| CoordError::io(&path, e))?;
        self.len = buf.len() as u64;
        self.seek_end()
    }
}
