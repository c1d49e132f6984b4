//! The background task of a [`super::Wal`]: one put in flight at a time; whatever is queued
//! meanwhile becomes the next batch (group commit).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutMode, PutPayload};

use super::format::{self, Header, Kind};
use super::{Pending, Shared};
use crate::error::{Fault, Result, StorageError, fault_of};
use crate::layout;

/// The WAL's metrics (docs/metrics.md).
mod metrics {
    use std::sync::LazyLock;

    use quiver_metrics::{Histogram, IntCounterVec};

    pub(super) static COMMIT: LazyLock<Histogram> = LazyLock::new(|| {
        quiver_metrics::histogram(
            "quiver_wal_commit_seconds",
            "Group commit: putting one WAL object (fsynced) that acknowledges a round of writes",
            quiver_metrics::LATENCY_BUCKETS,
        )
    });

    pub(super) static BYTES: LazyLock<IntCounterVec> = LazyLock::new(|| {
        quiver_metrics::counter_vec(
            "quiver_wal_written_bytes_total",
            "Bytes of records written to a shard's WAL",
            &["collection_id", "shard"],
        )
    });

    pub(super) static RECORDS: LazyLock<IntCounterVec> = LazyLock::new(|| {
        quiver_metrics::counter_vec(
            "quiver_wal_records_total",
            "Mutations written to a shard's WAL",
            &["collection_id", "shard"],
        )
    });
}

pub(crate) async fn run(shared: Arc<Shared>, mut next_seq: u64) {
    loop {
        let batch = {
            let mut q = shared.queue.lock();
            if q.items.is_empty() {
                if q.closing {
                    return;
                }
                None
            } else {
                Some(take_batch(&mut q.items, &shared.opts))
            }
        };
        let Some(batch) = batch else {
            shared.notify.notified().await;
            continue;
        };
        let started = Instant::now();
        match put_batch(&shared, next_seq, &batch).await {
            Ok(()) => {
                metrics::COMMIT.observe(started.elapsed().as_secs_f64());
                let bytes: usize = batch.iter().map(|p| p.record.len()).sum();
                let (c, s) = (shared.collection_id.to_string(), shared.shard.to_string());
                metrics::BYTES
                    .with_label_values(&[&c, &s])
                    .inc_by(bytes as u64);
                metrics::RECORDS
                    .with_label_values(&[&c, &s])
                    .inc_by(batch.len() as u64);
                shared.last_seq.store(next_seq, Ordering::Release);
                for p in batch {
                    let _ = p.tx.send(Ok(next_seq));
                }
                next_seq += 1;
            }
            Err(e) if e.is_refused() => {
                tracing::warn!(collection = shared.collection_id, shard = shared.shard,
                    seq = next_seq, error = %e, "wal refuses writes until the store takes them again");
                refuse_queued(&shared, batch, &e, |q| q.stalled = Some(e.clone()));
                if !probe_until_writable(&shared).await {
                    return;
                }
                tracing::info!(
                    collection = shared.collection_id,
                    shard = shared.shard,
                    "the store takes writes again; wal resumes"
                );
            }
            Err(e) => {
                if e.is_fenced() {
                    tracing::warn!(
                        collection = shared.collection_id,
                        shard = shared.shard,
                        epoch = shared.epoch,
                        seq = next_seq,
                        "wal fenced by a newer epoch"
                    );
                } else {
                    tracing::error!(collection = shared.collection_id, shard = shared.shard,
                        seq = next_seq, error = %e, "wal put failed; the log stops until reopened");
                }
                refuse_queued(&shared, batch, &e, |q| q.failed = Some(e.clone()));
                return;
            }
        }
    }
}

/// Fails `batch` and everything queued behind it with `e`, after `mark`
/// (under the queue lock, so no submission slips in between) records why
/// later submissions are refused.
fn refuse_queued(
    shared: &Shared,
    batch: Vec<Pending>,
    e: &StorageError,
    mark: impl FnOnce(&mut super::Queue),
) {
    let rest = {
        let mut q = shared.queue.lock();
        mark(&mut q);
        std::mem::take(&mut q.items)
    };
    for p in batch.into_iter().chain(rest) {
        let _ = p.tx.send(Err(e.clone()));
    }
}

/// While the log refuses writes: probes the store (a small object written
/// and deleted again) until it takes a write, then clears the refusal.
/// Returns false if the log was closed meanwhile.
async fn probe_until_writable(shared: &Shared) -> bool {
    let path = layout::wal_probe_path(shared.collection_id, shared.shard);
    let probe = Bytes::from(vec![0u8; 4096]);
    loop {
        tokio::select! {
            () = tokio::time::sleep(shared.opts.probe_every) => {}
            () = shared.notify.notified() => {}
        }
        {
            let mut q = shared.queue.lock();
            // Submissions refused meanwhile were never queued; a close is.
            if q.closing {
                q.stalled = None;
                return false;
            }
        }
        let put = tokio::time::timeout(
            PROBE_TIMEOUT,
            shared.store.put_opts(
                &path,
                PutPayload::from(probe.clone()),
                PutMode::Overwrite.into(),
            ),
        )
        .await;
        if let Ok(Ok(_)) = put {
            let _ = shared.store.delete(&path).await;
            shared.queue.lock().stalled = None;
            return true;
        }
    }
}

/// How long one probe of a refusing store may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

fn take_batch(
    items: &mut std::collections::VecDeque<Pending>,
    opts: &super::WalOptions,
) -> Vec<Pending> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(p) = items.front() {
        let len = p.record.len();
        if !out.is_empty()
            && (out.len() >= opts.max_batch_records || bytes + len > opts.max_batch_bytes)
        {
            break;
        }
        bytes += len;
        if let Some(p) = items.pop_front() {
            out.push(p);
        }
    }
    out
}

async fn put_batch(shared: &Shared, seq: u64, batch: &[Pending]) -> Result<()> {
    let body_len: usize = batch.iter().map(|p| p.record.len()).sum();
    let header = format::encode_header(&Header {
        kind: Kind::Data,
        epoch: shared.epoch,
        seq,
        count: batch.len() as u32,
        body_len: body_len as u64,
    });
    let parts: Vec<Bytes> = std::iter::once(Bytes::from(header))
        .chain(batch.iter().map(|p| p.record.clone()))
        .collect();
    let path = layout::wal_path(shared.collection_id, shared.shard, seq);
    let deadline = Instant::now() + shared.opts.retry_for;
    let mut backoff = Duration::from_millis(10);
    let mut attempt = 0u32;
    loop {
        let payload: PutPayload = parts.iter().cloned().collect();
        let err = match shared
            .store
            .put_opts(&path, payload, PutMode::Create.into())
            .await
        {
            Ok(_) => return Ok(()),
            // The object may be ours: an earlier attempt landed but its answer was lost, or
            // the S3 client retried a 5xx answer to a put that had landed. Only identical
            // bytes (the header holds our epoch) prove that; anything else is a newer owner.
            Err(object_store::Error::AlreadyExists { .. }) => {
                match landed(shared, &path, &parts).await {
                    Ok(Landed::Ours) => return Ok(()),
                    Ok(Landed::EarlierBatch) => {
                        return Err(StorageError::io(
                            path.to_string(),
                            "holds an earlier batch of this writer whose put was reported \
                             failed (it landed after all); the log must be reopened to replay it",
                        ));
                    }
                    Ok(Landed::Other) => return Err(fenced(&path, shared.epoch)),
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        attempt += 1;
        let fault = fault_of(&err);
        if fault != Fault::Other || Instant::now() + backoff > deadline {
            let why = match fault {
                Fault::NoSpace => "no space left in the store",
                Fault::ReadOnly => "the store is read-only",
                Fault::Other => "the store keeps failing",
            };
            return Err(StorageError::Refused {
                no_space: fault == Fault::NoSpace,
                detail: format!(
                    "{why} (writing {path}: {err}); reads go on, writes resume by themselves once it takes writes again"
                ),
            });
        }
        tracing::warn!(collection = shared.collection_id, shard = shared.shard, seq,
            attempt, error = %err, "wal put failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

fn fenced(path: &object_store::path::Path, epoch: u64) -> StorageError {
    StorageError::Fenced(format!(
        "{path} already exists: a newer owner than epoch {epoch} claimed the log"
    ))
}

/// Who wrote the object a put found in its place.
enum Landed {
    /// Exactly these bytes: an earlier attempt of this put landed.
    Ours,
    /// This writer's epoch, other bytes: a batch refused earlier landed after all.
    EarlierBatch,
    /// Another writer (a newer owner).
    Other,
}

/// Whose the object at `path` is, compared with `parts`.
async fn landed(
    shared: &Shared,
    path: &object_store::path::Path,
    parts: &[Bytes],
) -> std::result::Result<Landed, object_store::Error> {
    let stored = shared.store.get(path).await?.bytes().await?;
    let len: usize = parts.iter().map(Bytes::len).sum();
    let mut same = stored.len() == len;
    let mut at = 0;
    for p in parts {
        if !same {
            break;
        }
        same = stored[at..at + p.len()] == p[..];
        at += p.len();
    }
    if same {
        Ok(Landed::Ours)
    } else if format::header_epoch(&stored) == Some(shared.epoch) {
        Ok(Landed::EarlierBatch)
    } else {
        Ok(Landed::Other)
    }
}
