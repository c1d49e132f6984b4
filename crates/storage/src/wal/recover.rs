//! Recovery of a shard's log and the claim of a new epoch.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, PutMode};

use super::WalRecord;
use super::format::{self, Kind};
use crate::error::{Result, StorageError};
use crate::layout;

/// What [`super::Wal::open`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryReport {
    /// The seq of the epoch marker this owner created.
    pub claimed_seq: u64,
    /// WAL objects read (seq > after_seq).
    pub objects_read: usize,
    pub records: usize,
    /// A corrupt last object: not applied, copied to quarantine and replaced.
    pub torn_tail: Option<TornTail>,
    /// Objects of an older epoch found after a newer epoch's object (should never happen with
    /// put-if-absent; skipped, not applied).
    pub stale_objects_skipped: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TornTail {
    pub seq: u64,
    pub error: String,
    /// Where the original bytes were copied to.
    pub quarantined_to: String,
}

struct Listing {
    /// Seqs above the read position, ascending.
    new: Vec<u64>,
    max_seq: u64,
}

async fn list(store: &Arc<dyn ObjectStore>, c: u64, s: u32, above: u64) -> Result<Listing> {
    let prefix = layout::wal_prefix(c, s);
    let metas: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| StorageError::store(prefix.to_string(), e))?;
    let mut seqs: Vec<u64> = metas
        .iter()
        .filter_map(|m| layout::parse_wal_seq(&m.location))
        .collect();
    seqs.sort_unstable();
    let max_seq = seqs.last().copied().unwrap_or(0);
    seqs.retain(|s| *s > above);
    Ok(Listing { new: seqs, max_seq })
}

pub(crate) async fn recover(
    store: &Arc<dyn ObjectStore>,
    c: u64,
    s: u32,
    epoch: u64,
    after_seq: u64,
) -> Result<(Vec<WalRecord>, RecoveryReport)> {
    let mut records = Vec::new();
    let mut report = RecoveryReport::default();
    let mut read_upto = after_seq;
    let mut max_epoch = 0u64;
    loop {
        let listing = list(store, c, s, read_upto).await?;
        let n = listing.new.len();
        let mut objects = futures::stream::iter(listing.new.iter().copied())
            .map(|seq| {
                let store = store.clone();
                async move {
                    let path = layout::wal_path(c, s, seq);
                    let got = store.get(&path).await;
                    let bytes = match got {
                        Ok(g) => g.bytes().await,
                        Err(e) => Err(e),
                    };
                    (
                        seq,
                        bytes.map_err(|e| StorageError::store(path.to_string(), e)),
                    )
                }
            })
            .buffered(8)
            .enumerate();
        while let Some((i, (seq, raw))) = objects.next().await {
            let raw = raw?;
            let what = format!("wal object {}", layout::wal_path(c, s, seq));
            report.objects_read += 1;
            let (h, muts) = match format::decode_object(&raw, seq, &what) {
                Ok(x) => x,
                Err(e) if i + 1 == n => {
                    report.torn_tail = Some(replace_torn(store, c, s, seq, epoch, &raw, e).await?);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if h.kind == Kind::TornReplaced {
                // Written by a recovery with no knowledge of the torn object's epoch.
                continue;
            }
            if h.epoch > epoch {
                return Err(StorageError::Fenced(format!(
                    "{what} was written by epoch {} > {epoch}",
                    h.epoch
                )));
            }
            if h.epoch < max_epoch {
                tracing::error!(
                    seq,
                    epoch = h.epoch,
                    max_epoch,
                    "stale wal object after a newer epoch; skipped"
                );
                report.stale_objects_skipped.push(seq);
                continue;
            }
            max_epoch = h.epoch;
            if h.kind == Kind::Data {
                report.records += muts.len();
                records.extend(muts.into_iter().map(|(mutation, replicated)| WalRecord {
                    seq,
                    epoch: h.epoch,
                    mutation,
                    replicated,
                }));
            }
        }
        read_upto = read_upto.max(listing.max_seq);
        let claim = read_upto + 1;
        let marker = format::encode_empty(Kind::EpochMarker, epoch, claim);
        let path = layout::wal_path(c, s, claim);
        match store
            .put_opts(&path, marker.into(), PutMode::Create.into())
            .await
        {
            Ok(_) => {
                report.claimed_seq = claim;
                tracing::info!(
                    collection = c,
                    shard = s,
                    epoch,
                    seq = claim,
                    records = report.records,
                    "wal claimed"
                );
                return Ok((records, report));
            }
            Err(object_store::Error::AlreadyExists { .. }) => continue,
            Err(e) => return Err(StorageError::io(path.to_string(), e)),
        }
    }
}

/// Copies a torn last object to quarantine and overwrites it with a record-less placeholder,
/// so that it reads as valid (and empty) when it is no longer the last object.
async fn replace_torn(
    store: &Arc<dyn ObjectStore>,
    c: u64,
    s: u32,
    seq: u64,
    epoch: u64,
    raw: &[u8],
    error: StorageError,
) -> Result<TornTail> {
    let path = layout::wal_path(c, s, seq);
    let q = layout::wal_quarantine_path(c, s, seq, epoch);
    tracing::warn!(%path, error = %error, quarantine = %q, "torn wal tail: not applied");
    store
        .put(&q, bytes::Bytes::copy_from_slice(raw).into())
        .await
        .map_err(|e| StorageError::io(q.to_string(), e))?;
    let placeholder = format::encode_empty(Kind::TornReplaced, epoch, seq);
    store
        .put(&path, placeholder.into())
        .await
        .map_err(|e| StorageError::io(path.to_string(), e))?;
    Ok(TornTail {
        seq,
        error: error.to_string(),
        quarantined_to: q.to_string(),
    })
}
