//! `schema.FieldData` columns <-> Quiver rows and values.

use quiver_common::{
    CollectionSchema, DYNAMIC_FIELD, DataType, ElementType, Error, FieldSchema, PrimaryKey, Result,
    ScalarValue,
};
use quiver_proto::schema::{
    ArrayArray, BoolArray, DoubleArray, FieldData, FloatArray, IDs, IntArray, JsonArray, LongArray,
    ScalarField, SparseFloatArray, StringArray, VectorField, field_data, i_ds, scalar_field,
    vector_field,
};

use super::schema::{DYNAMIC_COLUMN, data_type_to};

/// Values of a scalar FieldData, one per row (`Null` where `valid_data` says
/// so; the data holds either one entry per row or one per valid row).
pub(crate) fn scalar_values(f: &FieldSchema, fd: &FieldData) -> Result<Vec<ScalarValue>> {
    let Some(field_data::Field::Scalars(ScalarField { data: Some(data) })) = &fd.field else {
        return Err(Error::invalid(&f.name, "expected scalar data"));
    };
    let values = plain_values(f, f.data_type, data)?;
    if fd.valid_data.is_empty() {
        return Ok(values);
    }
    if values.len() == fd.valid_data.len() {
        return Ok(fd
            .valid_data
            .iter()
            .zip(values)
            .map(|(ok, v)| if *ok { v } else { ScalarValue::Null })
            .collect());
    }
    let mut compact = values.into_iter();
    fd.valid_data
        .iter()
        .map(|ok| match ok {
            false => Ok(ScalarValue::Null),
            true => compact.next().ok_or_else(|| {
                Error::invalid(&f.name, "fewer values than valid_data marks as valid")
            }),
        })
        .collect()
}

/// The values of one column's data as `t` (a field's type, or an Array
/// field's element type for each row's array).
fn plain_values(
    f: &FieldSchema,
    t: DataType,
    data: &scalar_field::Data,
) -> Result<Vec<ScalarValue>> {
    use scalar_field::Data;
    Ok(match (t, data) {
        (DataType::Bool, Data::BoolData(a)) => {
            a.data.iter().map(|v| ScalarValue::Bool(*v)).collect()
        }
        (DataType::Int8 | DataType::Int16 | DataType::Int32, Data::IntData(a)) => a
            .data
            .iter()
            .map(|v| ScalarValue::Int(i64::from(*v)))
            .collect(),
        (DataType::Int64, Data::LongData(a)) => {
            a.data.iter().map(|v| ScalarValue::Int(*v)).collect()
        }
        (DataType::Float, Data::FloatData(a)) => a
            .data
            .iter()
            .map(|v| ScalarValue::Float(f64::from(*v)))
            .collect(),
        (DataType::Double, Data::DoubleData(a)) => {
            a.data.iter().map(|v| ScalarValue::Float(*v)).collect()
        }
        (DataType::VarChar, Data::StringData(a)) => {
            a.data.iter().cloned().map(ScalarValue::Str).collect()
        }
        (DataType::Json, Data::JsonData(a)) => a
            .data
            .iter()
            .enumerate()
            .map(|(i, b)| json_value(&f.name, i, b, false))
            .collect::<Result<_>>()?,
        (DataType::Array, Data::ArrayData(a)) => {
            let element = f.element_type.unwrap_or(DataType::Int64);
            a.data
                .iter()
                .map(|row| match &row.data {
                    Some(d) => plain_values(f, element, d).map(ScalarValue::Array),
                    None => Ok(ScalarValue::Array(Vec::new())),
                })
                .collect::<Result<_>>()?
        }
        (t, _) => {
            return Err(Error::invalid(
                &f.name,
                format!("the data does not match the field type {t:?}"),
            ));
        }
    })
}

/// A JSON cell: valid UTF-8 JSON (an object when `object`).
pub(crate) fn json_value(
    field: &str,
    row: usize,
    bytes: &[u8],
    object: bool,
) -> Result<ScalarValue> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(field, format!("row {row}: not valid JSON: {e}")))?;
    if object && !v.is_object() {
        return Err(Error::invalid(
            field,
            format!("row {row}: must be a JSON object"),
        ));
    }
    Ok(ScalarValue::Json(v.to_string()))
}

pub(crate) fn pk_values(f: &FieldSchema, fd: &FieldData) -> Result<Vec<PrimaryKey>> {
    scalar_values(f, fd)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            ScalarValue::Int(x) => Ok(PrimaryKey::Int(x)),
            ScalarValue::Str(s) => Ok(PrimaryKey::Str(s)),
            _ => Err(Error::invalid(
                &f.name,
                format!("row {i}: a primary key cannot be null"),
            )),
        })
        .collect()
}

/// The vectors of a vector FieldData as float32 (half floats, bfloat16 and
/// bits widened exactly: `ElementType::widen`) and the dim it declares.
pub(crate) fn vector_values(f: &FieldSchema, fd: &FieldData) -> Result<(usize, Vec<f32>)> {
    use vector_field::Data;
    let Some(field_data::Field::Vectors(VectorField { dim, data })) = &fd.field else {
        return Err(Error::invalid(&f.name, "expected vector data"));
    };
    let declared = usize::try_from(*dim).unwrap_or(0);
    let element = f.data_type.element_type().unwrap_or(ElementType::F32);
    let bytes = match (data, f.data_type) {
        (Some(Data::FloatVector(a)), DataType::FloatVector) => {
            return Ok((declared, a.data.clone()));
        }
        (Some(Data::BinaryVector(b)), DataType::BinaryVector)
        | (Some(Data::Float16Vector(b)), DataType::Float16Vector)
        | (Some(Data::Bfloat16Vector(b)), DataType::BFloat16Vector)
        | (Some(Data::Int8Vector(b)), DataType::Int8Vector) => b,
        _ => {
            return Err(Error::invalid(
                &f.name,
                format!("expected {:?} data", f.data_type),
            ));
        }
    };
    let dim = if declared != 0 {
        declared
    } else {
        f.dim.unwrap_or(0) as usize
    };
    let values = element
        .widen(bytes, dim)
        .map_err(|rule| Error::invalid(&f.name, rule))?;
    Ok((dim, values))
}

/// One sparse row as pymilvus sends it: (u32 index, f32 value) pairs, little
/// endian, in any order; returned sorted by index.
pub(crate) fn sparse_row(bytes: &[u8]) -> std::result::Result<Vec<(u32, f32)>, String> {
    if !bytes.len().is_multiple_of(8) {
        return Err(format!(
            "a sparse row is (uint32 index, float32 value) pairs: {} bytes is not a whole number of them",
            bytes.len()
        ));
    }
    let mut row: Vec<(u32, f32)> = bytes
        .chunks_exact(8)
        .map(|c| {
            let i = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let v = f32::from_le_bytes([c[4], c[5], c[6], c[7]]);
            (i, v)
        })
        .collect();
    row.sort_by_key(|(i, _)| *i);
    quiver_common::check_sparse(&row)?;
    Ok(row)
}

/// The rows of a sparse vector FieldData.
pub(crate) fn sparse_values(f: &FieldSchema, fd: &FieldData) -> Result<Vec<ScalarValue>> {
    let Some(field_data::Field::Vectors(VectorField {
        data: Some(vector_field::Data::SparseFloatVector(a)),
        ..
    })) = &fd.field
    else {
        return Err(Error::invalid(
            &f.name,
            "expected sparse float vector data (a sparse vector field)",
        ));
    };
    (a.contents.iter().enumerate())
        .map(|(row, b)| {
            sparse_row(b)
                .map(ScalarValue::Sparse)
                .map_err(|rule| Error::invalid(&f.name, format!("row {row}: {rule}")))
        })
        .collect()
}

/// A sparse vector column for the client.
pub(crate) fn encode_sparse(f: &FieldSchema, values: &[&ScalarValue]) -> FieldData {
    let mut dim = 0i64;
    let contents = values
        .iter()
        .map(|v| {
            let mut b = Vec::new();
            if let ScalarValue::Sparse(pairs) = v {
                b.reserve(pairs.len() * 8);
                for (i, x) in pairs {
                    b.extend_from_slice(&i.to_le_bytes());
                    b.extend_from_slice(&x.to_le_bytes());
                    dim = dim.max(i64::from(*i) + 1);
                }
            }
            b
        })
        .collect();
    FieldData {
        r#type: data_type_to(f.data_type) as i32,
        field_name: f.name.clone(),
        field: Some(field_data::Field::Vectors(VectorField {
            dim,
            data: Some(vector_field::Data::SparseFloatVector(SparseFloatArray {
                contents,
                dim,
            })),
        })),
        ..Default::default()
    }
}

pub(crate) fn ids(pks: &[PrimaryKey], schema: &CollectionSchema) -> IDs {
    let field = if schema.primary_field().data_type == DataType::VarChar {
        i_ds::IdField::StrId(StringArray {
            data: pks
                .iter()
                .map(|p| match p {
                    PrimaryKey::Str(s) => s.clone(),
                    PrimaryKey::Int(i) => i.to_string(),
                })
                .collect(),
        })
    } else {
        i_ds::IdField::IntId(LongArray {
            data: pks
                .iter()
                .map(|p| match p {
                    PrimaryKey::Int(i) => *i,
                    PrimaryKey::Str(_) => 0,
                })
                .collect(),
        })
    };
    IDs {
        id_field: Some(field),
    }
}

/// A scalar column for the client. The hidden dynamic column goes out as
/// `$meta` with `is_dynamic`.
pub(crate) fn encode_scalar(f: &FieldSchema, values: &[&ScalarValue]) -> FieldData {
    let dynamic = f.name == DYNAMIC_COLUMN;
    let data = scalar_data(f, f.data_type, values, dynamic);
    let valid_data = if f.nullable && !dynamic && values.iter().any(|v| **v == ScalarValue::Null) {
        values.iter().map(|v| **v != ScalarValue::Null).collect()
    } else {
        Vec::new()
    };
    FieldData {
        r#type: data_type_to(f.data_type) as i32,
        field_name: if dynamic {
            DYNAMIC_FIELD.to_string()
        } else {
            f.name.clone()
        },
        field: Some(field_data::Field::Scalars(ScalarField { data: Some(data) })),
        is_dynamic: dynamic,
        valid_data,
        ..Default::default()
    }
}

/// `values` as the client's column data of type `t`.
fn scalar_data(
    f: &FieldSchema,
    t: DataType,
    values: &[&ScalarValue],
    dynamic: bool,
) -> scalar_field::Data {
    use scalar_field::Data;
    match t {
        DataType::Bool => Data::BoolData(BoolArray {
            data: values
                .iter()
                .map(|v| matches!(v, ScalarValue::Bool(true)))
                .collect(),
        }),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => Data::IntData(IntArray {
            data: values.iter().map(|v| int(v) as i32).collect(),
        }),
        DataType::Int64 => Data::LongData(LongArray {
            data: values.iter().map(|v| int(v)).collect(),
        }),
        DataType::Float => Data::FloatData(FloatArray {
            data: values.iter().map(|v| float(v) as f32).collect(),
        }),
        DataType::Double => Data::DoubleData(DoubleArray {
            data: values.iter().map(|v| float(v)).collect(),
        }),
        DataType::VarChar => Data::StringData(StringArray {
            data: values
                .iter()
                .map(|v| match v {
                    ScalarValue::Str(s) => s.clone(),
                    _ => String::new(),
                })
                .collect(),
        }),
        DataType::Array => {
            let element = f.element_type.unwrap_or(DataType::Int64);
            Data::ArrayData(ArrayArray {
                data: values
                    .iter()
                    .map(|v| {
                        let items: Vec<&ScalarValue> = match v {
                            ScalarValue::Array(items) => items.iter().collect(),
                            _ => Vec::new(),
                        };
                        ScalarField {
                            data: Some(scalar_data(f, element, &items, false)),
                        }
                    })
                    .collect(),
                element_type: data_type_to(element) as i32,
            })
        }
        DataType::Json
        | DataType::FloatVector
        | DataType::BinaryVector
        | DataType::Float16Vector
        | DataType::BFloat16Vector
        | DataType::Int8Vector
        | DataType::SparseFloatVector => Data::JsonData(JsonArray {
            data: values
                .iter()
                .map(|v| match v {
                    ScalarValue::Json(s) => s.clone().into_bytes(),
                    _ if dynamic => b"{}".to_vec(),
                    _ => b"null".to_vec(),
                })
                .collect(),
        }),
    }
}

/// A vector column for the client, in its field's declared type (stored
/// float32 narrowed back: `ElementType::narrow`).
pub(crate) fn encode_vectors(f: &FieldSchema, dim: usize, data: Vec<f32>) -> FieldData {
    use vector_field::Data;
    let element = f.data_type.element_type().unwrap_or(ElementType::F32);
    let data = match f.data_type {
        DataType::BinaryVector => Data::BinaryVector(element.narrow(&data)),
        DataType::Float16Vector => Data::Float16Vector(element.narrow(&data)),
        DataType::BFloat16Vector => Data::Bfloat16Vector(element.narrow(&data)),
        DataType::Int8Vector => Data::Int8Vector(element.narrow(&data)),
        _ => Data::FloatVector(FloatArray { data }),
    };
    FieldData {
        r#type: data_type_to(f.data_type) as i32,
        field_name: f.name.clone(),
        field: Some(field_data::Field::Vectors(VectorField {
            dim: dim as i64,
            data: Some(data),
        })),
        ..Default::default()
    }
}

pub(crate) fn encode_pks(f: &FieldSchema, pks: &[&PrimaryKey]) -> FieldData {
    let values: Vec<ScalarValue> = pks
        .iter()
        .map(|p| match p {
            PrimaryKey::Int(i) => ScalarValue::Int(*i),
            PrimaryKey::Str(s) => ScalarValue::Str(s.clone()),
        })
        .collect();
    encode_scalar(f, &values.iter().collect::<Vec<_>>())
}

fn int(v: &ScalarValue) -> i64 {
    match v {
        ScalarValue::Int(i) => *i,
        _ => 0,
    }
}

fn float(v: &ScalarValue) -> f64 {
    match v {
        ScalarValue::Float(f) => *f,
        ScalarValue::Int(i) => *i as f64,
        _ => 0.0,
    }
}
