//! The error that crosses role boundaries. Each variant is a meaning; the
//! front door maps each one to exactly one gRPC / Milvus status.

/// What kind of failure an [`Error`] is; decides the status code a client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong; retrying it unchanged cannot help.
    InvalidArgument,
    CollectionNotFound,
    /// The collection exists but was released: reads wait for a load.
    NotLoaded,
    AlreadyExists,
    /// The collection has no partition of that name.
    PartitionNotFound,
    /// No database of that name.
    DatabaseNotFound,
    /// The collection (or field) has no such index, or none at all.
    IndexNotFound,
    AliasNotFound,
    /// An alias of that name exists already.
    AliasExists,
    /// An alias named like a collection, or a collection like an alias.
    NameConflict,
    /// A field name breaks a naming rule (reserved word, `$meta`, characters).
    FieldNameInvalid,
    /// The request cannot be done in the collection's current state (drop
    /// the index of a loaded collection, load one without an index, a second
    /// different index): Milvus answers these with its code 65535.
    StateConflict,
    /// A transient condition (no owner yet, node starting); retry may help.
    Unavailable,
    /// The writer lost ownership (a newer epoch exists).
    Fenced,
    DeadlineExceeded,
    /// Writes are refused for lack of room (a full disk or quota); nothing
    /// was written. Reads go on, and writes resume by themselves once there
    /// is room again.
    NoSpace,
    /// The node is at a configured limit (in-flight writes or searches):
    /// nothing was done; retry with backoff.
    Overloaded,
    /// Stored data failed a checksum or could not be decoded.
    Corrupt,
    Io,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `field` names the offending field or parameter; `rule` says what was expected.
    #[error("invalid {field}: {rule}")]
    InvalidArgument { field: String, rule: String },
    #[error("collection not found: {0}")]
    CollectionNotFound(String),
    /// Reads of a released collection (Milvus: collection not loaded).
    #[error("collection not loaded: {0}")]
    NotLoaded(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The message starts as Milvus's: `partition not found[partition=..]`.
    #[error("{0}")]
    PartitionNotFound(String),
    /// The message starts as Milvus's: `database not found[database=..]`.
    #[error("{0}")]
    DatabaseNotFound(String),
    #[error("index not found: {0}")]
    IndexNotFound(String),
    #[error("alias not found: {0}")]
    AliasNotFound(String),
    #[error("alias already exist: {0}")]
    AliasExists(String),
    #[error("alias and collection name conflict: {0}")]
    NameConflict(String),
    /// `field` names the request field; `rule` the naming rule broken.
    #[error("field name invalid: {field}: {rule}")]
    FieldNameInvalid { field: String, rule: String },
    /// The message says what conflicts and what to do first.
    #[error("{0}")]
    StateConflict(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("fenced: {0}")]
    Fenced(String),
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    #[error("no space: {0}")]
    NoSpace(String),
    #[error("overloaded: {0}")]
    Overloaded(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("i/o error: {0}")]
    Io(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            rule: rule.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::CollectionNotFound(_) => ErrorKind::CollectionNotFound,
            Error::NotLoaded(_) => ErrorKind::NotLoaded,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::PartitionNotFound(_) => ErrorKind::PartitionNotFound,
            Error::DatabaseNotFound(_) => ErrorKind::DatabaseNotFound,
            Error::IndexNotFound(_) => ErrorKind::IndexNotFound,
            Error::AliasNotFound(_) => ErrorKind::AliasNotFound,
            Error::AliasExists(_) => ErrorKind::AliasExists,
            Error::NameConflict(_) => ErrorKind::NameConflict,
            Error::FieldNameInvalid { .. } => ErrorKind::FieldNameInvalid,
            Error::StateConflict(_) => ErrorKind::StateConflict,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Fenced(_) => ErrorKind::Fenced,
            Error::DeadlineExceeded(_) => ErrorKind::DeadlineExceeded,
            Error::NoSpace(_) => ErrorKind::NoSpace,
            Error::Overloaded(_) => ErrorKind::Overloaded,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Io(_) => ErrorKind::Io,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}
