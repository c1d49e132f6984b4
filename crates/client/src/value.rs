//! Values coming back from the server: primary keys and result columns.

use std::fmt;

use quiver_proto::schema::{FieldData, IDs, field_data, i_ds, scalar_field, vector_field};

use crate::error::{Error, Result};

/// A primary key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    Int(i64),
    Str(String),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Int(i) => write!(f, "{i}"),
            Id::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// One value of a result column.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A JSON document (a JSON field, or `$meta` for dynamic keys), as text.
    Json(String),
    Vector(Vec<f32>),
}

/// One row of a query result (or the output fields of a search hit): the
/// fields in the order the server sent them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub fields: Vec<(String, Value)>,
}

impl Row {
    /// The value of a field.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

pub(crate) fn decode_ids(ids: Option<IDs>) -> Vec<Id> {
    match ids.and_then(|i| i.id_field) {
        None => Vec::new(),
        Some(i_ds::IdField::IntId(l)) => l.data.into_iter().map(Id::Int).collect(),
        Some(i_ds::IdField::StrId(s)) => s.data.into_iter().map(Id::Str).collect(),
    }
}

/// A column as `n` values (nulls from `valid_data`).
pub(crate) fn decode_column(rpc: &'static str, fd: &FieldData, n: usize) -> Result<Vec<Value>> {
    let bad = |what: String| Error::protocol(rpc, format!("column {:?}: {what}", fd.field_name));
    let mut values: Vec<Value> = match &fd.field {
        None => return Err(bad("no data".into())),
        Some(field_data::Field::Scalars(s)) => {
            use scalar_field::Data;
            match &s.data {
                Some(Data::BoolData(a)) => a.data.iter().map(|v| Value::Bool(*v)).collect(),
                Some(Data::IntData(a)) => a.data.iter().map(|v| Value::Int(*v as i64)).collect(),
                Some(Data::LongData(a)) => a.data.iter().map(|v| Value::Int(*v)).collect(),
                Some(Data::FloatData(a)) => {
                    a.data.iter().map(|v| Value::Float(*v as f64)).collect()
                }
                Some(Data::DoubleData(a)) => a.data.iter().map(|v| Value::Float(*v)).collect(),
                Some(Data::StringData(a)) => a.data.iter().map(|v| Value::Str(v.clone())).collect(),
                Some(Data::JsonData(a)) => a
                    .data
                    .iter()
                    .map(|v| Value::Json(String::from_utf8_lossy(v).into_owned()))
                    .collect(),
                other => return Err(bad(format!("unsupported scalar data {other:?}"))),
            }
        }
        Some(field_data::Field::Vectors(v)) => match &v.data {
            Some(vector_field::Data::FloatVector(a)) => {
                let dim = usize::try_from(v.dim).unwrap_or(0);
                if dim == 0 || !a.data.len().is_multiple_of(dim) {
                    return Err(bad(format!("{} floats of dim {}", a.data.len(), v.dim)));
                }
                a.data
                    .chunks_exact(dim)
                    .map(|c| Value::Vector(c.to_vec()))
                    .collect()
            }
            _ => return Err(bad("unsupported vector data".into())),
        },
    };
    if values.len() != n {
        return Err(bad(format!("{} values for {n} rows", values.len())));
    }
    if !fd.valid_data.is_empty() {
        if fd.valid_data.len() != n {
            return Err(bad(format!(
                "{} validity flags for {n} rows",
                fd.valid_data.len()
            )));
        }
        for (v, valid) in values.iter_mut().zip(&fd.valid_data) {
            if !valid {
                *v = Value::Null;
            }
        }
    }
    Ok(values)
}

/// Column-major result fields as `n` rows.
pub(crate) fn decode_rows(rpc: &'static str, fields: &[FieldData], n: usize) -> Result<Vec<Row>> {
    let mut rows = vec![Row::default(); n];
    for fd in fields {
        for (row, v) in rows.iter_mut().zip(decode_column(rpc, fd, n)?) {
            row.fields.push((fd.field_name.clone(), v));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use quiver_proto::schema::{FloatArray, LongArray, ScalarField, VectorField};

    use super::*;

    #[test]
    fn columns_become_rows_with_nulls() {
        let ids = FieldData {
            field_name: "id".into(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::LongData(LongArray { data: vec![1, 2] })),
            })),
            valid_data: vec![true, false],
            ..Default::default()
        };
        let vecs = FieldData {
            field_name: "v".into(),
            field: Some(field_data::Field::Vectors(VectorField {
                dim: 2,
                data: Some(vector_field::Data::FloatVector(FloatArray {
                    data: vec![1.0, 2.0, 3.0, 4.0],
                })),
            })),
            ..Default::default()
        };
        let rows = decode_rows("Query", &[ids, vecs.clone()], 2).expect("rows");
        assert_eq!(rows[0].get("id"), Some(&Value::Int(1)));
        assert_eq!(rows[1].get("id"), Some(&Value::Null));
        assert_eq!(rows[1].get("v"), Some(&Value::Vector(vec![3.0, 4.0])));
        let e = decode_rows("Query", &[vecs], 3).expect_err("short column");
        assert!(e.to_string().contains("2 values for 3 rows"), "{e}");
    }
}
