//! The byte format of one WAL object (one group-committed batch).
//!
//! ```text
//! header (40 bytes, little-endian):
//!   magic "QWAL" | version u16 | kind u16 | epoch u64 | seq u64 | count u32 | body_len u64
//!   | header_crc u32 (crc32 of the 36 bytes before it)
//! body: `count` records, each  len u32 | crc u32 (crc32 of payload) | payload (a mutation)
//! ```
//! The object's size must be exactly `40 + body_len`: anything else is a torn write.

use quiver_common::Mutation;

use crate::codec::{Reader, put_mutation_from, put_u32};
use crate::error::{Result, StorageError};

pub(crate) const MAGIC: &[u8; 4] = b"QWAL";
pub(crate) const VERSION: u16 = 1;
pub(crate) const HEADER_LEN: usize = 40;

/// What a WAL object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Mutations written by the owner of `epoch`.
    Data = 0,
    /// No records: the owner of `epoch` claimed the log at this seq.
    EpochMarker = 1,
    /// No records: a torn object that recovery replaced (original kept in quarantine).
    TornReplaced = 2,
}

#[derive(Debug)]
pub(crate) struct Header {
    pub kind: Kind,
    pub epoch: u64,
    pub seq: u64,
    pub count: u32,
    pub body_len: u64,
}

/// Encodes one record (length, checksum, payload) to be concatenated into a batch body.
pub(crate) fn encode_record(m: &Mutation, replicated: bool) -> Vec<u8> {
    let mut b = Vec::with_capacity(64 + estimate(m));
    b.extend_from_slice(&[0u8; 8]);
    put_mutation_from(&mut b, m, replicated);
    let len = (b.len() - 8) as u32;
    let crc = crc32fast::hash(&b[8..]);
    b[0..4].copy_from_slice(&len.to_le_bytes());
    b[4..8].copy_from_slice(&crc.to_le_bytes());
    b
}

fn estimate(m: &Mutation) -> usize {
    match m {
        Mutation::Upsert { rows, .. } => rows.vectors.byte_size() + rows.pks.len() * 9,
        Mutation::Delete { pks, .. } => pks.len() * 9,
    }
}

pub(crate) fn encode_header(h: &Header) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&(h.kind as u16).to_le_bytes());
    b.extend_from_slice(&h.epoch.to_le_bytes());
    b.extend_from_slice(&h.seq.to_le_bytes());
    put_u32(&mut b, h.count);
    b.extend_from_slice(&h.body_len.to_le_bytes());
    let crc = crc32fast::hash(&b);
    put_u32(&mut b, crc);
    b
}

/// A record-less object (epoch marker or torn replacement).
pub(crate) fn encode_empty(kind: Kind, epoch: u64, seq: u64) -> Vec<u8> {
    encode_header(&Header {
        kind,
        epoch,
        seq,
        count: 0,
        body_len: 0,
    })
}

fn decode_header(r: &mut Reader<'_>, raw: &[u8]) -> Result<Header> {
    if r.bytes(4)? != MAGIC {
        return Err(r.err("bad magic"));
    }
    let version = r.u32()?;
    let (version, kind) = ((version & 0xffff) as u16, (version >> 16) as u16);
    let epoch = r.u64()?;
    let seq = r.u64()?;
    let count = r.u32()?;
    let body_len = r.u64()?;
    let crc = r.u32()?;
    if crc != crc32fast::hash(&raw[..HEADER_LEN - 4]) {
        return Err(r.err("header checksum mismatch"));
    }
    if version != VERSION {
        return Err(r.err(format!("unsupported version {version}")));
    }
    let kind = match kind {
        0 => Kind::Data,
        1 => Kind::EpochMarker,
        2 => Kind::TornReplaced,
        k => return Err(r.err(format!("bad kind {k}"))),
    };
    Ok(Header {
        kind,
        epoch,
        seq,
        count,
        body_len,
    })
}

/// The epoch in an object's header, if the header is intact.
pub(crate) fn header_epoch(raw: &[u8]) -> Option<u64> {
    let mut r = Reader::new(raw, "wal header");
    decode_header(&mut r, raw).ok().map(|h| h.epoch)
}

/// Decodes a whole object, checking every checksum and that it is the object for `seq`.
pub(crate) fn decode_object(
    raw: &[u8],
    seq: u64,
    what: &str,
) -> Result<(Header, Vec<(Mutation, bool)>)> {
    let mut r = Reader::new(raw, what);
    let h = decode_header(&mut r, raw)?;
    if h.seq != seq {
        return Err(StorageError::corrupt(what, format!("holds seq {}", h.seq)));
    }
    if r.remaining() as u64 != h.body_len {
        return Err(r.err(format!(
            "body is {} bytes, header says {} (torn write?)",
            r.remaining(),
            h.body_len
        )));
    }
    let mut out = Vec::with_capacity((h.count as usize).min(r.remaining() / 8));
    for i in 0..h.count {
        let len = r.u32()? as usize;
        let crc = r.u32()?;
        let payload = r.bytes(len)?;
        if crc32fast::hash(payload) != crc {
            return Err(r.err(format!("record {i} checksum mismatch")));
        }
        let mut pr = Reader::new(payload, what);
        out.push(pr.mutation_from()?);
        pr.finish()?;
    }
    r.finish()?;
    Ok((h, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use quiver_common::{PrimaryKey, RowBatch};

    fn object(seq: u64) -> (Vec<u8>, Vec<Mutation>) {
        let muts = vec![
            Mutation::Delete {
                ts: 1,
                pks: vec![PrimaryKey::Str("a".into())],
            },
            Mutation::Upsert {
                ts: 2,
                rows: RowBatch {
                    pks: vec![PrimaryKey::Int(1), PrimaryKey::Int(2)],
                    vectors: quiver_common::Vectors::f32(3, vec![0.5; 6]),
                    columns: vec![],
                },
            },
        ];
        let body: Vec<u8> = muts.iter().flat_map(|m| encode_record(m, false)).collect();
        let mut b = encode_header(&Header {
            kind: Kind::Data,
            epoch: 4,
            seq,
            count: muts.len() as u32,
            body_len: body.len() as u64,
        });
        b.extend(body);
        (b, muts)
    }

    #[test]
    fn mirrored_records_keep_their_mark() {
        let m = Mutation::Delete {
            ts: 7,
            pks: vec![PrimaryKey::Int(3)],
        };
        for replicated in [false, true] {
            let body = encode_record(&m, replicated);
            let mut b = encode_header(&Header {
                kind: Kind::Data,
                epoch: 1,
                seq: 2,
                count: 1,
                body_len: body.len() as u64,
            });
            b.extend(body);
            let (_, got) = decode_object(&b, 2, "t").expect("decode");
            assert_eq!(got, vec![(m.clone(), replicated)]);
        }
    }

    #[test]
    fn object_round_trip() {
        let (b, muts) = object(9);
        let (h, got) = decode_object(&b, 9, "t").expect("decode");
        assert_eq!((h.kind, h.epoch, h.seq), (Kind::Data, 4, 9));
        assert_eq!(
            got,
            muts.into_iter().map(|m| (m, false)).collect::<Vec<_>>()
        );
        assert!(
            decode_object(&b, 8, "t")
                .expect_err("wrong seq")
                .is_corrupt()
        );
        let m = encode_empty(Kind::EpochMarker, 2, 5);
        assert_eq!(m.len(), HEADER_LEN);
        let (h, got) = decode_object(&m, 5, "t").expect("marker");
        assert_eq!((h.kind, h.epoch, got.len()), (Kind::EpochMarker, 2, 0));
    }

    proptest! {
        #[test]
        fn damage_is_detected(i in any::<prop::sample::Index>(), x in 1u8..=255, cut in any::<bool>()) {
            let (mut b, _) = object(1);
            let i = i.index(b.len());
            if cut { b.truncate(i) } else { b[i] ^= x }
            prop_assert!(decode_object(&b, 1, "t").expect_err("damaged").is_corrupt());
        }
    }
}
