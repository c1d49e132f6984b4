//! Coord membership changes at runtime (`quiver coord add ID ADDR`,
//! `quiver coord remove ID`): the leader adds a coord as a learner, waits
//! until it holds the log (a snapshot first when the log was compacted),
//! then makes it a voter; it removes a voter only when the voters that stay
//! can still form a quorum. Both go through openraft's joint consensus, so
//! every committed entry stays on a majority of the old and the new voters.
//!
//! The checks are pure ([`check_add`], [`check_remove`]); the I/O (Raft
//! calls, asking the other voters whom they follow) is in [`Coord`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};

use super::{Coord, not_leader};
use crate::command::MetaCommand;
use crate::error::{CoordError, Result, RuleError};

/// How long an added coord may take to catch up before the add is undone.
pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(30);
/// How long the leader waits for each other voter to say whom it follows.
const ASK_PEER: Duration = Duration::from_secs(2);
/// How long a peer's protocol is taken as known before it is asked again.
const PROTOCOL_FRESH: Duration = Duration::from_secs(10);

/// The members after a change: voters and learners, id -> address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    pub voters: BTreeMap<u64, String>,
    pub learners: BTreeMap<u64, String>,
}

/// What adding coord `id` at `addr` must do, given the current membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddPlan {
    /// Already a voter at that address: nothing to do.
    AlreadyVoter,
    /// Add as a learner (or keep it one), catch up, promote.
    AddLearner,
}

fn refuse(rule: String) -> CoordError {
    CoordError::Rule(RuleError::StateConflict(rule))
}

/// The rules of adding coord `id` at `addr` to `current`.
pub fn check_add(current: &Members, id: u64, addr: &str) -> Result<AddPlan> {
    if id == 0 {
        return Err(RuleError::invalid("id", "coord ids start at 1").into());
    }
    let addr_ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !addr_ok {
        return Err(RuleError::invalid(
            "addr",
            format!("must be host:port, where the other coords reach coord {id} (got {addr:?})"),
        )
        .into());
    }
    let taken = current
        .voters
        .iter()
        .chain(&current.learners)
        .find(|(other, a)| **other != id && a.as_str() == addr);
    if let Some((other, _)) = taken {
        return Err(refuse(format!(
            "{addr} is the address of coord {other}: give coord {id} its own"
        )));
    }
    match current.voters.get(&id) {
        Some(a) if a == addr => Ok(AddPlan::AlreadyVoter),
        Some(a) => Err(refuse(format!(
            "coord {id} is already a voter at {a}: remove it first (quiver coord remove {id}), or re-admit it there (quiver coord add {id})"
        ))),
        None => Ok(AddPlan::AddLearner),
    }
}

/// The rules of removing voter `id` from `voters`, led by `leader`, where
/// `following` are the voters that answered that they follow `leader`
/// (the leader itself included).
pub fn check_remove(voters: &BTreeSet<u64>, id: u64, following: &BTreeSet<u64>) -> Result<()> {
    if !voters.contains(&id) {
        return Err(RuleError::invalid(
            "id",
            format!("coord {id} is not a voter (voters: {voters:?})"),
        )
        .into());
    }
    let staying: BTreeSet<u64> = voters.iter().copied().filter(|v| *v != id).collect();
    if staying.is_empty() {
        return Err(refuse(format!(
            "coord {id} is the last voter: a cluster needs at least one coord"
        )));
    }
    // Joint consensus commits with a majority of the old voters and one of
    // the new: both must answer.
    let up_now: BTreeSet<u64> = voters.intersection(following).copied().collect();
    if up_now.len() < voters.len() / 2 + 1 {
        return Err(refuse(format!(
            "only coords {up_now:?} of the voters {voters:?} answer: without a quorum no membership change can commit; bring the others back first"
        )));
    }
    let up: BTreeSet<u64> = staying.intersection(following).copied().collect();
    let quorum = staying.len() / 2 + 1;
    if up.len() < quorum {
        let down: Vec<u64> = staying.difference(&up).copied().collect();
        return Err(refuse(format!(
            "removing coord {id} would leave voters {staying:?}, of which only {up:?} answer (down: {down:?}); they need {quorum} for a quorum: bring the others back first"
        )));
    }
    Ok(())
}

impl Coord {
    /// The current membership (voters and learners).
    pub fn members(&self) -> Members {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let config = m.membership_config.membership();
        let voters: BTreeSet<u64> = config.voter_ids().collect();
        let mut out = Members {
            voters: BTreeMap::new(),
            learners: BTreeMap::new(),
        };
        for (id, node) in config.nodes() {
            let to = match voters.contains(id) {
                true => &mut out.voters,
                false => &mut out.learners,
            };
            to.insert(*id, node.addr.clone());
        }
        out
    }

    fn leader_only(&self) -> Result<()> {
        let status = self.status();
        match status.leader {
            Some(l) if l == self.node_id => Ok(()),
            leader => Err(CoordError::NotLeader {
                leader,
                addr: status.leader_addr,
            }),
        }
    }

    /// Adds coord `id` at `addr` (leader only): as a learner first; once it
    /// holds the log (within `catch_up`) as a voter. A coord that does not
    /// catch up in time is taken out again and the call fails naming why.
    pub async fn add_member(&self, id: u64, addr: &str, catch_up: Duration) -> Result<Members> {
        self.leader_only()?;
        if check_add(&self.members(), id, addr)? == AddPlan::AlreadyVoter {
            return Ok(self.members());
        }
        // An id the cluster knew before (a removed coord, now a new one):
        // forget its old incarnation, so the new directory registers its own.
        if self.state().coord_incarnation(id).is_some() {
            self.propose(MetaCommand::AdmitCoord { node_id: id }, None)
                .await?;
        }
        let written = self
            .bounded(self.raft.add_learner(id, BasicNode::new(addr), false))
            .await?;
        let target = written.log_id.index;
        if let Err(e) = self.wait_caught_up(id, target, catch_up).await {
            let _ = self
                .raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await;
            return Err(refuse(format!(
                "coord {id} at {addr} did not catch up within {} s ({e}); it was not added. Is it running with `join = true`, and can the leader reach {addr}?",
                catch_up.as_secs()
            )));
        }
        self.bounded(
            self.raft
                .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false),
        )
        .await?;
        tracing::info!(coord = id, addr, "coord added as a voter");
        Ok(self.members())
    }

    /// Waits until learner `id` has replicated the log up to `index`.
    async fn wait_caught_up(&self, id: u64, index: u64, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let mut rx = self.raft.metrics();
        loop {
            let matched = rx
                .borrow()
                .replication
                .as_ref()
                .and_then(|r| r.get(&id).cloned().flatten())
                .map(|l| l.index);
            if matched.is_some_and(|m| m >= index) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(match matched {
                    Some(m) => format!("it holds the log up to {m} of {index}"),
                    None => "it never answered".into(),
                });
            }
            if tokio::time::timeout(left, rx.changed())
                .await
                .is_ok_and(|r| r.is_err())
            {
                return Err("this coord is shutting down".into());
            }
        }
    }

    /// The lowest internal protocol among the coords (voters and learners):
    /// what every one of them can decode, so a metadata command new in
    /// protocol N is proposed only once this is N or more (a mixed-version
    /// group during a rolling upgrade keeps serving). Each peer is asked at
    /// most every 10 s; one that never answered counts as protocol 1.
    pub(crate) async fn cluster_protocol(&self) -> u32 {
        let members = self.members();
        let mut lowest = quiver_metrics::protocol::PROTOCOL;
        for (id, addr) in members.voters.iter().chain(&members.learners) {
            if *id == self.node_id {
                continue;
            }
            let known = self.protocols.lock().get(id).copied();
            let protocol = match known {
                Some((p, at)) if at.elapsed() < PROTOCOL_FRESH => p,
                _ => {
                    let node = BasicNode::new(addr.clone());
                    let asked =
                        tokio::time::timeout(ASK_PEER, self.transport.peer_status(*id, &node));
                    let p = match asked.await {
                        Ok(Ok(status)) => status.protocol,
                        _ => known.map_or(1, |(p, _)| p),
                    };
                    self.protocols.lock().insert(*id, (p, Instant::now()));
                    p
                }
            };
            lowest = lowest.min(protocol);
        }
        lowest
    }

    /// Removes voter (or learner) `id` (leader only), when the voters that
    /// stay can still form a quorum. Removing the leader makes it step down
    /// once the change commits; the others elect a new one.
    pub async fn remove_member(&self, id: u64) -> Result<Members> {
        self.leader_only()?;
        let current = self.members();
        if current.learners.contains_key(&id) {
            self.bounded(
                self.raft
                    .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false),
            )
            .await?;
            return Ok(self.members());
        }
        let voters: BTreeSet<u64> = current.voters.keys().copied().collect();
        let mut following = BTreeSet::from([self.node_id]);
        let asks = current
            .voters
            .iter()
            .filter(|(v, _)| **v != self.node_id)
            .map(|(v, addr)| {
                let node = BasicNode::new(addr.clone());
                async move {
                    let answer =
                        tokio::time::timeout(ASK_PEER, self.transport.peer_status(*v, &node));
                    (*v, answer.await)
                }
            });
        for (v, answer) in futures::future::join_all(asks).await {
            if matches!(answer, Ok(Ok(p)) if p.leader == Some(self.node_id)) {
                following.insert(v);
            }
        }
        check_remove(&voters, id, &following)?;
        self.bounded(
            self.raft
                .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false),
        )
        .await?;
        tracing::info!(coord = id, "coord removed");
        Ok(self.members())
    }
}

impl Coord {
    /// A membership write within the write timeout (each of the joint
    /// change's two entries must commit).
    async fn bounded<T>(
        &self,
        write: impl std::future::Future<
            Output = std::result::Result<T, RaftError<u64, ClientWriteError<u64, BasicNode>>>,
        >,
    ) -> Result<T> {
        match tokio::time::timeout(self.write_timeout * 2, write).await {
            Ok(written) => written.map_err(write_error),
            Err(_) => Err(CoordError::Timeout(format!(
                "the membership change did not commit within {} ms (no quorum reachable?); check `quiver cluster status`",
                (self.write_timeout * 2).as_millis()
            ))),
        }
    }
}

fn write_error(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> CoordError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => not_leader(f),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            refuse(format!("membership change refused: {e}"))
        }
        RaftError::Fatal(e) => super::fatal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(voters: &[(u64, &str)]) -> Members {
        Members {
            voters: voters.iter().map(|(i, a)| (*i, a.to_string())).collect(),
            learners: BTreeMap::new(),
        }
    }

    #[test]
    fn add_checks_the_address_and_the_id() {
        let m = members(&[(1, "a:1"), (2, "b:1"), (3, "c:1")]);
        assert_eq!(check_add(&m, 4, "d:1").ok(), Some(AddPlan::AddLearner));
        assert_eq!(check_add(&m, 2, "b:1").ok(), Some(AddPlan::AlreadyVoter));
        let err = |id, addr| check_add(&m, id, addr).err().map(|e| e.to_string());
        assert!(err(2, "x:1").is_some_and(|e| e.contains("already a voter at b:1")));
        assert!(err(4, "b:1").is_some_and(|e| e.contains("address of coord 2")));
        assert!(err(4, "nohost").is_some_and(|e| e.contains("host:port")));
        assert!(err(4, "h:notaport").is_some_and(|e| e.contains("host:port")));
        assert!(err(0, "d:1").is_some_and(|e| e.contains("start at 1")));
    }

    #[test]
    fn remove_keeps_a_quorum_of_the_voters_that_stay() {
        let voters = BTreeSet::from([1, 2, 3]);
        let all = BTreeSet::from([1, 2, 3]);
        assert!(check_remove(&voters, 3, &all).is_ok());
        // 3 is down: removing 1 would leave {2, 3} with only 2 up.
        let e = check_remove(&voters, 1, &BTreeSet::from([1, 2])).err();
        assert!(e.is_some_and(|e| e.to_string().contains("down: [3]")));
        // Removing the dead one itself is fine.
        assert!(check_remove(&voters, 3, &BTreeSet::from([1, 2])).is_ok());
        // Four voters, one down: removing a live one leaves 2 of 3 up.
        let four = BTreeSet::from([1, 2, 3, 4]);
        assert!(check_remove(&four, 1, &BTreeSet::from([1, 2, 3])).is_ok());
        // Two voters, one down: nothing can commit, removing either is refused.
        let two = BTreeSet::from([1, 2]);
        let e = check_remove(&two, 2, &BTreeSet::from([1])).err();
        assert!(e.is_some_and(|e| e.to_string().contains("without a quorum")));
        let last = check_remove(&BTreeSet::from([1]), 1, &BTreeSet::from([1])).err();
        assert!(last.is_some_and(|e| e.to_string().contains("last voter")));
        let stranger = check_remove(&voters, 9, &all).err();
        assert!(stranger.is_some_and(|e| e.to_string().contains("not a voter")));
    }
}
