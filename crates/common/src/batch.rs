//! Rows as they travel from the front door to the WAL and the segments:
//! column-oriented batches, primary keys and scalar values.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schema::{CollectionSchema, DataType};
use crate::timestamp::Timestamp;

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
}

impl ScalarValue {
    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ScalarValue::Null => "null",
            ScalarValue::Bool(_) => "a bool",
            ScalarValue::Int(_) => "an integer",
            ScalarValue::Float(_) => "a float",
            ScalarValue::Str(_) => "a string",
            ScalarValue::Json(_) => "JSON",
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

/// Rows in column order: `pks[i]`, `vectors[i*dim..(i+1)*dim]` and
/// `columns[c].values[i]` make row `i`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RowBatch {
    pub dim: usize,
    pub pks: Vec<PrimaryKey>,
    pub vectors: Vec<f32>,
    pub columns: Vec<Column>,
}

impl RowBatch {
    pub fn len(&self) -> usize {
        self.pks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pks.is_empty()
    }

    pub fn vector(&self, row: usize) -> &[f32] {
        &self.vectors[row * self.dim..(row + 1) * self.dim]
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
        if self.dim != dim {
            return Err(Error::invalid(
                &vf.name,
                format!("vectors must have dim {dim} (got {})", self.dim),
            ));
        }
        if self.vectors.len() != n * dim {
            return Err(Error::invalid(
                &vf.name,
                format!(
                    "expected {n} vectors of dim {dim} = {} floats (got {})",
                    n * dim,
                    self.vectors.len()
                ),
            ));
        }
        if let Some(pos) = self.vectors.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                &vf.name,
                format!(
                    "values must be finite (row {} has {} at position {})",
                    pos / dim,
                    self.vectors[pos],
                    pos % dim
                ),
            ));
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
            if f.is_primary_key || f.data_type == DataType::FloatVector {
                return Err(Error::invalid(
                    &col.name,
                    "primary key and vector are not scalar columns",
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
        for f in schema.scalar_fields() {
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
        let dim = self.dim;
        let mut j = 0;
        let mut pks = Vec::with_capacity(seen.len());
        let mut vectors = Vec::with_capacity(seen.len() * dim);
        for (i, k) in keep.iter().enumerate() {
            if *k {
                pks.push(self.pks[i].clone());
                vectors.extend_from_slice(&self.vectors[i * dim..(i + 1) * dim]);
                j += 1;
            }
        }
        debug_assert_eq!(j, pks.len());
        for col in &mut self.columns {
            let mut it = keep.iter();
            col.values.retain(|_| *it.next().unwrap_or(&true));
        }
        self.pks = pks;
        self.vectors = vectors;
    }
}

fn check_value(f: &crate::schema::FieldSchema, row: usize, v: &ScalarValue) -> Result<()> {
    let range = |lo: i64, hi: i64, x: i64| {
        (lo..=hi)
            .contains(&x)
            .then_some(())
            .ok_or_else(|| format!("{x} is out of range for {:?} ({lo}..={hi})", f.data_type))
    };
    let checked = match (f.data_type, v) {
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
            dim,
            pks: pks.iter().map(|p| PrimaryKey::Int(*p)).collect(),
            vectors: pks
                .iter()
                .flat_map(|p| std::iter::repeat_n(*p as f32, dim))
                .collect(),
            columns: vec![],
        }
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
        b.vectors[3] = f32::NAN;
        let e = b.validate(&s, 10).expect_err("nan");
        assert!(e.to_string().contains("finite"), "{e}");
        assert!(e.to_string().contains("row 1"), "{e}");
        b.vectors[3] = f32::INFINITY;
        assert!(b.validate(&s, 10).is_err());
    }

    #[test]
    fn dedup_keeps_last_occurrence() {
        let mut b = batch(&[1, 2, 1, 3, 2], 1);
        b.vectors = vec![10.0, 20.0, 11.0, 30.0, 21.0];
        b.columns.push(Column {
            name: "x".into(),
            values: (0..5).map(ScalarValue::Int).collect(),
        });
        b.dedup_last_wins();
        assert_eq!(
            b.pks,
            vec![PrimaryKey::Int(1), PrimaryKey::Int(3), PrimaryKey::Int(2)]
        );
        assert_eq!(b.vectors, vec![11.0, 30.0, 21.0]);
        assert_eq!(
            b.columns[0].values,
            vec![
                ScalarValue::Int(2),
                ScalarValue::Int(3),
                ScalarValue::Int(4)
            ]
        );
    }
}
