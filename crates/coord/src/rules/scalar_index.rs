//! Indexes of scalar fields (Milvus CreateIndex on a scalar field): one per
//! field, its kind checked against the field's type with Milvus's rules and
//! messages. Dropping one is `collection::drop_index` (released collections
//! only, like every index). What a querynode builds does not depend on the
//! kind: see `quiver_api::ScalarIndexKind`.

use quiver_api::{JSON_CAST_TYPES, ScalarIndex, ScalarIndexKind, json_path_key, parse_json_path};
use quiver_common::{DataType, FieldSchema, Timestamp};

use super::collection::lookup_mut;
use crate::command::MetaResponse;
use crate::error::RuleError;
use crate::state::MetaState;

pub(super) fn set(
    state: &mut MetaState,
    collection: &str,
    field: &str,
    index: &ScalarIndex,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    let meta = lookup_mut(state, collection)?;
    let schema_field = meta.schema.field(field).ok_or_else(|| {
        RuleError::invalid(
            "field_name",
            format!("no field {field:?} in collection {:?}", meta.name),
        )
    })?;
    check(schema_field, index)?;
    let key = index.key(field).to_string();
    if let Some(old) = meta.scalar_indexes.get(&key) {
        if old == index {
            return Ok(MetaResponse::Done);
        }
        let what = if index.json.is_some() {
            "JSON path"
        } else {
            "field"
        };
        return Err(RuleError::StateConflict(format!(
            "CreateIndex failed: at most one distinct index is allowed per {what}: index {:?} on {what} {key:?} of collection {:?} exists with other parameters; release the collection and drop the index first",
            old.index_name, meta.name
        )));
    }
    let taken = (meta.scalar_indexes.iter())
        .any(|(f, i)| *f != key && i.index_name == index.index_name)
        || meta.index.index_name == index.index_name
        || (meta.field_indexes.values()).any(|i| i.index.index_name == index.index_name);
    if taken {
        return Err(RuleError::StateConflict(format!(
            "CreateIndex failed: index name {:?} is already used by another field of collection {:?}",
            index.index_name, meta.name
        )));
    }
    meta.scalar_indexes.insert(key, index.clone());
    meta.updated_ts = ts;
    Ok(MetaResponse::Done)
}

/// Whether `index` can index `field` (Milvus 2.5's rules).
pub(crate) fn check(field: &FieldSchema, index: &ScalarIndex) -> Result<(), RuleError> {
    let kind = index.kind;
    if field.data_type == DataType::Json {
        return check_json(field, index);
    }
    if index.json.is_some() {
        return Err(RuleError::invalid(
            "json_path",
            format!(
                "field {:?} is not a JSON field: json_path and json_cast_type index JSON fields only",
                field.name
            ),
        ));
    }
    let t = field.data_type;
    let element = field.element_type.unwrap_or(DataType::Bool);
    let bitmap_type = |t: DataType| t == DataType::Bool || t.is_integer() || t == DataType::VarChar;
    let numeric = t.is_integer() || matches!(t, DataType::Float | DataType::Double);
    let rule = match kind {
        _ if t.is_vector() => Some("a vector field takes a vector index (HNSW, FLAT, ...)"),
        ScalarIndexKind::StlSort if !numeric => {
            Some("STL_SORT are only supported on numeric field")
        }
        ScalarIndexKind::Trie if t != DataType::VarChar => {
            Some("TRIE are only supported on varchar field")
        }
        ScalarIndexKind::Bitmap
            if field.is_primary_key
                || !(bitmap_type(t) || (t == DataType::Array && bitmap_type(element))) =>
        {
            Some(
                "bitmap index are only supported on bool, int, string and array fields (not the primary key)",
            )
        }
        _ => None,
    };
    match rule {
        Some(rule) => Err(RuleError::invalid(
            "index_type",
            format!("{} on field {:?}: {rule}", kind.as_str(), field.name),
        )),
        None => Ok(()),
    }
}

/// A JSON field's index: INVERTED or AUTOINDEX over one path of the field,
/// with a cast Milvus knows.
fn check_json(field: &FieldSchema, index: &ScalarIndex) -> Result<(), RuleError> {
    let example = json_path_key(&field.name, &[quiver_api::JsonStep::Key("key".into())]);
    let Some(json) = &index.json else {
        return Err(RuleError::invalid(
            "json_cast_type",
            format!(
                "{} on JSON field {:?}: a JSON field is indexed by path: set params json_path (such as {:?}) and json_cast_type (one of {})",
                index.kind.as_str(),
                field.name,
                example,
                JSON_CAST_TYPES.join(", ")
            ),
        ));
    };
    if !matches!(
        index.kind,
        ScalarIndexKind::Inverted | ScalarIndexKind::Auto
    ) {
        return Err(RuleError::invalid(
            "index_type",
            format!(
                "{} on JSON field {:?}: a JSON path index is INVERTED or AUTOINDEX",
                index.kind.as_str(),
                field.name
            ),
        ));
    }
    let parsed = parse_json_path(&json.path).map_err(|e| RuleError::invalid("json_path", e))?;
    if parsed.0 != field.name || json_path_key(&parsed.0, &parsed.1) != json.path {
        return Err(RuleError::invalid(
            "json_path",
            format!(
                "{:?} is not a path of field {:?} (such as {:?})",
                json.path, field.name, example
            ),
        ));
    }
    if !JSON_CAST_TYPES.contains(&json.cast.as_str()) {
        return Err(RuleError::invalid(
            "json_cast_type",
            format!(
                "{:?} is not a JSON cast type (one of {})",
                json.cast,
                JSON_CAST_TYPES.join(", ")
            ),
        ));
    }
    match json.cast_function.as_deref() {
        None => Ok(()),
        Some("STRING_TO_DOUBLE") if json.cast == "DOUBLE" => Ok(()),
        Some(other) => Err(RuleError::invalid(
            "json_cast_function",
            format!(
                "{other:?} is not a cast function here (STRING_TO_DOUBLE, with json_cast_type DOUBLE, is)"
            ),
        )),
    }
}
