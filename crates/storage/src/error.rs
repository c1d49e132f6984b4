//! The one error enum of the storage crate and its mapping onto the shared error.

/// A storage failure. Cloneable so that one failed WAL batch can fail every waiter.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// A newer epoch owns the shard's log; this writer must stop.
    #[error("fenced: {0}")]
    Fenced(String),
    /// Stored bytes failed a checksum or could not be decoded.
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: String, detail: String },
    /// The object store or the local file system failed.
    #[error("i/o error on {what}: {detail}")]
    Io { what: String, detail: String },
    /// A write was refused for now: the disk or object store has no room
    /// (`no_space`), or does not take writes (read-only, failing,
    /// unreachable). Nothing was written; a WAL probes the store and takes
    /// writes again by itself, a seal or compaction retries later.
    #[error("writes refused: {detail}")]
    Refused { no_space: bool, detail: String },
    /// The object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A [`crate::StoreConfig`] setting breaks a rule.
    #[error("invalid store config {field}: {rule}")]
    Config { field: String, rule: String },
    /// The caller handed data that cannot be stored (a bug upstream).
    #[error("invalid input: {0}")]
    Invalid(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    pub(crate) fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> Self {
        StorageError::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn io(what: impl Into<String>, detail: impl ToString) -> Self {
        StorageError::Io {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    /// Maps an object-store error on `what`; `NotFound` stays distinguishable.
    pub(crate) fn store(what: impl Into<String>, e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => StorageError::NotFound(what.into()),
            other => match fault_of(&other) {
                Fault::Other => StorageError::io(what, other),
                fault => StorageError::Refused {
                    no_space: fault == Fault::NoSpace,
                    detail: format!("{}: {other}", what.into()),
                },
            },
        }
    }

    pub fn is_fenced(&self) -> bool {
        matches!(self, StorageError::Fenced(_))
    }

    pub fn is_refused(&self) -> bool {
        matches!(self, StorageError::Refused { .. })
    }

    pub fn is_corrupt(&self) -> bool {
        matches!(self, StorageError::Corrupt { .. })
    }
}

impl From<StorageError> for quiver_common::Error {
    fn from(e: StorageError) -> Self {
        use quiver_common::Error;
        match e {
            StorageError::Fenced(m) => Error::Fenced(m),
            StorageError::Corrupt { .. } => Error::Corrupt(e.to_string()),
            StorageError::Refused { no_space: true, .. } => Error::NoSpace(e.to_string()),
            StorageError::Refused {
                no_space: false, ..
            } => Error::Unavailable(e.to_string()),
            StorageError::Io { .. } | StorageError::NotFound(_) => Error::Io(e.to_string()),
            StorageError::Config { field, rule } => Error::invalid(field, rule),
            StorageError::Invalid(m) => Error::Internal(m),
        }
    }
}

/// What kind of failure a store error is, for the write path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// No room left (ENOSPC, EDQUOT): retrying now cannot help.
    NoSpace,
    /// A read-only file system (EROFS): retrying now cannot help.
    ReadOnly,
    /// Anything else: maybe transient.
    Other,
}

/// Classifies `e` by the I/O error at the bottom of its source chain.
pub(crate) fn fault_of(e: &(dyn std::error::Error + 'static)) -> Fault {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match (io.kind(), io.raw_os_error()) {
                (K::StorageFull | K::QuotaExceeded, _) | (_, Some(28 | 122)) => {
                    return Fault::NoSpace;
                }
                (K::ReadOnlyFilesystem, _) | (_, Some(30)) => return Fault::ReadOnly,
                _ => {}
            }
        }
        cur = err.source();
    }
    let text = e.to_string();
    if text.contains("No space left on device") || text.contains("Disk quota exceeded") {
        Fault::NoSpace
    } else if text.contains("Read-only file system") {
        Fault::ReadOnly
    } else {
        Fault::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_common::ErrorKind;

    #[test]
    fn maps_onto_common_kinds() {
        let k = |e: StorageError| quiver_common::Error::from(e).kind();
        assert_eq!(k(StorageError::Fenced("x".into())), ErrorKind::Fenced);
        assert_eq!(k(StorageError::corrupt("a", "b")), ErrorKind::Corrupt);
        assert_eq!(k(StorageError::io("a", "b")), ErrorKind::Io);
        assert_eq!(k(StorageError::NotFound("a".into())), ErrorKind::Io);
        let refused = |no_space| StorageError::Refused {
            no_space,
            detail: "d".into(),
        };
        assert_eq!(k(refused(true)), ErrorKind::NoSpace);
        assert_eq!(k(refused(false)), ErrorKind::Unavailable);
        assert_eq!(k(StorageError::Invalid("a".into())), ErrorKind::Internal);
        let config = StorageError::Config {
            field: "bucket".into(),
            rule: "r".into(),
        };
        assert_eq!(k(config), ErrorKind::InvalidArgument);
    }

    #[test]
    fn faults_are_found_at_the_bottom_of_the_chain() {
        let full = std::io::Error::from_raw_os_error(28);
        let store = object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(full),
        };
        assert_eq!(fault_of(&store), Fault::NoSpace);
        let ro = std::io::Error::from_raw_os_error(30);
        assert_eq!(fault_of(&ro), Fault::ReadOnly);
        let other = std::io::Error::other("connection refused");
        assert_eq!(fault_of(&other), Fault::Other);
    }
}
