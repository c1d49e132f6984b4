//! Database rules. The default database always exists and is not recorded;
//! every other one is a [`DatabaseMeta`]. A database's collections and
//! aliases are named `db.name` (`quiver_common::qualify`), so membership is
//! a name prefix and needs no second index to keep in step.

use quiver_common::{DEFAULT_DATABASE, Timestamp, split_qualified, validate_name};

use crate::command::{DatabaseOp, MetaResponse};
use crate::error::RuleError;
use crate::state::{DatabaseMeta, MetaState};

/// Milvus's default `rootCoord.maxDatabaseNum` (the default database counts).
pub(crate) const MAX_DATABASES: usize = 64;

pub(super) fn apply(
    state: &mut MetaState,
    op: &DatabaseOp,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    match op {
        DatabaseOp::Create { name, properties } => {
            validate_name("db_name", name)?;
            if name == DEFAULT_DATABASE || state.databases.contains_key(name) {
                return Err(RuleError::StateConflict(format!(
                    "database already exist: {name}"
                )));
            }
            if state.databases.len() + 1 >= MAX_DATABASES {
                return Err(RuleError::StateConflict(format!(
                    "database number ({}) exceeds max configuration ({MAX_DATABASES})",
                    state.databases.len() + 1
                )));
            }
            let id = state.next_id;
            state.next_id += 1;
            state.databases.insert(
                name.clone(),
                DatabaseMeta {
                    id,
                    name: name.clone(),
                    created_ts: ts,
                    properties: properties.clone(),
                },
            );
        }
        DatabaseOp::Drop { name } => {
            validate_name("db_name", name)?;
            if name == DEFAULT_DATABASE {
                return Err(RuleError::invalid(
                    "db_name",
                    "can not drop default database",
                ));
            }
            if !state.databases.contains_key(name) {
                return Ok(MetaResponse::Done);
            }
            if let Some(c) = state.names.keys().find(|c| split_qualified(c).0 == name) {
                return Err(RuleError::StateConflict(format!(
                    "database:{name} not empty, must drop all collections before drop database (it holds {:?})",
                    split_qualified(c).1
                )));
            }
            state.databases.remove(name);
        }
        DatabaseOp::Alter { name, set, delete } => {
            if name == DEFAULT_DATABASE {
                return Err(RuleError::invalid(
                    "db_name",
                    "the default database has no properties to alter",
                ));
            }
            let db = state.databases.get_mut(name).ok_or_else(|| missing(name))?;
            for key in delete {
                db.properties.remove(key);
            }
            db.properties
                .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    Ok(MetaResponse::Done)
}

/// Checks that the database of a qualified collection or alias name exists.
pub(super) fn check_exists(state: &MetaState, qualified: &str) -> Result<(), RuleError> {
    let (db, _) = split_qualified(qualified);
    if db == DEFAULT_DATABASE || state.databases.contains_key(db) {
        Ok(())
    } else {
        Err(missing(db))
    }
}

fn missing(db: &str) -> RuleError {
    RuleError::DatabaseNotFound(format!("database not found[database={db}]"))
}
