//! The version of Quiver's internal protocols (coord, datanode and
//! querynode services, Raft between coords). Every internal call carries
//! it in `x-quiver-protocol` ([`crate::trace::Propagate`] adds it); every
//! internal server checks it ([`check`]): a caller older than
//! [`MIN_PROTOCOL`] or newer than [`PROTOCOL`] is refused with
//! FAILED_PRECONDITION naming both versions, so a mixed-version cluster
//! fails loudly instead of misreading messages. A call without the header
//! comes from a release before versioning: protocol 1.
//!
//! Adjacent releases stay wire compatible: messages only gain fields
//! (protobuf numbers and serde names are never reused; new fields default),
//! and a new metadata command is proposed only once every coord speaks the
//! protocol that knows it (`quiver_coord`, `Coord::cluster_protocol`). A
//! request field that changes the answer, which an older server would drop
//! unseen, is acknowledged in the reply (`CountRequest.filter` and
//! `CountReply.filtered`): without the acknowledgement the caller answers
//! the older way (counts the rows a `Query` returns). A release that cannot
//! keep that raises [`MIN_PROTOCOL`].
//!
//! | protocol | release | what it added |
//! |---|---|---|
//! | 1 | before session 18 | (no header) |
//! | 2 | session 18 | `ChangeMembership`, `SetUnplaced`, memory limits in heartbeats, this header |
//! | 3 | session 19 | `SetScalarIndex`, `SetIndex` of an `HnswSq` index |

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// The protocol this build speaks.
pub const PROTOCOL: u32 = 3;
/// The oldest protocol this build still serves (the previous release's).
pub const MIN_PROTOCOL: u32 = 1;
/// The metadata key every internal call carries its protocol in.
pub const PROTOCOL_HEADER: &str = "x-quiver-protocol";

/// The protocol a caller announced (1 without the header); an error for a
/// value that is not a number.
pub fn caller_protocol(value: Option<&str>) -> Result<u32, String> {
    match value {
        None => Ok(1),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{PROTOCOL_HEADER} must be a number (got {v:?})")),
    }
}

/// Why a caller of protocol `theirs` is refused (None: it is served).
pub fn refusal(theirs: u32) -> Option<String> {
    if (MIN_PROTOCOL..=PROTOCOL).contains(&theirs) {
        return None;
    }
    let what = if theirs < MIN_PROTOCOL {
        "upgrade the caller"
    } else {
        "upgrade this process"
    };
    Some(format!(
        "internal protocol {theirs} is not served here (this process speaks {MIN_PROTOCOL} to {PROTOCOL}, release {}): {what}; only adjacent releases run together",
        env!("CARGO_PKG_VERSION")
    ))
}

/// Axum middleware of the internal servers: refuses a caller whose
/// protocol this build does not serve (FAILED_PRECONDITION), before the
/// call reaches a service. Probes and `/metrics` carry no header: served.
pub async fn check(req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(PROTOCOL_HEADER)
        .map(|v| v.to_str().unwrap_or("?"));
    let why = match caller_protocol(header) {
        Ok(theirs) => refusal(theirs),
        Err(e) => Some(e),
    };
    match why {
        None => next.run(req).await,
        Some(why) => {
            let status = tonic::Status::failed_precondition(why);
            let (parts, body) = status.into_http::<tonic::body::Body>().into_parts();
            Response::from_parts(parts, axum::body::Body::new(body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_release_is_served_and_others_are_refused_with_the_reason() {
        assert_eq!(caller_protocol(None), Ok(1));
        assert_eq!(caller_protocol(Some("2")), Ok(2));
        assert!(caller_protocol(Some("x")).is_err());
        assert_eq!(refusal(PROTOCOL), None);
        assert_eq!(refusal(MIN_PROTOCOL), None);
        let newer = refusal(PROTOCOL + 1).unwrap_or_default();
        assert!(newer.contains("upgrade this process"), "{newer}");
        let older = refusal(0).unwrap_or_default();
        assert!(older.contains("upgrade the caller"), "{older}");
    }
}
