//! Alias rules. Alias names and collection names share one namespace. An
//! alias's epoch is the metadata version at which it was last set: it grows
//! on every change and never repeats, even across drop + create, so a request
//! pinned to (alias, epoch) can always tell that the alias moved. Every change
//! is kept in the alias's history with who made it and why.
//!
//! A mirrored alias pairs a primary and a standby collection of the same
//! shape (fields, dimension, metric, shard count); its target is always one
//! of the two, and a flip points it at the other.

use quiver_common::{CollectionId, Timestamp, split_qualified, ts_physical_ms, validate_qualified};

use crate::command::{Actor, AliasChange, MetaResponse};
use crate::error::RuleError;
use crate::state::{
    ALIAS_HISTORY, AliasEvent, AliasRecord, CollectionMeta, MetaState, MirrorRecord,
};
use quiver_api::AliasAction;

/// Who Milvus's CreateAlias / AlterAlias are recorded as.
const MILVUS_API: &str = "milvus-api";

pub(super) fn create(
    state: &mut MetaState,
    alias: &str,
    collection: &str,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    check_new(state, alias)?;
    let target = check_target(state, alias, collection)?;
    let actor = Actor::new(MILVUS_API, "CreateAlias");
    set(state, alias, target, None, AliasAction::Create, &actor, ts)
}

pub(super) fn alter(
    state: &mut MetaState,
    alias: &str,
    collection: &str,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    let actor = Actor::new(MILVUS_API, "AlterAlias");
    alter_checked(state, alias, collection, None, &actor, ts)
}

pub(super) fn drop(state: &mut MetaState, alias: &str) -> Result<MetaResponse, RuleError> {
    if state.aliases.remove(alias).is_none() {
        return Err(missing(alias));
    }
    Ok(MetaResponse::Done)
}

/// The admin API's changes.
pub(super) fn admin(
    state: &mut MetaState,
    change: &AliasChange,
    actor: &Actor,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    match change {
        AliasChange::Alter {
            alias,
            collection,
            expect,
        } => {
            if !state.aliases.contains_key(alias) {
                if let Some(expected) = expect {
                    return Err(RuleError::invalid(
                        "expect",
                        format!(
                            "alias {alias:?} does not exist (expected it to target {expected:?})"
                        ),
                    ));
                }
                check_new(state, alias)?;
                let target = check_target(state, alias, collection)?;
                return set(state, alias, target, None, AliasAction::Create, actor, ts);
            }
            alter_checked(state, alias, collection, expect.as_deref(), actor, ts)
        }
        AliasChange::Mirror {
            alias,
            primary,
            standby,
            auto_failover,
            max_lag_ms,
        } => {
            let spec = MirrorSpec {
                primary,
                standby,
                auto_failover: *auto_failover,
                max_lag_ms: *max_lag_ms,
            };
            mirror(state, alias, spec, actor, ts)
        }
        AliasChange::Flip { alias, expect } => {
            let meta = state.aliases.get(alias).ok_or_else(|| missing(alias))?;
            let Some(mirror) = meta.mirror else {
                return Err(RuleError::invalid(
                    "alias",
                    format!("alias {alias:?} is not mirrored; only a mirrored alias can flip"),
                ));
            };
            check_expect(state, meta, alias, expect.as_deref())?;
            let to = mirror.other(meta.target);
            set(state, alias, to, Some(mirror), AliasAction::Flip, actor, ts)
        }
        AliasChange::Pin { alias, pinned } => {
            let meta = state.aliases.get(alias).ok_or_else(|| missing(alias))?;
            let Some(mut mirror) = meta.mirror else {
                return Err(RuleError::invalid(
                    "alias",
                    format!("alias {alias:?} is not mirrored; pinning stops automatic flips"),
                ));
            };
            mirror.pinned = *pinned;
            let target = meta.target;
            let action = if *pinned {
                AliasAction::Pin
            } else {
                AliasAction::Unpin
            };
            set(state, alias, target, Some(mirror), action, actor, ts)
        }
    }
}

/// A mirror as the admin API asks for it (collections by name).
struct MirrorSpec<'a> {
    primary: &'a str,
    standby: &'a str,
    auto_failover: bool,
    max_lag_ms: u64,
}

fn mirror(
    state: &mut MetaState,
    alias: &str,
    spec: MirrorSpec<'_>,
    actor: &Actor,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    if spec.primary == spec.standby {
        return Err(RuleError::invalid(
            "standby",
            format!("must differ from the primary (both are {:?})", spec.primary),
        ));
    }
    let primary = check_target(state, alias, spec.primary)?;
    let standby = check_target(state, alias, spec.standby)?;
    let (Some(a), Some(b)) = (
        state.collection_by_id(primary),
        state.collection_by_id(standby),
    ) else {
        return Err(RuleError::CollectionNotFound(spec.primary.to_string()));
    };
    check_same_shape(a, b)?;
    let mut pair = MirrorRecord {
        primary,
        standby,
        auto_failover: spec.auto_failover,
        max_lag_ms: spec.max_lag_ms,
        pinned: false,
    };
    let target = match state.aliases.get(alias) {
        None => {
            check_new(state, alias)?;
            primary
        }
        Some(meta) => {
            if let Some(old) = &meta.mirror {
                pair.pinned = old.pinned;
            }
            if pair.holds(meta.target) {
                meta.target
            } else {
                primary
            }
        }
    };
    set(
        state,
        alias,
        target,
        Some(pair),
        AliasAction::Mirror,
        actor,
        ts,
    )
}

/// Both sides of a mirror must take the same rows and answer the same
/// searches: same fields (names, types, dimensions, keys), same metric, and
/// the same shard count (shard `i` of one mirrors shard `i` of the other).
fn check_same_shape(a: &CollectionMeta, b: &CollectionMeta) -> Result<(), RuleError> {
    let differ = |what: &str, x: String, y: String| {
        RuleError::invalid(
            "standby",
            format!(
                "{what} differs: {:?} has {x}, {:?} has {y}; a mirror needs two collections of the same shape",
                a.name, b.name
            ),
        )
    };
    if a.metric != b.metric {
        return Err(differ(
            "metric",
            format!("{:?}", a.metric),
            format!("{:?}", b.metric),
        ));
    }
    if a.shards != b.shards {
        return Err(differ(
            "shard count",
            a.shards.to_string(),
            b.shards.to_string(),
        ));
    }
    let shape = |m: &CollectionMeta| {
        let mut fields: Vec<String> = m
            .schema
            .fields
            .iter()
            .map(|f| {
                format!(
                    "{}:{:?}{}{}{}",
                    f.name,
                    f.data_type,
                    f.dim.map(|d| format!("[{d}]")).unwrap_or_default(),
                    if f.is_primary_key { " pk" } else { "" },
                    if f.auto_id { " auto_id" } else { "" },
                )
            })
            .collect();
        if m.schema.enable_dynamic_field {
            fields.push("$meta".into());
        }
        fields.join(", ")
    };
    let (x, y) = (shape(a), shape(b));
    if x != y {
        return Err(differ("schema", format!("[{x}]"), format!("[{y}]")));
    }
    Ok(())
}

fn alter_checked(
    state: &mut MetaState,
    alias: &str,
    collection: &str,
    expect: Option<&str>,
    actor: &Actor,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    let meta = state.aliases.get(alias).ok_or_else(|| missing(alias))?;
    check_expect(state, meta, alias, expect)?;
    let mirror = meta.mirror;
    if let Some(pair) = mirror
        && !state
            .names
            .get(collection)
            .is_some_and(|id| pair.holds(*id))
    {
        return Err(RuleError::invalid(
            "collection_name",
            format!(
                "alias {alias:?} mirrors {:?} and {:?}; it can only target one of them (mirror it again to change the pair)",
                state.collection_name(pair.primary),
                state.collection_name(pair.standby)
            ),
        ));
    }
    let target = check_target(state, alias, collection)?;
    set(state, alias, target, mirror, AliasAction::Alter, actor, ts)
}

/// The compare-and-swap guard: `expect` names the collection the alias must
/// target now.
fn check_expect(
    state: &MetaState,
    meta: &AliasRecord,
    alias: &str,
    expect: Option<&str>,
) -> Result<(), RuleError> {
    let current = state.collection_name(meta.target);
    match expect {
        Some(expected) if expected != current => Err(RuleError::invalid(
            "expect",
            format!(
                "alias {alias:?} targets {current:?}, not {expected:?} (changed at epoch {}); nothing was changed",
                meta.epoch
            ),
        )),
        _ => Ok(()),
    }
}

fn check_new(state: &MetaState, alias: &str) -> Result<(), RuleError> {
    validate_qualified("alias", alias)?;
    if state.aliases.contains_key(alias) {
        return Err(RuleError::AliasExists(format!("alias {alias:?}")));
    }
    if state.names.contains_key(alias) {
        return Err(RuleError::NameConflict(format!(
            "{alias:?} is a collection; an alias cannot take a collection's name"
        )));
    }
    Ok(())
}

fn missing(alias: &str) -> RuleError {
    RuleError::AliasNotFound(format!("alias {alias:?} does not exist"))
}

/// An alias must point to an existing collection, never to another alias;
/// the collection's id.
fn check_target(
    state: &MetaState,
    alias: &str,
    collection: &str,
) -> Result<CollectionId, RuleError> {
    if let Some(id) = state.names.get(collection) {
        let (alias_db, _) = split_qualified(alias);
        let (db, _) = split_qualified(collection);
        if alias_db != db {
            return Err(RuleError::invalid(
                "alias",
                format!("alias {alias:?} must be in the database of its collection {collection:?}"),
            ));
        }
        return Ok(*id);
    }
    if state.aliases.contains_key(collection) {
        return Err(RuleError::invalid(
            "collection_name",
            format!("alias {alias:?} must point to a collection, and {collection:?} is an alias"),
        ));
    }
    Err(RuleError::CollectionNotFound(format!(
        "{collection:?} (target of alias {alias:?})"
    )))
}

fn set(
    state: &mut MetaState,
    alias: &str,
    target: CollectionId,
    mirror: Option<MirrorRecord>,
    action: AliasAction,
    actor: &Actor,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    let epoch = state.version + 1;
    let (from, mut history) = match state.aliases.remove(alias) {
        Some(old) => (Some(state.collection_name(old.target)), old.history),
        None => (None, Vec::new()),
    };
    history.push(AliasEvent {
        epoch,
        at_ms: ts_physical_ms(ts),
        action,
        from,
        to: state.collection_name(target),
        by: actor.by.clone(),
        reason: actor.reason.clone(),
    });
    if history.len() > ALIAS_HISTORY {
        history.drain(..history.len() - ALIAS_HISTORY);
    }
    state.aliases.insert(
        alias.to_string(),
        AliasRecord {
            target,
            epoch,
            mirror,
            history,
        },
    );
    Ok(MetaResponse::AliasSet { epoch })
}
