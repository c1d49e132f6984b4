//! The per-shard write-ahead log: group-committed batches stored as immutable objects
//! `wal/<collection>/<shard>/<seq:020>.wal`, created with put-if-absent.
//!
//! Fencing: [`Wal::open`] claims the log for an epoch by creating an epoch-marker object at the
//! next free seq. A writer of an older epoch always targets a seq that is then taken (by the
//! marker or a later object), so its put fails with `AlreadyExists` and it is fenced. Markers
//! are never deleted by [`Wal::truncate`]: the marker right after a stale writer's last object
//! is what fences it, however long that writer was away.

mod format;
mod recover;
mod writer;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use parking_lot::Mutex;
use quiver_common::Mutation;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::error::{Result, StorageError};
use crate::layout;

pub use recover::{RecoveryReport, TornTail};

/// One recovered mutation and the WAL object (`seq`) and owner (`epoch`) that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct WalRecord {
    pub seq: u64,
    pub epoch: u64,
    pub mutation: Mutation,
    /// A mirror copied it from the collection's mirror partner (it is not
    /// shipped back).
    pub replicated: bool,
}

/// Limits of one group-committed batch (one WAL object). A single mutation larger than
/// `max_batch_bytes` still goes out, alone.
#[derive(Debug, Clone)]
pub struct WalOptions {
    pub max_batch_bytes: usize,
    pub max_batch_records: usize,
    /// How long a failing put is retried (with backoff) before its batch is refused. Writers
    /// see latency, not errors, while the object store has a short fault. A full or read-only
    /// disk is not retried: its batch is refused at once.
    pub retry_for: std::time::Duration,
    /// While writes are refused, how often the store is probed for room again.
    pub probe_every: std::time::Duration,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            max_batch_bytes: 8 << 20,
            max_batch_records: 4096,
            retry_for: std::time::Duration::from_secs(1),
            probe_every: std::time::Duration::from_millis(250),
        }
    }
}

/// A shard's WAL, owned by one epoch. Cheap to share behind an `Arc`.
pub struct Wal {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    report: RecoveryReport,
}

pub(crate) struct Shared {
    store: Arc<dyn ObjectStore>,
    collection_id: u64,
    shard: u32,
    epoch: u64,
    opts: WalOptions,
    queue: Mutex<Queue>,
    notify: Notify,
    last_seq: AtomicU64,
}

pub(crate) struct Pending {
    record: bytes::Bytes,
    tx: oneshot::Sender<Result<u64>>,
}

#[derive(Default)]
pub(crate) struct Queue {
    items: VecDeque<Pending>,
    /// Set once the log stopped for good (fenced, or an earlier refused batch turned out to
    /// have landed): every later submission gets this error.
    failed: Option<StorageError>,
    /// Set while the store refuses writes (full, read-only, failing): submissions are
    /// refused at once with this error until a probe write succeeds. The next seq stays
    /// the same, so nothing is skipped.
    stalled: Option<StorageError>,
    /// The `Wal` was dropped or closed: drain what is queued, then stop.
    closing: bool,
}

impl Wal {
    /// Takes ownership of the shard's log for `epoch`: reads every object with seq >
    /// `after_seq`, verifies checksums, claims the log with an epoch marker at the next seq and
    /// returns the recovered records in order. A corrupt last object (torn tail) is skipped,
    /// quarantined and reported in [`Wal::recovery`]; a corrupt object before the last one is a
    /// `Corrupt` error. An object of a newer epoch makes this return `Fenced`.
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        collection_id: u64,
        shard: u32,
        epoch: u64,
        after_seq: u64,
        opts: WalOptions,
    ) -> Result<(Wal, Vec<WalRecord>)> {
        let (records, report) =
            recover::recover(&store, collection_id, shard, epoch, after_seq).await?;
        let shared = Arc::new(Shared {
            store,
            collection_id,
            shard,
            epoch,
            opts,
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
            last_seq: AtomicU64::new(report.claimed_seq),
        });
        let writer = tokio::spawn(writer::run(shared.clone(), report.claimed_seq + 1));
        let wal = Wal {
            shared,
            writer: Some(writer),
            report,
        };
        Ok((wal, records))
    }

    /// Enqueues `m` now (so WAL order is the order of `submit` calls) and returns a future that
    /// resolves with the seq of the WAL object holding it once that object is durable, or with
    /// the error that kept it from being written (then it was never acknowledged).
    pub fn submit(&self, m: Mutation) -> impl Future<Output = Result<u64>> + Send + 'static {
        self.submit_from(m, false)
    }

    /// [`Wal::submit`], marking the record as copied by a mirror when
    /// `replicated` (recovered as [`WalRecord::replicated`]).
    pub fn submit_from(
        &self,
        m: Mutation,
        replicated: bool,
    ) -> impl Future<Output = Result<u64>> + Send + 'static {
        let record = bytes::Bytes::from(format::encode_record(&m, replicated));
        let (tx, rx) = oneshot::channel();
        let early = {
            let mut q = self.shared.queue.lock();
            match q.failed.as_ref().or(q.stalled.as_ref()) {
                Some(e) => Some(e.clone()),
                None => {
                    q.items.push_back(Pending { record, tx });
                    None
                }
            }
        };
        if early.is_none() {
            self.shared.notify.notify_one();
        }
        async move {
            if let Some(e) = early {
                return Err(e);
            }
            rx.await
                .unwrap_or_else(|_| Err(StorageError::io("wal", "the writer task stopped")))
        }
    }

    /// Deletes the data objects with seq <= `up_to` (call once segments covering them are
    /// registered). Epoch markers and the newest object are kept: they are what fences
    /// stale writers.
    pub async fn truncate(&self, up_to: u64) -> Result<()> {
        if let Some(e) = self.shared.queue.lock().failed.clone()
            && e.is_fenced()
        {
            return Err(e);
        }
        let up_to = up_to.min(self.last_seq().saturating_sub(1));
        let s = &self.shared;
        let prefix = layout::wal_prefix(s.collection_id, s.shard);
        let metas: Vec<_> = s
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| StorageError::store(prefix.to_string(), e))?;
        for meta in metas {
            let Some(seq) = layout::parse_wal_seq(&meta.location) else {
                continue;
            };
            if seq > up_to || meta.size == format::HEADER_LEN as u64 {
                continue;
            }
            match s.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(StorageError::store(meta.location.to_string(), e)),
            }
        }
        Ok(())
    }

    /// Why writes are refused right now (a full or failing store), if they are.
    pub fn stalled(&self) -> Option<StorageError> {
        self.shared.queue.lock().stalled.clone()
    }

    /// The seq of the last object this writer made durable (its epoch marker at first).
    pub fn last_seq(&self) -> u64 {
        self.shared.last_seq.load(Ordering::Acquire)
    }

    pub fn epoch(&self) -> u64 {
        self.shared.epoch
    }

    /// What recovery found when this log was opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.report
    }

    /// Writes what is queued, then stops the writer task. Returns the error that stopped the
    /// log earlier, if any.
    pub async fn close(mut self) -> Result<()> {
        self.shared.queue.lock().closing = true;
        self.shared.notify.notify_one();
        if let Some(w) = self.writer.take() {
            w.await
                .map_err(|e| StorageError::io("wal writer task", e))?;
        }
        match self.shared.queue.lock().failed.clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.shared.queue.lock().closing = true;
        self.shared.notify.notify_one();
    }
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("collection_id", &self.shared.collection_id)
            .field("shard", &self.shared.shard)
            .field("epoch", &self.shared.epoch)
            .field("last_seq", &self.last_seq())
            .finish()
    }
}
