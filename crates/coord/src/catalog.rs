//! [`Catalog`]: the role interfaces over any [`CoordApi`] — [`MetaClient`]
//! for datanodes and [`CatalogClient`] for the front door — written once
//! for the in-process coord (standalone) and the coord cluster alike.
//!
//! In a cluster, coord's placement loop and the nodes' agents open shards
//! and load replicas. In one process (standalone) the roles are right here,
//! and a [`LocalNodes`] hook serves a collection on them the moment its
//! metadata says so.

use std::sync::Arc;

use async_trait::async_trait;
use quiver_api::{
    Actor, AliasChange, AliasMeta, CatalogClient, CollectionInfo, CollectionTimes,
    CreateCollection, MetaClient, SegmentInfo, ShardId,
};
use quiver_common::{Error, Result};

use crate::meta::{CoordApi, MetaOps, MirrorHealth};
use crate::state::{CollectionMeta, IndexKind, IndexSpec, SegmentMeta};

/// A catalog segment as the role interfaces see it.
pub fn segment_info(s: &SegmentMeta) -> SegmentInfo {
    SegmentInfo {
        id: s.id,
        rows: s.rows,
        max_ts: s.max_ts,
        wal_seq: s.wal_seq,
        has_index: s.has_index,
        index_version: s.index_version,
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
        index_version: s.index_version,
    }
}

/// What the role interfaces see of a collection.
pub fn collection_info(meta: &CollectionMeta) -> CollectionInfo {
    CollectionInfo {
        id: meta.id,
        schema: meta.schema.clone(),
        shards: meta.shards,
        metric: meta.metric,
        index: api_index_kind(meta.index.kind),
        index_version: meta.index_version,
        field_indexes: meta
            .field_indexes
            .iter()
            .map(|(field, f)| {
                let kind = api_index_kind(f.index.kind);
                let index = quiver_api::FieldIndex {
                    kind,
                    metric: f.metric,
                    index_name: f.index.index_name.clone(),
                };
                (field.clone(), index)
            })
            .collect(),
        scalar_indexes: (meta.scalar_indexes.iter())
            .map(|(field, i)| (field.clone(), i.kind))
            .collect(),
    }
}

fn api_index_kind(kind: IndexKind) -> quiver_api::IndexKind {
    match kind {
        IndexKind::Hnsw { m, ef_construction } => quiver_api::IndexKind::Hnsw {
            m: m as usize,
            ef_construction: ef_construction as usize,
        },
        IndexKind::HnswSq { m, ef_construction } => quiver_api::IndexKind::HnswSq {
            m: m as usize,
            ef_construction: ef_construction as usize,
        },
        IndexKind::Flat => quiver_api::IndexKind::Flat,
        IndexKind::None => quiver_api::IndexKind::None,
        IndexKind::Sparse {
            wand,
            bm25_k1_milli,
            bm25_b_milli,
        } => quiver_api::IndexKind::Sparse {
            wand,
            bm25_k1_milli,
            bm25_b_milli,
        },
    }
}

/// The roles of this process, when they live next to coord (standalone):
/// the catalog serves a collection on them as soon as its metadata changes.
#[async_trait]
pub trait LocalNodes: Send + Sync + 'static {
    /// Opens every shard for writes and, if `loaded`, loads it for reads.
    async fn serve(&self, info: &CollectionInfo, loaded: bool) -> Result<()>;
    /// Frees a released collection's replicas (its writes still land).
    async fn release(&self, info: &CollectionInfo);
    /// Deletes a dropped collection's local files.
    async fn dropped(&self, info: &CollectionInfo);
    /// How far the mirror partner of a collection is behind it (ms).
    fn mirror_lag_ms(&self, collection: quiver_common::CollectionId) -> Option<u64>;
    /// The storage of the shards this process owns.
    fn storage(&self) -> Vec<quiver_api::ShardStorage>;
}

/// The role interfaces over a coord; see the module docs.
#[derive(Clone)]
pub struct Catalog {
    coord: Arc<dyn CoordApi>,
    local: Option<Arc<dyn LocalNodes>>,
}

impl Catalog {
    /// The catalog of a cluster process (placement is coord's).
    pub fn new(coord: Arc<dyn CoordApi>) -> Self {
        Self { coord, local: None }
    }

    /// The catalog of one process whose roles are `local`.
    pub fn with_local(coord: Arc<dyn CoordApi>, local: Arc<dyn LocalNodes>) -> Self {
        Self {
            coord,
            local: Some(local),
        }
    }

    /// The coord under this catalog.
    pub fn coord(&self) -> &Arc<dyn CoordApi> {
        &self.coord
    }

    /// Serves every collection on the local roles (a standalone start).
    pub async fn serve_all(&self) -> Result<()> {
        let Some(local) = &self.local else {
            return Ok(());
        };
        for meta in self.coord.state().collections() {
            local
                .serve(&collection_info(meta), !meta.released)
                .await
                .map_err(|e| context(e, &format!("loading collection {}", meta.name)))?;
        }
        Ok(())
    }

    fn meta(&self, name_or_alias: &str) -> Result<CollectionMeta> {
        self.coord
            .state()
            .collection(name_or_alias)
            .cloned()
            .ok_or_else(|| Error::CollectionNotFound(name_or_alias.to_string()))
    }

    /// The mirror health within 2 s (None: no answer).
    async fn mirror_health(&self) -> Option<MirrorHealth> {
        tokio::time::timeout(
            std::time::Duration::from_secs(2),
            self.coord.mirror_health(),
        )
        .await
        .ok()?
        .ok()
    }

    fn lag_of(&self, health: Option<&MirrorHealth>, collection: &str) -> Option<u64> {
        let id = self.coord.state().collection(collection)?.id;
        match &self.local {
            Some(local) => local.mirror_lag_ms(id),
            None => health?.lag_ms.get(&id).copied(),
        }
    }
}

/// The catalog's index kind of a role-interface one.
fn coord_index_kind(kind: quiver_api::IndexKind) -> Result<IndexKind> {
    Ok(match kind {
        quiver_api::IndexKind::Flat => IndexKind::Flat,
        quiver_api::IndexKind::None => IndexKind::None,
        quiver_api::IndexKind::Sparse {
            wand,
            bm25_k1_milli,
            bm25_b_milli,
        } => IndexKind::Sparse {
            wand,
            bm25_k1_milli,
            bm25_b_milli,
        },
        quiver_api::IndexKind::Hnsw { m, ef_construction } => IndexKind::Hnsw {
            m: u32::try_from(m).map_err(|_| Error::invalid("params.M", "too large"))?,
            ef_construction: u32::try_from(ef_construction)
                .map_err(|_| Error::invalid("params.efConstruction", "too large"))?,
        },
        quiver_api::IndexKind::HnswSq { m, ef_construction } => IndexKind::HnswSq {
            m: u32::try_from(m).map_err(|_| Error::invalid("params.M", "too large"))?,
            ef_construction: u32::try_from(ef_construction)
                .map_err(|_| Error::invalid("params.efConstruction", "too large"))?,
        },
    })
}

fn context(e: Error, what: &str) -> Error {
    match e {
        Error::Io(m) => Error::Io(format!("{what}: {m}")),
        Error::Corrupt(m) => Error::Corrupt(format!("{what}: {m}")),
        Error::Internal(m) => Error::Internal(format!("{what}: {m}")),
        other => other,
    }
}

#[async_trait]
impl MetaClient for Catalog {
    async fn register_segments(
        &self,
        shard: ShardId,
        epoch: u64,
        segments: Vec<SegmentInfo>,
        wal_checkpoint: u64,
    ) -> Result<()> {
        let segments = segments.iter().map(segment_meta).collect();
        self.coord
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
        let (segments, checkpoint) = self
            .coord
            .shard_segments(shard.collection_id, shard.shard)
            .await?;
        Ok((segments.iter().map(segment_info).collect(), checkpoint))
    }

    async fn allocate_ids(&self, count: u64) -> Result<u64> {
        Ok(self.coord.allocate_ids(count).await?.start)
    }

    async fn acquire_shard(&self, shard: ShardId, node_id: u64) -> Result<u64> {
        self.coord
            .acquire_shard(shard.collection_id, shard.shard, node_id)
            .await
    }

    async fn compact_segments(
        &self,
        shard: ShardId,
        epoch: u64,
        inputs: Vec<quiver_common::SegmentId>,
        output: Option<SegmentInfo>,
        job: Option<u64>,
    ) -> Result<()> {
        let output = output.as_ref().map(segment_meta);
        self.coord
            .compact_segments(shard.collection_id, shard.shard, epoch, inputs, output, job)
            .await
    }

    fn collection(&self, id: quiver_common::CollectionId) -> Option<CollectionInfo> {
        self.coord.state().collection_by_id(id).map(collection_info)
    }

    async fn shard_epoch(&self, shard: ShardId) -> Result<u64> {
        Ok(self
            .coord
            .read()
            .await?
            .shard_owner(shard.collection_id, shard.shard)
            .map_or(0, |o| o.epoch))
    }

    async fn pending_compactions(&self, shard: ShardId) -> Result<Vec<u64>> {
        Ok(self
            .coord
            .state()
            .pending_compactions(shard.collection_id, shard.shard))
    }

    async fn finish_compaction(&self, shard: ShardId, epoch: u64, job: u64) -> Result<()> {
        self.coord
            .finish_compaction(shard.collection_id, shard.shard, epoch, job)
            .await
    }
}

#[async_trait]
impl CatalogClient for Catalog {
    async fn catch_up(&self) {
        self.coord.catch_up().await;
    }

    /// Creates the collection, loaded with one replica per shard (the front
    /// door serves a collection from its creation until it is released).
    /// Without an index (`IndexKind::None`, Milvus's CreateCollection) it is
    /// writable but not loaded until CreateIndex and LoadCollection.
    async fn create_collection(&self, req: CreateCollection) -> Result<CollectionInfo> {
        let field = req.schema.vector_field().name.clone();
        let index = IndexSpec {
            kind: coord_index_kind(req.index)?,
            field_name: field.clone(),
            index_name: field,
        };
        // Loaded at once only when its one vector field has its index.
        let indexed = index.kind != IndexKind::None && req.schema.vector_fields().count() == 1;
        let meta = self
            .coord
            .create_collection_with(
                req.schema,
                req.shards,
                req.metric,
                Some(index),
                req.partitions,
            )
            .await?;
        if indexed {
            self.coord.set_loaded(&meta.name, true, None).await?;
        }
        let info = collection_info(&meta);
        if let Some(local) = &self.local {
            local.serve(&info, indexed).await?;
        }
        Ok(info)
    }

    async fn set_index(&self, name_or_alias: &str, index: quiver_api::IndexSpec) -> Result<()> {
        let meta = self.meta(name_or_alias)?;
        let field_name = if index.field.is_empty() {
            meta.index.field_name.clone()
        } else {
            index.field
        };
        let spec = IndexSpec {
            kind: coord_index_kind(index.kind)?,
            field_name,
            index_name: index.index_name,
        };
        self.coord
            .set_index(&meta.name, spec, Some(index.metric))
            .await
    }

    fn partitions(&self, name_or_alias: &str) -> Option<(Vec<quiver_api::PartitionInfo>, bool)> {
        let state = self.coord.state();
        let meta = state.collection(name_or_alias)?;
        if meta.partitions.is_empty() {
            return None;
        }
        let list = meta
            .partitions
            .iter()
            .map(|p| quiver_api::PartitionInfo {
                id: p.id,
                name: p.name.clone(),
                created_ts: p.created_ts,
                released: p.released,
            })
            .collect();
        Some((list, meta.partitions_dropped > 0))
    }

    async fn change_partitions(
        &self,
        name_or_alias: &str,
        op: quiver_api::PartitionOp,
    ) -> Result<()> {
        self.coord.change_partitions(name_or_alias, op).await
    }

    async fn rename_collection(&self, old: &str, new: &str) -> Result<()> {
        self.coord.rename_collection(old, new).await
    }

    fn query_nodes(&self) -> Vec<(u64, String)> {
        (self.coord.state().nodes().values())
            .filter(|n| n.role == crate::NodeRole::QueryNode)
            .map(|n| (n.id, n.addr.clone()))
            .collect()
    }

    fn databases(&self) -> Vec<quiver_api::DatabaseInfo> {
        let state = self.coord.state();
        let default = quiver_api::DatabaseInfo {
            id: 0,
            name: quiver_common::DEFAULT_DATABASE.to_string(),
            created_ts: 0,
            properties: Default::default(),
        };
        std::iter::once(default)
            .chain(
                state
                    .databases()
                    .values()
                    .map(|d| quiver_api::DatabaseInfo {
                        id: d.id,
                        name: d.name.clone(),
                        created_ts: d.created_ts,
                        properties: d.properties.clone(),
                    }),
            )
            .collect()
    }

    async fn change_database(&self, op: quiver_api::DatabaseOp) -> Result<()> {
        self.coord.change_database(op).await
    }

    fn replicas(&self, name_or_alias: &str) -> Vec<Vec<u64>> {
        let state = self.coord.state();
        let Some(meta) = state.collection(name_or_alias) else {
            return Vec::new();
        };
        match state.replicas.get(&meta.id) {
            Some(shards) => (0..meta.shards)
                .map(|s| shards.get(&s).cloned().unwrap_or_default())
                .collect(),
            None => Vec::new(),
        }
    }

    async fn alter(
        &self,
        name_or_alias: &str,
        target: quiver_api::AlterTarget,
        set: std::collections::BTreeMap<String, String>,
        delete: Vec<String>,
    ) -> Result<()> {
        self.coord.alter(name_or_alias, target, set, delete).await
    }

    async fn set_scalar_index(
        &self,
        name_or_alias: &str,
        field: &str,
        index: quiver_api::ScalarIndex,
    ) -> Result<()> {
        let meta = self.meta(name_or_alias)?;
        self.coord.set_scalar_index(&meta.name, field, index).await
    }

    fn scalar_indexes(
        &self,
        name_or_alias: &str,
    ) -> std::collections::BTreeMap<String, quiver_api::ScalarIndex> {
        let state = self.coord.state();
        (state.collection(name_or_alias))
            .map(|m| m.scalar_indexes.clone())
            .unwrap_or_default()
    }

    async fn drop_index(&self, name_or_alias: &str, field: Option<&str>) -> Result<()> {
        let meta = self.meta(name_or_alias)?;
        self.coord.drop_index(&meta.name, field).await
    }

    fn index_progress(&self, name_or_alias: &str) -> Option<quiver_api::IndexProgress> {
        let state = self.coord.state();
        let meta = state.collection(name_or_alias)?;
        let mut p = quiver_api::IndexProgress {
            index_name: meta.index.index_name.clone(),
            properties: meta.index_properties.clone(),
            ..Default::default()
        };
        for catalog in state
            .segments
            .get(&meta.id)
            .into_iter()
            .flat_map(|s| s.values())
        {
            for seg in &catalog.segments {
                p.total_rows += seg.rows;
                // Only a graph index is built per segment: exact search
                // needs no build.
                let hnsw = matches!(
                    meta.index.kind,
                    IndexKind::Hnsw { .. } | IndexKind::HnswSq { .. }
                );
                if !hnsw || seg.index_version == meta.index_version {
                    p.indexed_rows += seg.rows;
                } else {
                    p.pending_segments += 1;
                }
            }
        }
        Some(p)
    }

    async fn load_collection(&self, name_or_alias: &str, replicas: Option<u32>) -> Result<()> {
        let meta = self.meta(name_or_alias)?;
        self.coord.set_loaded(&meta.name, true, replicas).await?;
        if let Some(local) = &self.local {
            local.serve(&collection_info(&meta), true).await?;
        }
        Ok(())
    }

    /// Marks the collection released (reads refused from then on), then
    /// frees its replicas.
    async fn release_collection(&self, name_or_alias: &str) -> Result<()> {
        let meta = self.meta(name_or_alias)?;
        self.coord.set_loaded(&meta.name, false, None).await?;
        if let Some(local) = &self.local {
            local.release(&collection_info(&meta)).await;
        }
        Ok(())
    }

    /// Reads are served unless the collection was released (every read
    /// asks: no clone of the collection).
    fn is_loaded(&self, name_or_alias: &str) -> bool {
        self.coord
            .state()
            .collection(name_or_alias)
            .is_some_and(|m| !m.released)
    }

    fn load_problem(&self, name_or_alias: &str) -> Option<String> {
        let state = self.coord.state();
        state.collection(name_or_alias)?.unplaced.clone()
    }

    fn security(&self) -> Arc<quiver_auth::SecurityState> {
        self.coord.state().security().clone()
    }

    async fn change_security(&self, op: quiver_auth::SecurityOp) -> Result<()> {
        self.coord.change_security(op).await
    }

    async fn storage(&self) -> Vec<quiver_api::ShardStorage> {
        match &self.local {
            Some(local) => local.storage(),
            None => self.coord.storage().await.unwrap_or_else(|e| {
                tracing::debug!(error = %e, "shard storage unknown");
                Vec::new()
            }),
        }
    }

    async fn request_compaction(&self, name_or_alias: &str) -> Result<u64> {
        self.coord.request_compaction(name_or_alias).await
    }

    async fn compaction(&self, id: u64) -> Result<Option<quiver_api::CompactionStatus>> {
        Ok(self
            .coord
            .state()
            .compaction(id)
            .map(|j| quiver_api::CompactionStatus {
                id: j.id,
                collection_id: j.collection_id,
                pending_shards: j.pending.iter().copied().collect(),
                plans: j
                    .plans
                    .iter()
                    .map(|p| quiver_api::CompactionPlan {
                        shard: p.shard,
                        inputs: p.inputs.clone(),
                        output: p.output,
                    })
                    .collect(),
                finished: j.finished_ts.is_some(),
            }))
    }

    /// Drops by name or alias (an alias names its collection). A name the
    /// local copy does not know yet goes to coord as it is.
    async fn drop_collection(&self, name: &str) -> Result<()> {
        let meta = self.coord.state().collection(name).cloned();
        let own = meta.as_ref().map_or(name, |m| m.name.as_str());
        self.coord.drop_collection(own).await?;
        if let (Some(local), Some(meta)) = (&self.local, &meta) {
            local.dropped(&collection_info(meta)).await;
        }
        Ok(())
    }

    fn collection(&self, name_or_alias: &str) -> Option<CollectionInfo> {
        self.coord
            .state()
            .collection(name_or_alias)
            .map(collection_info)
    }

    fn collections(&self) -> Vec<CollectionInfo> {
        self.coord
            .state()
            .collections()
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
        self.coord.drop_alias(alias).await
    }

    fn aliases(&self) -> Vec<(String, String)> {
        self.coord
            .state()
            .aliases()
            .iter()
            .map(|(alias, meta)| (alias.clone(), meta.collection.clone()))
            .collect()
    }

    fn alias(&self, alias: &str) -> Option<AliasMeta> {
        self.coord.state().alias(alias)
    }

    async fn nodes(&self) -> Result<Vec<quiver_api::NodeInfo>> {
        crate::node_admin::nodes(self.coord.as_ref()).await
    }

    async fn drain_node(&self, id: u64, draining: bool) -> Result<()> {
        crate::node_admin::drain(self.coord.as_ref(), id, draining).await
    }

    async fn forget_node(&self, id: u64) -> Result<()> {
        crate::node_admin::forget(self.coord.as_ref(), id).await
    }

    async fn mirror_lag_ms(&self, collection: &str) -> Option<u64> {
        let health = match self.local {
            Some(_) => None,
            None => Some(self.mirror_health().await?),
        };
        self.lag_of(health.as_ref(), collection)
    }

    async fn divergent_rows(&self, alias: &str) -> Option<u64> {
        self.mirror_health()
            .await?
            .divergent_rows
            .get(alias)
            .copied()
    }

    /// One mirror-health call answers both.
    async fn mirror_status(&self, alias: &str, target: &str) -> (Option<u64>, Option<u64>) {
        let health = self.mirror_health().await;
        let lag = self.lag_of(health.as_ref(), target);
        let rows = health.and_then(|h| h.divergent_rows.get(alias).copied());
        (lag, rows)
    }

    async fn change_alias(&self, change: AliasChange, actor: Actor) -> Result<u64> {
        self.coord.alias_admin(change, actor).await
    }

    fn collection_times(&self, name_or_alias: &str) -> Option<CollectionTimes> {
        self.coord
            .state()
            .collection(name_or_alias)
            .map(|m| CollectionTimes {
                id: m.id,
                created: m.created_ts,
                updated: m.updated_ts,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetaCommand;
    use crate::coord::NodeHealth;
    use crate::meta::{MirrorHealth, Proposed};
    use crate::state::{MetaState, NodeRole};
    use quiver_api::{NodeReport, ShardStorage};
    use tokio::sync::watch;

    /// A coord whose quorum read is at `leader` while the local copy
    /// follows `cache` (a front door's cache behind a datanode's write).
    struct Lagging {
        leader: u64,
        cache: watch::Receiver<Arc<MetaState>>,
    }

    fn at(version: u64) -> Arc<MetaState> {
        Arc::new(MetaState {
            version,
            ..Default::default()
        })
    }

    #[async_trait]
    impl CoordApi for Lagging {
        async fn propose(&self, _: MetaCommand) -> Result<Proposed> {
            Err(Error::Unavailable("read-only".into()))
        }
        async fn read(&self) -> Result<Arc<MetaState>> {
            Ok(at(self.leader))
        }
        fn state(&self) -> Arc<MetaState> {
            self.cache.borrow().clone()
        }
        fn subscribe(&self) -> watch::Receiver<Arc<MetaState>> {
            self.cache.clone()
        }
        async fn heartbeat(&self, _: u64, _: NodeRole, _: &str, _: &NodeReport) -> Result<()> {
            Ok(())
        }
        async fn node_health(&self) -> Result<Vec<NodeHealth>> {
            Ok(vec![])
        }
        async fn mirror_health(&self) -> Result<MirrorHealth> {
            Ok(MirrorHealth::default())
        }
        async fn storage(&self) -> Result<Vec<ShardStorage>> {
            Ok(vec![])
        }
    }

    #[tokio::test]
    async fn catch_up_returns_once_the_cache_holds_what_coord_acknowledged() {
        let (tx, cache) = watch::channel(at(3));
        let coord = Arc::new(Lagging { leader: 5, cache });
        // Through the catalog, as a flush calls it.
        let catalog = Catalog::new(coord.clone());
        let waiting = tokio::spawn(async move { catalog.catch_up().await });
        tx.send_replace(at(4));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "version 4 is behind coord's 5");
        tx.send_replace(at(5));
        waiting.await.expect("joins");
        assert_eq!(coord.state().version(), 5);
        // A cache that never catches up is a bounded wait, reported.
        let (_tx, cache) = watch::channel(at(1));
        let wait = std::time::Duration::from_millis(1);
        assert!(!crate::meta::cache_reaches(cache.clone(), 2, wait).await);
        assert!(crate::meta::cache_reaches(cache, 1, wait).await);
    }
}
