//! [`Coord`]: opens the on-disk Raft node, waits for it to lead, and turns
//! API calls into commands (see `api`).

mod api;
mod options;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use openraft::error::{ClientWriteError, Fatal, RaftError};
use openraft::{BasicNode, Raft};
use quiver_common::HybridClock;
use tokio::sync::watch;

pub use options::CoordOptions;

use crate::command::{MetaCommand, MetaRequest, MetaResponse};
use crate::error::{CoordError, Result};
use crate::raft::{LogStore, Network, NoPeers, RaftTransport, StateMachine, TypeConfig};
use crate::state::MetaState;

/// A coordinator node. Cheap to clone; clones share the node.
#[derive(Clone)]
pub struct Coord {
    raft: Raft<TypeConfig>,
    node_id: u64,
    state: watch::Receiver<Arc<MetaState>>,
    clock: Arc<HybridClock>,
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
        options.validate()?;
        let deadline = Instant::now() + options.open_timeout();
        std::fs::create_dir_all(dir).map_err(|e| CoordError::io(dir, e))?;
        let log = open_log(dir, deadline).await?;
        let (sm, state) = StateMachine::open(dir)?;
        let config = Arc::new(options.raft_config()?);
        let raft = Raft::new(node_id, config, Network::new(transport), log, sm)
            .await
            .map_err(fatal)?;
        if !raft.is_initialized().await.map_err(fatal)? {
            let members = BTreeMap::from([(node_id, BasicNode::default())]);
            raft.initialize(members)
                .await
                .map_err(|e| CoordError::Raft(e.to_string()))?;
        }
        check_membership(&raft, node_id)?;
        let coord = Coord {
            raft,
            node_id,
            state,
            clock: Arc::new(HybridClock::new()),
        };
        coord.wait_ready(deadline).await?;
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
        self.raft
            .shutdown()
            .await
            .map_err(|e| CoordError::Raft(format!("shutdown: {e}")))
    }

    /// Proposes a command and waits until it is applied.
    async fn write(&self, cmd: MetaCommand) -> Result<MetaResponse> {
        let req = MetaRequest {
            ts: self.clock.now(),
            cmd,
        };
        match self.raft.client_write(req).await {
            Ok(resp) => Ok(resp.data?),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(CoordError::NotLeader {
                    leader: f.leader_id,
                })
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                Err(CoordError::Raft(e.to_string()))
            }
            Err(RaftError::Fatal(e)) => Err(fatal(e)),
        }
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
    let voters: Vec<u64> = metrics.borrow().membership_config.voter_ids().collect();
    if voters.is_empty() || voters.contains(&node_id) {
        return Ok(());
    }
    Err(CoordError::Config {
        field: "node_id".into(),
        rule: format!("{node_id} is not a voter of this directory's cluster (voters: {voters:?})"),
    })
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
