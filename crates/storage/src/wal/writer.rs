//! The background task of a [`super::Wal`]: one put in flight at a time; whatever is queued
//! meanwhile becomes the next batch (group commit).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use object_store::{PutMode, PutPayload};

use super::format::{self, Header, Kind};
use super::{Pending, Shared};
use crate::error::{Result, StorageError};
use crate::layout;

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
        match put_batch(&shared, next_seq, &batch).await {
            Ok(()) => {
                shared.last_seq.store(next_seq, Ordering::Release);
                for p in batch {
                    let _ = p.tx.send(Ok(next_seq));
                }
                next_seq += 1;
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
                let rest = {
                    let mut q = shared.queue.lock();
                    q.failed = Some(e.clone());
                    std::mem::take(&mut q.items)
                };
                for p in batch.into_iter().chain(rest) {
                    let _ = p.tx.send(Err(e.clone()));
                }
                return;
            }
        }
    }
}

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
    let payload: PutPayload = std::iter::once(Bytes::from(header))
        .chain(batch.iter().map(|p| p.record.clone()))
        .collect();
    let path = layout::wal_path(shared.collection_id, shared.shard, seq);
    match shared
        .store
        .put_opts(&path, payload, PutMode::Create.into())
        .await
    {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => Err(StorageError::Fenced(format!(
            "{path} already exists: a newer owner than epoch {} claimed the log",
            shared.epoch
        ))),
        Err(e) => Err(StorageError::io(path.to_string(), e)),
    }
}
