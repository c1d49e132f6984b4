//! Errors across the wire, for every Quiver service (the data path here,
//! coord's services in `crates/coord/src/wire.rs`). A server answers a
//! failed call with a gRPC status whose code follows the error kind, plus
//! the metadata entry [`ERROR_HEADER`] carrying the whole error (the JSON of
//! [`WireError`]),
//! so the client rebuilds exactly the error the remote role returned (same
//! kind, same message) and the front door maps it as if it were local. A
//! status without that entry did not come from a Quiver handler: it is a
//! transport failure (connection refused or reset, a node stopping) and
//! becomes [`Error::Unavailable`], which callers may retry.

use quiver_common::Error;
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// Binary metadata entry holding the JSON of a `WireError`
/// (`{"CollectionNotFound":"c"}`, `{"InvalidArgument":{"field":..,"rule":..}}`).
pub const ERROR_HEADER: &str = "x-quiver-error-bin";

/// [`Error`] as it travels (one variant per variant, same payloads), plus
/// coord's "not the leader, go there".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireError {
    InvalidArgument {
        field: String,
        rule: String,
    },
    CollectionNotFound(String),
    NotLoaded(String),
    AlreadyExists(String),
    PartitionNotFound(String),
    DatabaseNotFound(String),
    IndexNotFound(String),
    AliasNotFound(String),
    AliasExists(String),
    NameConflict(String),
    StateConflict(String),
    FieldNameInvalid {
        field: String,
        rule: String,
    },
    Unavailable(String),
    Fenced(String),
    DeadlineExceeded(String),
    NoSpace(String),
    Overloaded(String),
    Corrupt(String),
    Io(String),
    Internal(String),
    /// A coord leader that has not heard from a quorum lately.
    NoQuorum(String),
    /// A coord that cannot take a write: the leader's id and address, if known.
    NotLeader {
        leader: Option<u64>,
        addr: Option<String>,
    },
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> Self {
        match e {
            Error::InvalidArgument { field, rule } => WireError::InvalidArgument {
                field: field.clone(),
                rule: rule.clone(),
            },
            Error::CollectionNotFound(m) => WireError::CollectionNotFound(m.clone()),
            Error::NotLoaded(m) => WireError::NotLoaded(m.clone()),
            Error::AlreadyExists(m) => WireError::AlreadyExists(m.clone()),
            Error::PartitionNotFound(m) => WireError::PartitionNotFound(m.clone()),
            Error::DatabaseNotFound(m) => WireError::DatabaseNotFound(m.clone()),
            Error::IndexNotFound(m) => WireError::IndexNotFound(m.clone()),
            Error::AliasNotFound(m) => WireError::AliasNotFound(m.clone()),
            Error::AliasExists(m) => WireError::AliasExists(m.clone()),
            Error::NameConflict(m) => WireError::NameConflict(m.clone()),
            Error::StateConflict(m) => WireError::StateConflict(m.clone()),
            Error::FieldNameInvalid { field, rule } => WireError::FieldNameInvalid {
                field: field.clone(),
                rule: rule.clone(),
            },
            Error::Unavailable(m) => WireError::Unavailable(m.clone()),
            Error::Fenced(m) => WireError::Fenced(m.clone()),
            Error::DeadlineExceeded(m) => WireError::DeadlineExceeded(m.clone()),
            Error::NoSpace(m) => WireError::NoSpace(m.clone()),
            Error::Overloaded(m) => WireError::Overloaded(m.clone()),
            Error::Corrupt(m) => WireError::Corrupt(m.clone()),
            Error::Io(m) => WireError::Io(m.clone()),
            Error::Internal(m) => WireError::Internal(m.clone()),
        }
    }
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Self {
        match w {
            WireError::InvalidArgument { field, rule } => Error::InvalidArgument { field, rule },
            WireError::CollectionNotFound(m) => Error::CollectionNotFound(m),
            WireError::NotLoaded(m) => Error::NotLoaded(m),
            WireError::AlreadyExists(m) => Error::AlreadyExists(m),
            WireError::PartitionNotFound(m) => Error::PartitionNotFound(m),
            WireError::DatabaseNotFound(m) => Error::DatabaseNotFound(m),
            WireError::IndexNotFound(m) => Error::IndexNotFound(m),
            WireError::AliasNotFound(m) => Error::AliasNotFound(m),
            WireError::AliasExists(m) => Error::AliasExists(m),
            WireError::NameConflict(m) => Error::NameConflict(m),
            WireError::StateConflict(m) => Error::StateConflict(m),
            WireError::FieldNameInvalid { field, rule } => Error::FieldNameInvalid { field, rule },
            WireError::Unavailable(m) => Error::Unavailable(m),
            WireError::Fenced(m) => Error::Fenced(m),
            WireError::DeadlineExceeded(m) => Error::DeadlineExceeded(m),
            WireError::NoSpace(m) => Error::NoSpace(m),
            WireError::Overloaded(m) => Error::Overloaded(m),
            WireError::Corrupt(m) => Error::Corrupt(m),
            WireError::Io(m) => Error::Io(m),
            WireError::Internal(m) => Error::Internal(m),
            WireError::NoQuorum(m) => Error::Unavailable(format!("no coord quorum: {m}")),
            WireError::NotLeader { leader, addr } => Error::Unavailable(format!(
                "this coord is not the leader (leader: {leader:?} at {addr:?})"
            )),
        }
    }
}

impl WireError {
    /// The one mapping from an error to a gRPC code.
    pub fn code(&self) -> Code {
        match self {
            WireError::InvalidArgument { .. } | WireError::FieldNameInvalid { .. } => {
                Code::InvalidArgument
            }
            WireError::CollectionNotFound(_)
            | WireError::IndexNotFound(_)
            | WireError::PartitionNotFound(_)
            | WireError::DatabaseNotFound(_)
            | WireError::AliasNotFound(_) => Code::NotFound,
            WireError::NotLoaded(_) | WireError::NotLeader { .. } | WireError::StateConflict(_) => {
                Code::FailedPrecondition
            }
            WireError::AlreadyExists(_)
            | WireError::AliasExists(_)
            | WireError::NameConflict(_) => Code::AlreadyExists,
            WireError::Unavailable(_) | WireError::NoQuorum(_) => Code::Unavailable,
            WireError::Fenced(_) => Code::Aborted,
            WireError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            WireError::NoSpace(_) | WireError::Overloaded(_) => Code::ResourceExhausted,
            WireError::Corrupt(_) => Code::DataLoss,
            WireError::Io(_) | WireError::Internal(_) => Code::Internal,
        }
    }

    /// The status a server answers: the code, `message`, and the error in
    /// [`ERROR_HEADER`].
    pub fn to_status(&self, message: String) -> Status {
        let mut status = Status::new(self.code(), message);
        if let Ok(bytes) = serde_json::to_vec(self) {
            status
                .metadata_mut()
                .insert_bin(ERROR_HEADER, MetadataValue::from_bytes(&bytes));
        }
        status
    }

    /// The error a Quiver server put in a status (None: the status came
    /// from the transport or from a server that is not Quiver's).
    pub fn from_status(s: &Status) -> Option<WireError> {
        let bytes = s.metadata().get_bin(ERROR_HEADER)?.to_bytes().ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The status a server answers for `e`.
pub fn to_status(e: &Error) -> Status {
    WireError::from(e).to_status(e.to_string())
}

/// The error a client returns for a failed call.
pub fn from_status(s: &Status) -> Error {
    if let Some(w) = WireError::from_status(s) {
        return w.into();
    }
    let msg = s.message();
    match s.code() {
        Code::DeadlineExceeded => Error::DeadlineExceeded(format!("transport: {msg}")),
        Code::InvalidArgument | Code::OutOfRange => {
            Error::invalid("request", format!("refused by the transport: {msg}"))
        }
        Code::Unimplemented => Error::Internal(format!(
            "the peer does not serve this call (every node must run the same Quiver version): {msg}"
        )),
        Code::Ok
        | Code::Cancelled
        | Code::Unknown
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::ResourceExhausted
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::Internal
        | Code::Unavailable
        | Code::DataLoss
        | Code::Unauthenticated => Error::Unavailable(format!("transport ({:?}): {msg}", s.code())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_round_trips_with_its_message() {
        let all = [
            Error::invalid("data", "dim 4"),
            Error::CollectionNotFound("c".into()),
            Error::AlreadyExists("c".into()),
            Error::Unavailable("x".into()),
            Error::Fenced("epoch 3".into()),
            Error::DeadlineExceeded("slow".into()),
            Error::Corrupt("crc".into()),
            Error::NoSpace("disk full".into()),
            Error::Overloaded("busy".into()),
            Error::Io("disk".into()),
            Error::Internal("bug ü".into()),
        ];
        for e in all {
            let back = from_status(&to_status(&e));
            assert_eq!(back.kind(), e.kind());
            assert_eq!(back.to_string(), e.to_string());
        }
    }

    #[test]
    fn the_error_entry_is_the_json_coord_uses() {
        let s = to_status(&Error::CollectionNotFound("c".into()));
        let v = s.metadata().get_bin(ERROR_HEADER).expect("entry");
        assert_eq!(
            v.to_bytes().expect("bytes").as_ref(),
            br#"{"CollectionNotFound":"c"}"#
        );
        assert_eq!(s.code(), Code::NotFound);
    }

    #[test]
    fn statuses_from_the_transport_are_unavailable() {
        for code in [
            Code::Unavailable,
            Code::Unknown,
            Code::Cancelled,
            Code::Internal,
        ] {
            let e = from_status(&Status::new(code, "connection reset"));
            assert_eq!(e.kind(), quiver_common::ErrorKind::Unavailable, "{code:?}");
        }
        let e = from_status(&Status::deadline_exceeded("t"));
        assert_eq!(e.kind(), quiver_common::ErrorKind::DeadlineExceeded);
    }
}
