//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong in `quiver-index`.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A file could not be read.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A vecs file (or other input file) is malformed.
    #[error("bad input format: {0}")]
    Format(String),
    /// Serialized index bytes are truncated, corrupted or of an unknown version.
    #[error("corrupt index bytes: {0}")]
    Corrupt(String),
    /// An argument is out of range (dimension 0, vectors not a multiple of dim, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The worker thread pool could not be created.
    #[error("thread pool: {0}")]
    ThreadPool(String),
}

/// `Result` with [`IndexError`].
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
