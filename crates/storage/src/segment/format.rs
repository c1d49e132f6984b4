//! The byte format of a segment file.
//!
//! ```text
//! header (128 bytes, little-endian):
//!    0 magic "QSEG" | 4 version u32 | 8 segment_id | 16 dim | 24 rows | 32 wal_seq | 40 max_ts
//!   48 vectors_off | 56 pks_off | 64 ts_off | 72 cols_off | 80 tomb_off | 88 end_off  (all u64)
//!   96 header_crc u32 (crc32 of bytes 0..96) | zero padding to 128
//! vectors  at 128 (64-byte aligned): rows*dim raw LE f32 (version 1 is F32 only; another
//!          element type needs a version of its own, see `crate::codec`)
//! pks, timestamps, columns, tombstones: each a section starting at its offset
//! footer at end_off: crc32 u32 of bytes 0..end_off | magic "QEND"
//! ```

use quiver_common::{Column, PrimaryKey, Timestamp};

use super::SegmentData;
use crate::codec::{Reader, put_columns, put_len, put_pk, put_pks, put_u32, put_u64, put_vectors};
use crate::error::{Result, StorageError};

const MAGIC: &[u8; 4] = b"QSEG";
const FOOTER_MAGIC: &[u8; 4] = b"QEND";
const VERSION: u32 = 1;
pub(crate) const HEADER_LEN: usize = 128;
const FOOTER_LEN: usize = 8;

/// Encodes a segment file. `d` should pass [`SegmentData::check`]; a file made from
/// inconsistent data fails to open.
pub fn encode_segment(d: &SegmentData) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_LEN];
    b.reserve(d.vectors.byte_size() + d.pks.len() * 24 + FOOTER_LEN);
    let vectors_off = b.len();
    put_vectors(&mut b, d.vectors.view().data());
    let pks_off = b.len();
    put_pks(&mut b, &d.pks);
    let ts_off = b.len();
    put_len(&mut b, d.timestamps.len());
    for t in &d.timestamps {
        put_u64(&mut b, *t);
    }
    let cols_off = b.len();
    put_columns(&mut b, &d.columns);
    let tomb_off = b.len();
    put_len(&mut b, d.tombstones.len());
    for (pk, ts) in &d.tombstones {
        put_pk(&mut b, pk);
        put_u64(&mut b, *ts);
    }
    let end_off = b.len();
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(MAGIC);
    put_u32(&mut h, VERSION);
    let fields = [
        d.segment_id,
        d.vectors.dim() as u64,
        d.pks.len() as u64,
        d.wal_seq,
        d.max_ts,
        vectors_off as u64,
        pks_off as u64,
        ts_off as u64,
        cols_off as u64,
        tomb_off as u64,
        end_off as u64,
    ];
    for f in fields {
        put_u64(&mut h, f);
    }
    let crc = crc32fast::hash(&h);
    put_u32(&mut h, crc);
    b[..h.len()].copy_from_slice(&h);
    let crc = crc32fast::hash(&b);
    put_u32(&mut b, crc);
    b.extend_from_slice(FOOTER_MAGIC);
    b
}

/// Everything but the vectors, decoded; the vectors' byte range in the file.
pub(crate) struct Decoded {
    pub segment_id: u64,
    pub dim: usize,
    pub rows: usize,
    pub wal_seq: u64,
    pub max_ts: Timestamp,
    pub vectors: std::ops::Range<usize>,
    pub pks: Vec<PrimaryKey>,
    pub timestamps: Vec<Timestamp>,
    pub columns: Vec<Column>,
    pub tombstones: Vec<(PrimaryKey, Timestamp)>,
}

/// A segment's header fields: `[segment_id, dim, rows, wal_seq, max_ts,
/// vectors, pks, timestamps, columns, tombstones, end]` (offsets in order).
pub(crate) struct Header(pub [u64; 11]);

impl Header {
    pub const PKS: usize = 6;
    pub const COLUMNS: usize = 8;
    pub const TOMBSTONES: usize = 9;
    pub const END: usize = 10;
}

/// Checks a header (magic, checksum, version, section order) and returns it.
pub(crate) fn decode_header(h: &[u8], what: &str) -> Result<Header> {
    let bad = |d: String| StorageError::corrupt(what, d);
    if h.len() < HEADER_LEN {
        return Err(bad(format!("a {}-byte header is too short", h.len())));
    }
    let mut r = Reader::new(&h[..HEADER_LEN], what);
    if r.bytes(4)? != MAGIC {
        return Err(bad("bad magic".into()));
    }
    let version = r.u32()?;
    let mut f = [0u64; 11];
    for x in &mut f {
        *x = r.u64()?;
    }
    if r.u32()? != crc32fast::hash(&h[..96]) {
        return Err(bad("header checksum mismatch".into()));
    }
    if version != VERSION {
        return Err(bad(format!("unsupported version {version}")));
    }
    if f[5] != HEADER_LEN as u64 || f[5..].windows(2).any(|w| w[0] > w[1]) {
        return Err(bad(format!("bad section offsets {:?}", &f[5..])));
    }
    Ok(Header(f))
}

/// Row keys with their timestamps, and tombstones, decoded from the
/// sections `pks..columns` and `tombstones..end` of a segment whose header
/// is `h`.
pub(crate) fn decode_keys(
    h: &Header,
    pks_and_ts: &[u8],
    tombs: &[u8],
    what: &str,
) -> Result<SegmentKeys> {
    let bad = |d: String| StorageError::corrupt(what, d);
    let split = (h.0[7] - h.0[Header::PKS]) as usize;
    if split > pks_and_ts.len() {
        return Err(bad("pk section out of range".into()));
    }
    let mut r = Reader::new(&pks_and_ts[..split], what);
    let pks = r.pks()?;
    r.finish()?;
    let mut r = Reader::new(&pks_and_ts[split..], what);
    let n = r.len(8)?;
    let timestamps = (0..n).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
    r.finish()?;
    let mut r = Reader::new(tombs, what);
    let n = r.len(17)?;
    let tombstones = (0..n)
        .map(|_| Ok((r.pk()?, r.u64()?)))
        .collect::<Result<Vec<_>>>()?;
    r.finish()?;
    if pks.len() as u64 != h.0[2] || timestamps.len() as u64 != h.0[2] {
        return Err(bad("row counts of the sections disagree".into()));
    }
    Ok(SegmentKeys {
        dim: h.0[1] as usize,
        pks,
        timestamps,
        tombstones,
    })
}

/// A segment's keys, read without its vectors or columns.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentKeys {
    pub dim: usize,
    pub pks: Vec<PrimaryKey>,
    pub timestamps: Vec<Timestamp>,
    pub tombstones: Vec<(PrimaryKey, Timestamp)>,
}

/// Validates the whole file (header, offsets, checksum) and decodes all but the vectors.
pub(crate) fn decode(b: &[u8], what: &str) -> Result<Decoded> {
    let bad = |d: String| StorageError::corrupt(what, d);
    if b.len() < HEADER_LEN + FOOTER_LEN {
        return Err(bad(format!("{} bytes is too short", b.len())));
    }
    let Header(f) = decode_header(b, what)?;
    let [
        segment_id,
        dim,
        rows,
        wal_seq,
        max_ts,
        voff,
        poff,
        toff,
        coff,
        tomboff,
        end,
    ] = f;
    let offs = [voff, poff, toff, coff, tomboff, end];
    if voff != HEADER_LEN as u64
        || offs.windows(2).any(|w| w[0] > w[1])
        || end.checked_add(FOOTER_LEN as u64) != Some(b.len() as u64)
    {
        return Err(bad(format!(
            "bad section offsets {offs:?} for {} bytes",
            b.len()
        )));
    }
    let (footer, body) = (&b[b.len() - FOOTER_LEN..], &b[..b.len() - FOOTER_LEN]);
    if &footer[4..] != FOOTER_MAGIC {
        return Err(bad("bad footer magic".into()));
    }
    if u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]) != crc32fast::hash(body) {
        return Err(bad("checksum mismatch".into()));
    }
    // Offsets are <= end < b.len(), so they fit in usize.
    let o = |x: u64| x as usize;
    let floats = rows.checked_mul(dim).and_then(|n| n.checked_mul(4));
    if floats != Some(poff - voff) {
        return Err(bad(format!(
            "vectors section is not rows {rows} x dim {dim}"
        )));
    }
    let section = |from: u64, to: u64| Reader::new(&b[o(from)..o(to)], what);
    let mut r = section(poff, toff);
    let pks = r.pks()?;
    r.finish()?;
    let mut r = section(toff, coff);
    let n = r.len(8)?;
    let timestamps = (0..n).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
    r.finish()?;
    let mut r = section(coff, tomboff);
    let columns = r.columns()?;
    r.finish()?;
    let mut r = section(tomboff, end);
    let n = r.len(17)?;
    let tombstones = (0..n)
        .map(|_| Ok((r.pk()?, r.u64()?)))
        .collect::<Result<Vec<_>>>()?;
    r.finish()?;
    let rows = o(rows);
    if pks.len() != rows
        || timestamps.len() != rows
        || columns.iter().any(|c| c.values.len() != rows)
    {
        return Err(bad("row counts of the sections disagree".into()));
    }
    Ok(Decoded {
        segment_id,
        dim: o(dim),
        rows,
        wal_seq,
        max_ts,
        vectors: o(voff)..o(poff),
        pks,
        timestamps,
        columns,
        tombstones,
    })
}

#[cfg(test)]
mod tests {
    use quiver_common::{ScalarValue, Vectors};

    use super::*;
    use crate::segment::MappedSegment;

    #[test]
    fn keys_decode_from_their_sections_and_a_bad_header_is_refused() {
        let d = SegmentData {
            segment_id: 9,
            pks: vec![PrimaryKey::Int(3), PrimaryKey::Str("k".into())],
            timestamps: vec![10, 11],
            vectors: Vectors::f32(2, vec![1.0, 2.0, 3.0, 4.0]),
            columns: vec![],
            tombstones: vec![(PrimaryKey::Int(8), 12)],
            max_ts: 12,
            wal_seq: 4,
        };
        let b = encode_segment(&d);
        let h = decode_header(&b, "s").expect("header");
        let f = &h.0;
        let keys = decode_keys(
            &h,
            &b[f[Header::PKS] as usize..f[Header::COLUMNS] as usize],
            &b[f[Header::TOMBSTONES] as usize..f[Header::END] as usize],
            "s",
        )
        .expect("keys");
        assert_eq!((keys.pks, keys.timestamps), (d.pks, d.timestamps));
        assert_eq!((keys.tombstones, keys.dim), (d.tombstones, 2));
        let mut bad = b.clone();
        bad[30] ^= 1;
        let e = decode_header(&bad, "s").err().expect("corrupt header");
        assert!(e.to_string().contains("checksum"), "{e}");
    }

    /// A segment file as written by the release before vectors were typed,
    /// built byte by byte: it opens as F32 rows, and encoding what it holds
    /// gives back exactly these bytes.
    #[test]
    fn opens_segments_written_before_typed_vectors() {
        let floats = [0.25f32, -1.0, 3.5, 8.0, 0.0, -0.125];
        let mut body = Vec::new();
        for x in floats {
            body.extend(x.to_le_bytes()); // 2 rows x dim 3
        }
        let pks_off = HEADER_LEN + body.len();
        body.extend(2u64.to_le_bytes());
        for pk in [10u64, 11] {
            body.push(0);
            body.extend(pk.to_le_bytes());
        }
        let ts_off = HEADER_LEN + body.len();
        body.extend(2u64.to_le_bytes());
        body.extend(100u64.to_le_bytes());
        body.extend(101u64.to_le_bytes());
        let cols_off = HEADER_LEN + body.len();
        body.extend(1u64.to_le_bytes());
        body.extend(1u64.to_le_bytes());
        body.push(b'x');
        body.extend(2u64.to_le_bytes());
        body.push(3);
        body.extend(1.5f64.to_bits().to_le_bytes());
        body.push(0);
        let tomb_off = HEADER_LEN + body.len();
        body.extend(1u64.to_le_bytes());
        body.push(0);
        body.extend(9u64.to_le_bytes());
        body.extend(99u64.to_le_bytes());
        let end_off = HEADER_LEN + body.len();
        let mut h = b"QSEG".to_vec();
        h.extend(1u32.to_le_bytes());
        for f in [
            5u64, // segment id
            3,    // dim
            2,    // rows
            77,   // wal_seq
            102,  // max_ts
            HEADER_LEN as u64,
            pks_off as u64,
            ts_off as u64,
            cols_off as u64,
            tomb_off as u64,
            end_off as u64,
        ] {
            h.extend(f.to_le_bytes());
        }
        h.extend(crc32fast::hash(&h).to_le_bytes());
        h.resize(HEADER_LEN, 0);
        let mut file = h;
        file.extend(body);
        file.extend(crc32fast::hash(&file).to_le_bytes());
        file.extend(b"QEND");

        let seg = MappedSegment::from_bytes(file.clone()).expect("opens");
        assert_eq!(
            seg.vectors().element_type(),
            quiver_common::ElementType::F32
        );
        assert_eq!(seg.vectors().to_vectors(), Vectors::f32(3, floats.to_vec()));
        let data = SegmentData {
            segment_id: seg.segment_id(),
            pks: seg.pks().to_vec(),
            timestamps: seg.timestamps().to_vec(),
            vectors: seg.vectors().to_vectors(),
            columns: seg.columns().iter().map(|c| c.to_column()).collect(),
            tombstones: seg.tombstones().to_vec(),
            max_ts: seg.max_ts(),
            wal_seq: seg.wal_seq(),
        };
        assert_eq!(data.pks, [PrimaryKey::Int(10), PrimaryKey::Int(11)]);
        assert_eq!(data.columns[0].values[0], ScalarValue::Float(1.5));
        assert_eq!(data.tombstones, [(PrimaryKey::Int(9), 99)]);
        assert_eq!(encode_segment(&data), file);
    }
}
