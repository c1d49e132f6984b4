//! How coord's values and errors travel in `quiver.coord.v1` messages: the
//! typed records (segments, index specs), the JSON-carried ones, and the
//! error <-> gRPC status mapping shared by the server and [`crate::CoordClient`].

use quiver_proto::coord as pb;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use crate::coord::NodeHealth;
use crate::error::CoordError;
use crate::state::{IndexKind, IndexSpec, NodeRole, SegmentMeta};

/// Binary metadata entry holding the JSON of a [`WireError`].
pub(crate) const ERROR_KEY: &str = "x-quiver-error-bin";
/// ASCII metadata entries of a not-leader answer (for non-Rust callers).
pub(crate) const LEADER_ID_KEY: &str = "x-quiver-leader-id";
pub(crate) const LEADER_ADDR_KEY: &str = "x-quiver-leader-addr";

/// An error as it crosses the wire: `quiver_common::Error`'s variants plus
/// "not the leader".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WireError {
    InvalidArgument {
        field: String,
        rule: String,
    },
    CollectionNotFound(String),
    AlreadyExists(String),
    Unavailable(String),
    Fenced(String),
    DeadlineExceeded(String),
    Corrupt(String),
    Io(String),
    Internal(String),
    NotLeader {
        leader: Option<u64>,
        addr: Option<String>,
    },
}

impl WireError {
    fn code(&self) -> Code {
        match self {
            WireError::InvalidArgument { .. } => Code::InvalidArgument,
            WireError::CollectionNotFound(_) => Code::NotFound,
            WireError::AlreadyExists(_) => Code::AlreadyExists,
            WireError::Unavailable(_) => Code::Unavailable,
            WireError::Fenced(_) => Code::Aborted,
            WireError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            WireError::Corrupt(_) => Code::DataLoss,
            WireError::Io(_) | WireError::Internal(_) => Code::Internal,
            WireError::NotLeader { .. } => Code::FailedPrecondition,
        }
    }
}

impl From<CoordError> for WireError {
    fn from(e: CoordError) -> Self {
        use quiver_common::Error as E;
        if let CoordError::NotLeader { leader, addr } = e {
            return WireError::NotLeader { leader, addr };
        }
        match quiver_common::Error::from(e) {
            E::InvalidArgument { field, rule } => WireError::InvalidArgument { field, rule },
            E::CollectionNotFound(s) => WireError::CollectionNotFound(s),
            E::AlreadyExists(s) => WireError::AlreadyExists(s),
            // Coord never answers it (it is the front door's); kept final.
            E::NotLoaded(s) => WireError::InvalidArgument {
                field: "collection_name".to_string(),
                rule: format!("collection not loaded: {s}"),
            },
            E::Unavailable(s) => WireError::Unavailable(s),
            E::Fenced(s) => WireError::Fenced(s),
            E::DeadlineExceeded(s) => WireError::DeadlineExceeded(s),
            E::Corrupt(s) => WireError::Corrupt(s),
            E::Io(s) => WireError::Io(s),
            E::Internal(s) => WireError::Internal(s),
        }
    }
}

/// The gRPC status for a coord error (see `proto/quiver/coord.proto`).
pub(crate) fn to_status(e: CoordError) -> Status {
    let message = e.to_string();
    let wire = WireError::from(e);
    let mut metadata = MetadataMap::new();
    if let Ok(json) = serde_json::to_vec(&wire) {
        metadata.insert_bin(ERROR_KEY, MetadataValue::from_bytes(&json));
    }
    if let WireError::NotLeader { leader, addr } = &wire {
        if let Some(id) = leader {
            metadata.insert(LEADER_ID_KEY, MetadataValue::from(*id));
        }
        if let Some(addr) = addr
            && let Ok(value) = addr.parse()
        {
            metadata.insert(LEADER_ADDR_KEY, value);
        }
    }
    Status::with_metadata(wire.code(), message, metadata)
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
    let wire = status
        .metadata()
        .get_bin(ERROR_KEY)
        .and_then(|v| v.to_bytes().ok())
        .and_then(|b| serde_json::from_slice::<WireError>(&b).ok());
    let Some(wire) = wire else {
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
    use quiver_common::Error as E;
    match wire {
        WireError::NotLeader { leader, addr } => Failure::Redirect { leader, addr },
        // Retryable on another coord: this one is starting, stopping or cut off.
        WireError::Unavailable(s) | WireError::DeadlineExceeded(s) => Failure::Retry(s),
        WireError::InvalidArgument { field, rule } => {
            Failure::Final(E::InvalidArgument { field, rule })
        }
        WireError::CollectionNotFound(s) => Failure::Final(E::CollectionNotFound(s)),
        WireError::AlreadyExists(s) => Failure::Final(E::AlreadyExists(s)),
        WireError::Fenced(s) => Failure::Final(E::Fenced(s)),
        WireError::Corrupt(s) => Failure::Final(E::Corrupt(s)),
        WireError::Io(s) => Failure::Final(E::Io(s)),
        WireError::Internal(s) => Failure::Final(E::Internal(s)),
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

pub(crate) fn segment_to_pb(s: &SegmentMeta) -> pb::Segment {
    pb::Segment {
        id: s.id,
        rows: s.rows,
        max_ts: s.max_ts,
        wal_seq: s.wal_seq,
        has_index: s.has_index,
    }
}

pub(crate) fn segment_from_pb(s: &pb::Segment) -> SegmentMeta {
    SegmentMeta {
        id: s.id,
        rows: s.rows,
        max_ts: s.max_ts,
        wal_seq: s.wal_seq,
        has_index: s.has_index,
    }
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
    })
}

pub(crate) fn index_to_pb(i: &IndexSpec) -> pb::IndexSpec {
    use pb::index_spec::Kind;
    let (kind, m, ef_construction) = match i.kind {
        IndexKind::None => (Kind::None, 0, 0),
        IndexKind::Flat => (Kind::Flat, 0, 0),
        IndexKind::Hnsw { m, ef_construction } => (Kind::Hnsw, m, ef_construction),
    };
    pb::IndexSpec {
        kind: kind as i32,
        m,
        ef_construction,
        field_name: i.field_name.clone(),
        index_name: i.index_name.clone(),
    }
}

pub(crate) fn index_from_pb(i: &pb::IndexSpec) -> Result<IndexSpec, Status> {
    use pb::index_spec::Kind;
    let kind = match Kind::try_from(i.kind) {
        Ok(Kind::None) => IndexKind::None,
        Ok(Kind::Flat) => IndexKind::Flat,
        Ok(Kind::Hnsw) => IndexKind::Hnsw {
            m: i.m,
            ef_construction: i.ef_construction,
        },
        Err(_) => {
            return Err(to_status(CoordError::Config {
                field: "index.kind".into(),
                rule: format!("unknown index kind {}", i.kind),
            }));
        }
    };
    Ok(IndexSpec {
        kind,
        field_name: i.field_name.clone(),
        index_name: i.index_name.clone(),
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
    fn index_specs_round_trip() {
        let spec = IndexSpec {
            kind: IndexKind::Hnsw {
                m: 16,
                ef_construction: 200,
            },
            field_name: "v".into(),
            index_name: "v_idx".into(),
        };
        assert_eq!(index_from_pb(&index_to_pb(&spec)).ok(), Some(spec));
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
