//! Opening the object store.
//!
//! Durability: `LocalFileSystem` does NOT fsync by default. object_store 0.14.2 has
//! `with_fsync(true)`: every put `sync_all`s the staged file, publishes it (rename for
//! `Overwrite`, hard link for `Create`) and fsyncs the destination's parent directory (and any
//! directory it had to create) before returning. We always turn it on, so a successful put —
//! and hence an acknowledged WAL batch — is on stable storage.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use crate::error::{Result, StorageError};

/// Opens (creating the directory if needed) a durable local-filesystem object store at `root`.
pub fn open_local_store(root: &Path) -> Result<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(root).map_err(|e| StorageError::io(root.display().to_string(), e))?;
    let fs = LocalFileSystem::new_with_prefix(root)
        .map_err(|e| StorageError::io(root.display().to_string(), e))?
        .with_fsync(true);
    Ok(Arc::new(fs))
}
