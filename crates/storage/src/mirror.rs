//! A shard's mirror cursor: every write of the shard's own (not copied from
//! its mirror partner) in WAL objects up to this seq has been shipped to the
//! partner. Overwritten in place; a stale owner writing an older value only
//! makes the next owner ship some writes again (upserts and deletes by key
//! are idempotent in order).

use std::sync::Arc;

use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Result, StorageError};
use crate::layout;

/// The shard's mirror cursor, if a mirror ever shipped from it.
pub async fn read_mirror_cursor(
    store: &Arc<dyn ObjectStore>,
    collection_id: u64,
    shard: u32,
) -> Result<Option<u64>> {
    let path = layout::mirror_cursor_path(collection_id, shard);
    match store.get(&path).await {
        Ok(r) => {
            let bytes = r
                .bytes()
                .await
                .map_err(|e| StorageError::store(path.to_string(), e))?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|e| StorageError::corrupt(path.to_string(), e.to_string()))?;
            let seq = text.trim().parse().map_err(|e: std::num::ParseIntError| {
                StorageError::corrupt(path.to_string(), e.to_string())
            })?;
            Ok(Some(seq))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(StorageError::store(path.to_string(), e)),
    }
}

/// Records that every own write up to WAL seq `seq` is shipped.
pub async fn write_mirror_cursor(
    store: &Arc<dyn ObjectStore>,
    collection_id: u64,
    shard: u32,
    seq: u64,
) -> Result<()> {
    let path = layout::mirror_cursor_path(collection_id, shard);
    store
        .put(&path, PutPayload::from(seq.to_string()))
        .await
        .map_err(|e| StorageError::store(path.to_string(), e))?;
    Ok(())
}
