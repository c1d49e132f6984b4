//! Payloads: postcard of the serde form of the api/common types, shard
//! references, and the shard stream's events.

use std::sync::Arc;

use quiver_api::{RowPredicate, SegmentInfo, ShardEvent, ShardId};
use quiver_common::{Error, Mutation, Result, Timestamp};
use quiver_expr::CompiledFilter;
use quiver_proto::node::ShardRef;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Encodes a value a server or client sends.
pub(crate) fn encode<T: Serialize + ?Sized>(what: &str, v: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(v).map_err(|e| Error::Internal(format!("encoding {what}: {e}")))
}

/// Decodes a request field: bad bytes are the caller's fault.
pub(crate) fn decode_arg<T: DeserializeOwned>(field: &str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| {
        Error::invalid(
            field,
            format!("not a valid encoding for this Quiver version: {e}"),
        )
    })
}

/// Decodes a reply field: bad bytes mean a broken or mismatched peer.
pub(crate) fn decode_reply<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| {
        Error::Internal(format!(
            "malformed {what} from the peer (every node must run the same Quiver version): {e}"
        ))
    })
}

pub(crate) fn shard_ref(id: ShardId) -> ShardRef {
    ShardRef {
        collection_id: id.collection_id,
        shard: id.shard,
    }
}

pub(crate) fn shard_id(r: Option<ShardRef>) -> Result<ShardId> {
    let r = r.ok_or_else(|| Error::invalid("shard", "missing"))?;
    Ok(ShardId {
        collection_id: r.collection_id,
        shard: r.shard,
    })
}

pub(crate) fn to_usize(field: &str, v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::invalid(field, format!("{v} is too large")))
}

/// A filter for the wire; a predicate that cannot be encoded is refused,
/// never dropped (that would widen the result).
pub(crate) fn encode_filter(f: Option<&Arc<dyn RowPredicate>>) -> Result<Option<Vec<u8>>> {
    f.map(|f| {
        f.encode().ok_or_else(|| {
            Error::invalid(
                "filter",
                "this predicate cannot be sent to a remote querynode \
                 (only compiled filter expressions can)",
            )
        })
    })
    .transpose()
}

pub(crate) fn decode_filter(bytes: Option<&[u8]>) -> Result<Option<Arc<dyn RowPredicate>>> {
    bytes
        .map(|b| {
            CompiledFilter::decode(b)
                .map(|f| Arc::new(f) as Arc<dyn RowPredicate>)
                .map_err(|e| Error::invalid("filter", e.to_string()))
        })
        .transpose()
}

/// A live stream event as the server writes it (borrows the mutation).
#[derive(Serialize)]
pub(crate) enum EventOut<'a> {
    Mutation(&'a Mutation),
    Tick(Timestamp),
    Sealed(&'a SegmentInfo),
    Compacted(&'a [u64], &'a Option<SegmentInfo>),
}

/// The same event as the client reads it; same variants, same order.
#[derive(Deserialize)]
pub(crate) enum EventIn {
    Mutation(Mutation),
    Tick(Timestamp),
    Sealed(SegmentInfo),
    Compacted(Vec<u64>, Option<SegmentInfo>),
}

pub(crate) fn encode_event(e: &ShardEvent) -> Result<Vec<u8>> {
    let out = match e {
        ShardEvent::Mutation(m) => EventOut::Mutation(m),
        ShardEvent::Tick(ts) => EventOut::Tick(*ts),
        ShardEvent::Sealed(s) => EventOut::Sealed(s),
        ShardEvent::Compacted { inputs, output } => EventOut::Compacted(inputs, output),
    };
    encode("shard event", &out)
}

pub(crate) fn decode_event(bytes: &[u8]) -> Result<ShardEvent> {
    Ok(match decode_reply::<EventIn>("shard event", bytes)? {
        EventIn::Mutation(m) => ShardEvent::Mutation(Arc::new(m)),
        EventIn::Tick(ts) => ShardEvent::Tick(ts),
        EventIn::Sealed(s) => ShardEvent::Sealed(s),
        EventIn::Compacted(inputs, output) => ShardEvent::Compacted { inputs, output },
    })
}

#[cfg(test)]
mod tests {
    use quiver_common::{PrimaryKey, RowBatch};

    use super::*;

    #[test]
    fn events_round_trip() {
        let m = Mutation::Upsert {
            ts: 7,
            rows: RowBatch {
                pks: vec![PrimaryKey::Int(1), PrimaryKey::Str("k".into())],
                vectors: quiver_common::Vectors::f32(2, vec![0.5, 1.0, -2.0, 3.25]),
                columns: vec![],
            },
        };
        let seg = SegmentInfo {
            id: 3,
            rows: 10,
            max_ts: 9,
            wal_seq: 4,
            has_index: true,
            index_version: 0,
        };
        let events = [
            ShardEvent::Mutation(Arc::new(m.clone())),
            ShardEvent::Tick(11),
            ShardEvent::Sealed(seg),
            ShardEvent::Compacted {
                inputs: vec![1, 2],
                output: Some(seg),
            },
            ShardEvent::Compacted {
                inputs: vec![5],
                output: None,
            },
        ];
        for e in &events {
            let back = decode_event(&encode_event(e).expect("encode")).expect("decode");
            match (e, back) {
                (ShardEvent::Mutation(a), ShardEvent::Mutation(b)) => assert_eq!(**a, *b),
                (ShardEvent::Tick(a), ShardEvent::Tick(b)) => assert_eq!(*a, b),
                (ShardEvent::Sealed(a), ShardEvent::Sealed(b)) => assert_eq!(*a, b),
                (
                    ShardEvent::Compacted { inputs, output },
                    ShardEvent::Compacted {
                        inputs: i,
                        output: o,
                    },
                ) => assert_eq!((inputs, output), (&i, &o)),
                (a, b) => panic!("{a:?} came back as {b:?}"),
            }
        }
    }

    /// Batches cross the network as the struct they were before vectors were
    /// typed: the same postcard bytes both ways, so nodes of the previous
    /// release and of this one understand each other.
    #[test]
    fn row_batches_keep_their_wire_bytes() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct RowBatch0 {
            dim: usize,
            pks: Vec<PrimaryKey>,
            vectors: Vec<f32>,
            columns: Vec<quiver_common::Column>,
        }
        let old = RowBatch0 {
            dim: 3,
            pks: vec![PrimaryKey::Int(-4), PrimaryKey::Int(9)],
            vectors: vec![0.5, 1.0, -2.0, 3.25, 0.0, 7.0],
            columns: vec![],
        };
        let new = RowBatch {
            pks: old.pks.clone(),
            vectors: quiver_common::Vectors::f32(3, old.vectors.clone()),
            columns: vec![],
        };
        let bytes = postcard::to_stdvec(&old).expect("old");
        assert_eq!(postcard::to_stdvec(&new).expect("new"), bytes);
        let back: RowBatch = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, new);
    }
}
