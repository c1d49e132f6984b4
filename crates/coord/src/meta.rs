//! One way into coord for every caller: [`CoordApi`] is the small trait both
//! the in-process [`Coord`] and the network [`crate::CoordClient`] implement
//! (propose a command, read the state, heartbeat), and [`MetaOps`] is every
//! typed metadata call, written once over it. A new coord operation is a
//! rule (`rules/`), a [`MetaCommand`] variant and, if callers want a typed
//! call, one method here.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use quiver_api::{NodeReport, ShardStorage};
use quiver_common::{CollectionId, CollectionSchema, Error, Metric, Result, ShardIndex};
use tokio::sync::watch;

use crate::command::{
    Actor, AliasChange, AlterTarget, DatabaseOp, MetaCommand, MetaResponse, PartitionOp,
};
use crate::coord::{Coord, NodeHealth};
use crate::state::{AliasMeta, CollectionMeta, IndexSpec, MetaState, NodeRole, SegmentMeta};

/// What a proposal returns: the state machine's response and the metadata
/// version that holds it (the caller's [`CoordApi::state`] has reached it
/// when the call returns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposed {
    pub response: MetaResponse,
    pub version: u64,
}

/// What the leader knows of mirrored aliases, in one call: mirror lags as
/// datanodes last reported them (collection id -> ms behind), and divergent
/// rows per alias as its divergence check last counted them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorHealth {
    pub lag_ms: BTreeMap<u64, u64>,
    pub divergent_rows: BTreeMap<String, u64>,
}

/// Coord as every other part of Quiver reaches it, in one process or over
/// the network.
#[async_trait]
pub trait CoordApi: Send + Sync + 'static {
    /// The one entry for metadata changes: applies `cmd` through Raft once
    /// (a retried network call is deduplicated by its request id) and
    /// returns once [`CoordApi::state`] holds it.
    async fn propose(&self, cmd: MetaCommand) -> Result<Proposed>;
    /// The metadata after confirming leadership with a quorum
    /// (linearizable: it holds every write acknowledged before the call).
    async fn read(&self) -> Result<Arc<MetaState>>;
    /// The local copy of the metadata (the applied state in process, the
    /// watch-fed cache over the network): never waits on coord.
    fn state(&self) -> Arc<MetaState>;
    /// Follows [`CoordApi::state`]; a new value arrives per newer version.
    fn subscribe(&self) -> watch::Receiver<Arc<MetaState>>;
    /// Waits (at most [`CATCH_UP_WAIT`]) until [`CoordApi::state`] holds
    /// every change coord acknowledged before the call, such as segments a
    /// datanode registered through its own client: a linearizable read of
    /// coord's version, then the local copy reaching it. Logged, not an
    /// error, when it does not: only the copy lags.
    async fn catch_up(&self) {
        match self.read().await {
            Ok(state) => {
                cache_reaches(self.subscribe(), state.version(), CATCH_UP_WAIT).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "no linearizable metadata read: the cache may lag")
            }
        }
    }
    /// A datanode's or querynode's heartbeat (its lease); registers the
    /// node or its new address on first contact. `report`: a datanode's
    /// mirror lags and the storage of the shards it owns.
    async fn heartbeat(
        &self,
        id: u64,
        role: NodeRole,
        addr: &str,
        report: &NodeReport,
    ) -> Result<()>;
    /// Every registered node with its liveness, as the leader sees it.
    async fn node_health(&self) -> Result<Vec<NodeHealth>>;
    /// See [`MirrorHealth`].
    async fn mirror_health(&self) -> Result<MirrorHealth>;
    /// The storage of every shard, as the owners last reported it to the
    /// leader within a lease.
    async fn storage(&self) -> Result<Vec<ShardStorage>>;
}

/// How long [`CoordApi::catch_up`] waits for the local copy.
pub const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits up to `wait` until `cache` holds metadata `version`; false (and a
/// warning) if it does not.
pub(crate) async fn cache_reaches(
    mut cache: watch::Receiver<Arc<MetaState>>,
    version: u64,
    wait: std::time::Duration,
) -> bool {
    let reached = tokio::time::timeout(wait, cache.wait_for(|s| s.version() >= version)).await;
    let ok = matches!(reached, Ok(Ok(_)));
    if !ok {
        tracing::warn!(version, "the coord metadata cache did not catch up");
    }
    ok
}

#[async_trait]
impl CoordApi for Coord {
    async fn propose(&self, cmd: MetaCommand) -> Result<Proposed> {
        let response = Coord::propose(self, cmd, None).await?;
        Ok(Proposed {
            response,
            version: Coord::state(self).version(),
        })
    }

    async fn read(&self) -> Result<Arc<MetaState>> {
        Ok(self.read_state().await?)
    }

    fn state(&self) -> Arc<MetaState> {
        Coord::state(self)
    }

    fn subscribe(&self) -> watch::Receiver<Arc<MetaState>> {
        self.watch()
    }

    async fn heartbeat(
        &self,
        id: u64,
        role: NodeRole,
        addr: &str,
        report: &NodeReport,
    ) -> Result<()> {
        Ok(self.heartbeat_with(id, role, addr, report).await?)
    }

    async fn node_health(&self) -> Result<Vec<NodeHealth>> {
        Ok(Coord::node_health(self)?)
    }

    async fn mirror_health(&self) -> Result<MirrorHealth> {
        Ok(MirrorHealth {
            lag_ms: self.mirror_lags(),
            divergent_rows: self.divergence(),
        })
    }

    async fn storage(&self) -> Result<Vec<ShardStorage>> {
        Ok(Coord::storage(self))
    }
}

/// A response of an unexpected shape: a bug, never bad input.
fn unexpected(what: &str, resp: MetaResponse) -> Error {
    Error::Internal(format!("{what}: unexpected coord response {resp:?}"))
}

/// Every typed metadata call, over any [`CoordApi`].
#[async_trait]
pub trait MetaOps: CoordApi {
    /// Proposes `cmd`, expecting [`MetaResponse::Done`].
    async fn done(&self, cmd: MetaCommand) -> Result<()> {
        let what = cmd.name();
        match self.propose(cmd).await?.response {
            MetaResponse::Done => Ok(()),
            other => Err(unexpected(what, other)),
        }
    }

    /// Proposes an alias change; returns the alias's new epoch.
    async fn alias_epoch(&self, cmd: MetaCommand) -> Result<u64> {
        let what = cmd.name();
        match self.propose(cmd).await?.response {
            MetaResponse::AliasSet { epoch } => Ok(epoch),
            other => Err(unexpected(what, other)),
        }
    }

    /// Creates a collection named `schema.name` (metadata only); returns it.
    async fn create_collection(
        &self,
        schema: CollectionSchema,
        shards: u32,
        metric: Metric,
        index: Option<IndexSpec>,
    ) -> Result<CollectionMeta> {
        self.create_collection_with(schema, shards, metric, index, None)
            .await
    }

    /// [`MetaOps::create_collection`] with the partitions it starts with
    /// (None: the implicit `_default` of collections older than partitions).
    async fn create_collection_with(
        &self,
        schema: CollectionSchema,
        shards: u32,
        metric: Metric,
        index: Option<IndexSpec>,
        partitions: Option<Vec<String>>,
    ) -> Result<CollectionMeta> {
        let cmd = MetaCommand::CreateCollection {
            schema,
            shards,
            metric,
            index,
            partitions,
        };
        match self.propose(cmd).await?.response {
            MetaResponse::CollectionCreated { id } => {
                self.state().collection_by_id(id).cloned().ok_or_else(|| {
                    Error::Internal(format!("collection {id} vanished right after its creation"))
                })
            }
            other => Err(unexpected("create collection", other)),
        }
    }

    /// Drops a collection by its own name; refused while aliases point to it.
    async fn drop_collection(&self, name: &str) -> Result<()> {
        self.done(MetaCommand::DropCollection { name: name.into() })
            .await
    }

    /// Sets the index of a collection that has none (or the same one
    /// again); `metric` None keeps the collection's metric.
    async fn set_index(
        &self,
        collection: &str,
        index: IndexSpec,
        metric: Option<Metric>,
    ) -> Result<()> {
        let collection = collection.into();
        self.done(MetaCommand::SetIndex {
            collection,
            index,
            metric,
        })
        .await
    }

    /// Sets the index of a scalar field (`rules/scalar_index.rs`).
    async fn set_scalar_index(
        &self,
        collection: &str,
        field: &str,
        index: quiver_api::ScalarIndex,
    ) -> Result<()> {
        self.done(MetaCommand::SetScalarIndex {
            collection: collection.into(),
            field: field.into(),
            index,
        })
        .await
    }

    /// Sets and deletes properties of a collection, its index or a field.
    async fn alter(
        &self,
        collection: &str,
        target: AlterTarget,
        set: std::collections::BTreeMap<String, String>,
        delete: Vec<String>,
    ) -> Result<()> {
        let collection = collection.into();
        self.done(MetaCommand::Alter {
            collection,
            target,
            set,
            delete,
        })
        .await
    }

    /// Renames a collection (qualified names).
    async fn rename_collection(&self, old: &str, new: &str) -> Result<()> {
        let (old, new) = (old.to_string(), new.to_string());
        self.done(MetaCommand::RenameCollection { old, new }).await
    }

    /// Creates, drops or alters a database.
    async fn change_database(&self, op: DatabaseOp) -> Result<()> {
        self.done(MetaCommand::Database { op }).await
    }

    /// Creates, drops, releases or loads partitions of a collection.
    async fn change_partitions(&self, collection: &str, op: PartitionOp) -> Result<()> {
        let collection = collection.into();
        self.done(MetaCommand::Partition { collection, op }).await
    }

    async fn drop_index(&self, collection: &str, field: Option<&str>) -> Result<()> {
        let collection = collection.into();
        let field = field.map(str::to_string);
        self.done(MetaCommand::DropIndex { collection, field })
            .await
    }

    /// Loads or releases a collection; `replica_number` (None keeps the
    /// current value, at least 1) is how many querynodes serve each shard.
    async fn set_loaded(
        &self,
        collection: &str,
        loaded: bool,
        replica_number: Option<u32>,
    ) -> Result<()> {
        if replica_number == Some(0) {
            return Err(Error::invalid(
                "replica_number",
                "must be at least 1 (got 0)",
            ));
        }
        let collection = collection.into();
        self.done(MetaCommand::SetLoaded {
            collection,
            loaded,
            replica_number,
        })
        .await
    }

    /// Creates `alias` -> `collection`; returns the alias's epoch.
    async fn create_alias(&self, alias: &str, collection: &str) -> Result<u64> {
        let (alias, collection) = (alias.into(), collection.into());
        self.alias_epoch(MetaCommand::CreateAlias { alias, collection })
            .await
    }

    /// Points `alias` at `collection`; returns the new (larger) epoch.
    async fn alter_alias(&self, alias: &str, collection: &str) -> Result<u64> {
        let (alias, collection) = (alias.into(), collection.into());
        self.alias_epoch(MetaCommand::AlterAlias { alias, collection })
            .await
    }

    async fn drop_alias(&self, alias: &str) -> Result<()> {
        let alias = alias.into();
        self.done(MetaCommand::DropAlias { alias }).await
    }

    /// Re-admits coord `node_id` after its directory lost its state: the
    /// cluster forgets its old incarnation; it registers its new one and
    /// votes again once it has applied that (`crate::identity`).
    async fn admit_coord(&self, node_id: u64) -> Result<()> {
        self.done(MetaCommand::AdmitCoord { node_id }).await
    }

    /// An admin API alias change (mirror, flip, pin, compare-and-swap
    /// alter), recorded with `actor`; returns the alias's new epoch.
    async fn alias_admin(&self, change: AliasChange, actor: Actor) -> Result<u64> {
        self.alias_epoch(MetaCommand::AliasAdmin { change, actor })
            .await
    }

    /// Registers sealed segments of a shard (idempotent per segment id) and
    /// moves its WAL checkpoint forward; returns the checkpoint in force.
    /// `epoch` must be the shard's current owner epoch (0 while it has no
    /// owner), else the call fails as fenced.
    async fn register_segments(
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
        match self.propose(cmd).await?.response {
            MetaResponse::SegmentsRegistered { wal_checkpoint, .. } => Ok(wal_checkpoint),
            other => Err(unexpected("register segments", other)),
        }
    }

    /// Swaps a shard's compacted `inputs` for `output` (see
    /// `MetaCommand::CompactSegments`).
    async fn compact_segments(
        &self,
        collection_id: CollectionId,
        shard: ShardIndex,
        epoch: u64,
        inputs: Vec<quiver_common::SegmentId>,
        output: Option<SegmentMeta>,
        job: Option<u64>,
    ) -> Result<()> {
        let cmd = MetaCommand::CompactSegments {
            collection_id,
            shard,
            epoch,
            inputs,
            output,
            job,
        };
        self.propose(cmd).await?;
        Ok(())
    }

    /// Changes users, roles or grants.
    async fn change_security(&self, op: quiver_auth::SecurityOp) -> Result<()> {
        self.propose(MetaCommand::Security { op }).await?;
        Ok(())
    }

    /// Starts a manual compaction of a collection; returns its id.
    async fn request_compaction(&self, collection: &str) -> Result<u64> {
        let cmd = MetaCommand::RequestCompaction {
            collection: collection.to_string(),
        };
        match self.propose(cmd).await?.response {
            MetaResponse::CompactionRequested { id } => Ok(id),
            other => Err(unexpected("request compaction", other)),
        }
    }

    /// The shard's owner finished its part of manual compaction `job`.
    async fn finish_compaction(
        &self,
        collection_id: CollectionId,
        shard: ShardIndex,
        epoch: u64,
        job: u64,
    ) -> Result<()> {
        let cmd = MetaCommand::FinishCompaction {
            collection_id,
            shard,
            epoch,
            job,
        };
        self.propose(cmd).await?;
        Ok(())
    }

    /// Makes `node_id` the shard's owner; returns its fencing epoch
    /// (previous + 1).
    async fn acquire_shard(
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
        match self.propose(cmd).await?.response {
            MetaResponse::ShardAcquired { epoch } => Ok(epoch),
            other => Err(unexpected("acquire shard", other)),
        }
    }

    /// Reserves `count` ids that are never handed out again.
    async fn allocate_ids(&self, count: u64) -> Result<Range<u64>> {
        match self
            .propose(MetaCommand::AllocateIds { count })
            .await?
            .response
        {
            MetaResponse::IdsAllocated { first } => Ok(first..first + count),
            other => Err(unexpected("allocate ids", other)),
        }
    }

    /// A collection by name or alias (linearizable).
    async fn describe_collection(&self, name_or_alias: &str) -> Result<CollectionMeta> {
        self.read()
            .await?
            .collection(name_or_alias)
            .cloned()
            .ok_or_else(|| Error::CollectionNotFound(name_or_alias.to_string()))
    }

    /// All collections (linearizable).
    async fn list_collections(&self) -> Result<Vec<CollectionMeta>> {
        Ok(self.read().await?.collections().cloned().collect())
    }

    /// All aliases with their metadata (linearizable).
    async fn list_aliases(&self) -> Result<Vec<(String, AliasMeta)>> {
        let state = self.read().await?;
        Ok(state
            .aliases()
            .iter()
            .map(|(a, m)| (a.clone(), m.clone()))
            .collect())
    }

    /// A shard's segments and WAL checkpoint (linearizable).
    async fn shard_segments(
        &self,
        collection_id: CollectionId,
        shard: ShardIndex,
    ) -> Result<(Vec<SegmentMeta>, u64)> {
        let catalog = self.read().await?.segments(collection_id, shard);
        Ok((catalog.segments, catalog.wal_checkpoint))
    }
}

impl<T: CoordApi + ?Sized> MetaOps for T {}
