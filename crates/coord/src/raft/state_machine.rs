//! `RaftStateMachine`: applies entries through `crate::rules`, publishes each
//! new state on a watch channel, and keeps snapshots in `snapshot.json`
//! (`{"meta": SnapshotMeta, "state": MetaState}`, written atomically). The
//! state itself is only persisted through snapshots: after a restart openraft
//! re-applies the log from the snapshot on.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, RaftSnapshotBuilder, SnapshotMeta, StorageIOError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::durable::{read_optional, until_written, write_atomic};
use super::{Entry, LogId, StorageError, TypeConfig};
use crate::command::{MetaReply, MetaResponse};
use crate::error::{CoordError, Result};
use crate::requests::RecentRequests;
use crate::rules;
use crate::state::{MetaState, decode_state};

const SNAPSHOT_FILE: &str = "snapshot.json";

type Membership = StoredMembership<u64, BasicNode>;
type Meta = SnapshotMeta<u64, BasicNode>;

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: Meta,
    state: MetaState,
    /// Replies of recent request ids (absent in snapshots written before
    /// request dedup existed).
    #[serde(default)]
    requests: RecentRequests,
}

/// The snapshot file; the mutex keeps an older snapshot from replacing a newer one.
#[derive(Clone)]
struct SnapshotStore {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl SnapshotStore {
    fn load(&self) -> Result<Option<(SnapshotFile, Vec<u8>)>> {
        let _guard = self.lock.lock();
        let Some(bytes) = read_optional(&self.path)? else {
            return Ok(None);
        };
        let file = decode(&self.path, &bytes)?;
        Ok(Some((file, bytes)))
    }

    /// Writes `file` unless the stored snapshot is at least as new; returns its bytes.
    fn save(&self, file: &SnapshotFile) -> Result<Vec<u8>> {
        let bytes = encode(file)?;
        let _guard = self.lock.lock();
        if let Some(old) = read_optional(&self.path)?
            && decode(&self.path, &old)?.meta.last_log_id >= file.meta.last_log_id
        {
            return Ok(bytes);
        }
        write_atomic(&self.path, &bytes)?;
        Ok(bytes)
    }
}

/// A snapshot file of `state` as of `applied` with `membership`: what a
/// metadata backup holds (`crate::backup`), and what a coord directory
/// rebuilt from it starts from.
pub(crate) fn snapshot_bytes(
    applied: LogId,
    membership: Membership,
    state: &MetaState,
) -> Result<Vec<u8>> {
    let file = SnapshotFile {
        meta: Meta {
            last_log_id: Some(applied),
            last_membership: membership,
            snapshot_id: format!("backup-{}-{}", applied.leader_id.term, applied.index),
        },
        state: state.clone(),
        requests: RecentRequests::default(),
    };
    encode(&file)
}

/// Checks `bytes` is a snapshot file and writes it as `dir`'s snapshot,
/// its state's version moved past any the lost coords can have published
/// ([`MetaState::recovered`]); returns its state, the log id it is at and
/// its voters.
pub(crate) fn restore_snapshot(
    dir: &Path,
    bytes: &[u8],
) -> Result<(MetaState, Option<LogId>, Vec<u64>)> {
    let path = dir.join(SNAPSHOT_FILE);
    let mut file = decode(&path, bytes)?;
    let index = file.meta.last_log_id;
    let voters = file.meta.last_membership.membership().voter_ids().collect();
    file.state.recovered();
    write_atomic(&path, &encode(&file)?)?;
    Ok((file.state, index, voters))
}

fn encode(file: &SnapshotFile) -> Result<Vec<u8>> {
    serde_json::to_vec(file).map_err(|e| CoordError::Raft(format!("cannot encode snapshot: {e}")))
}

fn decode(path: &Path, bytes: &[u8]) -> Result<SnapshotFile> {
    decode_state(bytes, "/state").map_err(|e| CoordError::corrupt(path, e))
}

pub(crate) struct StateMachine {
    store: SnapshotStore,
    state: MetaState,
    requests: RecentRequests,
    applied: Option<LogId>,
    membership: Membership,
    tx: watch::Sender<Arc<MetaState>>,
}

impl StateMachine {
    /// Opens the state machine in `dir` at its last snapshot.
    pub(crate) fn open(dir: &Path) -> Result<(Self, watch::Receiver<Arc<MetaState>>)> {
        let store = SnapshotStore {
            path: dir.join(SNAPSHOT_FILE),
            lock: Arc::new(Mutex::new(())),
        };
        let (state, requests, applied, membership) = match store.load()? {
            Some((file, _)) => (
                file.state,
                file.requests,
                file.meta.last_log_id,
                file.meta.last_membership,
            ),
            None => (
                MetaState::default(),
                RecentRequests::default(),
                None,
                Membership::default(),
            ),
        };
        let (tx, rx) = watch::channel(Arc::new(state.clone()));
        let sm = Self {
            store,
            state,
            requests,
            applied,
            membership,
            tx,
        };
        Ok((sm, rx))
    }

    fn publish(&self) {
        self.tx.send_replace(Arc::new(self.state.clone()));
    }
}

fn snapshot_err(e: CoordError) -> StorageError {
    StorageIOError::write_snapshot(None, &e).into()
}

/// Builds a snapshot from a copy of the state taken when the builder was made.
pub(crate) struct SnapshotBuilder {
    store: SnapshotStore,
    state: MetaState,
    requests: RecentRequests,
    applied: Option<LogId>,
    membership: Membership,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> std::result::Result<Snapshot<TypeConfig>, StorageError> {
        let snapshot_id = match self.applied {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => "empty".to_string(),
        };
        let file = SnapshotFile {
            meta: Meta {
                last_log_id: self.applied,
                last_membership: self.membership.clone(),
                snapshot_id,
            },
            state: std::mem::take(&mut self.state),
            requests: std::mem::take(&mut self.requests),
        };
        let bytes = until_written("coord snapshot", || self.store.save(&file))
            .await
            .map_err(snapshot_err)?;
        Ok(Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> std::result::Result<(Option<LogId>, Membership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> std::result::Result<Vec<MetaReply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        for entry in entries {
            let reply = match entry.payload {
                EntryPayload::Blank => Ok(MetaResponse::Done),
                EntryPayload::Normal(req) => match req.request {
                    // A retry of a proposal already applied: its first answer.
                    Some(id) => match self.requests.get(&id) {
                        Some(first) => first.clone(),
                        None => {
                            let reply = rules::apply(&mut self.state, &req.cmd, req.ts);
                            self.requests.record(id, reply.clone());
                            reply
                        }
                    },
                    None => rules::apply(&mut self.state, &req.cmd, req.ts),
                },
                EntryPayload::Membership(m) => {
                    self.membership = Membership::new(Some(entry.log_id), m);
                    Ok(MetaResponse::Done)
                }
            };
            self.applied = Some(entry.log_id);
            replies.push(reply);
        }
        self.publish();
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: self.store.clone(),
            state: self.state.clone(),
            requests: self.requests.clone(),
            applied: self.applied,
            membership: self.membership.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> std::result::Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> std::result::Result<(), StorageError> {
        let received = decode(&self.store.path, snapshot.get_ref()).map_err(snapshot_err)?;
        let file = SnapshotFile {
            meta: meta.clone(),
            state: received.state,
            requests: received.requests,
        };
        until_written("coord snapshot", || self.store.save(&file))
            .await
            .map_err(snapshot_err)?;
        self.state = file.state;
        self.requests = file.requests;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> std::result::Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let loaded = self.store.load().map_err(snapshot_err)?;
        Ok(loaded.map(|(file, bytes)| Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
