//! Who leads: a snapshot of the Raft node's view ([`ClusterStatus`]) and a
//! stream of leader changes ([`LeaderWatch`]) for control loops that must run
//! on the leader only.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use openraft::{BasicNode, RaftMetrics, ServerState};
use tokio::sync::watch;

use super::Coord;
use crate::error::{CoordError, Result};

/// This node's Raft role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node's view of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    pub node_id: u64,
    pub role: Role,
    /// The leader this node knows of (may be stale on a cut-off node).
    pub leader: Option<u64>,
    pub leader_addr: Option<String>,
    /// Voters: node id -> address (empty for a one-node coord).
    pub members: BTreeMap<u64, String>,
    pub term: u64,
    /// Last applied Raft log index (0 before anything was applied).
    pub last_applied: u64,
    /// Version of the applied metadata.
    pub meta_version: u64,
    /// Whether this coord may vote (`voter`, `joining: …`, `not admitted: …`).
    pub standing: String,
}

type Metrics = RaftMetrics<u64, BasicNode>;

fn members_of(m: &Metrics) -> BTreeMap<u64, String> {
    m.membership_config
        .nodes()
        .map(|(id, node)| (*id, node.addr.clone()))
        .collect()
}

impl Coord {
    /// This node's view of the cluster now.
    pub fn status(&self) -> ClusterStatus {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let members = members_of(&m);
        let role = if m.running_state.is_err() {
            Role::Shutdown
        } else {
            match m.state {
                ServerState::Leader => Role::Leader,
                ServerState::Follower => Role::Follower,
                ServerState::Candidate => Role::Candidate,
                ServerState::Learner => Role::Learner,
                ServerState::Shutdown => Role::Shutdown,
            }
        };
        let leader_addr = m
            .current_leader
            .and_then(|id| members.get(&id))
            .filter(|a| !a.is_empty())
            .cloned();
        ClusterStatus {
            node_id: self.node_id,
            role,
            leader: m.current_leader,
            leader_addr,
            members,
            term: m.current_term,
            last_applied: m.last_applied.map_or(0, |l| l.index),
            meta_version: self.state().version(),
            standing: self.standing().describe(),
        }
    }

    /// Whether this node believes it leads (a cut-off leader may still
    /// believe so; its writes fail, see [`Coord::read_state`]).
    /// Whether this coord's applied state keeps up with the cluster: a
    /// leader whose leadership a quorum confirms, or a follower that knows a
    /// leader. A cut-off coord's state freezes while the others move on.
    pub async fn in_touch(&self) -> bool {
        let status = self.status();
        match status.role {
            Role::Leader => self.read_state().await.is_ok(),
            Role::Follower => status.leader.is_some(),
            Role::Candidate | Role::Learner | Role::Shutdown => false,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.node_id)
    }

    /// Follows leader changes as this node sees them.
    pub fn leader_watch(&self) -> LeaderWatch {
        let rx = self.raft.metrics();
        let last = rx.borrow().current_leader;
        LeaderWatch { rx, last }
    }

    /// Waits until this node knows a leader; returns its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        let mut watch = self.leader_watch();
        loop {
            if let Some(leader) = watch.current() {
                return Ok(leader);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, watch.changed()).await {
                Ok(changed) => {
                    changed?;
                }
                Err(_) => {
                    return Err(CoordError::Unavailable(format!(
                        "no coord leader known to node {} within {timeout:?}",
                        self.node_id
                    )));
                }
            }
        }
    }
}

/// Leader changes seen by one node. `changed` returns each new leader id
/// (`None` while an election runs).
pub struct LeaderWatch {
    rx: watch::Receiver<Metrics>,
    last: Option<u64>,
}

impl LeaderWatch {
    /// The leader as last returned (or at creation).
    pub fn current(&self) -> Option<u64> {
        self.last
    }

    /// Waits until the leader differs from [`LeaderWatch::current`]; fails
    /// with [`CoordError::Shutdown`] once the node stops.
    pub async fn changed(&mut self) -> Result<Option<u64>> {
        loop {
            self.rx.changed().await.map_err(|_| CoordError::Shutdown)?;
            let now = {
                let m = self.rx.borrow_and_update();
                if m.running_state.is_err() {
                    return Err(CoordError::Shutdown);
                }
                m.current_leader
            };
            if now != self.last {
                self.last = now;
                return Ok(now);
            }
        }
    }
}
