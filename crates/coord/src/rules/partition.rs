//! Partition rules: the partitions a collection starts with, create, drop,
//! release and load. Rows carry their partition's id (the front door fills a
//! hidden column), so a partition is metadata here.

use quiver_common::{CollectionId, Timestamp, validate_name};

use super::collection::lookup_mut;
use crate::command::{MetaResponse, PartitionOp};
use crate::error::RuleError;
use crate::state::{MetaState, PartitionMeta};

/// Milvus's limit on partitions per collection.
pub(crate) const MAX_PARTITIONS: usize = 1024;
/// The partition every collection without a partition key has.
pub(crate) const DEFAULT_PARTITION: &str = "_default";

pub(super) fn check_initial(names: &[String]) -> Result<(), RuleError> {
    if names.is_empty() || names.len() > MAX_PARTITIONS {
        return Err(RuleError::invalid(
            "num_partitions",
            format!(
                "must be between 1 and {MAX_PARTITIONS} (got {})",
                names.len()
            ),
        ));
    }
    for (i, n) in names.iter().enumerate() {
        validate_name("partition_name", n)?;
        if names[..i].contains(n) {
            return Err(RuleError::invalid(
                "partition_name",
                format!("duplicate partition {n:?}"),
            ));
        }
    }
    Ok(())
}

/// Adds the checked `names` to a collection just created.
pub(super) fn initial(state: &mut MetaState, id: CollectionId, names: &[String], ts: Timestamp) {
    let first = state.next_id;
    state.next_id += names.len() as u64;
    if let Some(meta) = state.collections.get_mut(&id) {
        meta.partitions = names
            .iter()
            .enumerate()
            .map(|(i, name)| PartitionMeta {
                id: first + i as u64,
                name: name.clone(),
                created_ts: ts,
                released: false,
            })
            .collect();
    }
}

pub(super) fn apply(
    state: &mut MetaState,
    collection: &str,
    op: &PartitionOp,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    let next_id = state.next_id;
    let meta = lookup_mut(state, collection)?;
    if meta.partitions.is_empty() {
        return Err(RuleError::invalid(
            "collection_name",
            format!(
                "collection {:?} was created by a Quiver release without partitions: it has the one partition \"{DEFAULT_PARTITION}\" (create a new collection to use partitions)",
                meta.name
            ),
        ));
    }
    match op {
        PartitionOp::Create { name } => {
            validate_name("partition_name", name)?;
            if meta.partitions.iter().any(|p| &p.name == name) {
                return Ok(MetaResponse::Done);
            }
            if meta.partitions.len() >= MAX_PARTITIONS {
                return Err(RuleError::invalid(
                    "partition_name",
                    format!(
                        "collection {:?} has {MAX_PARTITIONS} partitions, the most it can have",
                        meta.name
                    ),
                ));
            }
            meta.partitions.push(PartitionMeta {
                id: next_id,
                name: name.clone(),
                created_ts: ts,
                released: meta.released,
            });
            meta.updated_ts = ts;
            state.next_id += 1;
        }
        PartitionOp::Drop { name } => {
            if name == DEFAULT_PARTITION {
                return Err(RuleError::invalid(
                    "partition_name",
                    "default partition cannot be deleted",
                ));
            }
            let Some(i) = meta.partitions.iter().position(|p| &p.name == name) else {
                return Ok(MetaResponse::Done);
            };
            if !meta.released && !meta.partitions[i].released {
                return Err(RuleError::StateConflict(format!(
                    "partition cannot be dropped, partition is loaded, please release it first: partition={name}"
                )));
            }
            meta.partitions.remove(i);
            meta.partitions_dropped += 1;
            meta.updated_ts = ts;
        }
        PartitionOp::SetReleased { names, released } => {
            if let Some(missing) = names
                .iter()
                .find(|n| !meta.partitions.iter().any(|p| &p.name == *n))
            {
                return Err(RuleError::PartitionNotFound(format!(
                    "partition not found[partition={missing}]: collection {:?} has no partition {missing:?}",
                    meta.name
                )));
            }
            for p in meta
                .partitions
                .iter_mut()
                .filter(|p| names.contains(&p.name))
            {
                p.released = *released;
            }
            meta.updated_ts = ts;
        }
    }
    Ok(MetaResponse::Done)
}
