//! A node's side of placement: heartbeat to coord (the lease that keeps its
//! shards here) and make the node serve what coord's metadata assigns to it.
//!
//! Both loops read coord's metadata from the local copy ([`CoordApi::state`]:
//! the client's watch-fed cache in a cluster). A
//! reconcile pass starts whatever is missing (in the background: opening a
//! shard replays its WAL, loading one downloads segments) and stops what is no
//! longer this node's; it runs on every metadata change and once a second, so
//! a failed open is retried.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use quiver_api::ShardId;
use quiver_coord::{CoordApi, MetaState, NodeRole, collection_info};
use quiver_datanode::DataNode;
use quiver_metrics::health::Pulse;
use quiver_querynode::QueryNode;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// Mirroring in a cluster: partners from the coord client's metadata cache,
/// copies written through the cluster's routes (to whichever datanode owns
/// the partner's shard, retried like the proxy's writes).
pub struct ClusterMirror {
    pub coord: Arc<dyn CoordApi>,
    pub data: Arc<dyn quiver_api::DataClient>,
}

impl quiver_datanode::MirrorRoutes for ClusterMirror {
    fn partner(
        &self,
        collection: quiver_common::CollectionId,
    ) -> Option<quiver_common::CollectionId> {
        self.coord.state().mirror_partner(collection)
    }

    fn data(&self) -> Arc<dyn quiver_api::DataClient> {
        self.data.clone()
    }
}

/// Heartbeats every `pulse.every()` until `shutdown`; each outcome goes
/// to `pulse` (the node's `/readyz`).
fn spawn_heartbeat(
    coord: Arc<dyn CoordApi>,
    id: u64,
    role: NodeRole,
    addr: String,
    pulse: Arc<Pulse>,
    shutdown: CancellationToken,
    report: impl Fn() -> quiver_api::NodeReport + Send + 'static,
) -> JoinHandle<()> {
    let every = pulse.every();
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            match coord.heartbeat(id, role, &addr, &report()).await {
                Ok(()) if failing => {
                    tracing::info!("heartbeats reach coord again");
                    pulse.ok();
                    failing = false;
                }
                Ok(()) => pulse.ok(),
                Err(e) => {
                    pulse.failed(&e);
                    if !failing {
                        tracing::warn!(error = %e, "heartbeat to coord failed");
                    }
                    failing = true;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}

/// Runs `pass` on every metadata change and every second until `shutdown`.
fn spawn_reconciler(
    coord: Arc<dyn CoordApi>,
    shutdown: CancellationToken,
    mut pass: impl FnMut(&MetaState) + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut rx = coord.subscribe();
        loop {
            let state = rx.borrow_and_update().clone();
            pass(&state);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = rx.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(RECONCILE_EVERY) => {}
            }
        }
    })
}

/// Shards being opened or loaded right now (so a pass does not start them twice).
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<HashSet<ShardId>>>);

impl InFlight {
    /// Marks `id`; false if it already was.
    fn start(&self, id: ShardId) -> bool {
        self.0.lock().insert(id)
    }

    fn done(&self, id: ShardId) {
        self.0.lock().remove(&id);
    }
}

/// Heartbeat + shard ownership for a datanode.
pub fn spawn_datanode(
    coord: Arc<dyn CoordApi>,
    datanode: DataNode,
    id: u64,
    addr: String,
    pulse: Arc<Pulse>,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let node = datanode.clone();
    let beat = spawn_heartbeat(
        coord.clone(),
        id,
        NodeRole::DataNode,
        addr,
        pulse,
        shutdown.clone(),
        {
            let memory = quiver_common::ResidentMemory::default();
            move || quiver_api::NodeReport {
                mirror_lag_ms: node.mirror_lags(),
                storage: node.storage(),
                resident_bytes: memory.bytes(),
                ..quiver_api::NodeReport::default()
            }
        },
    );
    let opening = InFlight::default();
    let stop = shutdown.clone();
    let pass = move |state: &MetaState| {
        let open: std::collections::HashMap<ShardId, u64> =
            datanode.open_shards().into_iter().collect();
        let mut wanted = HashSet::new();
        for meta in state.collections() {
            for shard in 0..meta.shards {
                let sid = ShardId {
                    collection_id: meta.id,
                    shard,
                };
                let Some(owner) = state.shard_owner(meta.id, shard) else {
                    continue;
                };
                if owner.node_id != id {
                    continue;
                }
                wanted.insert(sid);
                let held = open.get(&sid).copied();
                // Open when not served here, or reopen when coord handed the
                // shard out again since (our epoch is stale: we are fenced).
                let stale = held.is_some_and(|e| e < owner.epoch);
                if (held.is_none() || stale) && opening.start(sid) {
                    let dn = datanode.clone();
                    let info = collection_info(meta);
                    let opening = opening.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        if stale {
                            tracing::info!(shard = %sid, "reopening a shard coord handed out again");
                            dn.close_shard(sid).await;
                        }
                        if !stop.is_cancelled()
                            && let Err(e) = dn.open_shard(&info, sid.shard).await
                        {
                            tracing::warn!(shard = %sid, error = %e, "could not open shard; will retry");
                        }
                        opening.done(sid);
                    });
                }
            }
        }
        for sid in open.keys() {
            if !wanted.contains(sid) && opening.start(*sid) {
                let dn = datanode.clone();
                let opening = opening.clone();
                let sid = *sid;
                let dropped = state.collection_by_id(sid.collection_id).is_none();
                tokio::spawn(async move {
                    if dropped {
                        if let Err(e) = dn.drop_shard(sid).await {
                            tracing::warn!(shard = %sid, error = %e, "could not delete shard data");
                        }
                    } else {
                        tracing::info!(shard = %sid, "shard moved to another datanode; closing it here");
                        dn.close_shard(sid).await;
                    }
                    opening.done(sid);
                });
            }
        }
    };
    let reconcile = spawn_reconciler(coord, shutdown, pass);
    vec![beat, reconcile]
}

/// Heartbeat + replica placement for a querynode.
pub fn spawn_querynode(
    coord: Arc<dyn CoordApi>,
    querynode: Arc<QueryNode>,
    id: u64,
    addr: String,
    pulse: Arc<Pulse>,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let beat = spawn_heartbeat(
        coord.clone(),
        id,
        NodeRole::QueryNode,
        addr,
        pulse,
        shutdown.clone(),
        {
            let node = querynode.clone();
            let memory = quiver_common::ResidentMemory::default();
            move || quiver_api::NodeReport {
                serving: (node.loaded_shards().into_iter())
                    .map(|s| (s.collection_id, s.shard))
                    .collect(),
                resident_bytes: memory.bytes(),
                memory_limit_bytes: node.memory_limit_bytes(),
                ..quiver_api::NodeReport::default()
            }
        },
    );
    let loading = InFlight::default();
    let pass = move |state: &MetaState| {
        let loaded: HashSet<ShardId> = querynode.loaded_shards().into_iter().collect();
        let mut wanted = HashSet::new();
        for meta in state.collections() {
            for shard in 0..meta.shards {
                let sid = ShardId {
                    collection_id: meta.id,
                    shard,
                };
                if !state.shard_replicas(meta.id, shard).contains(&id) {
                    continue;
                }
                wanted.insert(sid);
                if !loaded.contains(&sid) && loading.start(sid) {
                    let qn = querynode.clone();
                    let info = collection_info(meta);
                    let loading = loading.clone();
                    tokio::spawn(async move {
                        if let Err(e) = qn.load_shard(&info, sid.shard).await {
                            tracing::warn!(shard = %sid, error = %e, "could not load shard; will retry");
                        }
                        loading.done(sid);
                    });
                }
            }
        }
        for sid in loaded {
            if !wanted.contains(&sid) {
                if state.collection_by_id(sid.collection_id).is_none() {
                    let querynode = querynode.clone();
                    tokio::spawn(async move {
                        if let Err(e) = querynode.drop_shard(sid).await {
                            tracing::warn!(shard = %sid, error = %e, "could not delete cached segments");
                        }
                    });
                } else {
                    tracing::info!(shard = %sid, "replica moved to another querynode; releasing it here");
                    querynode.release_shard(sid);
                }
            }
        }
    };
    let reconcile = spawn_reconciler(coord, shutdown, pass);
    vec![beat, reconcile]
}
