//! Coord's rules: pure functions from (state, command, timestamp) to a new
//! state and a response. No I/O, no clocks, no randomness — every replica
//! that applies the same log gets the same state. A rejected command leaves
//! the state untouched.

mod alias;
#[cfg(test)]
mod alias_tests;
pub(crate) mod balance;
#[cfg(test)]
mod balance_tests;
mod collection;
mod compaction;
mod coords;
mod database;
#[cfg(test)]
mod index_tests;
mod node;
mod partition;
pub(crate) mod placement;
#[cfg(test)]
mod placement_tests;
pub(crate) mod room;
mod scalar_index;
mod security;
mod shard;
#[cfg(test)]
mod tests;

use quiver_common::Timestamp;

use crate::command::{AlterTarget, MetaCommand, MetaResponse};
use crate::error::RuleError;
use crate::state::MetaState;

/// Applies one command. On success the state's version grows by one.
pub(crate) fn apply(
    state: &mut MetaState,
    cmd: &MetaCommand,
    log_ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    let resp = match cmd {
        MetaCommand::CreateCollection {
            schema,
            shards,
            metric,
            index,
            partitions,
        } => {
            if let Some(names) = partitions {
                partition::check_initial(names)?;
            }
            let resp = collection::create(state, schema, *shards, *metric, index.as_ref(), log_ts)?;
            if let (Some(names), MetaResponse::CollectionCreated { id }) = (partitions, &resp) {
                partition::initial(state, *id, names, log_ts);
            }
            Ok(resp)
        }
        MetaCommand::Alter {
            collection: c,
            target,
            set,
            delete,
        } => match target {
            AlterTarget::Collection => collection::alter(state, c, set, delete, log_ts),
            AlterTarget::Index => collection::alter_index(state, c, set, delete, log_ts),
            AlterTarget::Field(f) => collection::alter_field(state, c, f, set, delete, log_ts),
        },
        MetaCommand::Database { op } => database::apply(state, op, log_ts),
        MetaCommand::Partition { collection, op } => {
            partition::apply(state, collection, op, log_ts)
        }
        MetaCommand::DropCollection { name } => collection::drop(state, name),
        MetaCommand::RenameCollection { old, new } => collection::rename(state, old, new, log_ts),
        MetaCommand::SetIndex {
            collection,
            index,
            metric,
        } => collection::set_index(state, collection, index, *metric, log_ts),
        MetaCommand::SetScalarIndex {
            collection,
            field,
            index,
        } => scalar_index::set(state, collection, field, index, log_ts),
        MetaCommand::DropIndex { collection, field } => {
            collection::drop_index(state, collection, field.as_deref(), log_ts)
        }
        MetaCommand::SetLoaded {
            collection,
            loaded,
            replica_number,
        } => collection::set_loaded(state, collection, *loaded, *replica_number, log_ts),
        MetaCommand::CreateAlias { alias, collection } => {
            alias::create(state, alias, collection, log_ts)
        }
        MetaCommand::AlterAlias { alias, collection } => {
            alias::alter(state, alias, collection, log_ts)
        }
        MetaCommand::AliasAdmin { change, actor } => alias::admin(state, change, actor, log_ts),
        MetaCommand::DropAlias { alias } => alias::drop(state, alias),
        MetaCommand::RegisterSegments {
            collection_id,
            shard,
            epoch,
            segments,
            wal_checkpoint,
        } => shard::register_segments(
            state,
            *collection_id,
            *shard,
            *epoch,
            segments,
            *wal_checkpoint,
        ),
        MetaCommand::AcquireShard {
            collection_id,
            shard,
            node_id,
        } => shard::acquire(state, *collection_id, *shard, *node_id),
        MetaCommand::AllocateIds { count } => shard::allocate_ids(state, *count),
        MetaCommand::RegisterNode { id, role, addr } => node::register(state, *id, *role, addr),
        MetaCommand::SetNodeDraining { id, draining } => node::set_draining(state, *id, *draining),
        MetaCommand::ForgetNode { id } => node::forget(state, *id),
        MetaCommand::SetReplicas {
            collection_id,
            shard,
            nodes,
            leaving,
        } => node::set_replicas(state, *collection_id, *shard, nodes, *leaving),
        MetaCommand::SetUnplaced {
            collection_id,
            reason,
        } => node::set_unplaced(state, *collection_id, reason.clone()),
        MetaCommand::CompactSegments {
            collection_id,
            shard,
            epoch,
            inputs,
            output,
            job,
        } => compaction::compact(
            state,
            compaction::Swap {
                collection_id: *collection_id,
                shard: *shard,
                epoch: *epoch,
                inputs,
                output: output.as_ref(),
                job: *job,
            },
            log_ts,
        ),
        MetaCommand::RequestCompaction { collection } => {
            compaction::request(state, collection, log_ts)
        }
        MetaCommand::FinishCompaction {
            collection_id,
            shard,
            epoch,
            job,
        } => compaction::finish(state, *collection_id, *shard, *epoch, *job, log_ts),
        MetaCommand::Security { op } => security::apply(state, op),
        MetaCommand::RegisterCoord {
            node_id,
            incarnation,
            cluster_id,
        } => coords::register(state, *node_id, incarnation, cluster_id),
        MetaCommand::AdmitCoord { node_id } => coords::admit(state, *node_id),
    }?;
    state.version += 1;
    Ok(resp)
}
