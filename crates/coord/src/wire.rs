//! How coord's values and errors travel in `quiver.coord.v1` messages: the
//! typed records (node roles and health), the JSON-carried ones, and the
//! error <-> gRPC status mapping shared by the server and
//! [`crate::CoordClient`] (over the one wire error of every Quiver service,
//! `quiver_rpc::WireError`).

use quiver_proto::coord as pb;
use quiver_rpc::WireError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::coord::NodeHealth;
use crate::error::CoordError;
use crate::state::NodeRole;

/// ASCII metadata entries of a not-leader answer (for non-Rust callers).
pub(crate) const LEADER_ID_KEY: &str = "x-quiver-leader-id";
pub(crate) const LEADER_ADDR_KEY: &str = "x-quiver-leader-addr";

/// The gRPC status for a coord error (see `proto/quiver/coord.proto`): the
/// one wire error of every Quiver service ([`WireError`]), plus the leader's
/// id and address as ASCII entries on a not-leader answer.
pub(crate) fn to_status(e: CoordError) -> Status {
    let message = e.to_string();
    let wire = match e {
        CoordError::NotLeader { leader, addr } => WireError::NotLeader { leader, addr },
        CoordError::NoQuorum(m) => WireError::NoQuorum(m),
        other => WireError::from(&quiver_common::Error::from(other)),
    };
    let mut status = wire.to_status(message);
    if let WireError::NotLeader { leader, addr } = &wire {
        let metadata = status.metadata_mut();
        if let Some(id) = leader {
            metadata.insert(LEADER_ID_KEY, MetadataValue::from(*id));
        }
        if let Some(addr) = addr
            && let Ok(value) = addr.parse()
        {
            metadata.insert(LEADER_ADDR_KEY, value);
        }
    }
    status
}

/// What a caller should do with a failed call.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The coord is not the leader: go to `addr` (if known).
    Redirect {
        leader: Option<u64>,
        addr: Option<String>,
    },
    /// The coord could not be reached or could not answer: try another one.
    Retry(String),
    /// The answer: report it.
    Final(quiver_common::Error),
}

/// Classifies a status returned by a coord (or by the transport).
pub(crate) fn classify(status: &Status) -> Failure {
    let Some(wire) = WireError::from_status(status) else {
        // No coord error: the transport failed, or the server is not a coord.
        return match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                Failure::Retry(format!("{:?}: {}", status.code(), status.message()))
            }
            Code::Unimplemented => Failure::Final(quiver_common::Error::Internal(format!(
                "peer is not a coord: {}",
                status.message()
            ))),
            code => Failure::Final(quiver_common::Error::Internal(format!(
                "coord call failed: {code:?}: {}",
                status.message()
            ))),
        };
    };
    match wire {
        WireError::NotLeader { leader, addr } => Failure::Redirect { leader, addr },
        // This leader is cut off from most coords: another may lead on the
        // other side (the caller gives up when none does).
        WireError::NoQuorum(m) => Failure::Retry(format!("no coord quorum: {m}")),
        // Retryable on another coord: this one is starting, stopping or cut off.
        WireError::Unavailable(s) | WireError::DeadlineExceeded(s) => Failure::Retry(s),
        final_error => Failure::Final(final_error.into()),
    }
}

pub(crate) fn to_json<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, Status> {
    serde_json::to_vec(value).map_err(|e| Status::internal(format!("cannot encode {what}: {e}")))
}

/// Decodes a JSON field of a request (bad input: `InvalidArgument`).
pub(crate) fn from_json_arg<T: DeserializeOwned>(bytes: &[u8], field: &str) -> Result<T, Status> {
    serde_json::from_slice(bytes).map_err(|e| {
        to_status(CoordError::Config {
            field: field.into(),
            rule: format!("not valid JSON of the expected type: {e}"),
        })
    })
}

/// Decodes a JSON field of a reply (a bad reply is a coord bug).
pub(crate) fn from_json_reply<T: DeserializeOwned>(
    bytes: &[u8],
    field: &str,
) -> quiver_common::Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| quiver_common::Error::Internal(format!("bad {field} from coord: {e}")))
}

pub(crate) fn role_to_pb(role: NodeRole) -> pb::NodeRole {
    match role {
        NodeRole::DataNode => pb::NodeRole::Datanode,
        NodeRole::QueryNode => pb::NodeRole::Querynode,
    }
}

/// A node role from the wire (`field` names it in the error).
pub(crate) fn role_from_pb(role: i32, field: &str) -> Result<NodeRole, CoordError> {
    match pb::NodeRole::try_from(role) {
        Ok(pb::NodeRole::Datanode) => Ok(NodeRole::DataNode),
        Ok(pb::NodeRole::Querynode) => Ok(NodeRole::QueryNode),
        _ => Err(CoordError::Config {
            field: field.into(),
            rule: format!("must be DATANODE or QUERYNODE (got {role})"),
        }),
    }
}

pub(crate) fn health_to_pb(h: &NodeHealth) -> pb::NodeHealth {
    pb::NodeHealth {
        id: h.id,
        role: role_to_pb(h.role) as i32,
        addr: h.addr.clone(),
        alive: h.alive,
        last_seen_ms: h.last_seen_ms,
        resident_bytes: h.resident_bytes,
    }
}

pub(crate) fn health_from_pb(h: &pb::NodeHealth) -> quiver_common::Result<NodeHealth> {
    let role = role_from_pb(h.role, "role")
        .map_err(|e| quiver_common::Error::Internal(format!("bad node health from coord: {e}")))?;
    Ok(NodeHealth {
        id: h.id,
        role,
        addr: h.addr.clone(),
        alive: h.alive,
        last_seen_ms: h.last_seen_ms,
        resident_bytes: h.resident_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_leader_round_trips_with_the_leader_address() {
        let status = to_status(CoordError::NotLeader {
            leader: Some(3),
            addr: Some("127.0.0.1:7003".into()),
        });
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status
                .metadata()
                .get(LEADER_ADDR_KEY)
                .and_then(|v| v.to_str().ok()),
            Some("127.0.0.1:7003")
        );
        match classify(&status) {
            Failure::Redirect { leader, addr } => {
                assert_eq!(leader, Some(3));
                assert_eq!(addr.as_deref(), Some("127.0.0.1:7003"));
            }
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    #[test]
    fn rule_errors_keep_their_kind() {
        let status = to_status(CoordError::Rule(crate::RuleError::invalid(
            "shards", "1..=64",
        )));
        assert_eq!(status.code(), Code::InvalidArgument);
        match classify(&status) {
            Failure::Final(quiver_common::Error::InvalidArgument { field, rule }) => {
                assert_eq!((field.as_str(), rule.as_str()), ("shards", "1..=64"));
            }
            other => panic!("expected invalid argument, got {other:?}"),
        }
        let status = to_status(CoordError::Timeout("no quorum".into()));
        assert!(matches!(classify(&status), Failure::Retry(_)));
        let bare = Status::unavailable("connection refused");
        assert!(matches!(classify(&bare), Failure::Retry(_)));
    }

    #[test]
    fn node_roles_round_trip_and_unspecified_is_refused() {
        for role in [NodeRole::DataNode, NodeRole::QueryNode] {
            assert_eq!(
                role_from_pb(role_to_pb(role) as i32, "role").ok(),
                Some(role)
            );
        }
        assert!(matches!(
            role_from_pb(0, "role"),
            Err(CoordError::Config { field, .. }) if field == "role"
        ));
    }
}
