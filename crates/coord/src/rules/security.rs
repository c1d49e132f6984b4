//! Users, roles and grants: the rules are `quiver_auth`'s
//! (`SecurityState::apply`); this maps their refusals to coord's.

use std::sync::Arc;

use quiver_auth::{SecurityError, SecurityOp};

use crate::command::MetaResponse;
use crate::error::RuleError;
use crate::state::MetaState;

pub(super) fn apply(state: &mut MetaState, op: &SecurityOp) -> Result<MetaResponse, RuleError> {
    // Applied to a copy: a refused change leaves the state as it was.
    let mut next = (*state.security).clone();
    next.apply(op).map_err(|e| match e {
        SecurityError::Invalid { field, rule } => RuleError::InvalidArgument { field, rule },
        SecurityError::AlreadyExists(what) => RuleError::AlreadyExists(what),
        SecurityError::NotFound(what) => RuleError::InvalidArgument {
            field: "name".into(),
            rule: format!("{what} does not exist"),
        },
    })?;
    state.security = Arc::new(next);
    Ok(MetaResponse::Done)
}
