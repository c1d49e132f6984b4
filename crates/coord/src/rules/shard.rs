//! Shard rules: the segment catalog, shard ownership, the id allocator.

use quiver_common::{CollectionId, ShardIndex};

use crate::command::MetaResponse;
use crate::error::RuleError;
use crate::state::{MetaState, SegmentMeta, ShardOwner};

/// Largest id range one AllocateIds may reserve.
pub(crate) const MAX_ID_BATCH: u64 = 1 << 24;

pub(super) fn register_segments(
    state: &mut MetaState,
    collection_id: CollectionId,
    shard: ShardIndex,
    epoch: Option<u64>,
    segments: &[SegmentMeta],
    wal_checkpoint: u64,
) -> Result<MetaResponse, RuleError> {
    check_shard(state, collection_id, shard)?;
    // Only the current owner registers: a deposed datanode (an older epoch)
    // must not move the checkpoint of a shard another node now writes.
    if let Some(epoch) = epoch {
        check_epoch(state, collection_id, shard, epoch)?;
    }
    let catalog = state
        .segments
        .entry(collection_id)
        .or_default()
        .entry(shard)
        .or_default();
    let mut added = 0u32;
    for seg in segments {
        // Re-registering a known segment id is a no-op (the datanode may retry).
        if let Err(pos) = catalog.segments.binary_search_by_key(&seg.id, |s| s.id) {
            catalog.segments.insert(pos, seg.clone());
            added += 1;
        }
    }
    catalog.wal_checkpoint = catalog.wal_checkpoint.max(wal_checkpoint);
    Ok(MetaResponse::SegmentsRegistered {
        added,
        wal_checkpoint: catalog.wal_checkpoint,
    })
}

pub(super) fn acquire(
    state: &mut MetaState,
    collection_id: CollectionId,
    shard: ShardIndex,
    node_id: u64,
) -> Result<MetaResponse, RuleError> {
    check_shard(state, collection_id, shard)?;
    let owners = state.owners.entry(collection_id).or_default();
    let epoch = owners.get(&shard).map_or(0, |o| o.epoch) + 1;
    owners.insert(shard, ShardOwner { node_id, epoch });
    Ok(MetaResponse::ShardAcquired { epoch })
}

pub(super) fn allocate_ids(state: &mut MetaState, count: u64) -> Result<MetaResponse, RuleError> {
    if !(1..=MAX_ID_BATCH).contains(&count) {
        return Err(RuleError::invalid(
            "count",
            format!("must be between 1 and {MAX_ID_BATCH} (got {count})"),
        ));
    }
    let first = state.next_id;
    let Some(next) = first.checked_add(count) else {
        return Err(RuleError::invalid("count", "the id space is exhausted"));
    };
    state.next_id = next;
    Ok(MetaResponse::IdsAllocated { first })
}

/// Refuses a change by anyone but the shard's current owner (epoch 0 while
/// the shard has no owner).
pub(super) fn check_epoch(
    state: &MetaState,
    collection_id: CollectionId,
    shard: ShardIndex,
    epoch: u64,
) -> Result<(), RuleError> {
    let current = state
        .shard_owner(collection_id, shard)
        .map_or(0, |o| o.epoch);
    if epoch != current {
        return Err(RuleError::Fenced(format!(
            "shard {collection_id}/{shard}: epoch {epoch} is not the current owner epoch {current}"
        )));
    }
    Ok(())
}

pub(super) fn check_shard(
    state: &MetaState,
    collection_id: CollectionId,
    shard: ShardIndex,
) -> Result<(), RuleError> {
    let Some(meta) = state.collections.get(&collection_id) else {
        return Err(RuleError::CollectionNotFound(format!("id {collection_id}")));
    };
    if shard >= meta.shards {
        return Err(RuleError::invalid(
            "shard",
            format!(
                "collection {:?} has {} shards (0..{}), got {shard}",
                meta.name, meta.shards, meta.shards
            ),
        ));
    }
    Ok(())
}
