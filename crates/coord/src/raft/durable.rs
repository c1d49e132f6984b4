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

/// Runs a durable write (under [`blocking`]) until it works. A full,
/// read-only or failing disk stalls this coord — Raft waits, proposals time
/// out with a clear status, a cluster elects another leader — instead of
/// stopping Raft for good; once the disk takes writes again it goes on.
/// Errors that a retry cannot fix (encoding, corruption) are returned.
pub(crate) async fn until_written<T>(
    what: &str,
    mut write: impl FnMut() -> Result<T>,
) -> Result<T> {
    let mut backoff = std::time::Duration::from_millis(20);
    let mut warned = false;
    loop {
        match blocking(&mut write) {
            Ok(v) => {
                if warned {
                    tracing::info!(what, "coord's disk takes writes again");
                }
                return Ok(v);
            }
            Err(e @ CoordError::Io { .. }) => {
                if !warned {
                    tracing::error!(what, error = %e, "coord cannot write its state; retrying until the disk takes writes");
                    warned = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_millis(500));
            }
            Err(e) => return Err(e),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_is_retried_while_the_disk_fails_and_other_errors_return() {
        let mut calls = 0;
        let v = until_written("test", || {
            calls += 1;
            if calls < 3 {
                Err(CoordError::io("/x", std::io::Error::from_raw_os_error(28)))
            } else {
                Ok(7)
            }
        })
        .await
        .expect("written once the disk has room");
        assert_eq!((v, calls), (7, 3));
        let e = until_written::<()>("test", || Err(CoordError::corrupt("/x", "bad"))).await;
        assert!(matches!(e, Err(CoordError::Corrupt { .. })), "{e:?}");
    }
}
