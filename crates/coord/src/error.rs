//! Coord's errors: [`RuleError`] is the outcome of a rejected command (it travels
//! through the Raft log as a response, so it is plain serde data); [`CoordError`]
//! is everything a caller of [`crate::Coord`] can see.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Why a metadata rule rejected a command. Deterministic: every replica that
/// applies the same command to the same state gets the same rule error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleError {
    /// `field` names the offending field or parameter; `rule` says what was expected.
    InvalidArgument {
        field: String,
        rule: String,
    },
    AlreadyExists(String),
    CollectionNotFound(String),
    PartitionNotFound(String),
    DatabaseNotFound(String),
    /// Loading a collection without an index; a field without one.
    IndexNotFound(String),
    AliasNotFound(String),
    AliasExists(String),
    /// An alias named like a collection, or the other way round.
    NameConflict(String),
    /// Not possible in the collection's current state (the message is
    /// Milvus's for the case).
    StateConflict(String),
    /// The caller's fencing epoch is not the shard's current one: a newer
    /// owner exists (or the caller never owned the shard).
    Fenced(String),
}

impl RuleError {
    pub(crate) fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        RuleError::InvalidArgument {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::InvalidArgument { field, rule } => write!(f, "invalid {field}: {rule}"),
            RuleError::AlreadyExists(what) => write!(f, "already exists: {what}"),
            RuleError::CollectionNotFound(what) => write!(f, "collection not found: {what}"),
            RuleError::IndexNotFound(what) => write!(f, "index not found: {what}"),
            RuleError::PartitionNotFound(what) | RuleError::DatabaseNotFound(what) => {
                write!(f, "{what}")
            }
            RuleError::AliasNotFound(what) => write!(f, "alias not found: {what}"),
            RuleError::AliasExists(what) => write!(f, "alias already exist: {what}"),
            RuleError::NameConflict(what) => {
                write!(f, "alias and collection name conflict: {what}")
            }
            RuleError::StateConflict(what) => write!(f, "{what}"),
            RuleError::Fenced(what) => write!(f, "fenced: {what}"),
        }
    }
}

impl std::error::Error for RuleError {}

impl From<quiver_common::Error> for RuleError {
    /// Schema and name validation in `quiver_common` only produce
    /// `InvalidArgument`; anything else is reported against the schema.
    fn from(e: quiver_common::Error) -> Self {
        match e {
            quiver_common::Error::InvalidArgument { field, rule }
            | quiver_common::Error::FieldNameInvalid { field, rule } => {
                RuleError::InvalidArgument { field, rule }
            }
            other => RuleError::invalid("schema", other.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// A metadata rule rejected the command.
    #[error("{0}")]
    Rule(#[from] RuleError),
    #[error("coord i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Stored coord data failed a checksum or could not be decoded.
    #[error("corrupt coord data in {path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    /// Another coord (process or task) holds the directory's lock.
    #[error("coord directory {0} is locked by another coord")]
    Locked(PathBuf),
    #[error("invalid coord option {field}: {rule}")]
    Config { field: String, rule: String },
    /// This node cannot accept writes; `leader` is the current leader and
    /// `addr` its address, if known.
    #[error("this coord is not the leader (leader: {leader:?} at {addr:?})")]
    NotLeader {
        leader: Option<u64>,
        addr: Option<String>,
    },
    /// A write or read did not reach a quorum in time (its outcome is unknown
    /// for a write), or a remote coord did not answer in time.
    #[error("coord timeout: {0}")]
    Timeout(String),
    /// A condition was not reached in time (e.g. no leader elected at start).
    #[error("coord unavailable: {0}")]
    Unavailable(String),
    /// The leader has not heard from a quorum of coords lately: a write
    /// could not commit, so it is refused at once.
    #[error("no coord quorum: {0}")]
    NoQuorum(String),
    #[error("coord is shut down")]
    Shutdown,
    /// openraft reported a fatal or storage error.
    #[error("raft error: {0}")]
    Raft(String),
}

impl CoordError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CoordError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        CoordError::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }
}

impl From<RuleError> for quiver_common::Error {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::InvalidArgument { field, rule } => {
                quiver_common::Error::InvalidArgument { field, rule }
            }
            RuleError::AlreadyExists(what) => quiver_common::Error::AlreadyExists(what),
            RuleError::CollectionNotFound(what) => quiver_common::Error::CollectionNotFound(what),
            RuleError::IndexNotFound(what) => quiver_common::Error::IndexNotFound(what),
            RuleError::PartitionNotFound(what) => quiver_common::Error::PartitionNotFound(what),
            RuleError::DatabaseNotFound(what) => quiver_common::Error::DatabaseNotFound(what),
            RuleError::AliasNotFound(what) => quiver_common::Error::AliasNotFound(what),
            RuleError::AliasExists(what) => quiver_common::Error::AliasExists(what),
            RuleError::NameConflict(what) => quiver_common::Error::NameConflict(what),
            RuleError::StateConflict(what) => quiver_common::Error::StateConflict(what),
            RuleError::Fenced(what) => quiver_common::Error::Fenced(what),
        }
    }
}

impl From<CoordError> for quiver_common::Error {
    fn from(e: CoordError) -> Self {
        use quiver_common::Error;
        match e {
            CoordError::Rule(rule) => rule.into(),
            e @ CoordError::Io { .. } => Error::Io(e.to_string()),
            e @ CoordError::Corrupt { .. } => Error::Corrupt(e.to_string()),
            e @ CoordError::Locked(_) => Error::Unavailable(e.to_string()),
            CoordError::Config { field, rule } => Error::InvalidArgument { field, rule },
            e @ CoordError::NotLeader { .. } => Error::Unavailable(e.to_string()),
            e @ CoordError::Unavailable(_) => Error::Unavailable(e.to_string()),
            e @ CoordError::Timeout(_) => Error::DeadlineExceeded(e.to_string()),
            e @ CoordError::Shutdown => Error::Unavailable(e.to_string()),
            e @ CoordError::NoQuorum(_) => Error::Unavailable(e.to_string()),
            e @ CoordError::Raft(_) => Error::Internal(e.to_string()),
        }
    }
}

pub type Result<T, E = CoordError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_common::ErrorKind;

    #[test]
    fn rule_errors_map_to_common_kinds() {
        let cases = [
            (
                RuleError::invalid("shards", "1..=64"),
                ErrorKind::InvalidArgument,
            ),
            (
                RuleError::AlreadyExists("x".into()),
                ErrorKind::AlreadyExists,
            ),
            (
                RuleError::CollectionNotFound("x".into()),
                ErrorKind::CollectionNotFound,
            ),
            (RuleError::Fenced("x".into()), ErrorKind::Fenced),
        ];
        for (rule, kind) in cases {
            let e: quiver_common::Error = CoordError::from(rule).into();
            assert_eq!(e.kind(), kind);
        }
        let e: quiver_common::Error = CoordError::NotLeader {
            leader: Some(2),
            addr: None,
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }
}
