//! Rows as they travel from the front door to the WAL and the segments:
//! column-oriented batches, primary keys and scalar values.

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::schema::{CollectionSchema, DataType};
use crate::timestamp::Timestamp;
use crate::vectors::{VectorData, VectorSlice, Vectors};

/// A primary key value (Int64 or VarChar).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PrimaryKey {
    Int(i64),
    Str(String),
}

impl std::fmt::Display for PrimaryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrimaryKey::Int(v) => write!(f, "{v}"),
            PrimaryKey::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// A scalar cell. JSON is kept as its text so that every encoding can carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ScalarValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Json(String),
    /// An Array field's value: elements of the field's element type.
    Array(Vec<ScalarValue>),
    /// A vector of a collection's second (third, ...) vector field, as
    /// float32 (widened at the front door like the first field's vectors).
    Vector(Vec<f32>),
    /// A sparse vector: (index, value) pairs, indices strictly increasing.
    Sparse(Vec<(u32, f32)>),
}

impl ScalarValue {
    /// Bytes the value holds on the heap (its size aside).
    pub fn heap_bytes(&self) -> usize {
        match self {
            ScalarValue::Null
            | ScalarValue::Bool(_)
            | ScalarValue::Int(_)
            | ScalarValue::Float(_) => 0,
            ScalarValue::Str(s) | ScalarValue::Json(s) => s.capacity(),
            ScalarValue::Array(items) => {
                items.capacity() * std::mem::size_of::<ScalarValue>()
                    + items.iter().map(ScalarValue::heap_bytes).sum::<usize>()
            }
            ScalarValue::Vector(v) => v.capacity() * 4,
            ScalarValue::Sparse(v) => v.capacity() * 8,
        }
    }

    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ScalarValue::Null => "null",
            ScalarValue::Bool(_) => "a bool",
            ScalarValue::Int(_) => "an integer",
            ScalarValue::Float(_) => "a float",
            ScalarValue::Str(_) => "a string",
            ScalarValue::Json(_) => "JSON",
            ScalarValue::Array(_) => "an array",
            ScalarValue::Vector(_) => "a vector",
            ScalarValue::Sparse(_) => "a sparse vector",
        }
    }
}

/// Values of one scalar field, one per row.
pub type ColumnData = Vec<ScalarValue>;

/// One scalar column of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub values: ColumnData,
}

/// Rows in column order: `pks[i]`, `vectors.row(i)` and
/// `columns[c].values[i]` make row `i`.
///
/// The serde form is that of the struct `{dim, pks, vectors: [f32], columns}`
/// (what it was before vectors were typed), so that F32 batches cross the
/// network byte for byte as before.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "RowBatchWire")]
pub struct RowBatch {
    pub pks: Vec<PrimaryKey>,
    pub vectors: Vectors,
    pub columns: Vec<Column>,
}

impl Serialize for RowBatch {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("RowBatch", 4)?;
        st.serialize_field("dim", &self.vectors.dim())?;
        st.serialize_field("pks", &self.pks)?;
        match self.vectors.data() {
            VectorData::F32(v) => st.serialize_field("vectors", v)?,
        }
        st.serialize_field("columns", &self.columns)?;
        st.end()
    }
}

/// The serde form of [`RowBatch`].
#[derive(Deserialize)]
#[serde(rename = "RowBatch")]
struct RowBatchWire {
    dim: usize,
    pks: Vec<PrimaryKey>,
    vectors: Vec<f32>,
    columns: Vec<Column>,
}

impl From<RowBatchWire> for RowBatch {
    fn from(w: RowBatchWire) -> Self {
        RowBatch {
            pks: w.pks,
            vectors: Vectors::f32(w.dim, w.vectors),
            columns: w.columns,
        }
    }
}

impl RowBatch {
    pub fn len(&self) -> usize {
        self.pks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pks.is_empty()
    }

    /// How many rows the batch holds: its keys, or before auto ids are
    /// assigned, its vectors (in a collection without dense vectors, its
    /// first column).
    pub fn rows(&self) -> usize {
        if !self.pks.is_empty() {
            self.pks.len()
        } else if self.vectors.dim() > 0 {
            self.vectors.len()
        } else {
            self.columns.first().map_or(0, |c| c.values.len())
        }
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.vectors.dim()
    }

    /// The vector of row `row`. Panics if `row >= vectors.len()`.
    pub fn vector(&self, row: usize) -> VectorSlice<'_> {
        self.vectors.row(row)
    }

    /// Checks the batch against `schema`; on error nothing may be written.
    /// `max_rows` bounds the batch size.
    pub fn validate(&self, schema: &CollectionSchema, max_rows: usize) -> Result<()> {
        let n = self.pks.len();
        if n == 0 {
            return Err(Error::invalid(
                "num_rows",
                "a batch must hold at least one row",
            ));
        }
        if n > max_rows {
            return Err(Error::invalid(
                "num_rows",
                format!("a batch holds at most {max_rows} rows (got {n})"),
            ));
        }
        let vf = schema.vector_field();
        let dim = schema.dim();
        let element = schema.element_type();
        if self.vectors.element_type() != element {
            return Err(Error::invalid(
                &vf.name,
                format!(
                    "vectors must be {element} (got {})",
                    self.vectors.element_type()
                ),
            ));
        }
        if self.vectors.dim() != dim {
            return Err(Error::invalid(
                &vf.name,
                format!("vectors must have dim {dim} (got {})", self.vectors.dim()),
            ));
        }
        if self.vectors.raw_len() != n * dim {
            return Err(Error::invalid(
                &vf.name,
                format!(
                    "expected {n} vectors of dim {dim} = {} floats (got {})",
                    n * dim,
                    self.vectors.raw_len()
                ),
            ));
        }
        match self.vectors.data() {
            VectorData::F32(v) => {
                if let Some(pos) = v.iter().position(|x| !x.is_finite()) {
                    return Err(Error::invalid(
                        &vf.name,
                        format!(
                            "values must be finite (row {} has {} at position {})",
                            pos / dim,
                            v[pos],
                            pos % dim
                        ),
                    ));
                }
            }
        }
        let pkf = schema.primary_field();
        for (i, pk) in self.pks.iter().enumerate() {
            match (pkf.data_type, pk) {
                (DataType::Int64, PrimaryKey::Int(_)) => {}
                (DataType::VarChar, PrimaryKey::Str(s)) => {
                    let max = pkf.max_length.unwrap_or(u32::MAX) as usize;
                    if s.len() > max {
                        return Err(Error::invalid(
                            &pkf.name,
                            format!("row {i}: length {} exceeds max_length {max}", s.len()),
                        ));
                    }
                }
                _ => {
                    return Err(Error::invalid(
                        &pkf.name,
                        format!("row {i}: primary key must be {:?}", pkf.data_type),
                    ));
                }
            }
        }
        for col in &self.columns {
            let Some(f) = schema.field(&col.name) else {
                return Err(Error::invalid(&col.name, "no such field in the schema"));
            };
            if f.is_primary_key || Some(f) == schema.dense_field() {
                return Err(Error::invalid(
                    &col.name,
                    "the primary key and the first dense vector field are not columns",
                ));
            }
            if col.values.len() != n {
                return Err(Error::invalid(
                    &col.name,
                    format!("expected {n} values (got {})", col.values.len()),
                ));
            }
            for (i, v) in col.values.iter().enumerate() {
                check_value(f, i, v)?;
            }
        }
        for f in schema.column_fields() {
            if !f.nullable && !self.columns.iter().any(|c| c.name == f.name) {
                return Err(Error::invalid(
                    &f.name,
                    "missing: the field is not nullable",
                ));
            }
        }
        Ok(())
    }

    /// Keeps only the last occurrence of each primary key (last write wins
    /// within one batch), preserving the order of the kept rows.
    pub fn dedup_last_wins(&mut self) {
        let mut seen = std::collections::HashSet::with_capacity(self.pks.len());
        let mut keep = vec![false; self.pks.len()];
        for i in (0..self.pks.len()).rev() {
            keep[i] = seen.insert(&self.pks[i]);
        }
        if keep.iter().all(|k| *k) {
            return;
        }
        let pks = std::mem::take(&mut self.pks);
        self.pks = pks
            .into_iter()
            .zip(&keep)
            .filter_map(|(pk, k)| k.then_some(pk))
            .collect();
        self.vectors.retain_rows(&keep);
        for col in &mut self.columns {
            let mut it = keep.iter();
            col.values.retain(|_| *it.next().unwrap_or(&true));
        }
    }
}

/// A sparse vector's rules (Milvus's): indices strictly increasing and below
/// 2^32 - 1, values finite.
pub fn check_sparse(x: &[(u32, f32)]) -> std::result::Result<(), String> {
    if let Some(w) = x.windows(2).find(|w| w[0].0 >= w[1].0) {
        return Err(format!(
            "sparse vector indices must be unique and increasing (found {} before {})",
            w[0].0, w[1].0
        ));
    }
    if let Some((i, v)) = x.iter().find(|(i, v)| *i == u32::MAX || !v.is_finite()) {
        return Err(format!(
            "sparse vector entry {i}: {v} (indices below 4294967295, finite values)"
        ));
    }
    Ok(())
}

fn check_value(f: &crate::schema::FieldSchema, row: usize, v: &ScalarValue) -> Result<()> {
    if let (DataType::Array, ScalarValue::Array(items)) = (f.data_type, v) {
        let cap = f.max_capacity.unwrap_or(0) as usize;
        if items.len() > cap {
            return Err(Error::invalid(
                &f.name,
                format!(
                    "row {row}: {} elements, more than max_capacity {cap}",
                    items.len()
                ),
            ));
        }
        let mut element = f.clone();
        element.data_type = f.element_type.unwrap_or(DataType::Int64);
        element.nullable = false;
        for item in items {
            check_value(&element, row, item)?;
        }
        return Ok(());
    }
    let range = |lo: i64, hi: i64, x: i64| {
        (lo..=hi)
            .contains(&x)
            .then_some(())
            .ok_or_else(|| format!("{x} is out of range for {:?} ({lo}..={hi})", f.data_type))
    };
    let checked = match (f.data_type, v) {
        (DataType::SparseFloatVector, ScalarValue::Sparse(x)) => check_sparse(x),
        (t, ScalarValue::Vector(x)) if t.is_dense_vector() => {
            let dim = f.dim.unwrap_or(0) as usize;
            if x.len() != dim {
                Err(format!("expected a vector of dim {dim} (got {})", x.len()))
            } else if x.iter().any(|e| !e.is_finite()) {
                Err("the vector holds a value that is not a finite number".to_string())
            } else {
                Ok(())
            }
        }
        (_, ScalarValue::Null) if f.nullable => Ok(()),
        (_, ScalarValue::Null) => {
            Err("null is not allowed (the field is not nullable)".to_string())
        }
        (DataType::Bool, ScalarValue::Bool(_)) => Ok(()),
        (DataType::Int8, ScalarValue::Int(x)) => range(i8::MIN.into(), i8::MAX.into(), *x),
        (DataType::Int16, ScalarValue::Int(x)) => range(i16::MIN.into(), i16::MAX.into(), *x),
        (DataType::Int32, ScalarValue::Int(x)) => range(i32::MIN.into(), i32::MAX.into(), *x),
        (DataType::Int64, ScalarValue::Int(_)) => Ok(()),
        (DataType::Float | DataType::Double, ScalarValue::Float(x)) if x.is_finite() => Ok(()),
        (DataType::Float | DataType::Double, ScalarValue::Float(x)) => {
            Err(format!("{x} is not a finite number"))
        }
        (DataType::VarChar, ScalarValue::Str(s)) => match f.max_length {
            Some(max) if s.len() > max as usize => Err(format!(
                "the string is {} bytes long, longer than max_length {max}",
                s.len()
            )),
            _ => Ok(()),
        },
        (DataType::Json, ScalarValue::Json(_)) => Ok(()),
        (t, v) => Err(format!("expected {t:?}, got {}", v.kind())),
    };
    checked.map_err(|why| Error::invalid(&f.name, format!("row {row}: {why}")))
}

/// A change to a shard, stamped with the shard's hybrid timestamp. An upsert
/// replaces any earlier row with the same primary key (insert is an upsert);
/// a delete removes every earlier row with the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Mutation {
    Upsert { ts: Timestamp, rows: RowBatch },
    Delete { ts: Timestamp, pks: Vec<PrimaryKey> },
}

impl Mutation {
    pub fn ts(&self) -> Timestamp {
        match self {
            Mutation::Upsert { ts, .. } | Mutation::Delete { ts, .. } => *ts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pks: &[i64], dim: usize) -> RowBatch {
        RowBatch {
            pks: pks.iter().map(|p| PrimaryKey::Int(*p)).collect(),
            vectors: Vectors::f32(
                dim,
                pks.iter()
                    .flat_map(|p| std::iter::repeat_n(*p as f32, dim))
                    .collect(),
            ),
            columns: vec![],
        }
    }

    #[test]
    fn further_vector_fields_are_columns_of_their_dim() {
        let mut s = CollectionSchema::simple("c", 2);
        s.fields
            .push(crate::FieldSchema::new("image", DataType::Float16Vector).with_dim(3));
        s.validate().expect("two vector fields");
        assert_eq!(s.vector_field().name, "vector");
        let columns: Vec<_> = s.column_fields().map(|f| f.name.as_str()).collect();
        assert_eq!(columns, ["image"]);
        let mut b = batch(&[1, 2], 2);
        let e = b.validate(&s, 10).expect_err("missing");
        assert!(e.to_string().contains("image"), "{e}");
        let v = |x: Vec<f32>| ScalarValue::Vector(x);
        b.columns = vec![Column {
            name: "image".into(),
            values: vec![v(vec![1.0, 2.0, 3.0]), v(vec![0.0; 3])],
        }];
        b.validate(&s, 10).expect("valid");
        for bad in [
            v(vec![1.0, 2.0]),
            v(vec![1.0, f32::NAN, 0.0]),
            ScalarValue::Null,
        ] {
            b.columns[0].values[1] = bad;
            let e = b.validate(&s, 10).expect_err("bad vector");
            assert!(e.to_string().contains("image"), "{e}");
        }
        for n in 3..=5 {
            s.fields
                .push(crate::FieldSchema::new(format!("v{n}"), DataType::FloatVector).with_dim(2));
        }
        let e = s.validate().expect_err("five vector fields");
        assert!(e.to_string().contains("between 1 and 4"), "{e}");
    }

    #[test]
    fn validate_rejects_bad_batches() {
        let s = CollectionSchema::simple("c", 2);
        batch(&[1, 2], 2).validate(&s, 10).expect("valid");
        let e = batch(&[], 2).validate(&s, 10).expect_err("empty");
        assert!(e.to_string().contains("num_rows"));
        let e = batch(&[1, 2, 3], 2).validate(&s, 2).expect_err("too big");
        assert!(e.to_string().contains("at most 2"));
        let e = batch(&[1], 3).validate(&s, 10).expect_err("dim");
        assert!(e.to_string().contains("dim 2"), "{e}");
        let mut b = batch(&[1, 2], 2);
        b.vectors = Vectors::f32(2, vec![1.0, 1.0, 2.0, f32::NAN]);
        let e = b.validate(&s, 10).expect_err("nan");
        assert!(e.to_string().contains("finite"), "{e}");
        assert!(e.to_string().contains("row 1"), "{e}");
        b.vectors = Vectors::f32(2, vec![1.0, 1.0, 2.0, f32::INFINITY]);
        assert!(b.validate(&s, 10).is_err());
        b.vectors = Vectors::f32(2, vec![1.0, 1.0, 2.0]);
        let e = b.validate(&s, 10).expect_err("partial row");
        assert!(e.to_string().contains("= 4 floats (got 3)"), "{e}");
    }

    #[test]
    fn dedup_keeps_last_occurrence() {
        let mut b = batch(&[1, 2, 1, 3, 2], 1);
        b.vectors = Vectors::f32(1, vec![10.0, 20.0, 11.0, 30.0, 21.0]);
        b.columns.push(Column {
            name: "x".into(),
            values: (0..5).map(ScalarValue::Int).collect(),
        });
        b.dedup_last_wins();
        assert_eq!(
            b.pks,
            vec![PrimaryKey::Int(1), PrimaryKey::Int(3), PrimaryKey::Int(2)]
        );
        assert_eq!(b.vectors, Vectors::f32(1, vec![11.0, 30.0, 21.0]));
        assert_eq!(
            b.columns[0].values,
            vec![
                ScalarValue::Int(2),
                ScalarValue::Int(3),
                ScalarValue::Int(4)
            ]
        );
    }

    /// The serde form of a batch is that of the struct it was before vectors
    /// were typed (postcard, the RPC encoding, is positional: same fields in
    /// the same order with the same types give the same bytes).
    #[test]
    fn serde_form_is_unchanged() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct RowBatch0 {
            dim: usize,
            pks: Vec<PrimaryKey>,
            vectors: Vec<f32>,
            columns: Vec<Column>,
        }
        let old = RowBatch0 {
            dim: 2,
            pks: vec![PrimaryKey::Int(1), PrimaryKey::Str("b".into())],
            vectors: vec![0.5, -1.0, 2.25, 3.0],
            columns: vec![Column {
                name: "x".into(),
                values: vec![ScalarValue::Int(1), ScalarValue::Null],
            }],
        };
        let new = RowBatch {
            pks: old.pks.clone(),
            vectors: Vectors::f32(2, old.vectors.clone()),
            columns: old.columns.clone(),
        };
        let json = serde_json::to_string(&old).expect("old");
        assert_eq!(serde_json::to_string(&new).expect("new"), json);
        let back: RowBatch = serde_json::from_str(&json).expect("decode");
        assert_eq!(back, new);
    }
}
