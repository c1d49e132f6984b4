//! Removing what no manifest references any more.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::{Result, StorageError};
use crate::layout;

/// Deletes every object of a dropped shard (its WAL, epoch markers included,
/// and its segment and index files); returns how many were deleted. Only for
/// shards whose collection is gone: ids are never reused.
pub async fn delete_shard_data(
    store: &Arc<dyn ObjectStore>,
    collection_id: u64,
    shard: u32,
) -> Result<usize> {
    let mut deleted = 0;
    for prefix in [
        layout::wal_prefix(collection_id, shard),
        layout::segments_prefix(collection_id, shard),
        layout::mirror_prefix(collection_id, shard),
    ] {
        let metas: Vec<_> = store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| StorageError::store(prefix.to_string(), e))?;
        for meta in metas {
            match store.delete(&meta.location).await {
                Ok(()) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(StorageError::store(meta.location.to_string(), e)),
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;

    #[tokio::test]
    async fn deletes_only_the_shard() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::open_local_store(dir.path()).expect("store");
        let put = |p: object_store::path::Path| {
            let store = store.clone();
            async move {
                store
                    .put(&p, PutPayload::from(vec![1u8]))
                    .await
                    .expect("put")
            }
        };
        put(layout::wal_path(1, 0, 1)).await;
        put(layout::wal_path(1, 0, 2)).await;
        put(layout::segment_path(1, 0, 9)).await;
        put(layout::index_path(1, 0, 9)).await;
        put(layout::wal_path(1, 1, 1)).await;
        put(layout::segment_path(2, 0, 9)).await;
        assert_eq!(delete_shard_data(&store, 1, 0).await.expect("delete"), 4);
        let left: Vec<_> = store.list(None).try_collect().await.expect("list");
        assert_eq!(left.len(), 2);
        assert_eq!(delete_shard_data(&store, 1, 0).await.expect("again"), 0);
    }
}
