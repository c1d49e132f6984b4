//! What every handler does with its result: log at the RPC boundary and
//! answer errors as statuses that carry the whole error.

use quiver_common::{ErrorKind, Result};
use tonic::{Response, Status};

use crate::error::to_status;

pub(crate) fn reply<T>(rpc: &'static str, result: Result<T>) -> Result<Response<T>, Status> {
    match result {
        Ok(v) => Ok(Response::new(v)),
        Err(e) => {
            match e.kind() {
                ErrorKind::Internal | ErrorKind::Io | ErrorKind::Corrupt | ErrorKind::NoSpace => {
                    tracing::warn!(rpc, error = %e, "call failed");
                }
                ErrorKind::InvalidArgument
                | ErrorKind::CollectionNotFound
                | ErrorKind::NotLoaded
                | ErrorKind::AlreadyExists
                | ErrorKind::IndexNotFound
                | ErrorKind::PartitionNotFound
                | ErrorKind::DatabaseNotFound
                | ErrorKind::AliasNotFound
                | ErrorKind::AliasExists
                | ErrorKind::NameConflict
                | ErrorKind::FieldNameInvalid
                | ErrorKind::StateConflict
                | ErrorKind::Unavailable
                | ErrorKind::Overloaded
                | ErrorKind::Fenced
                | ErrorKind::DeadlineExceeded => tracing::debug!(rpc, error = %e, "call failed"),
            }
            Err(to_status(&e))
        }
    }
}
