//! Milvus schemas (`schema.CollectionSchema`) <-> Quiver's `CollectionSchema`.
//!
//! Dynamic fields: Quiver's schema rules do not admit a field named `$meta`,
//! so a collection with `enable_dynamic_field` gets a hidden nullable JSON
//! field [`DYNAMIC_COLUMN`] that stores the extra keys of each row. Towards
//! Milvus clients it is called `$meta` (and flagged `is_dynamic`); filters see
//! it as `$meta` through [`super::filter`].

use prost::Message;
use quiver_common::{
    CollectionSchema, DYNAMIC_FIELD, DataType, Error, FieldSchema, FunctionKind, FunctionSchema,
    MAX_DIM, Result, ScalarValue, validate_name,
};
use quiver_proto::common::KeyValuePair;
use quiver_proto::schema as pb;

/// The hidden column that holds a row's dynamic keys as a JSON object.
pub const DYNAMIC_COLUMN: &str = "__quiver_dynamic";
/// The hidden column that holds the id of a row's partition (collections
/// created before partitions have none: all their rows are in `_default`).
pub const PARTITION_COLUMN: &str = "__quiver_partition";

/// The hidden column that holds when the front door accepted a row (wall
/// clock, ms): a collection TTL hides rows older than it.
pub const WRITTEN_COLUMN: &str = "__quiver_written_ms";

/// Columns of Quiver's own that clients never see as fields.
pub(crate) fn is_hidden(name: &str) -> bool {
    name == DYNAMIC_COLUMN || name == PARTITION_COLUMN || name == WRITTEN_COLUMN
}

/// First field id reported to clients (Milvus starts user fields at 100).
const FIRST_FIELD_ID: i64 = 100;
/// First function id reported to clients.
const FIRST_FUNCTION_ID: i64 = 1000;

fn data_type_from(t: i32, field: &str) -> Result<DataType> {
    let t = pb::DataType::try_from(t)
        .map_err(|_| Error::invalid(field, format!("unknown data type {t}")))?;
    Ok(match t {
        pb::DataType::Bool => DataType::Bool,
        pb::DataType::Int8 => DataType::Int8,
        pb::DataType::Int16 => DataType::Int16,
        pb::DataType::Int32 => DataType::Int32,
        pb::DataType::Int64 => DataType::Int64,
        pb::DataType::Float => DataType::Float,
        pb::DataType::Double => DataType::Double,
        pb::DataType::VarChar | pb::DataType::String => DataType::VarChar,
        pb::DataType::Json => DataType::Json,
        pb::DataType::Array => DataType::Array,
        pb::DataType::FloatVector => DataType::FloatVector,
        pb::DataType::BinaryVector => DataType::BinaryVector,
        pb::DataType::Float16Vector => DataType::Float16Vector,
        pb::DataType::BFloat16Vector => DataType::BFloat16Vector,
        pb::DataType::Int8Vector => DataType::Int8Vector,
        pb::DataType::SparseFloatVector => DataType::SparseFloatVector,
        other => {
            return Err(Error::invalid(
                field,
                format!(
                    "data type {} is not supported (Bool, Int8-64, Float, Double, VarChar, JSON, Array, FloatVector, Float16Vector, BFloat16Vector, BinaryVector, Int8Vector, SparseFloatVector are)",
                    other.as_str_name()
                ),
            ));
        }
    })
}

pub(crate) fn data_type_to(t: DataType) -> pb::DataType {
    match t {
        DataType::Bool => pb::DataType::Bool,
        DataType::Int8 => pb::DataType::Int8,
        DataType::Int16 => pb::DataType::Int16,
        DataType::Int32 => pb::DataType::Int32,
        DataType::Int64 => pb::DataType::Int64,
        DataType::Float => pb::DataType::Float,
        DataType::Double => pb::DataType::Double,
        DataType::VarChar => pb::DataType::VarChar,
        DataType::Json => pb::DataType::Json,
        DataType::Array => pb::DataType::Array,
        DataType::FloatVector => pb::DataType::FloatVector,
        DataType::BinaryVector => pb::DataType::BinaryVector,
        DataType::Float16Vector => pb::DataType::Float16Vector,
        DataType::BFloat16Vector => pb::DataType::BFloat16Vector,
        DataType::Int8Vector => pb::DataType::Int8Vector,
        DataType::SparseFloatVector => pb::DataType::SparseFloatVector,
    }
}

fn param_u32(params: &[KeyValuePair], key: &str, field: &str) -> Result<Option<u32>> {
    let Some(kv) = params.iter().find(|kv| kv.key == key) else {
        return Ok(None);
    };
    kv.value.trim().parse::<u32>().map(Some).map_err(|_| {
        Error::invalid(
            format!("{field}.{key}"),
            format!("must be a positive integer (got {:?})", kv.value),
        )
    })
}

/// Decodes the serialized schema of a CreateCollection request.
pub fn schema_from_bytes(name: &str, bytes: &[u8]) -> Result<CollectionSchema> {
    let proto = pb::CollectionSchema::decode(bytes)
        .map_err(|e| Error::invalid("schema", format!("not a valid CollectionSchema: {e}")))?;
    schema_from_proto(name, &proto)
}

pub fn schema_from_proto(name: &str, proto: &pb::CollectionSchema) -> Result<CollectionSchema> {
    quiver_common::validate_qualified("collection_name", name)?;
    let (_, plain) = quiver_common::split_qualified(name);
    if !proto.name.is_empty() && proto.name != plain && proto.name != name {
        return Err(Error::invalid(
            "schema.name",
            format!("must match collection_name {name:?} (got {:?})", proto.name),
        ));
    }
    let mut fields = Vec::with_capacity(proto.fields.len() + 1);
    for (i, f) in proto.fields.iter().filter(|f| !f.is_dynamic).enumerate() {
        check_field_name(i, &f.name)?;
        let data_type = data_type_from(f.data_type, &f.name)?;
        let mut field = FieldSchema::new(&f.name, data_type);
        field.is_primary_key = f.is_primary_key;
        field.auto_id = f.auto_id || (f.is_primary_key && proto.auto_id);
        field.nullable = f.nullable;
        field.description = f.description.clone();
        field.is_partition_key = f.is_partition_key;
        field.default_value = f
            .default_value
            .as_ref()
            .and_then(|v| v.data.as_ref())
            .map(default_from);
        if data_type.is_dense_vector() {
            field.dim = param_u32(&f.type_params, "dim", &f.name)?;
            // Milvus's lower bound (coord's rules keep accepting 1: entries
            // in an older Raft log must replay the same).
            if let Some(d @ 0..=1) = field.dim {
                return Err(Error::invalid(
                    format!("{}.dim", f.name),
                    format!("invalid dimension: {d}. should be in range 2 ~ {MAX_DIM}"),
                ));
            }
        }
        if data_type == DataType::Array {
            field.element_type = Some(data_type_from(
                f.element_type,
                &format!("{}.element_type", f.name),
            )?);
            field.max_capacity = param_u32(&f.type_params, "max_capacity", &f.name)?;
        }
        if data_type == DataType::VarChar || field.element_type == Some(DataType::VarChar) {
            field.max_length = param_u32(&f.type_params, "max_length", &f.name)?;
        }
        field.enable_analyzer = param_bool(&f.type_params, "enable_analyzer", &f.name)?;
        field.enable_match = param_bool(&f.type_params, "enable_match", &f.name)?;
        field.analyzer_params = (f.type_params.iter())
            .find(|kv| kv.key == "analyzer_params")
            .map(|kv| kv.value.clone());
        fields.push(field);
    }
    if proto.enable_dynamic_field {
        fields.push(FieldSchema::new(DYNAMIC_COLUMN, DataType::Json).nullable());
    }
    fields.push(FieldSchema::new(PARTITION_COLUMN, DataType::Int64));
    fields.push(FieldSchema::new(WRITTEN_COLUMN, DataType::Int64));
    let schema = CollectionSchema {
        name: name.to_string(),
        description: proto.description.clone(),
        fields,
        enable_dynamic_field: proto.enable_dynamic_field,
        consistency: Default::default(),
        properties: Default::default(),
        functions: proto
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| function_from(i, f))
            .collect::<Result<_>>()?,
    };
    schema.validate()?;
    Ok(schema)
}

fn param_bool(params: &[KeyValuePair], key: &str, field: &str) -> Result<bool> {
    match params.iter().find(|kv| kv.key == key) {
        None => Ok(false),
        Some(kv) => match kv.value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(Error::invalid(
                format!("{field}.{key}"),
                format!("must be true or false (got {:?})", kv.value),
            )),
        },
    }
}

/// A Milvus function: BM25, from one VarChar field to one sparse field.
fn function_from(i: usize, f: &pb::FunctionSchema) -> Result<FunctionSchema> {
    let at = format!("functions[{i}]");
    if f.r#type != pb::FunctionType::Bm25 as i32 {
        return Err(Error::invalid(
            format!("{at}.type"),
            format!(
                "function type {} is not supported (BM25 is)",
                pb::FunctionType::try_from(f.r#type)
                    .map(|t| t.as_str_name().to_string())
                    .unwrap_or_else(|_| f.r#type.to_string())
            ),
        ));
    }
    let [input] = f.input_field_names.as_slice() else {
        return Err(Error::invalid(
            format!("{at}.input_field_names"),
            format!(
                "BM25 function needs exactly one input field (got {})",
                f.input_field_names.len()
            ),
        ));
    };
    let [output] = f.output_field_names.as_slice() else {
        return Err(Error::invalid(
            format!("{at}.output_field_names"),
            format!(
                "BM25 function needs exactly one output field (got {})",
                f.output_field_names.len()
            ),
        ));
    };
    Ok(FunctionSchema {
        name: f.name.clone(),
        kind: FunctionKind::Bm25,
        input: input.clone(),
        output: output.clone(),
        description: f.description.clone(),
        params: f
            .params
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect(),
    })
}

/// A Milvus default value as a cell (checked against the field's type by
/// the schema's validation).
fn default_from(v: &pb::value_field::Data) -> ScalarValue {
    use pb::value_field::Data;
    match v {
        Data::BoolData(b) => ScalarValue::Bool(*b),
        Data::IntData(i) => ScalarValue::Int(i64::from(*i)),
        Data::LongData(i) => ScalarValue::Int(*i),
        Data::FloatData(f) => ScalarValue::Float(f64::from(*f)),
        Data::DoubleData(f) => ScalarValue::Float(*f),
        Data::StringData(s) => ScalarValue::Str(s.clone()),
        Data::BytesData(b) => ScalarValue::Str(String::from_utf8_lossy(b).into_owned()),
    }
}

fn default_to(v: &ScalarValue) -> Option<pb::ValueField> {
    use pb::value_field::Data;
    let data = match v {
        ScalarValue::Bool(b) => Data::BoolData(*b),
        ScalarValue::Int(i) => Data::LongData(*i),
        ScalarValue::Float(f) => Data::DoubleData(*f),
        ScalarValue::Str(s) => Data::StringData(s.clone()),
        ScalarValue::Null
        | ScalarValue::Json(_)
        | ScalarValue::Array(_)
        | ScalarValue::Vector(_)
        | ScalarValue::Sparse(_) => {
            return None;
        }
    };
    Some(pb::ValueField { data: Some(data) })
}

/// Words of the filter language a field cannot be named (Milvus's keywords).
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "like",
    "in",
    "exists",
    "true",
    "false",
    "json_contains",
    "json_contains_all",
    "json_contains_any",
    "array_contains",
    "array_contains_all",
    "array_contains_any",
    "array_length",
    "text_match",
];

/// Milvus's field name rules, refused as it does (merr 1701, FieldNameInvalid).
fn check_field_name(i: usize, name: &str) -> Result<()> {
    let invalid = |rule: String| {
        Err(Error::FieldNameInvalid {
            field: format!("fields[{i}].name"),
            rule: format!("Invalid field name: {name:?}. {rule}"),
        })
    };
    if is_hidden(name) || name == DYNAMIC_FIELD {
        return invalid(format!("{name} is reserved (the dynamic field)"));
    }
    if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name)) {
        return invalid(format!("{name} is a reserved keyword."));
    }
    if let Err(Error::InvalidArgument { rule, .. }) = validate_name("name", name) {
        return invalid(rule);
    }
    Ok(())
}

/// The schema as Milvus describes it: without the hidden column (like Milvus,
/// which does not list `$meta`; `enable_dynamic_field` tells clients about it).
pub fn schema_to_proto(schema: &CollectionSchema) -> pb::CollectionSchema {
    let fields: Vec<pb::FieldSchema> = user_fields(schema)
        .enumerate()
        .map(|(i, f)| {
            let mut type_params = Vec::new();
            if let Some(dim) = f.dim {
                type_params.push(kv("dim", dim.to_string()));
            }
            if let Some(len) = f.max_length {
                type_params.push(kv("max_length", len.to_string()));
            }
            if let Some(cap) = f.max_capacity {
                type_params.push(kv("max_capacity", cap.to_string()));
            }
            for (k, v) in &f.properties {
                type_params.push(kv(k, v.clone()));
            }
            if f.enable_analyzer {
                type_params.push(kv("enable_analyzer", "true"));
            }
            if f.enable_match {
                type_params.push(kv("enable_match", "true"));
            }
            if let Some(p) = &f.analyzer_params {
                type_params.push(kv("analyzer_params", p.clone()));
            }
            pb::FieldSchema {
                field_id: FIRST_FIELD_ID + i as i64,
                name: f.name.clone(),
                is_primary_key: f.is_primary_key,
                description: f.description.clone(),
                data_type: data_type_to(f.data_type) as i32,
                type_params,
                auto_id: f.auto_id,
                nullable: f.nullable,
                is_partition_key: f.is_partition_key,
                default_value: f.default_value.as_ref().and_then(default_to),
                element_type: f.element_type.map_or(0, |t| data_type_to(t) as i32),
                is_function_output: schema.function_output(&f.name).is_some(),
                ..Default::default()
            }
        })
        .collect();
    let field_id = |name: &str| {
        user_fields(schema)
            .position(|f| f.name == name)
            .map_or(0, |i| FIRST_FIELD_ID + i as i64)
    };
    let functions = (schema.functions.iter().enumerate())
        .map(|(i, f)| pb::FunctionSchema {
            name: f.name.clone(),
            id: FIRST_FUNCTION_ID + i as i64,
            description: f.description.clone(),
            r#type: pb::FunctionType::Bm25 as i32,
            input_field_names: vec![f.input.clone()],
            input_field_ids: vec![field_id(&f.input)],
            output_field_names: vec![f.output.clone()],
            output_field_ids: vec![field_id(&f.output)],
            params: f.params.iter().map(|(k, v)| kv(k, v.clone())).collect(),
        })
        .collect();
    let (db, name) = quiver_common::split_qualified(&schema.name);
    pb::CollectionSchema {
        name: name.to_string(),
        description: schema.description.clone(),
        auto_id: schema.primary_field().auto_id,
        fields,
        enable_dynamic_field: schema.enable_dynamic_field,
        db_name: db.to_string(),
        functions,
        ..Default::default()
    }
}

/// The fields a Milvus client sees (everything but the hidden column).
pub fn user_fields(schema: &CollectionSchema) -> impl Iterator<Item = &FieldSchema> {
    schema.fields.iter().filter(|f| !is_hidden(&f.name))
}

pub(crate) fn kv(key: &str, value: impl Into<String>) -> KeyValuePair {
    KeyValuePair {
        key: key.to_string(),
        value: value.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, t: pb::DataType, params: &[(&str, &str)]) -> pb::FieldSchema {
        pb::FieldSchema {
            name: name.into(),
            data_type: t as i32,
            type_params: params.iter().map(|(k, v)| kv(k, *v)).collect(),
            ..Default::default()
        }
    }

    fn proto(dim: &str) -> pb::CollectionSchema {
        let mut id = field("id", pb::DataType::VarChar, &[("max_length", "16")]);
        id.is_primary_key = true;
        pb::CollectionSchema {
            name: "c".into(),
            fields: vec![
                id,
                field("v", pb::DataType::FloatVector, &[("dim", dim)]),
                field("j", pb::DataType::Json, &[]),
            ],
            enable_dynamic_field: true,
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_hides_the_dynamic_column() {
        let s = schema_from_proto("c", &proto("8")).expect("valid");
        assert_eq!(s.dim(), 8);
        assert!(s.field(DYNAMIC_COLUMN).is_some());
        let back = schema_to_proto(&s);
        let names: Vec<_> = back.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "v", "j"]);
        assert_eq!(back.fields[0].type_params, vec![kv("max_length", "16")]);
        assert!(back.enable_dynamic_field);
    }

    #[test]
    fn bad_schemas_name_the_field() {
        let e = schema_from_proto("c", &proto("x")).expect_err("dim");
        assert!(e.to_string().contains("v.dim"), "{e}");
        let e = schema_from_proto("c", &proto("0")).expect_err("dim 0");
        assert!(e.to_string().contains("v.dim"), "{e}");
        let mut p = proto("4");
        p.fields
            .push(field("b", pb::DataType::BinaryVector, &[("dim", "8")]));
        let two = schema_from_proto("c", &p).expect("two vector fields");
        assert_eq!(two.vector_field().name, "v");
        p.fields
            .push(field("b2", pb::DataType::BinaryVector, &[("dim", "12")]));
        let e = schema_from_proto("c", &p).expect_err("bits not in bytes");
        assert!(e.to_string().contains("b2.dim"), "{e}");
        let e = schema_from_proto("other", &proto("4")).expect_err("name");
        assert!(e.to_string().contains("schema.name"), "{e}");
    }
}
