//! [`Coord`]: opens the on-disk Raft node (alone, or as a member of a
//! cluster) and proposes commands ([`Coord::propose`]; the typed calls are
//! [`crate::MetaOps`], shared with [`crate::CoordClient`]). Cluster status and
//! leader changes are in `status`; node leases and the placement loop in
//! `placement`.

mod identity_task;
mod membership;
mod metrics;
mod options;
mod placement;
mod status;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{
    CheckIsLeaderError, ClientWriteError, Fatal, ForwardToLeader, InitializeError, RaftError,
};
use openraft::{BasicNode, Raft};
use quiver_common::HybridClock;
use tokio::sync::watch;

pub use membership::{DEFAULT_CATCH_UP, Members};
pub use options::CoordOptions;
pub use placement::NodeHealth;
pub use status::{ClusterStatus, LeaderWatch, Role};

use crate::command::{MetaCommand, MetaRequest, MetaResponse, RequestId};
use crate::error::{CoordError, Result, RuleError};
use crate::identity::{Identity, Standing, has_raft_state};
use crate::raft::{
    GrpcTransport, LogStore, Network, NoPeers, RaftTransport, StateMachine, TypeConfig,
};
use crate::state::MetaState;

/// How long a leader of several coords may go without hearing from a
/// quorum before it refuses writes at once (see [`Coord::propose`]).
const QUORUM_STALE: Duration = Duration::from_secs(1);

/// A coordinator node. Cheap to clone; clones share the node.
#[derive(Clone)]
pub struct Coord {
    pub(crate) raft: Raft<TypeConfig>,
    node_id: u64,
    state: watch::Receiver<Arc<MetaState>>,
    clock: Arc<HybridClock>,
    /// How long a write (or a linearizable read) may wait for a quorum.
    write_timeout: Duration,
    /// Heartbeats seen while this node leads.
    leases: Arc<placement::Leases>,
    /// Divergent rows per mirrored alias, as this node's divergence check
    /// last counted (it runs on the leader only).
    divergence: Arc<parking_lot::Mutex<BTreeMap<String, u64>>>,
    node_lease: Duration,
    /// Shards that may move at once (`CoordOptions::max_moves`).
    max_moves: usize,
    /// Forget nodes silent this long (`CoordOptions::forget_node_after_ms`).
    forget_after: Option<Duration>,
    /// Stops the placement loop with the last handle (None in the loop's own handle).
    placement: Option<Arc<placement::LoopGuard>>,
    /// Whether this member of a cluster may vote (`crate::identity`); none
    /// for a coord that runs alone.
    identity: Option<Arc<Identity>>,
    /// How this coord reaches its peers (membership checks ask them).
    transport: Arc<dyn RaftTransport>,
    /// The internal protocol each peer coord last said it speaks, and when
    /// (`membership.rs`, `cluster_protocol`).
    protocols: Arc<parking_lot::Mutex<BTreeMap<u64, (u32, Instant)>>>,
    /// Metadata backups to the object store, once started (`crate::backup`).
    backups: Arc<std::sync::OnceLock<crate::backup::Backups>>,
    /// Sampled at each metrics scrape while the coord lives (`metrics.rs`).
    _metrics: Arc<dyn quiver_metrics::Sampled>,
}

impl Coord {
    /// Opens (or creates) a one-node coord in `dir`, waits until it leads and
    /// has replayed every committed command.
    pub async fn open(dir: &Path, node_id: u64) -> Result<Coord> {
        Self::open_with(dir, node_id, &CoordOptions::default(), Arc::new(NoPeers)).await
    }

    /// [`Coord::open`] with explicit options and peer transport.
    pub async fn open_with(
        dir: &Path,
        node_id: u64,
        options: &CoordOptions,
        transport: Arc<dyn RaftTransport>,
    ) -> Result<Coord> {
        let deadline = Instant::now() + options.open_timeout();
        let members = BTreeMap::from([(node_id, BasicNode::default())]);
        let coord = Self::start(
            dir,
            node_id,
            members,
            options,
            transport,
            deadline,
            Start::Alone,
        )
        .await?;
        coord.wait_ready(deadline).await?;
        Ok(coord)
    }

    /// Opens (or creates) `dir` as coord `node_id` of the cluster `members`
    /// (node id -> `host:port` of its gRPC server, this node included), with
    /// the gRPC peer transport. Returns once the Raft node runs; it does not
    /// wait for a leader (peers may not be up yet; see
    /// [`Coord::wait_for_leader`]). Serve it with [`crate::serve`] so that
    /// peers reach it.
    ///
    /// The first start of a directory initializes the cluster with `members`
    /// (every member may do so with the same map); later starts rejoin with
    /// the membership stored in the directory (a different `members` map is
    /// logged and ignored: membership changes are not supported yet).
    pub async fn open_cluster(
        dir: &Path,
        node_id: u64,
        members: BTreeMap<u64, String>,
        options: &CoordOptions,
    ) -> Result<Coord> {
        let transport = Arc::new(GrpcTransport::new(node_id, options));
        Self::open_cluster_with(dir, node_id, members, options, transport).await
    }

    /// [`Coord::open_cluster`] with an explicit peer transport (tests wrap the
    /// gRPC transport to drop RPCs).
    pub async fn open_cluster_with(
        dir: &Path,
        node_id: u64,
        members: BTreeMap<u64, String>,
        options: &CoordOptions,
        transport: Arc<dyn RaftTransport>,
    ) -> Result<Coord> {
        if !members.contains_key(&node_id) {
            return Err(CoordError::Config {
                field: "members".into(),
                rule: format!("must contain this node ({node_id})"),
            });
        }
        if let Some((id, _)) = members.iter().find(|(_, addr)| addr.is_empty()) {
            return Err(CoordError::Config {
                field: "members".into(),
                rule: format!("member {id} has an empty address"),
            });
        }
        let deadline = Instant::now() + options.open_timeout();
        let members = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode::new(addr)))
            .collect();
        Self::start(
            dir,
            node_id,
            members,
            options,
            transport,
            deadline,
            Start::Form,
        )
        .await
    }

    /// Opens `dir` as coord `node_id` joining a running cluster: a new
    /// directory does not initialize a cluster; it waits until the leader
    /// adds it (`quiver coord add ID ADDR`, [`Coord::add_member`]) and
    /// catches up from it. A directory that already holds state rejoins
    /// with its stored membership, as [`Coord::open_cluster_with`].
    pub async fn join_cluster_with(
        dir: &Path,
        node_id: u64,
        options: &CoordOptions,
        transport: Arc<dyn RaftTransport>,
    ) -> Result<Coord> {
        let deadline = Instant::now() + options.open_timeout();
        let members = BTreeMap::new();
        Self::start(
            dir,
            node_id,
            members,
            options,
            transport,
            deadline,
            Start::Join,
        )
        .await
    }

    /// Opens the directory, starts the Raft node and initializes the cluster
    /// with `members` if the directory is new. A member of a `cluster`
    /// carries an identity (whether it may vote, `crate::identity`).
    async fn start(
        dir: &Path,
        node_id: u64,
        members: BTreeMap<u64, BasicNode>,
        options: &CoordOptions,
        transport: Arc<dyn RaftTransport>,
        deadline: Instant,
        how: Start,
    ) -> Result<Coord> {
        options.validate()?;
        std::fs::create_dir_all(dir).map_err(|e| CoordError::io(dir, e))?;
        let has_state = has_raft_state(dir);
        let log = open_log(dir, deadline).await?;
        let identity = match how {
            Start::Form | Start::Join => Some(Arc::new(Identity::load(dir, node_id, has_state)?)),
            Start::Alone => None,
        };
        if let Some(identity) = &identity {
            transport.set_identity(identity.clone());
            if let Standing::Joining { reason } = identity.standing() {
                tracing::warn!(coord = node_id, "{reason}");
            }
        }
        let (sm, state) = StateMachine::open(dir)?;
        let config = Arc::new(options.raft_config()?);
        let raft = Raft::new(node_id, config, Network::new(transport.clone()), log, sm)
            .await
            .map_err(fatal)?;
        let initialized = raft.is_initialized().await.map_err(fatal)?;
        if !initialized && how == Start::Join {
            tracing::info!(
                coord = node_id,
                "a new coord joining a cluster: waiting for the leader to add it (quiver coord add {node_id} ADDR)"
            );
        } else if !initialized {
            match raft.initialize(members).await {
                Ok(()) => {}
                // A peer initialized the cluster and reached us first.
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(CoordError::Raft(e.to_string())),
            }
        } else if how == Start::Form {
            let stored = raft.metrics().borrow().membership_config.clone();
            let stored: BTreeMap<u64, BasicNode> = stored
                .nodes()
                .map(|(id, node)| (*id, node.clone()))
                .collect();
            if stored != members {
                tracing::warn!(
                    ?stored,
                    given = ?members,
                    "coord directory was initialized with other members; keeping the stored ones"
                );
            }
        }
        check_membership(&raft, node_id)?;
        let sampled: Arc<dyn quiver_metrics::Sampled> = Arc::new(metrics::Member {
            node_id,
            raft: raft.clone(),
        });
        quiver_metrics::add_source(Arc::downgrade(&sampled));
        let mut coord = Coord {
            _metrics: sampled,
            raft,
            node_id,
            state,
            clock: Arc::new(HybridClock::new()),
            write_timeout: options.write_timeout(),
            leases: Arc::new(placement::Leases::default()),
            divergence: Arc::default(),
            node_lease: options.node_lease(),
            max_moves: options.max_moves,
            forget_after: (options.forget_node_after_ms > 0)
                .then(|| Duration::from_millis(options.forget_node_after_ms)),
            placement: None,
            identity: identity.clone(),
            transport: transport.clone(),
            protocols: Arc::default(),
            backups: Arc::default(),
        };
        if let Some(identity) = identity {
            identity_task::spawn(coord.clone(), identity, transport);
        }
        let guard = placement::spawn(coord.clone(), options.placement_interval());
        coord.placement = Some(Arc::new(guard));
        Ok(coord)
    }

    /// Waits until this node leads and has applied its whole log.
    async fn wait_ready(&self, deadline: Instant) -> Result<()> {
        let wait = || {
            self.raft
                .wait(Some(deadline.saturating_duration_since(Instant::now())))
        };
        let me = self.node_id;
        let metrics = wait()
            .metrics(|m| m.current_leader == Some(me), "this node leads")
            .await
            .map_err(|e| {
                CoordError::Unavailable(format!(
                    "node {me} did not become leader ({e}); was the directory created for another node id?"
                ))
            })?;
        wait()
            .applied_index_at_least(metrics.last_log_index, "log replayed")
            .await
            .map_err(|e| CoordError::Unavailable(format!("log replay did not finish: {e}")))?;
        Ok(())
    }

    /// Stops the Raft node; later calls fail with [`CoordError::Shutdown`].
    pub async fn shutdown(&self) -> Result<()> {
        if let Some(placement) = &self.placement {
            placement.stop();
        }
        self.raft
            .shutdown()
            .await
            .map_err(|e| CoordError::Raft(format!("shutdown: {e}")))
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Whether this coord may vote, and why not (a coord that runs alone
    /// always may).
    pub fn standing(&self) -> Standing {
        self.identity
            .as_ref()
            .map_or(Standing::Voter, |i| i.standing())
    }

    pub(crate) fn identity(&self) -> Option<&Arc<Identity>> {
        self.identity.as_ref()
    }

    /// The one entry for metadata changes: proposes a command and waits
    /// until it is applied. Only the leader accepts it; a follower answers
    /// [`CoordError::NotLeader`]. A leader that cannot reach a quorum within
    /// `write_timeout_ms` answers [`CoordError::Timeout`] (the command may
    /// still commit later if it was replicated; if this leader was deposed
    /// it never will). A command with a `request` id that was already
    /// applied is not applied again: it answers what it answered then.
    pub async fn propose(
        &self,
        cmd: MetaCommand,
        request: Option<RequestId>,
    ) -> Result<MetaResponse> {
        self.check_quorum()?;
        // A command newer than some coord would stop that coord applying
        // the log: refused until every coord runs a release that knows it.
        let needs = cmd.protocol();
        if needs > 1 {
            let speaks = self.cluster_protocol().await;
            if speaks < needs {
                return Err(CoordError::Rule(RuleError::StateConflict(format!(
                    "{} needs every coord on internal protocol {needs} or later, and one speaks {speaks}: finish upgrading the coords first (docs/deploy.md, \"Mixed versions during a roll\")",
                    cmd.name()
                ))));
            }
        }
        let started = Instant::now();
        let req = MetaRequest {
            ts: self.clock.now(),
            cmd,
            request,
        };
        let written = tokio::time::timeout(self.write_timeout, self.raft.client_write(req))
            .await
            .map_err(|_| {
                CoordError::Timeout(format!(
                    "write not committed within {} ms (no quorum reachable?); it may or may not be applied",
                    self.write_timeout.as_millis()
                ))
            })?;
        match written {
            Ok(resp) => {
                let reply = resp.data?;
                self.wait_backed_up(resp.log_id.index).await;
                metrics::PROPOSAL.observe(started.elapsed().as_secs_f64());
                Ok(reply)
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(not_leader(f)),
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                Err(CoordError::Raft(e.to_string()))
            }
            Err(RaftError::Fatal(e)) => Err(fatal(e)),
        }
    }

    pub(crate) fn set_backups(&self, backups: crate::backup::Backups) {
        let _ = self.backups.set(backups);
    }

    /// Waits until a metadata backup covers log index `index` (when backups
    /// run), at most their `wait`: past it the change is acknowledged from
    /// the Raft log alone, and a warning says so.
    async fn wait_backed_up(&self, index: u64) {
        let Some(b) = self.backups.get() else { return };
        let mut rx = b.backed_up.clone();
        if !matches!(
            tokio::time::timeout(b.wait, rx.wait_for(|i| *i >= index)).await,
            Ok(Ok(_))
        ) {
            tracing::warn!(
                index,
                "a metadata change is acknowledged before a backup covers it (the object store did not take one within {} ms); it is in the coords' Raft logs",
                b.wait.as_millis()
            );
        }
    }

    /// Refuses a write at once when this node leads a group of several
    /// voters but has not heard from a quorum of them for
    /// [`QUORUM_STALE`]: it could not commit (and another coord may lead).
    fn check_quorum(&self) -> Result<()> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.current_leader != Some(self.node_id) || m.membership_config.voter_ids().count() < 2 {
            return Ok(());
        }
        match m.millis_since_quorum_ack {
            Some(ms) if ms <= QUORUM_STALE.as_millis() as u64 => Ok(()),
            since => Err(CoordError::NoQuorum(format!(
                "coord {} leads but has not heard from a quorum of coords for {} (are most coords down?)",
                self.node_id,
                since.map_or("ever".to_string(), |ms| format!("{ms} ms"))
            ))),
        }
    }

    /// The applied state, after confirming with a quorum that this node
    /// still leads (a linearizable read: it reflects every write acknowledged
    /// before the call). Followers answer [`CoordError::NotLeader`].
    pub async fn read_state(&self) -> Result<Arc<MetaState>> {
        let checked = tokio::time::timeout(self.write_timeout, self.raft.ensure_linearizable())
            .await
            .map_err(|_| {
                CoordError::Timeout(format!(
                    "leadership not confirmed by a quorum within {} ms",
                    self.write_timeout.as_millis()
                ))
            })?;
        match checked {
            Ok(_) => Ok(self.state()),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => Err(not_leader(f)),
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => {
                Err(CoordError::Unavailable(e.to_string()))
            }
            Err(RaftError::Fatal(e)) => Err(fatal(e)),
        }
    }
}

fn not_leader(f: ForwardToLeader<u64, BasicNode>) -> CoordError {
    CoordError::NotLeader {
        leader: f.leader_id,
        addr: f.leader_node.map(|n| n.addr).filter(|a| !a.is_empty()),
    }
}

fn fatal(e: Fatal<u64>) -> CoordError {
    match e {
        Fatal::Stopped => CoordError::Shutdown,
        other => CoordError::Raft(other.to_string()),
    }
}

/// Refuses a directory whose cluster does not have `node_id` as a voter
/// (e.g. it was created by another node) instead of waiting for an election
/// this node can never win.
fn check_membership(raft: &Raft<TypeConfig>, node_id: u64) -> Result<()> {
    let metrics = raft.metrics();
    let config = metrics.borrow().membership_config.clone();
    let voters: Vec<u64> = config.voter_ids().collect();
    let member = config.nodes().any(|(id, _)| *id == node_id);
    if voters.is_empty() || member {
        return Ok(());
    }
    Err(CoordError::Config {
        field: "node_id".into(),
        rule: format!(
            "{node_id} is not a member of this directory's cluster (voters: {voters:?}): it was removed (quiver coord remove), or the directory belongs to another coord"
        ),
    })
}

/// How [`Coord::start`] treats a directory without Raft state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// A coord that runs alone: initialize a one-member cluster.
    Alone,
    /// A member of a forming cluster: initialize with the configured members.
    Form,
    /// A coord added to a running cluster: wait to be added.
    Join,
}

/// Opens the log, waiting while a previous coord in this directory (e.g. one
/// just dropped in this process) still holds the lock.
async fn open_log(dir: &Path, deadline: Instant) -> Result<LogStore> {
    loop {
        match LogStore::open(dir) {
            Err(CoordError::Locked(_)) if Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

/// Reads of the applied state (not linearizable: a follower lags the
/// leader; see [`Coord::read_state`]).
impl Coord {
    /// The applied state; a new value is sent after each applied batch of commands.
    pub fn watch(&self) -> watch::Receiver<Arc<MetaState>> {
        self.state.clone()
    }

    /// The applied state now.
    pub fn state(&self) -> Arc<MetaState> {
        Arc::clone(&self.state.borrow())
    }

    /// The collection named `name_or_alias` (aliases are resolved).
    pub fn collection(&self, name_or_alias: &str) -> Option<crate::state::CollectionMeta> {
        self.state().collection(name_or_alias).cloned()
    }

    /// All collections, by id.
    pub fn collections(&self) -> Vec<crate::state::CollectionMeta> {
        self.state().collections().cloned().collect()
    }

    /// All aliases: alias name -> (collection, epoch).
    pub fn aliases(&self) -> BTreeMap<String, crate::state::AliasMeta> {
        self.state().aliases().clone()
    }

    /// A shard's registered segments (by id) and its WAL checkpoint.
    pub fn segments(
        &self,
        collection_id: quiver_common::CollectionId,
        shard: quiver_common::ShardIndex,
    ) -> (Vec<crate::state::SegmentMeta>, u64) {
        let catalog = self.state().segments(collection_id, shard);
        (catalog.segments, catalog.wal_checkpoint)
    }
}
