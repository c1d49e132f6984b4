//! Errors as Milvus statuses. A failed request is answered with gRPC OK and a
//! `common.Status` that carries both Milvus codes: `code` (merr, Milvus 2.3+)
//! and the deprecated `error_code` enum older clients read. pymilvus treats a
//! gRPC error as retriable and retries it for a long time; a Status tells it
//! the request itself is wrong.

use quiver_common::{Error, ErrorKind};
use quiver_proto::common::{ErrorCode, Status};

/// Milvus `merr` codes (pkg/util/merr/errors.go).
pub(crate) mod merr {
    pub const SUCCESS: i32 = 0;
    pub const SERVICE_UNAVAILABLE: i32 = 2;
    pub const SERVICE_DISK_LIMIT_EXCEEDED: i32 = 7;
    pub const SERVICE_RATE_LIMIT: i32 = 8;
    pub const COLLECTION_NOT_FOUND: i32 = 100;
    pub const COLLECTION_NOT_LOADED: i32 = 101;
    pub const COLLECTION_SCHEMA_MISMATCH: i32 = 109;
    pub const PARTITION_NOT_FOUND: i32 = 200;
    pub const INDEX_NOT_FOUND: i32 = 700;
    pub const DATABASE_NOT_FOUND: i32 = 800;
    pub const IO_FAILED: i32 = 1001;
    pub const PARAMETER_INVALID: i32 = 1100;
    pub const ALIAS_NOT_FOUND: i32 = 1600;
    pub const ALIAS_NAME_CONFLICT: i32 = 1601;
    pub const ALIAS_ALREADY_EXISTS: i32 = 1602;
    pub const FIELD_NAME_INVALID: i32 = 1701;
    pub const UNEXPECTED: i32 = 65_535;
}

/// The one mapping from an error kind to (merr code, error_code, retriable).
pub(crate) fn codes(kind: ErrorKind) -> (i32, ErrorCode, bool) {
    match kind {
        ErrorKind::InvalidArgument => (merr::PARAMETER_INVALID, ErrorCode::IllegalArgument, false),
        ErrorKind::CollectionNotFound => (
            merr::COLLECTION_NOT_FOUND,
            ErrorCode::CollectionNotExists,
            false,
        ),
        // Milvus answers a duplicate collection (or alias) as an invalid parameter.
        // Milvus maps it to the legacy UnexpectedError; pymilvus does not retry it.
        ErrorKind::NotLoaded => (
            merr::COLLECTION_NOT_LOADED,
            ErrorCode::UnexpectedError,
            false,
        ),
        ErrorKind::AlreadyExists => (merr::PARAMETER_INVALID, ErrorCode::IllegalArgument, false),
        ErrorKind::PartitionNotFound => (merr::PARTITION_NOT_FOUND, ErrorCode::MetaFailed, false),
        ErrorKind::DatabaseNotFound => {
            (merr::DATABASE_NOT_FOUND, ErrorCode::UnexpectedError, false)
        }
        ErrorKind::IndexNotFound => (merr::INDEX_NOT_FOUND, ErrorCode::IndexNotExist, false),
        ErrorKind::AliasNotFound => (merr::ALIAS_NOT_FOUND, ErrorCode::IllegalArgument, false),
        ErrorKind::AliasExists => (
            merr::ALIAS_ALREADY_EXISTS,
            ErrorCode::IllegalArgument,
            false,
        ),
        ErrorKind::NameConflict => (merr::ALIAS_NAME_CONFLICT, ErrorCode::IllegalArgument, false),
        ErrorKind::StateConflict => (merr::UNEXPECTED, ErrorCode::UnexpectedError, false),
        ErrorKind::FieldNameInvalid => {
            (merr::FIELD_NAME_INVALID, ErrorCode::IllegalArgument, false)
        }
        ErrorKind::Unavailable => (merr::SERVICE_UNAVAILABLE, ErrorCode::NotReadyServe, true),
        ErrorKind::Fenced => (merr::SERVICE_UNAVAILABLE, ErrorCode::NotReadyServe, true),
        ErrorKind::DeadlineExceeded => (merr::UNEXPECTED, ErrorCode::UnexpectedError, true),
        // Milvus refuses writes over its disk quota with "disk limit
        // exceeded" (merr 7, DiskQuotaExhausted); pymilvus does not retry it.
        ErrorKind::NoSpace => (
            merr::SERVICE_DISK_LIMIT_EXCEEDED,
            ErrorCode::DiskQuotaExhausted,
            false,
        ),
        // Milvus's rate limit (merr 8, RateLimit): pymilvus retries it with
        // backoff by itself.
        ErrorKind::Overloaded => (merr::SERVICE_RATE_LIMIT, ErrorCode::RateLimit, true),
        ErrorKind::Corrupt => (merr::IO_FAILED, ErrorCode::UnexpectedError, false),
        ErrorKind::Io => (merr::IO_FAILED, ErrorCode::UnexpectedError, false),
        ErrorKind::Internal => (merr::UNEXPECTED, ErrorCode::UnexpectedError, false),
    }
}

pub(crate) fn success() -> Status {
    quiver_metrics::rpc::set_code(merr::SUCCESS);
    Status {
        error_code: ErrorCode::Success as i32,
        code: merr::SUCCESS,
        ..Default::default()
    }
}

/// The status of a failed request; `reason` names the field and the rule.
pub(crate) fn failure(e: &Error) -> Status {
    let (code, error_code, retriable) = codes(e.kind());
    quiver_metrics::rpc::set_code(code);
    if matches!(
        e.kind(),
        ErrorKind::Internal | ErrorKind::Io | ErrorKind::Corrupt
    ) {
        tracing::warn!(error = %e, "request failed");
    }
    Status {
        error_code: error_code as i32,
        code,
        // The request id lets a user's error report name the logs and trace.
        reason: quiver_metrics::rpc::with_request_id(e.to_string()),
        retriable,
        detail: e.to_string(),
        ..Default::default()
    }
}

/// An alias that does not exist (merr 1600).
pub(crate) fn alias_not_found(alias: &str) -> Status {
    quiver_metrics::rpc::set_code(merr::ALIAS_NOT_FOUND);
    Status {
        error_code: ErrorCode::IllegalArgument as i32,
        code: merr::ALIAS_NOT_FOUND,
        reason: quiver_metrics::rpc::with_request_id(format!("alias not found: {alias}")),
        ..Default::default()
    }
}

/// The client described the collection before its last change (a schema
/// timestamp that is not the collection's): pymilvus re-describes it and
/// retries once (merr 109, `SchemaMismatch`).
pub(crate) fn schema_mismatch(collection: &str, client_ts: u64, current_ts: u64) -> Status {
    quiver_metrics::rpc::set_code(merr::COLLECTION_SCHEMA_MISMATCH);
    Status {
        error_code: ErrorCode::SchemaMismatch as i32,
        code: merr::COLLECTION_SCHEMA_MISMATCH,
        reason: format!(
            "collection schema mismatch: {collection:?} changed since the client described it (schema_timestamp {client_ts}, collection {current_ts}); describe it again"
        ),
        ..Default::default()
    }
}

/// Success, with the request's cost where Milvus reports it: the status's
/// `extra_info["report_value"]` (pymilvus: `result.cost`, `extra["cost"]`).
/// Quiver's unit is the KiB the request moved — a write's encoded rows, a
/// read's encoded results — and at least 1.
pub(crate) fn success_with_cost(bytes: usize) -> Status {
    let mut s = success();
    s.extra_info.insert(
        "report_value".into(),
        bytes.div_ceil(1024).max(1).to_string(),
    );
    s
}

/// `Ok(())` as success, an error as its status.
pub(crate) fn status_of(r: quiver_common::Result<()>) -> Status {
    match r {
        Ok(()) => success(),
        Err(e) => failure(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_1100_illegal_argument() {
        let s = failure(&Error::invalid("limit", "must be between 1 and 16384"));
        assert_eq!(s.code, 1100);
        assert_eq!(s.error_code, ErrorCode::IllegalArgument as i32);
        assert!(s.reason.contains("limit"), "{}", s.reason);
        let s = failure(&Error::CollectionNotFound("c".into()));
        assert_eq!((s.code, s.error_code), (100, 4));
        assert_eq!(success().code, 0);
        let s = failure(&Error::NoSpace("disk".into()));
        assert_eq!(
            (s.code, s.error_code),
            (7, ErrorCode::DiskQuotaExhausted as i32)
        );
        let s = failure(&Error::Overloaded("busy".into()));
        assert_eq!((s.code, s.error_code), (8, ErrorCode::RateLimit as i32));
    }

    #[test]
    fn unknown_partition_is_200_meta_failed_naming_it() {
        let s = failure(&crate::partitioning::not_found(
            "partition_names",
            "c",
            "p1",
        ));
        assert_eq!(s.code, 200);
        assert_eq!(s.error_code, ErrorCode::MetaFailed as i32);
        assert!(!s.retriable);
        for w in [
            "partition not found[partition=p1]",
            "\"p1\"",
            "partition_names",
            "\"c\"",
        ] {
            assert!(s.reason.contains(w), "{w} not in {}", s.reason);
        }
    }
}
