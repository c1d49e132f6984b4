//! Coord as the data path sees it in one process: adapters from the `Coord`
//! handle to the role interfaces, and the standalone placement (every shard on
//! the local datanode and querynode).

use std::sync::Arc;

use async_trait::async_trait;
use quiver_api::{
    Actor, AliasChange, AliasMeta, CatalogClient, CollectionInfo, CollectionTimes,
    CreateCollection, IndexKind, MetaClient, SegmentInfo, ShardId,
};
use quiver_common::Result;
use quiver_coord::{Coord, IndexSpec, collection_info, segment_info, segment_meta};
use quiver_datanode::{DataNode, MirrorRoutes};
use quiver_querynode::QueryNode;

/// Mirroring in one process: partners from the local coord's aliases,
/// copies written to the local datanode.
pub(crate) struct LocalMirror {
    pub coord: Arc<Coord>,
    pub data: Arc<DataNode>,
}

impl MirrorRoutes for LocalMirror {
    fn partner(
        &self,
        collection: quiver_common::CollectionId,
    ) -> Option<quiver_common::CollectionId> {
        self.coord.state().mirror_partner(collection)
    }

    fn data(&self) -> Arc<dyn quiver_api::DataClient> {
        self.data.clone()
    }
}

/// `MetaClient` over the local coord.
pub(crate) struct CoordMeta(pub Arc<Coord>);

#[async_trait]
impl MetaClient for CoordMeta {
    async fn register_segments(
        &self,
        shard: ShardId,
        epoch: u64,
        segments: Vec<SegmentInfo>,
        wal_checkpoint: u64,
    ) -> Result<()> {
        let segments = segments.iter().map(segment_meta).collect();
        self.0
            .register_segments(
                shard.collection_id,
                shard.shard,
                epoch,
                segments,
                wal_checkpoint,
            )
            .await?;
        Ok(())
    }

    async fn segments(&self, shard: ShardId) -> Result<(Vec<SegmentInfo>, u64)> {
        let (segments, checkpoint) = self.0.segments(shard.collection_id, shard.shard);
        Ok((segments.iter().map(segment_info).collect(), checkpoint))
    }

    async fn allocate_ids(&self, count: u64) -> Result<u64> {
        Ok(self.0.allocate_ids(count).await?.start)
    }

    async fn acquire_shard(&self, shard: ShardId, node_id: u64) -> Result<u64> {
        Ok(self
            .0
            .acquire_shard(shard.collection_id, shard.shard, node_id)
            .await?)
    }
}

/// The catalog in one process: DDL through coord, then every shard opened on
/// the local datanode and loaded on the local querynode.
pub(crate) struct LocalCatalog {
    pub coord: Arc<Coord>,
    pub datanode: Arc<DataNode>,
    pub querynode: Arc<QueryNode>,
    /// Divergent rows per mirrored alias, as the local check last counted.
    pub divergence: Arc<quiver_admin::divergence::Board>,
}

impl LocalCatalog {
    /// Opens every shard of a collection for writes and, unless it was
    /// released, loads it for reads.
    pub async fn bring_up(&self, info: &CollectionInfo) -> Result<()> {
        let released = self
            .coord
            .state()
            .collection_by_id(info.id)
            .is_some_and(|m| m.released);
        for shard in 0..info.shards {
            self.datanode.open_shard(info, shard).await?;
            if !released {
                self.querynode.load_shard(info, shard).await?;
            }
        }
        Ok(())
    }

    fn meta(&self, name_or_alias: &str) -> Result<quiver_coord::CollectionMeta> {
        self.coord
            .collection(name_or_alias)
            .ok_or_else(|| quiver_common::Error::CollectionNotFound(name_or_alias.to_string()))
    }
}

#[async_trait]
impl CatalogClient for LocalCatalog {
    async fn create_collection(&self, req: CreateCollection) -> Result<CollectionInfo> {
        let field = req.schema.vector_field().name.clone();
        let kind = match req.index {
            IndexKind::Flat => quiver_coord::IndexKind::Flat,
            IndexKind::Hnsw { m, ef_construction } => quiver_coord::IndexKind::Hnsw {
                m: m as u32,
                ef_construction: ef_construction as u32,
            },
        };
        let index = IndexSpec {
            kind,
            field_name: field.clone(),
            index_name: field,
        };
        let meta = self
            .coord
            .create_collection(req.schema, req.shards, req.metric, Some(index))
            .await?;
        // Served from its creation, as through a cluster's coord.
        self.coord.set_loaded(&meta.name, true, None).await?;
        let info = collection_info(&meta);
        self.bring_up(&info).await?;
        Ok(info)
    }

    async fn load_collection(&self, name_or_alias: &str, replicas: Option<u32>) -> Result<()> {
        let meta = self.meta(name_or_alias)?;
        self.coord.set_loaded(&meta.name, true, replicas).await?;
        self.bring_up(&collection_info(&meta)).await
    }

    /// Marks the collection released (reads refused from then on), then
    /// frees its shards on the querynode.
    async fn release_collection(&self, name_or_alias: &str) -> Result<()> {
        let meta = self.meta(name_or_alias)?;
        self.coord.set_loaded(&meta.name, false, None).await?;
        for shard in 0..meta.shards {
            self.querynode.release_shard(ShardId {
                collection_id: meta.id,
                shard,
            });
        }
        Ok(())
    }

    fn is_loaded(&self, name_or_alias: &str) -> bool {
        // Every read asks: look at the state without cloning the collection.
        self.coord
            .state()
            .collection(name_or_alias)
            .is_some_and(|m| !m.released)
    }

    async fn drop_collection(&self, name: &str) -> Result<()> {
        let meta = self.meta(name)?;
        self.coord.drop_collection(&meta.name).await?;
        for shard in 0..meta.shards {
            let id = ShardId {
                collection_id: meta.id,
                shard,
            };
            // The collection is gone from the catalog; its files are only
            // garbage now, so failing to delete them must not fail the drop.
            if let Err(e) = self.querynode.drop_shard(id) {
                tracing::warn!(shard = %id, error = %e, "could not delete cached segments");
            }
            if let Err(e) = self.datanode.drop_shard(id).await {
                tracing::warn!(shard = %id, error = %e, "could not delete shard data");
            }
        }
        Ok(())
    }

    fn collection(&self, name_or_alias: &str) -> Option<CollectionInfo> {
        self.coord
            .collection(name_or_alias)
            .map(|m| collection_info(&m))
    }

    fn collections(&self) -> Vec<CollectionInfo> {
        self.coord
            .collections()
            .iter()
            .map(collection_info)
            .collect()
    }

    async fn allocate_ids(&self, count: u64) -> Result<u64> {
        Ok(self.coord.allocate_ids(count).await?.start)
    }

    async fn create_alias(&self, alias: &str, collection: &str) -> Result<()> {
        self.coord.create_alias(alias, collection).await?;
        Ok(())
    }

    async fn alter_alias(&self, alias: &str, collection: &str) -> Result<()> {
        self.coord.alter_alias(alias, collection).await?;
        Ok(())
    }

    async fn drop_alias(&self, alias: &str) -> Result<()> {
        Ok(self.coord.drop_alias(alias).await?)
    }

    fn aliases(&self) -> Vec<(String, String)> {
        self.coord
            .aliases()
            .into_iter()
            .map(|(alias, meta)| (alias, meta.collection))
            .collect()
    }

    fn alias(&self, alias: &str) -> Option<AliasMeta> {
        self.coord.state().alias(alias).cloned()
    }

    async fn mirror_lag_ms(&self, collection: &str) -> Option<u64> {
        let meta = self.coord.collection(collection)?;
        self.datanode.mirror_lag_ms(meta.id)
    }

    async fn divergent_rows(&self, alias: &str) -> Option<u64> {
        self.divergence.get(alias)
    }

    async fn change_alias(&self, change: AliasChange, actor: Actor) -> Result<u64> {
        Ok(self.coord.alias_admin(change, actor).await?)
    }

    fn collection_times(&self, name_or_alias: &str) -> Option<CollectionTimes> {
        self.coord
            .collection(name_or_alias)
            .map(|m| CollectionTimes {
                id: m.id,
                created: m.created_ts,
                updated: m.updated_ts,
            })
    }
}
