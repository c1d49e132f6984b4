//! Hand-written little-endian encoding shared by the WAL and segment formats: primary keys,
//! scalar values, columns and mutations. Vectors are raw LE f32 bytes. Decoding is
//! bounds-checked and never panics on bad input; it reports `Corrupt` naming `what`.
//!
//! Element types: every byte format here predates typed vectors and holds F32 rows without
//! saying so. A record or file of another element type must get a tag or version of its own
//! (an upsert tag other than 0, a segment version other than 1), so that everything written
//! so far keeps decoding as F32 and stays byte-identical.

use quiver_common::{Column, Mutation, PrimaryKey, RowBatch, ScalarValue, VectorSlice, Vectors};

use crate::error::{Result, StorageError};

pub(crate) fn put_u8(b: &mut Vec<u8>, v: u8) {
    b.push(v);
}
pub(crate) fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_len(b: &mut Vec<u8>, n: usize) {
    put_u64(b, n as u64);
}
pub(crate) fn put_str(b: &mut Vec<u8>, s: &str) {
    put_len(b, s.len());
    b.extend_from_slice(s.as_bytes());
}
pub(crate) fn put_f32s(b: &mut Vec<u8>, v: &[f32]) {
    b.reserve(v.len() * 4);
    for x in v {
        b.extend_from_slice(&x.to_le_bytes());
    }
}

/// The raw elements of `v`: LE f32 for F32 (see the module docs for other types).
pub(crate) fn put_vectors(b: &mut Vec<u8>, v: VectorSlice<'_>) {
    match v {
        VectorSlice::F32(v) => put_f32s(b, v),
    }
}

pub(crate) fn put_pk(b: &mut Vec<u8>, pk: &PrimaryKey) {
    match pk {
        PrimaryKey::Int(v) => {
            put_u8(b, 0);
            put_u64(b, *v as u64);
        }
        PrimaryKey::Str(s) => {
            put_u8(b, 1);
            put_str(b, s);
        }
    }
}

pub(crate) fn put_pks(b: &mut Vec<u8>, pks: &[PrimaryKey]) {
    put_len(b, pks.len());
    for pk in pks {
        put_pk(b, pk);
    }
}

pub(crate) fn put_scalar(b: &mut Vec<u8>, v: &ScalarValue) {
    match v {
        ScalarValue::Null => put_u8(b, 0),
        ScalarValue::Bool(x) => {
            put_u8(b, 1);
            put_u8(b, u8::from(*x));
        }
        ScalarValue::Int(x) => {
            put_u8(b, 2);
            put_u64(b, *x as u64);
        }
        ScalarValue::Float(x) => {
            put_u8(b, 3);
            put_u64(b, x.to_bits());
        }
        ScalarValue::Str(s) => {
            put_u8(b, 4);
            put_str(b, s);
        }
        ScalarValue::Json(s) => {
            put_u8(b, 5);
            put_str(b, s);
        }
        ScalarValue::Array(items) => {
            put_u8(b, 6);
            put_len(b, items.len());
            for item in items {
                put_scalar(b, item);
            }
        }
        ScalarValue::Vector(v) => {
            put_u8(b, 7);
            put_len(b, v.len());
            for x in v {
                b.extend_from_slice(&x.to_le_bytes());
            }
        }
        ScalarValue::Sparse(v) => {
            put_u8(b, 8);
            put_len(b, v.len());
            for (i, x) in v {
                b.extend_from_slice(&i.to_le_bytes());
                b.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
}

pub(crate) fn put_columns(b: &mut Vec<u8>, cols: &[Column]) {
    put_len(b, cols.len());
    for c in cols {
        put_str(b, &c.name);
        put_len(b, c.values.len());
        for v in &c.values {
            put_scalar(b, v);
        }
    }
}

/// Tag bit of a mutation a mirror copied from another collection (WAL
/// records only): upsert 2, delete 3.
const REPLICATED: u8 = 2;

/// Appends the encoding of `m` to `b`.
#[cfg(test)]
pub(crate) fn put_mutation(b: &mut Vec<u8>, m: &Mutation) {
    put_mutation_from(b, m, false);
}

/// Appends the encoding of `m`, marked as copied by a mirror when `replicated`.
pub(crate) fn put_mutation_from(b: &mut Vec<u8>, m: &Mutation, replicated: bool) {
    let bit = if replicated { REPLICATED } else { 0 };
    match m {
        Mutation::Upsert { ts, rows } => {
            put_u8(b, bit);
            put_u64(b, *ts);
            put_len(b, rows.dim());
            put_pks(b, &rows.pks);
            put_len(b, rows.vectors.raw_len());
            put_vectors(b, rows.vectors.view().data());
            put_columns(b, &rows.columns);
        }
        Mutation::Delete { ts, pks } => {
            put_u8(b, 1 | bit);
            put_u64(b, *ts);
            put_pks(b, pks);
        }
    }
}

/// A bounds-checked cursor over bytes being decoded.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'a str) -> Self {
        Self { buf, pos: 0, what }
    }

    pub(crate) fn err(&self, detail: impl Into<String>) -> StorageError {
        StorageError::corrupt(
            self.what,
            format!("{} (at byte {})", detail.into(), self.pos),
        )
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(format!("need {n} bytes, {} left", self.remaining())));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count of items each at least `min_item_bytes` long (guards huge allocations).
    pub(crate) fn len(&mut self, min_item_bytes: usize) -> Result<usize> {
        let n = self.u64()?;
        let fits = usize::try_from(n)
            .ok()
            .filter(|n| n.saturating_mul(min_item_bytes.max(1)) <= self.remaining());
        fits.ok_or_else(|| self.err(format!("length {n} exceeds the remaining bytes")))
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        let n = self.len(1)?;
        let s = self.bytes(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| self.err("invalid utf-8"))
    }

    pub(crate) fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        let bytes = self.bytes(n.checked_mul(4).ok_or_else(|| self.err("overflow"))?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    pub(crate) fn pk(&mut self) -> Result<PrimaryKey> {
        match self.u8()? {
            0 => Ok(PrimaryKey::Int(self.u64()? as i64)),
            1 => Ok(PrimaryKey::Str(self.string()?)),
            t => Err(self.err(format!("bad primary key tag {t}"))),
        }
    }

    pub(crate) fn pks(&mut self) -> Result<Vec<PrimaryKey>> {
        let n = self.len(9)?;
        (0..n).map(|_| self.pk()).collect()
    }

    pub(crate) fn scalar(&mut self) -> Result<ScalarValue> {
        self.scalar_in(false)
    }

    /// A value; an array's elements are never arrays themselves.
    fn scalar_in(&mut self, in_array: bool) -> Result<ScalarValue> {
        Ok(match self.u8()? {
            0 => ScalarValue::Null,
            1 => match self.u8()? {
                0 => ScalarValue::Bool(false),
                1 => ScalarValue::Bool(true),
                v => return Err(self.err(format!("bad bool {v}"))),
            },
            2 => ScalarValue::Int(self.u64()? as i64),
            3 => ScalarValue::Float(f64::from_bits(self.u64()?)),
            4 => ScalarValue::Str(self.string()?),
            5 => ScalarValue::Json(self.string()?),
            6 if !in_array => {
                let n = self.len(1)?;
                let items = (0..n)
                    .map(|_| self.scalar_in(true))
                    .collect::<Result<Vec<_>>>()?;
                ScalarValue::Array(items)
            }
            7 if !in_array => {
                let n = self.len(4)?;
                let v = (0..n)
                    .map(|_| self.u32().map(f32::from_bits))
                    .collect::<Result<Vec<_>>>()?;
                ScalarValue::Vector(v)
            }
            8 if !in_array => {
                let n = self.len(8)?;
                let v = (0..n)
                    .map(|_| Ok((self.u32()?, f32::from_bits(self.u32()?))))
                    .collect::<Result<Vec<_>>>()?;
                ScalarValue::Sparse(v)
            }
            t => return Err(self.err(format!("bad scalar tag {t}"))),
        })
    }

    pub(crate) fn columns(&mut self) -> Result<Vec<Column>> {
        let n = self.len(16)?;
        (0..n)
            .map(|_| {
                let name = self.string()?;
                let count = self.len(1)?;
                let values = (0..count).map(|_| self.scalar()).collect::<Result<_>>()?;
                Ok(Column { name, values })
            })
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn mutation(&mut self) -> Result<Mutation> {
        match self.mutation_from()? {
            (m, false) => Ok(m),
            (_, true) => Err(self.err("a mirrored mutation where none may be")),
        }
    }

    /// A mutation and whether a mirror copied it (see [`put_mutation_from`]).
    pub(crate) fn mutation_from(&mut self) -> Result<(Mutation, bool)> {
        let tag = self.u8()?;
        let replicated = tag & REPLICATED != 0;
        let m = match tag & !REPLICATED {
            0 => {
                let ts = self.u64()?;
                let dim = self.u64()?;
                let dim = usize::try_from(dim).map_err(|_| self.err("dim overflows usize"))?;
                let pks = self.pks()?;
                let nv = self.len(4)?;
                let vectors = self.f32s(nv)?;
                let columns = self.columns()?;
                Ok(Mutation::Upsert {
                    ts,
                    rows: RowBatch {
                        pks,
                        vectors: Vectors::f32(dim, vectors),
                        columns,
                    },
                })
            }
            1 => {
                let ts = self.u64()?;
                Ok(Mutation::Delete {
                    ts,
                    pks: self.pks()?,
                })
            }
            _ => Err(self.err(format!("bad mutation tag {tag}"))),
        }?;
        Ok((m, replicated))
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(self.err(format!("{} trailing bytes", self.remaining())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutation_round_trip() {
        let m = Mutation::Upsert {
            ts: 99,
            rows: RowBatch {
                pks: vec![PrimaryKey::Int(-1), PrimaryKey::Str("héllo".into())],
                vectors: Vectors::f32(2, vec![1.0, -2.5, f32::MIN_POSITIVE, 3.25]),
                columns: vec![
                    Column {
                        name: "c".into(),
                        values: vec![ScalarValue::Json("{}".into()), ScalarValue::Float(0.5)],
                    },
                    Column {
                        name: "image".into(),
                        values: vec![
                            ScalarValue::Vector(vec![0.5, -1.0, f32::MAX]),
                            ScalarValue::Vector(vec![]),
                        ],
                    },
                    Column {
                        name: "terms".into(),
                        values: vec![
                            ScalarValue::Sparse(vec![(0, 0.5), (u32::MAX - 1, -2.0)]),
                            ScalarValue::Sparse(vec![]),
                        ],
                    },
                ],
            },
        };
        let d = Mutation::Delete {
            ts: 100,
            pks: vec![PrimaryKey::Int(7)],
        };
        for m in [m, d] {
            let mut b = Vec::new();
            put_mutation(&mut b, &m);
            let mut r = Reader::new(&b, "test");
            assert_eq!(r.mutation().expect("decode"), m);
            r.finish().expect("all consumed");
            for cut in 0..b.len() {
                let mut r = Reader::new(&b[..cut], "test");
                assert!(r.mutation().and_then(|_| r.finish()).is_err());
            }
        }
    }

    /// An upsert record as written by the release before vectors were typed,
    /// built byte by byte: it decodes as F32 rows, and encoding those rows
    /// gives back exactly these bytes.
    #[test]
    fn decodes_upserts_written_before_typed_vectors() {
        let mut b: Vec<u8> = vec![0]; // upsert, not mirrored
        b.extend(42u64.to_le_bytes()); // ts
        b.extend(2u64.to_le_bytes()); // dim
        b.extend(2u64.to_le_bytes()); // 2 pks
        b.push(0);
        b.extend(7u64.to_le_bytes()); // Int(7)
        b.push(1);
        b.extend(2u64.to_le_bytes());
        b.extend("é".as_bytes()); // Str("é")
        b.extend(4u64.to_le_bytes()); // 4 floats
        for x in [1.0f32, -2.0, 0.5, 3.0] {
            b.extend(x.to_le_bytes());
        }
        b.extend(1u64.to_le_bytes()); // 1 column
        b.extend(1u64.to_le_bytes());
        b.push(b'c');
        b.extend(2u64.to_le_bytes()); // 2 values
        b.push(2);
        b.extend(5u64.to_le_bytes()); // Int(5)
        b.push(0); // Null
        let want = Mutation::Upsert {
            ts: 42,
            rows: RowBatch {
                pks: vec![PrimaryKey::Int(7), PrimaryKey::Str("é".into())],
                vectors: Vectors::f32(2, vec![1.0, -2.0, 0.5, 3.0]),
                columns: vec![Column {
                    name: "c".into(),
                    values: vec![ScalarValue::Int(5), ScalarValue::Null],
                }],
            },
        };
        let mut r = Reader::new(&b, "old record");
        let got = r.mutation().expect("decode");
        r.finish().expect("all consumed");
        assert_eq!(got, want);
        let Mutation::Upsert { rows, .. } = &got else {
            panic!("not an upsert")
        };
        assert_eq!(rows.vectors.element_type(), quiver_common::ElementType::F32);
        let mut again = Vec::new();
        put_mutation(&mut again, &got);
        assert_eq!(again, b);
    }
}
