//! Alias rules. Alias names and collection names share one namespace. An
//! alias's epoch is the metadata version at which it was last set: it grows
//! on every alter and never repeats, even across drop + create, so a request
//! pinned to (alias, epoch) can always tell that the alias moved.

use quiver_common::validate_name;

use crate::command::MetaResponse;
use crate::error::RuleError;
use crate::state::{AliasMeta, MetaState};

pub(super) fn create(
    state: &mut MetaState,
    alias: &str,
    collection: &str,
) -> Result<MetaResponse, RuleError> {
    validate_name("alias", alias)?;
    if state.aliases.contains_key(alias) {
        return Err(RuleError::AlreadyExists(format!("alias {alias:?}")));
    }
    if state.names.contains_key(alias) {
        return Err(RuleError::AlreadyExists(format!(
            "{alias:?} is a collection; an alias cannot take a collection's name"
        )));
    }
    check_target(state, alias, collection)?;
    set(state, alias, collection)
}

pub(super) fn alter(
    state: &mut MetaState,
    alias: &str,
    collection: &str,
) -> Result<MetaResponse, RuleError> {
    if !state.aliases.contains_key(alias) {
        return Err(RuleError::invalid(
            "alias",
            format!("alias {alias:?} does not exist"),
        ));
    }
    check_target(state, alias, collection)?;
    set(state, alias, collection)
}

pub(super) fn drop(state: &mut MetaState, alias: &str) -> Result<MetaResponse, RuleError> {
    if state.aliases.remove(alias).is_none() {
        return Err(RuleError::invalid(
            "alias",
            format!("alias {alias:?} does not exist"),
        ));
    }
    Ok(MetaResponse::Done)
}

/// An alias must point to an existing collection, never to another alias.
fn check_target(state: &MetaState, alias: &str, collection: &str) -> Result<(), RuleError> {
    if state.names.contains_key(collection) {
        return Ok(());
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

fn set(state: &mut MetaState, alias: &str, collection: &str) -> Result<MetaResponse, RuleError> {
    let epoch = state.version + 1;
    state.aliases.insert(
        alias.to_string(),
        AliasMeta {
            collection: collection.to_string(),
            epoch,
        },
    );
    Ok(MetaResponse::AliasSet { epoch })
}
