//! Metadata backups in the object store, so that losing every coord's
//! directory at once is recoverable (`quiver coord recover`).
//!
//! While a coord leads, it writes the applied metadata as a snapshot file
//! to `coord/backup/<index:020>.json` each time the applied index moves
//! (coalesced: one put at a time, always the newest state), keeping the last
//! [`KEEP`]. [`Coord::propose`] answers a change only once a backup covers
//! it (at most `backup_wait`; an object store that is down delays metadata
//! changes by that much, then they are acknowledged from the Raft log alone
//! and a warning says so). So every acknowledged change is in a backup,
//! and a backup is named by an index that it covers at least: the applied
//! index is read before the state.
//!
//! [`restore`] rebuilds a coord directory from the newest backup: the
//! snapshot file, and an identity with the incarnation the cluster records
//! for that coord, so every rebuilt coord is a voter of the same cluster and
//! they elect a leader among themselves. Every coord must be rebuilt from
//! the same backup, and none may keep its old directory (it refuses one).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::coord::Coord;
use crate::error::{CoordError, Result};
use crate::identity::has_raft_state;
use crate::raft::{restore_snapshot, snapshot_bytes, write_restored_hard_state};

/// Where backups live in the object store.
pub const BACKUP_PREFIX: &str = "coord/backup";
/// Backups kept (older ones are deleted after each put).
const KEEP: usize = 3;
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

fn backup_path(index: u64) -> ObjectPath {
    ObjectPath::from(format!("{BACKUP_PREFIX}/{index:020}.json"))
}

/// How far this coord's backups have got, for [`Coord::propose`].
#[derive(Clone)]
pub(crate) struct Backups {
    pub backed_up: watch::Receiver<u64>,
    pub wait: Duration,
}

/// Starts backing up `coord`'s metadata to `store` while it leads; a change
/// is acknowledged once backed up, or after `wait`.
pub fn spawn(
    coord: &Coord,
    store: Arc<dyn ObjectStore>,
    wait: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (tx, rx) = watch::channel(0);
    coord.set_backups(Backups {
        backed_up: rx,
        wait,
    });
    tokio::spawn(run(coord.clone(), store, tx, shutdown))
}

async fn run(
    coord: Coord,
    store: Arc<dyn ObjectStore>,
    tx: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    let mut metrics = coord.raft.metrics();
    let mut retry = RETRY_FIRST;
    let mut failing = false;
    loop {
        let due = {
            let m = metrics.borrow_and_update();
            let leads = m.current_leader == Some(coord.node_id());
            match m.last_applied {
                Some(applied) if leads && applied.index > *tx.borrow() => {
                    Some((applied, m.membership_config.as_ref().clone()))
                }
                _ => None,
            }
        };
        if let Some((applied, membership)) = due {
            // The state is read after the index: it covers at least that index.
            let state = coord.state();
            let put = async {
                let bytes = snapshot_bytes(applied, membership, &state)?;
                store
                    .put(&backup_path(applied.index), bytes.into())
                    .await
                    .map_err(|e| CoordError::Unavailable(format!("object store: {e}")))?;
                prune(&store).await;
                Ok::<_, CoordError>(())
            };
            match put.await {
                Ok(()) => {
                    if failing {
                        tracing::info!(index = applied.index, "metadata backups work again");
                    }
                    failing = false;
                    retry = RETRY_FIRST;
                    tx.send_replace(applied.index);
                    continue;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(index = applied.index, error = %e, "metadata backup failed; retrying");
                    }
                    failing = true;
                    tokio::select! {
                        () = tokio::time::sleep(retry) => {}
                        () = shutdown.cancelled() => return,
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                    continue;
                }
            }
        }
        tokio::select! {
            r = metrics.changed() => if r.is_err() { return },
            () = shutdown.cancelled() => return,
        }
    }
}

/// The backups in the store, oldest first.
async fn list(store: &Arc<dyn ObjectStore>) -> Result<Vec<(u64, ObjectPath)>> {
    let prefix = ObjectPath::from(BACKUP_PREFIX);
    let metas: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| CoordError::Unavailable(format!("listing {prefix}: {e}")))?;
    let mut out: Vec<(u64, ObjectPath)> = metas
        .into_iter()
        .filter_map(|m| {
            let name = m.location.filename()?.strip_suffix(".json")?.to_string();
            Some((name.parse().ok()?, m.location))
        })
        .collect();
    out.sort_by_key(|(i, _)| *i);
    Ok(out)
}

/// Deletes all but the newest [`KEEP`] backups (best effort).
async fn prune(store: &Arc<dyn ObjectStore>) {
    let Ok(all) = list(store).await else { return };
    for (_, path) in all.iter().take(all.len().saturating_sub(KEEP)) {
        if let Err(e) = store.delete(path).await {
            tracing::debug!(path = %path, error = %e, "deleting an old metadata backup");
        }
    }
}

/// The newest backup in `store`: its index and bytes.
pub async fn latest(store: &Arc<dyn ObjectStore>) -> Result<Option<(u64, Vec<u8>)>> {
    let Some((index, path)) = list(store).await?.pop() else {
        return Ok(None);
    };
    let bytes = store
        .get(&path)
        .await
        .map_err(|e| CoordError::Unavailable(format!("reading {path}: {e}")))?
        .bytes()
        .await
        .map_err(|e| CoordError::Unavailable(format!("reading {path}: {e}")))?;
    Ok(Some((index, bytes.to_vec())))
}

/// What [`restore`] rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The log index the directory starts at.
    pub index: u64,
    pub cluster_id: Option<String>,
    pub collections: usize,
}

/// Rebuilds coord `node_id`'s directory `dir` from a backup's `bytes`.
/// Refuses a directory that still holds Raft state (move it away first:
/// a coord that kept newer state must not be mixed with rebuilt ones) and a
/// coord that is not a voter of the backed-up membership.
pub fn restore(dir: &Path, node_id: u64, bytes: &[u8]) -> Result<Restored> {
    if has_raft_state(dir) {
        return Err(CoordError::Config {
            field: "dir".into(),
            rule: format!(
                "{} still holds a Raft log or snapshot: recover rebuilds only empty coord directories (move it away first)",
                dir.display()
            ),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| CoordError::io(dir, e))?;
    let staging = tempdir_in(dir)?;
    let (state, applied, voters) = restore_snapshot(&staging, bytes)?;
    let Some(applied) = applied else {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(CoordError::Config {
            field: "backup".into(),
            rule: "the backup holds no applied entries".into(),
        });
    };
    if !voters.contains(&node_id) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(CoordError::Config {
            field: "id".into(),
            rule: format!(
                "coord {node_id} is not a voter of the backed-up cluster (voters: {voters:?})"
            ),
        });
    }
    crate::identity::write_restored(&staging, node_id, &state)?;
    write_restored_hard_state(&staging, applied)?;
    for name in [
        crate::identity::IDENTITY_FILE,
        "raft-state.json",
        "snapshot.json",
    ] {
        std::fs::rename(staging.join(name), dir.join(name)).map_err(|e| CoordError::io(dir, e))?;
    }
    let _ = std::fs::remove_dir_all(&staging);
    Ok(Restored {
        index: applied.index,
        cluster_id: state.cluster_id().map(str::to_string),
        collections: state.collections().count(),
    })
}

/// A scratch directory inside `dir` (so the final renames stay on one
/// filesystem).
fn tempdir_in(dir: &Path) -> Result<std::path::PathBuf> {
    let p = dir.join(".recover");
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).map_err(|e| CoordError::io(&p, e))?;
    Ok(p)
}
