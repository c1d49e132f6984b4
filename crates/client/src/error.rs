//! The client's error: transport failures, and server answers whose
//! `common.Status` is not success (carrying the Milvus code and reason).

use quiver_proto::common::Status;

/// Milvus `merr` codes (`pkg/util/merr/errors.go`) that callers commonly match on.
pub mod code {
    pub const SUCCESS: i32 = 0;
    pub const SERVICE_UNAVAILABLE: i32 = 2;
    /// The collection (or alias used as a collection name) does not exist.
    pub const COLLECTION_NOT_FOUND: i32 = 100;
    /// The collection was released: load it before reading it.
    pub const COLLECTION_NOT_LOADED: i32 = 101;
    pub const INDEX_NOT_FOUND: i32 = 700;
    pub const IO_FAILED: i32 = 1001;
    /// Bad input: the reason names the field and the rule.
    pub const PARAMETER_INVALID: i32 = 1100;
    pub const ALIAS_NOT_FOUND: i32 = 1600;
    pub const UNEXPECTED: i32 = 65_535;
}

/// Legacy `common.ErrorCode` for a missing collection (older servers set only this).
const LEGACY_COLLECTION_NOT_EXISTS: i32 = 4;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address is not `host:port` or `http://host:port`.
    #[error("invalid address {addr:?}: {reason}")]
    InvalidAddress { addr: String, reason: String },
    /// The connection options cannot be used (a TLS file missing or not
    /// PEM, a token that is not `user:password`); the reason names the option.
    #[error("{0}")]
    Options(String),
    /// No connection could be made; `reason` is the innermost cause
    /// ("Connection refused (os error 111)").
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        addr: String,
        reason: String,
        error: tonic::transport::Error,
    },
    /// The call failed below the Milvus protocol (connection lost, unknown RPC, ...).
    #[error("{rpc}: gRPC error {}: {}", .status.code(), .status.message())]
    Grpc {
        rpc: &'static str,
        status: Box<tonic::Status>,
    },
    /// The server answered with a failed `common.Status`.
    #[error("{rpc}: {reason} (Milvus code {code})")]
    Server {
        rpc: &'static str,
        /// Milvus `merr` code (see [`code`]).
        code: i32,
        /// Legacy `common.ErrorCode`.
        error_code: i32,
        reason: String,
        retriable: bool,
    },
    /// The request was refused before it was sent.
    #[error("invalid {field}: {rule}")]
    InvalidInput { field: String, rule: String },
    /// The server's answer could not be understood.
    #[error("{rpc}: unexpected response: {what}")]
    Protocol { rpc: &'static str, what: String },
}

impl Error {
    /// The Milvus code of a server error (`None` for other errors).
    pub fn code(&self) -> Option<i32> {
        match self {
            Error::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The server's reason of a server error.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Error::Server { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Whether the server said the collection does not exist.
    pub fn is_collection_not_found(&self) -> bool {
        self.code() == Some(code::COLLECTION_NOT_FOUND)
    }

    /// Whether the server said the collection is released (not loaded).
    pub fn is_not_loaded(&self) -> bool {
        self.code() == Some(code::COLLECTION_NOT_LOADED)
    }

    pub(crate) fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            rule: rule.into(),
        }
    }

    pub(crate) fn protocol(rpc: &'static str, what: impl Into<String>) -> Self {
        Error::Protocol {
            rpc,
            what: what.into(),
        }
    }
}

/// The message of the innermost cause of an error.
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut e = e;
    while let Some(next) = e.source() {
        e = next;
    }
    e.to_string()
}

/// `Ok` for a success status; a missing status counts as success (Milvus
/// omits it in a few responses).
pub(crate) fn check(rpc: &'static str, status: Option<Status>) -> Result<()> {
    let Some(s) = status else {
        return Ok(());
    };
    if s.code == code::SUCCESS && s.error_code == 0 {
        return Ok(());
    }
    // Older servers fill only the legacy error_code.
    let code = match (s.code, s.error_code) {
        (code::SUCCESS, LEGACY_COLLECTION_NOT_EXISTS) => code::COLLECTION_NOT_FOUND,
        (code::SUCCESS, _) => code::UNEXPECTED,
        (code, _) => code,
    };
    let reason = if s.reason.is_empty() {
        s.detail
    } else {
        s.reason
    };
    Err(Error::Server {
        rpc,
        code,
        error_code: s.error_code,
        reason,
        retriable: s.retriable,
    })
}

/// The response of a unary call, or the gRPC error.
pub(crate) fn grpc<T>(
    rpc: &'static str,
    r: std::result::Result<tonic::Response<T>, tonic::Status>,
) -> Result<T> {
    r.map(tonic::Response::into_inner)
        .map_err(|status| Error::Grpc {
            rpc,
            status: Box::new(status),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: i32, error_code: i32, reason: &str) -> Option<Status> {
        Some(Status {
            code,
            error_code,
            reason: reason.into(),
            ..Default::default()
        })
    }

    #[test]
    fn statuses_become_errors_with_their_code() {
        assert!(check("Rpc", None).is_ok());
        assert!(check("Rpc", status(0, 0, "")).is_ok());
        let e = check(
            "DescribeCollection",
            status(100, 4, "collection not found: x"),
        )
        .expect_err("fails");
        assert_eq!(e.code(), Some(code::COLLECTION_NOT_FOUND));
        assert!(e.is_collection_not_found());
        assert_eq!(
            e.to_string(),
            "DescribeCollection: collection not found: x (Milvus code 100)"
        );
        // Legacy servers: only error_code.
        let e = check("Insert", status(0, 4, "gone")).expect_err("fails");
        assert!(e.is_collection_not_found());
        let e = check("Insert", status(0, 5, "bad")).expect_err("fails");
        assert_eq!(e.code(), Some(code::UNEXPECTED));
        assert_eq!(e.reason(), Some("bad"));
    }
}
