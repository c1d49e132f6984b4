//! Crash-safe small-file writes: temp file + fsync + rename + directory fsync.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{CoordError, Result};

/// Replaces `path` with `bytes` atomically: after a crash at any point the file
/// holds either its old content or the new one, never a mix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| CoordError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| CoordError::io(&tmp, e))?;
    f.sync_all().map_err(|e| CoordError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| CoordError::io(path, e))?;
    sync_parent(path)
}

/// Makes a rename or file creation in `path`'s directory durable.
pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CoordError::io(dir, e))
}

/// Runs blocking file I/O (writes + fsync) from async code: on a
/// multi-threaded runtime the worker hands its other tasks off first.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Reads a file that may not exist yet.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CoordError::io(path, e)),
    }
}
