//! What goes through the Raft log: commands, and what applying one returns.

pub use quiver_api::{Actor, AliasChange, AlterTarget, DatabaseOp, PartitionOp};
use quiver_common::{CollectionId, CollectionSchema, Metric, SegmentId, ShardIndex, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::RuleError;
use crate::state::{IndexSpec, NodeRole, SegmentMeta};

/// One change to the metadata. Collections are named by name (or alias where
/// noted) because that is what clients send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetaCommand {
    CreateCollection {
        schema: CollectionSchema,
        shards: u32,
        metric: Metric,
        /// `None` means no index yet.
        index: Option<IndexSpec>,
        /// The partitions it starts with (None: none listed, the collection
        /// has the implicit `_default` of collections older than partitions).
        #[serde(default)]
        partitions: Option<Vec<String>>,
    },
    /// Sets and deletes properties of a collection, its index or a field
    /// (by name or alias); refused as a whole if one is invalid.
    Alter {
        collection: String,
        target: AlterTarget,
        set: std::collections::BTreeMap<String, String>,
        delete: Vec<String>,
    },
    /// Database DDL.
    Database {
        op: DatabaseOp,
    },
    /// Partition DDL of a collection (by name or alias).
    Partition {
        collection: String,
        op: PartitionOp,
    },
    /// By collection name only (not an alias), to a name no collection or
    /// alias has.
    RenameCollection {
        old: String,
        new: String,
    },
    /// By collection name only (not an alias); refused while aliases point to it.
    DropCollection {
        name: String,
    },
    /// By name or alias. `metric`: the metric the index is built with
    /// (None keeps the collection's).
    SetIndex {
        collection: String,
        index: IndexSpec,
        #[serde(default)]
        metric: Option<Metric>,
    },
    /// By name or alias: the index of a scalar field (new in protocol 3).
    SetScalarIndex {
        collection: String,
        field: String,
        index: quiver_api::ScalarIndex,
    },
    /// By name or alias; refused while the collection is loaded.
    /// `field`: a vector field other than the first, or a scalar field
    /// (None: the first vector field).
    DropIndex {
        collection: String,
        #[serde(default)]
        field: Option<String>,
    },
    /// By name or alias; loading needs an index. `replica_number`: how
    /// many querynodes serve each shard (None keeps the current value).
    SetLoaded {
        collection: String,
        loaded: bool,
        #[serde(default)]
        replica_number: Option<u32>,
    },
    CreateAlias {
        alias: String,
        collection: String,
    },
    AlterAlias {
        alias: String,
        collection: String,
    },
    DropAlias {
        alias: String,
    },
    /// Refused unless `epoch` is the shard's current owner epoch (0 while
    /// the shard has no owner). `None` only in entries written before the
    /// epoch was carried: a Raft log replays them as they were accepted
    /// then (without the check), so upgrading never drops a registered
    /// segment.
    RegisterSegments {
        collection_id: CollectionId,
        shard: ShardIndex,
        #[serde(default)]
        epoch: Option<u64>,
        segments: Vec<SegmentMeta>,
        wal_checkpoint: u64,
    },
    AcquireShard {
        collection_id: CollectionId,
        shard: ShardIndex,
        node_id: u64,
    },
    AllocateIds {
        count: u64,
    },
    /// Registers a datanode or querynode, or changes its address. An id
    /// keeps its role for good.
    RegisterNode {
        id: u64,
        role: NodeRole,
        addr: String,
    },
    /// Starts (or stops) draining a datanode or querynode: nothing new is
    /// placed on it and placement moves what it has to other nodes.
    SetNodeDraining {
        id: u64,
        draining: bool,
    },
    /// Forgets a datanode or querynode that owns no shard and serves no
    /// replica (a node that is gone for good, or drained).
    ForgetNode {
        id: u64,
    },
    /// An alias change of the admin API (mirrors, flips, pins,
    /// compare-and-swap), recorded with who made it and why.
    AliasAdmin {
        change: AliasChange,
        actor: Actor,
    },
    /// The querynodes serving one shard, in order (each a registered
    /// querynode, no duplicates); empty clears them.
    SetReplicas {
        collection_id: CollectionId,
        shard: ShardIndex,
        nodes: Vec<u64>,
        /// A move under way: the node of `nodes` whose copy goes once the
        /// others serve (balancing's record of which copy is the old one;
        /// None clears it). Absent in the logs of earlier releases, and
        /// ignored by them: they release the most loaded copy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        leaving: Option<u64>,
    },
    /// Records why placement cannot give a loaded collection's shards their
    /// replicas (None: it can again). Proposed by the leader when it changes.
    SetUnplaced {
        collection_id: CollectionId,
        reason: Option<String>,
    },
    /// Replaces sealed segments of a shard by their compacted output (`None`
    /// when none of their rows is live) in one step. Refused unless `epoch`
    /// is the shard's current owner epoch and every input is still
    /// registered; `job` records it under a manual compaction.
    CompactSegments {
        collection_id: CollectionId,
        shard: ShardIndex,
        epoch: u64,
        inputs: Vec<SegmentId>,
        output: Option<SegmentMeta>,
        job: Option<u64>,
    },
    /// Starts a manual compaction of every shard of a collection (by name
    /// or alias); answers its id.
    RequestCompaction {
        collection: String,
    },
    /// The shard's owner has compacted what manual compaction `job` asked
    /// of this shard.
    FinishCompaction {
        collection_id: CollectionId,
        shard: ShardIndex,
        epoch: u64,
        job: u64,
    },
    /// Users, roles and grants (passwords arrive hashed).
    Security {
        op: quiver_auth::SecurityOp,
    },
    /// A coord records the incarnation of its directory (and names the
    /// cluster, if it has no id yet); see `crate::identity`.
    RegisterCoord {
        node_id: u64,
        incarnation: String,
        cluster_id: String,
    },
    /// Forgets a coord's recorded incarnation: it registers its new one and
    /// votes again (`quiver coord add`).
    AdmitCoord {
        node_id: u64,
    },
}

/// What a successfully applied command returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaResponse {
    /// Done; nothing to report (also the response to blank/membership entries).
    Done,
    CollectionCreated {
        id: CollectionId,
    },
    /// The alias's new epoch.
    AliasSet {
        epoch: u64,
    },
    SegmentsRegistered {
        added: u32,
        wal_checkpoint: u64,
    },
    /// The new owner's fencing epoch.
    ShardAcquired {
        epoch: u64,
    },
    /// Ids `first..first + count` are now reserved for the caller.
    IdsAllocated {
        first: u64,
    },
    /// A manual compaction's id.
    CompactionRequested {
        id: u64,
    },
}

impl MetaCommand {
    /// What the command does, for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            MetaCommand::CreateCollection { .. } => "create collection",
            MetaCommand::DropCollection { .. } => "drop collection",
            MetaCommand::RenameCollection { .. } => "rename collection",
            MetaCommand::Database { .. } => "change databases",
            MetaCommand::Partition { .. } => "change partitions",
            MetaCommand::Alter { .. } => "alter properties",
            MetaCommand::SetIndex { .. } => "set index",
            MetaCommand::SetScalarIndex { .. } => "set scalar index",
            MetaCommand::DropIndex { .. } => "drop index",
            MetaCommand::SetLoaded { .. } => "set loaded",
            MetaCommand::CreateAlias { .. } => "create alias",
            MetaCommand::AlterAlias { .. } => "alter alias",
            MetaCommand::DropAlias { .. } => "drop alias",
            MetaCommand::RegisterSegments { .. } => "register segments",
            MetaCommand::AcquireShard { .. } => "acquire shard",
            MetaCommand::AllocateIds { .. } => "allocate ids",
            MetaCommand::RegisterNode { .. } => "register node",
            MetaCommand::SetNodeDraining { .. } => "drain node",
            MetaCommand::ForgetNode { .. } => "forget node",
            MetaCommand::AliasAdmin { .. } => "alias admin",
            MetaCommand::SetReplicas { .. } => "set replicas",
            MetaCommand::SetUnplaced { .. } => "set unplaced",
            MetaCommand::CompactSegments { .. } => "compact segments",
            MetaCommand::RequestCompaction { .. } => "request compaction",
            MetaCommand::FinishCompaction { .. } => "finish compaction",
            MetaCommand::Security { .. } => "change users or roles",
            MetaCommand::RegisterCoord { .. } => "register coord",
            MetaCommand::AdmitCoord { .. } => "admit coord",
        }
    }

    /// The internal protocol that introduced the command: a coord proposes
    /// it only once every coord speaks that protocol (an older one could
    /// not apply it; `quiver_metrics::protocol`).
    pub fn protocol(&self) -> u32 {
        match self {
            MetaCommand::SetUnplaced { .. } => 2,
            MetaCommand::SetScalarIndex { .. } => 3,
            MetaCommand::SetIndex { index, .. }
                if matches!(index.kind, crate::state::IndexKind::HnswSq { .. }) =>
            {
                3
            }
            _ => 1,
        }
    }
}

/// Identifies one proposal across its retries: a client picks `client`
/// at random once and numbers its proposals with `seq`. The state machine
/// remembers the replies of the most recent ids (`crate::requests`), so a
/// retried proposal applies once and gets its first answer again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId {
    pub client: u64,
    pub seq: u64,
}

/// A Raft log entry's payload: the command, the proposer's timestamp
/// (carried in the entry so that every replica applies the same value) and
/// the request id (None: not deduplicated; entries written before request
/// ids existed have none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaRequest {
    pub(crate) ts: Timestamp,
    pub(crate) cmd: MetaCommand,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) request: Option<RequestId>,
}

/// The state machine's reply to one log entry.
pub type MetaReply = Result<MetaResponse, RuleError>;
