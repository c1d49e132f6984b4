//! The roles of one process as coord's catalog sees them (standalone): a
//! collection is served on the local datanode and querynode the moment its
//! metadata changes, mirrored copies go to the local datanode, and failover
//! probes the local querynode.

use std::sync::Arc;

use async_trait::async_trait;
use quiver_api::{CollectionInfo, QueryClient, ShardId};
use quiver_common::{CollectionId, Result};
use quiver_coord::{Coord, LocalNodes, MetaState};
use quiver_datanode::{DataNode, MirrorRoutes};
use quiver_querynode::QueryNode;

use crate::failover::{Canary, FailoverOptions};

/// The datanode and querynode of this process.
pub(crate) struct LocalRoles {
    pub datanode: Arc<DataNode>,
    pub querynode: Arc<QueryNode>,
}

fn shards(info: &CollectionInfo) -> impl Iterator<Item = ShardId> + '_ {
    (0..info.shards).map(|shard| ShardId {
        collection_id: info.id,
        shard,
    })
}

#[async_trait]
impl LocalNodes for LocalRoles {
    async fn serve(&self, info: &CollectionInfo, loaded: bool) -> Result<()> {
        for shard in 0..info.shards {
            self.datanode.open_shard(info, shard).await?;
            if loaded {
                self.querynode.load_shard(info, shard).await?;
            }
        }
        Ok(())
    }

    async fn release(&self, info: &CollectionInfo) {
        for id in shards(info) {
            self.querynode.release_shard(id);
        }
    }

    async fn dropped(&self, info: &CollectionInfo) {
        for id in shards(info) {
            // The collection is gone from the catalog; its files are only
            // garbage now, so failing to delete them must not fail the drop.
            if let Err(e) = self.querynode.drop_shard(id).await {
                tracing::warn!(shard = %id, error = %e, "could not delete cached segments");
            }
            if let Err(e) = self.datanode.drop_shard(id).await {
                tracing::warn!(shard = %id, error = %e, "could not delete shard data");
            }
        }
    }

    fn mirror_lag_ms(&self, collection: CollectionId) -> Option<u64> {
        self.datanode.mirror_lag_ms(collection)
    }

    fn storage(&self) -> Vec<quiver_api::ShardStorage> {
        self.datanode.storage()
    }
}

/// Failover's canary in one process: the local querynode answers a count
/// for every shard of a collection that is not released.
#[async_trait]
impl Canary for LocalRoles {
    async fn available(&self, state: &MetaState, collection: &str, opts: &FailoverOptions) -> bool {
        let Some(meta) = state.collection(collection) else {
            return false;
        };
        if meta.released {
            return false;
        }
        let info = quiver_coord::collection_info(meta);
        for id in shards(&info) {
            let probe = tokio::time::timeout(
                std::time::Duration::from_millis(opts.probe_timeout_ms.max(1)),
                self.querynode.count(id, 0, None),
            )
            .await;
            if !matches!(probe, Ok(Ok(_))) {
                return false;
            }
        }
        true
    }

    fn mirror_lag_ms(&self, _coord: &Coord, collection: CollectionId) -> Option<u64> {
        self.datanode.mirror_lag_ms(collection)
    }
}

/// Mirroring in one process: partners from the local coord's aliases,
/// copies written to the local datanode.
pub(crate) struct LocalMirror {
    pub coord: Coord,
    pub data: Arc<DataNode>,
}

impl MirrorRoutes for LocalMirror {
    fn partner(&self, collection: CollectionId) -> Option<CollectionId> {
        self.coord.state().mirror_partner(collection)
    }

    fn data(&self) -> Arc<dyn quiver_api::DataClient> {
        self.data.clone()
    }
}
