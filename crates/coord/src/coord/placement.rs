//! Node leases and the leader's placement loop.
//!
//! Datanodes and querynodes heartbeat the leader ([`Coord::heartbeat`]); the
//! leader keeps the time of each node's last heartbeat in memory (not in the
//! Raft log). A node is live while its last heartbeat is younger than
//! `node_lease_ms`. A node this leader has not heard from yet counts as live
//! until `node_lease_ms` after the leader took over, so that a failover does
//! not move every shard. Every `placement_interval_ms` the leader computes
//! the live set, asks [`crate::rules::placement::plan`] what to change and
//! proposes it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use quiver_api::{NodeReport, ShardStorage};
use tokio::task::JoinHandle;

use super::Coord;
use crate::command::MetaCommand;
use crate::error::{CoordError, Result};
use crate::rules::balance::{NodeView, balance};
use crate::rules::placement::plan_in;
use crate::state::{MetaState, NodeRole};

/// A registered node as the leader sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHealth {
    pub id: u64,
    pub role: NodeRole,
    pub addr: String,
    /// Whether its lease holds (or the leader's grace period covers it).
    pub alive: bool,
    /// Milliseconds since its last heartbeat to this leader (None: not
    /// heard from since this coord became leader).
    pub last_seen_ms: Option<u64>,
    /// Its resident memory as it last reported (None: unknown).
    pub resident_bytes: Option<u64>,
}

/// How much longer than a lease a new leader waits for a node's first
/// heartbeat before counting it dead.
const TAKEOVER_EXTRA: Duration = crate::remote::DEFAULT_ATTEMPT_TIMEOUT;

/// Last heartbeats seen by this coord while it leads.
#[derive(Default)]
pub(crate) struct Leases {
    inner: Mutex<LeaseTable>,
}

#[derive(Default)]
struct LeaseTable {
    seen: HashMap<u64, Instant>,
    /// Mirror lags reported by datanodes: collection -> node -> (lag ms, when).
    lags: HashMap<u64, HashMap<u64, (u64, Instant)>>,
    /// Shard storage reported by datanodes: node -> (its shards, when).
    storage: HashMap<u64, (Vec<ShardStorage>, Instant)>,
    /// What each node last reported of itself: the shards a querynode
    /// serves, and resident memory.
    serving: HashMap<u64, BTreeSet<(u64, u32)>>,
    resident: HashMap<u64, u64>,
    /// Memory limits querynodes reported (bytes; absent: none).
    limits: HashMap<u64, u64>,
    /// When this coord became leader (None while it does not lead).
    leader_since: Option<Instant>,
}

impl Leases {
    fn record(&self, id: u64, at: Instant) {
        self.inner.lock().seen.insert(id, at);
    }

    fn record_report(&self, id: u64, report: &NodeReport) {
        let mut t = self.inner.lock();
        t.serving
            .insert(id, report.serving.iter().copied().collect());
        if report.resident_bytes > 0 {
            t.resident.insert(id, report.resident_bytes);
        }
        match report.memory_limit_bytes {
            0 => t.limits.remove(&id),
            limit => t.limits.insert(id, limit),
        };
    }

    /// Every node's reported memory, for placement ([`crate::rules::room`]).
    fn memory(&self) -> BTreeMap<u64, crate::rules::room::Memory> {
        let t = self.inner.lock();
        (t.resident.keys().chain(t.limits.keys()))
            .map(|id| {
                let memory = crate::rules::room::Memory {
                    resident: t.resident.get(id).copied().unwrap_or(0),
                    limit: t.limits.get(id).copied().unwrap_or(0),
                };
                (*id, memory)
            })
            .collect()
    }

    fn resident(&self, id: u64) -> Option<u64> {
        self.inner.lock().resident.get(&id).copied()
    }

    fn serving(&self) -> BTreeMap<u64, BTreeSet<(u64, u32)>> {
        (self.inner.lock().serving.iter())
            .map(|(id, s)| (*id, s.clone()))
            .collect()
    }

    fn record_lags(&self, id: u64, lags: &BTreeMap<u64, u64>, at: Instant) {
        let mut t = self.inner.lock();
        for per_node in t.lags.values_mut() {
            per_node.remove(&id);
        }
        for (collection, lag) in lags {
            t.lags
                .entry(*collection)
                .or_default()
                .insert(id, (*lag, at));
        }
        t.lags.retain(|_, per_node| !per_node.is_empty());
    }

    fn record_storage(&self, id: u64, storage: &[ShardStorage], at: Instant) {
        let mut t = self.inner.lock();
        if storage.is_empty() {
            t.storage.remove(&id);
        } else {
            t.storage.insert(id, (storage.to_vec(), at));
        }
    }

    /// Every shard's storage reported within `fresh`; where two nodes
    /// report a shard (an owner change), the later report wins.
    fn storage(&self, fresh: Duration, now: Instant) -> Vec<ShardStorage> {
        let t = self.inner.lock();
        let mut by_shard: BTreeMap<(u64, u32), (&ShardStorage, Instant)> = BTreeMap::new();
        for (shards, at) in t.storage.values() {
            if now.saturating_duration_since(*at) > fresh {
                continue;
            }
            for s in shards {
                let key = (s.collection_id, s.shard);
                if by_shard.get(&key).is_none_or(|(_, seen)| *seen < *at) {
                    by_shard.insert(key, (s, *at));
                }
            }
        }
        by_shard.into_values().map(|(s, _)| s.clone()).collect()
    }

    fn lags(&self, fresh: Duration, now: Instant) -> BTreeMap<u64, u64> {
        let collections: Vec<u64> = self.inner.lock().lags.keys().copied().collect();
        collections
            .into_iter()
            .filter_map(|c| Some((c, self.lag(c, fresh, now)?)))
            .collect()
    }

    /// The largest lag reported within `fresh` for a collection.
    fn lag(&self, collection: u64, fresh: Duration, now: Instant) -> Option<u64> {
        let t = self.inner.lock();
        t.lags
            .get(&collection)?
            .values()
            .filter(|(_, at)| now.saturating_duration_since(*at) <= fresh)
            .map(|(lag, _)| *lag)
            .max()
    }

    /// Starts or ends a leadership period; a new one forgets old heartbeats.
    fn set_leading(&self, leading: bool, now: Instant) {
        let mut t = self.inner.lock();
        match (leading, t.leader_since) {
            (true, None) => {
                t.leader_since = Some(now);
                t.seen.clear();
                t.lags.clear();
                t.storage.clear();
                t.serving.clear();
                t.resident.clear();
            }
            (false, Some(_)) => {
                t.leader_since = None;
                t.seen.clear();
                t.lags.clear();
                t.storage.clear();
                t.serving.clear();
                t.resident.clear();
            }
            _ => {}
        }
    }

    /// Whether `id` is live at `now`, and how long ago it was seen.
    fn check(&self, id: u64, lease: Duration, now: Instant) -> (bool, Option<Duration>) {
        let t = self.inner.lock();
        match t.seen.get(&id) {
            Some(at) => {
                let ago = now.saturating_duration_since(*at);
                (ago < lease, Some(ago))
            }
            None => {
                // A node not heard from since this coord took over: live
                // for a lease plus the time its heartbeats may be held by the
                // coord that led before (a stopped one answers nothing: a
                // client moves on after an attempt timeout). A grace of one
                // lease moved every replica away when the old leader was
                // SIGSTOPped (chaos `sigstop`).
                let grace = t.leader_since.is_some_and(|since| {
                    now.saturating_duration_since(since) < lease + TAKEOVER_EXTRA
                });
                (grace, None)
            }
        }
    }

    /// How long `id` has been silent to this leader (since the leadership
    /// began when it was never heard from).
    fn silent_for(&self, id: u64, now: Instant) -> Option<Duration> {
        let t = self.inner.lock();
        let since = t.seen.get(&id).copied().or(t.leader_since)?;
        Some(now.saturating_duration_since(since))
    }

    /// Nodes this leader has heard from within a lease (not those live only
    /// by the takeover grace): balancing moves work only between these.
    fn heard(&self, state: &MetaState, lease: Duration, now: Instant) -> BTreeSet<u64> {
        (state.nodes().keys())
            .copied()
            .filter(|id| matches!(self.check(*id, lease, now), (true, Some(_))))
            .collect()
    }

    fn live(&self, state: &MetaState, lease: Duration, now: Instant) -> BTreeSet<u64> {
        state
            .nodes()
            .keys()
            .copied()
            .filter(|id| self.check(*id, lease, now).0)
            .collect()
    }
}

/// Stops the placement loop when the last user handle of the coord goes.
pub(crate) struct LoopGuard(JoinHandle<()>);

impl LoopGuard {
    pub(crate) fn stop(&self) {
        self.0.abort();
    }
}

impl Drop for LoopGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the placement loop of `coord` (a handle without a guard, so the
/// loop does not keep itself alive).
pub(crate) fn spawn(coord: Coord, interval: Duration) -> LoopGuard {
    LoopGuard(tokio::spawn(run(coord, interval)))
}

async fn run(coord: Coord, interval: Duration) {
    let mut leader = coord.leader_watch();
    let me = coord.node_id();
    coord
        .leases
        .set_leading(leader.current() == Some(me), Instant::now());
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = leader.changed() => match changed {
                Ok(now) => coord.leases.set_leading(now == Some(me), Instant::now()),
                Err(_) => return, // shut down
            },
            _ = tick.tick() => {
                if leader.current() == Some(me) && coord.is_leader() {
                    coord.place().await;
                }
            }
        }
    }
}

impl Coord {
    /// A heartbeat from datanode or querynode `id` serving at `addr`.
    /// Leader only (a follower answers [`CoordError::NotLeader`]). Registers
    /// the node (or its new address) through Raft first if needed; an id
    /// registered with the other role is refused.
    pub async fn heartbeat(&self, id: u64, role: NodeRole, addr: &str) -> Result<()> {
        self.heartbeat_with(id, role, addr, &NodeReport::default())
            .await
    }

    /// The storage of every shard as its owner last reported it within a
    /// lease. Leader only (empty elsewhere).
    pub fn storage(&self) -> Vec<ShardStorage> {
        if !self.is_leader() {
            return Vec::new();
        }
        self.leases.storage(self.node_lease, Instant::now())
    }

    /// Every collection's [`Coord::mirror_lag_ms`]. Leader only.
    pub fn mirror_lags(&self) -> BTreeMap<u64, u64> {
        self.leases.lags(self.node_lease, Instant::now())
    }

    /// How far the mirror partner of `collection` is behind it (ms), as its
    /// datanodes last reported within a lease. Leader only; None: unknown.
    pub fn mirror_lag_ms(&self, collection: u64) -> Option<u64> {
        self.leases.lag(collection, self.node_lease, Instant::now())
    }

    /// Records the divergence check's count for a mirrored alias (None:
    /// unknown).
    pub fn set_divergence(&self, alias: &str, rows: Option<u64>) {
        let mut m = self.divergence.lock();
        match rows {
            Some(n) => {
                m.insert(alias.to_string(), n);
            }
            None => {
                m.remove(alias);
            }
        }
    }

    /// Divergent rows per mirrored alias as last counted here. Leader only
    /// (a coord that is not leading reports nothing: its counts are stale).
    pub fn divergence(&self) -> BTreeMap<String, u64> {
        if !self.is_leader() {
            return BTreeMap::new();
        }
        self.divergence.lock().clone()
    }

    /// [`Coord::heartbeat`] carrying a node's report (a datanode's mirror
    /// lags and shard storage).
    pub async fn heartbeat_with(
        &self,
        id: u64,
        role: NodeRole,
        addr: &str,
        report: &NodeReport,
    ) -> Result<()> {
        self.ensure_leader()?;
        // A leader cut off from its peers must not keep nodes' leases: they
        // would never look for the leader the others elected, and that one
        // would count them dead. Confirm leadership with a quorum first.
        self.read_state().await?;
        let known = self
            .state()
            .node(id)
            .is_some_and(|n| n.role == role && n.addr == addr);
        if !known {
            let cmd = MetaCommand::RegisterNode {
                id,
                role,
                addr: addr.to_string(),
            };
            self.propose(cmd, None).await?;
        }
        let now = Instant::now();
        self.leases.record(id, now);
        self.leases.record_lags(id, &report.mirror_lag_ms, now);
        self.leases.record_storage(id, &report.storage, now);
        self.leases.record_report(id, report);
        Ok(())
    }

    /// Every registered node with its liveness as this leader sees it.
    /// Leader only.
    pub fn node_health(&self) -> Result<Vec<NodeHealth>> {
        self.ensure_leader()?;
        let now = Instant::now();
        Ok(self
            .state()
            .nodes()
            .values()
            .map(|n| {
                let (alive, ago) = self.leases.check(n.id, self.node_lease, now);
                NodeHealth {
                    id: n.id,
                    role: n.role,
                    addr: n.addr.clone(),
                    alive,
                    last_seen_ms: ago.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    resident_bytes: self.leases.resident(n.id),
                }
            })
            .collect())
    }

    /// [`CoordError::NotLeader`] (with the leader this node knows) unless it leads.
    fn ensure_leader(&self) -> Result<()> {
        if self.is_leader() {
            return Ok(());
        }
        let status = self.status();
        Err(CoordError::NotLeader {
            leader: status.leader,
            addr: status.leader_addr,
        })
    }

    /// One round of the placement loop: plan from the live nodes, propose.
    async fn place(&self) {
        let state = self.state();
        if state.nodes().is_empty() {
            return;
        }
        let now = Instant::now();
        let live = self.leases.live(&state, self.node_lease, now);
        let storage = self.leases.storage(self.node_lease, now);
        let mut view = NodeView {
            live: live.clone(),
            serving: self.leases.serving(),
            rows: (storage.iter())
                .map(|s| ((s.collection_id, s.shard), s.live_rows))
                .collect(),
            memory: self.leases.memory(),
            shard_bytes: (storage.iter())
                .map(|s| ((s.collection_id, s.shard), s.bytes))
                .collect(),
        };
        // Repairs first; balancing only once nothing needs repair.
        let planned = plan_in(&state, &view);
        let mut cmds = planned.cmds;
        // Balancing waits until every live node has been heard from: a node
        // live only by a new leader's grace may be dead (nothing should
        // move onto it), and its replicas must not look spare.
        let heard = self.leases.heard(&state, self.node_lease, now);
        if cmds.is_empty() && heard == live {
            view.live = heard;
            cmds = balance(&state, &view, self.max_moves);
        }
        // `SetUnplaced` is new in protocol 2: only when every coord knows it.
        if !planned.unplaced.is_empty() && self.cluster_protocol().await >= 2 {
            cmds.extend(planned.unplaced);
        }
        if cmds.is_empty()
            && let Some(after) = self.forget_after
        {
            // Nodes gone for longer than `forget_node_after_ms`, holding nothing.
            let now = Instant::now();
            for id in state.nodes().keys() {
                let (owned, served) = state.holdings(*id);
                let gone = !live.contains(id)
                    && self.leases.silent_for(*id, now).is_some_and(|d| d >= after);
                if gone && owned.is_empty() && served.is_empty() {
                    tracing::info!(
                        node = id,
                        "forgetting a node gone longer than forget_node_after_ms"
                    );
                    cmds.push(MetaCommand::ForgetNode { id: *id });
                }
            }
        }
        for cmd in cmds {
            if let Err(e) = self.propose(cmd.clone(), None).await {
                tracing::warn!(?cmd, error = %e, "placement command failed");
                if matches!(e, CoordError::NotLeader { .. } | CoordError::Shutdown) {
                    return;
                }
            }
        }
    }
}
