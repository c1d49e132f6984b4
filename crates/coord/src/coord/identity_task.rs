//! The identity loop of a cluster member (`crate::identity`): after every
//! applied change it updates this coord's standing, stops it campaigning
//! while it is not admitted, and registers its incarnation with the leader
//! when the cluster has none recorded for it.

use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;

use super::Coord;
use crate::command::MetaCommand;
use crate::identity::{Identity, Next, Standing};
use crate::raft::RaftTransport;

const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

pub(super) fn spawn(coord: Coord, identity: Arc<Identity>, transport: Arc<dyn RaftTransport>) {
    tokio::spawn(async move {
        let mut rx = coord.watch();
        let mut retry = RETRY_MIN;
        loop {
            let state = rx.borrow_and_update().clone();
            let next = identity.observe(&state).unwrap_or_else(|e| {
                tracing::warn!(coord = coord.node_id, error = %e, "cannot record this coord's identity");
                Next::Nothing
            });
            let admitted = !matches!(identity.standing(), Standing::NotAdmitted { .. });
            coord.raft.runtime_config().elect(admitted);
            if let Next::Register {
                incarnation,
                cluster_id,
            } = next
            {
                let cmd = MetaCommand::RegisterCoord {
                    node_id: coord.node_id,
                    incarnation,
                    cluster_id,
                };
                match register(&coord, &*transport, &cmd).await {
                    Ok(()) => retry = RETRY_MIN,
                    Err(e) => {
                        tracing::debug!(coord = coord.node_id, error = %e, "registering this coord's identity");
                        tokio::select! {
                            () = tokio::time::sleep(retry) => {}
                            changed = rx.changed() => if changed.is_err() { return },
                        }
                        retry = (retry * 2).min(RETRY_MAX);
                        continue;
                    }
                }
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
}

/// Proposes `cmd` on the leader: locally when this coord leads.
async fn register(
    coord: &Coord,
    transport: &dyn RaftTransport,
    cmd: &MetaCommand,
) -> Result<(), String> {
    let status = coord.status();
    match (status.leader, status.leader_addr) {
        (Some(leader), _) if leader == coord.node_id => coord
            .propose(cmd.clone(), None)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        (Some(leader), Some(addr)) => transport.propose(leader, &BasicNode::new(addr), cmd).await,
        _ => Err("no leader known yet".into()),
    }
}
