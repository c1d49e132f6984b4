//! Coord's public API: writes go through Raft, reads come from the applied state.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use quiver_common::{CollectionId, CollectionSchema, Metric, ShardIndex};
use tokio::sync::watch;

use super::Coord;
use crate::command::{Actor, AliasChange, MetaCommand, MetaResponse};
use crate::error::{CoordError, Result};
use crate::state::{AliasMeta, CollectionMeta, IndexSpec, MetaState, SegmentMeta};

/// A response of an unexpected shape: a bug, never bad input.
fn unexpected(resp: MetaResponse) -> CoordError {
    CoordError::Raft(format!("unexpected state machine response {resp:?}"))
}

impl Coord {
    /// Creates a collection named `schema.name`; returns its metadata.
    pub async fn create_collection(
        &self,
        schema: CollectionSchema,
        shards: u32,
        metric: Metric,
        index: Option<IndexSpec>,
    ) -> Result<CollectionMeta> {
        let cmd = MetaCommand::CreateCollection {
            schema,
            shards,
            metric,
            index,
        };
        match self.write(cmd).await? {
            MetaResponse::CollectionCreated { id } => self
                .state()
                .collection_by_id(id)
                .cloned()
                .ok_or_else(|| CoordError::Raft(format!("collection {id} vanished"))),
            other => Err(unexpected(other)),
        }
    }

    /// Drops a collection by its own name; refused while aliases point to it.
    pub async fn drop_collection(&self, name: &str) -> Result<()> {
        self.done(MetaCommand::DropCollection { name: name.into() })
            .await
    }

    /// The collection named `name_or_alias` (aliases are resolved).
    pub fn collection(&self, name_or_alias: &str) -> Option<CollectionMeta> {
        self.state().collection(name_or_alias).cloned()
    }

    /// All collections, by id.
    pub fn collections(&self) -> Vec<CollectionMeta> {
        self.state().collections().cloned().collect()
    }

    pub async fn set_index(&self, collection: &str, index: IndexSpec) -> Result<()> {
        let collection = collection.into();
        self.done(MetaCommand::SetIndex { collection, index }).await
    }

    pub async fn drop_index(&self, collection: &str) -> Result<()> {
        self.done(MetaCommand::DropIndex {
            collection: collection.into(),
        })
        .await
    }

    /// Loads or releases a collection; `replica_number` (None keeps the
    /// current value, at least 1) is how many querynodes serve each shard.
    pub async fn set_loaded(
        &self,
        collection: &str,
        loaded: bool,
        replica_number: Option<u32>,
    ) -> Result<()> {
        let collection = collection.into();
        self.done(MetaCommand::SetLoaded {
            collection,
            loaded,
            replica_number,
        })
        .await
    }

    /// Creates `alias` -> `collection`; returns the alias's epoch.
    pub async fn create_alias(&self, alias: &str, collection: &str) -> Result<u64> {
        let (alias, collection) = (alias.into(), collection.into());
        self.alias_epoch(MetaCommand::CreateAlias { alias, collection })
            .await
    }

    /// Points `alias` at `collection`; returns the new (larger) epoch.
    pub async fn alter_alias(&self, alias: &str, collection: &str) -> Result<u64> {
        let (alias, collection) = (alias.into(), collection.into());
        self.alias_epoch(MetaCommand::AlterAlias { alias, collection })
            .await
    }

    /// An admin API alias change (mirror, flip, pin, compare-and-swap
    /// alter), recorded with `actor`; returns the alias's new epoch.
    pub async fn alias_admin(&self, change: AliasChange, actor: Actor) -> Result<u64> {
        self.alias_epoch(MetaCommand::AliasAdmin { change, actor })
            .await
    }

    pub async fn drop_alias(&self, alias: &str) -> Result<()> {
        self.done(MetaCommand::DropAlias {
            alias: alias.into(),
        })
        .await
    }

    /// All aliases: alias name -> (collection, epoch).
    pub fn aliases(&self) -> BTreeMap<String, AliasMeta> {
        self.state().aliases().clone()
    }

    /// Registers sealed segments of a shard (idempotent per segment id) and
    /// moves its WAL checkpoint forward; returns the checkpoint now in force.
    /// `epoch` must be the shard's current owner epoch (0 while it has no
    /// owner); otherwise the call fails as fenced.
    pub async fn register_segments(
        &self,
        collection_id: CollectionId,
        shard: ShardIndex,
        epoch: u64,
        segments: Vec<SegmentMeta>,
        wal_checkpoint: u64,
    ) -> Result<u64> {
        let cmd = MetaCommand::RegisterSegments {
            collection_id,
            shard,
            epoch: Some(epoch),
            segments,
            wal_checkpoint,
        };
        match self.write(cmd).await? {
            MetaResponse::SegmentsRegistered { wal_checkpoint, .. } => Ok(wal_checkpoint),
            other => Err(unexpected(other)),
        }
    }

    /// A shard's registered segments (by id) and its WAL checkpoint.
    pub fn segments(
        &self,
        collection_id: CollectionId,
        shard: ShardIndex,
    ) -> (Vec<SegmentMeta>, u64) {
        let catalog = self.state().segments(collection_id, shard);
        (catalog.segments, catalog.wal_checkpoint)
    }

    /// Makes `node_id` the shard's owner; returns its fencing epoch (previous + 1).
    pub async fn acquire_shard(
        &self,
        collection_id: CollectionId,
        shard: ShardIndex,
        node_id: u64,
    ) -> Result<u64> {
        let cmd = MetaCommand::AcquireShard {
            collection_id,
            shard,
            node_id,
        };
        match self.write(cmd).await? {
            MetaResponse::ShardAcquired { epoch } => Ok(epoch),
            other => Err(unexpected(other)),
        }
    }

    /// Reserves `count` ids that are never handed out again.
    pub async fn allocate_ids(&self, count: u64) -> Result<Range<u64>> {
        match self.write(MetaCommand::AllocateIds { count }).await? {
            MetaResponse::IdsAllocated { first } => Ok(first..first + count),
            other => Err(unexpected(other)),
        }
    }

    /// The applied state; a new value is sent after each applied batch of commands.
    pub fn watch(&self) -> watch::Receiver<Arc<MetaState>> {
        self.state.clone()
    }

    /// The applied state now.
    pub fn state(&self) -> Arc<MetaState> {
        Arc::clone(&self.state.borrow())
    }

    async fn done(&self, cmd: MetaCommand) -> Result<()> {
        match self.write(cmd).await? {
            MetaResponse::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn alias_epoch(&self, cmd: MetaCommand) -> Result<u64> {
        match self.write(cmd).await? {
            MetaResponse::AliasSet { epoch } => Ok(epoch),
            other => Err(unexpected(other)),
        }
    }
}
