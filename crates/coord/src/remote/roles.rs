//! [`CoordClient`] behind the role interfaces: [`MetaClient`] for datanodes
//! and [`CatalogClient`] for the front door, both over the calls of
//! `remote.rs` and the watch-fed cache.

use async_trait::async_trait;
use quiver_api::{
    Actor, AliasChange, AliasMeta, CatalogClient, CollectionInfo, CollectionTimes,
    CreateCollection, MetaClient, SegmentInfo, ShardId,
};
use quiver_common::{Error, Result};

use super::CoordClient;
use crate::state::{CollectionMeta, IndexKind, IndexSpec, SegmentMeta};

/// A catalog segment as the role interfaces see it.
pub fn segment_info(s: &SegmentMeta) -> SegmentInfo {
    SegmentInfo {
        id: s.id,
        rows: s.rows,
        max_ts: s.max_ts,
        wal_seq: s.wal_seq,
        has_index: s.has_index,
    }
}

/// A segment from the role interfaces as the catalog keeps it.
pub fn segment_meta(s: &SegmentInfo) -> SegmentMeta {
    SegmentMeta {
        id: s.id,
        rows: s.rows,
        max_ts: s.max_ts,
        wal_seq: s.wal_seq,
        has_index: s.has_index,
    }
}

/// What the role interfaces see of a collection.
pub fn collection_info(meta: &CollectionMeta) -> CollectionInfo {
    CollectionInfo {
        id: meta.id,
        schema: meta.schema.clone(),
        shards: meta.shards,
        metric: meta.metric,
        index: match meta.index.kind {
            IndexKind::Hnsw { m, ef_construction } => quiver_api::IndexKind::Hnsw {
                m: m as usize,
                ef_construction: ef_construction as usize,
            },
            IndexKind::Flat | IndexKind::None => quiver_api::IndexKind::Flat,
        },
    }
}

#[async_trait]
impl MetaClient for CoordClient {
    async fn register_segments(
        &self,
        shard: ShardId,
        epoch: u64,
        segments: Vec<SegmentInfo>,
        wal_checkpoint: u64,
    ) -> Result<()> {
        let segments = segments.iter().map(segment_meta).collect();
        CoordClient::register_segments(
            self,
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
        let (segments, checkpoint) =
            CoordClient::segments(self, shard.collection_id, shard.shard).await?;
        Ok((segments.iter().map(segment_info).collect(), checkpoint))
    }

    async fn allocate_ids(&self, count: u64) -> Result<u64> {
        Ok(CoordClient::allocate_ids(self, count).await?.start)
    }

    async fn acquire_shard(&self, shard: ShardId, node_id: u64) -> Result<u64> {
        CoordClient::acquire_shard(self, shard.collection_id, shard.shard, node_id).await
    }
}

/// The catalog over the coord cluster: DDL through the leader, lookups from
/// the cache. Placement (opening shards on datanodes, loading them on
/// querynodes) is not done here: coord's control loops own it in cluster mode.
#[async_trait]
impl CatalogClient for CoordClient {
    async fn create_collection(&self, req: CreateCollection) -> Result<CollectionInfo> {
        let field = req.schema.vector_field().name.clone();
        let kind = match req.index {
            quiver_api::IndexKind::Flat => IndexKind::Flat,
            quiver_api::IndexKind::Hnsw { m, ef_construction } => IndexKind::Hnsw {
                m: u32::try_from(m).map_err(|_| Error::invalid("index.m", "too large"))?,
                ef_construction: u32::try_from(ef_construction)
                    .map_err(|_| Error::invalid("index.ef_construction", "too large"))?,
            },
        };
        let index = IndexSpec {
            kind,
            field_name: field.clone(),
            index_name: field,
        };
        let meta =
            CoordClient::create_collection(self, req.schema, req.shards, req.metric, Some(index))
                .await?;
        // The front door serves every collection from its creation (as in
        // one process): loaded with one replica until LoadCollection asks
        // for more.
        CoordClient::set_loaded(self, &meta.name, true, None).await?;
        Ok(collection_info(&meta))
    }

    async fn load_collection(&self, name_or_alias: &str, replicas: Option<u32>) -> Result<()> {
        let name = self.collection_name(name_or_alias)?;
        CoordClient::set_loaded(self, &name, true, replicas).await
    }

    async fn release_collection(&self, name_or_alias: &str) -> Result<()> {
        let name = self.collection_name(name_or_alias)?;
        CoordClient::set_loaded(self, &name, false, None).await
    }

    fn is_loaded(&self, name_or_alias: &str) -> bool {
        self.state()
            .collection(name_or_alias)
            .is_some_and(|m| m.loaded)
    }

    async fn drop_collection(&self, name: &str) -> Result<()> {
        // Aliases resolve to the collection's own name, as in one process.
        let name = self
            .state()
            .collection(name)
            .map(|m| m.name.clone())
            .unwrap_or_else(|| name.to_string());
        CoordClient::drop_collection(self, &name).await
    }

    fn collection(&self, name_or_alias: &str) -> Option<CollectionInfo> {
        self.state().collection(name_or_alias).map(collection_info)
    }

    fn collections(&self) -> Vec<CollectionInfo> {
        self.state().collections().map(collection_info).collect()
    }

    async fn allocate_ids(&self, count: u64) -> Result<u64> {
        Ok(CoordClient::allocate_ids(self, count).await?.start)
    }

    async fn create_alias(&self, alias: &str, collection: &str) -> Result<()> {
        CoordClient::create_alias(self, alias, collection).await?;
        Ok(())
    }

    async fn alter_alias(&self, alias: &str, collection: &str) -> Result<()> {
        CoordClient::alter_alias(self, alias, collection).await?;
        Ok(())
    }

    async fn drop_alias(&self, alias: &str) -> Result<()> {
        CoordClient::drop_alias(self, alias).await
    }

    fn aliases(&self) -> Vec<(String, String)> {
        self.state()
            .aliases()
            .iter()
            .map(|(alias, meta)| (alias.clone(), meta.collection.clone()))
            .collect()
    }

    fn alias(&self, alias: &str) -> Option<AliasMeta> {
        self.state().alias(alias).cloned()
    }

    async fn mirror_lag_ms(&self, collection: &str) -> Option<u64> {
        let id = self.state().collection(collection)?.id;
        self.mirror_health_in_time().await?.lag_ms.get(&id).copied()
    }

    async fn divergent_rows(&self, alias: &str) -> Option<u64> {
        self.mirror_health_in_time()
            .await?
            .divergent_rows
            .get(alias)
            .copied()
    }

    async fn mirror_status(&self, alias: &str, target: &str) -> (Option<u64>, Option<u64>) {
        let Some(health) = self.mirror_health_in_time().await else {
            return (None, None);
        };
        let lag = self
            .state()
            .collection(target)
            .and_then(|c| health.lag_ms.get(&c.id).copied());
        (lag, health.divergent_rows.get(alias).copied())
    }

    async fn change_alias(&self, change: AliasChange, actor: Actor) -> Result<u64> {
        CoordClient::alias_admin(self, change, actor).await
    }

    fn collection_times(&self, name_or_alias: &str) -> Option<CollectionTimes> {
        self.state()
            .collection(name_or_alias)
            .map(|m| CollectionTimes {
                id: m.id,
                created: m.created_ts,
                updated: m.updated_ts,
            })
    }
}

impl CoordClient {
    /// The own name of the collection `name_or_alias` names, from the cache.
    fn collection_name(&self, name_or_alias: &str) -> Result<String> {
        self.state()
            .collection(name_or_alias)
            .map(|m| m.name.clone())
            .ok_or_else(|| Error::CollectionNotFound(name_or_alias.to_string()))
    }

    /// [`CoordClient::mirror_health`] within 2 s (None: no answer).
    async fn mirror_health_in_time(&self) -> Option<super::nodes::MirrorHealth> {
        tokio::time::timeout(std::time::Duration::from_secs(2), self.mirror_health())
            .await
            .ok()?
            .ok()
    }
}
