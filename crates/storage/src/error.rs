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
            other => StorageError::io(what, other),
        }
    }

    pub fn is_fenced(&self) -> bool {
        matches!(self, StorageError::Fenced(_))
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
            StorageError::Io { .. } | StorageError::NotFound(_) => Error::Io(e.to_string()),
            StorageError::Config { field, rule } => Error::invalid(field, rule),
            StorageError::Invalid(m) => Error::Internal(m),
        }
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
        assert_eq!(k(StorageError::Invalid("a".into())), ErrorKind::Internal);
        let config = StorageError::Config {
            field: "bucket".into(),
            rule: "r".into(),
        };
        assert_eq!(k(config), ErrorKind::InvalidArgument);
    }
}
