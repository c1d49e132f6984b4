//! Indexes of scalar fields (Milvus CreateIndex on a scalar field): one per
//! field, its kind checked against the field's type with Milvus's rules and
//! messages. Dropping one is `collection::drop_index` (released collections
//! only, like every index). What a querynode builds does not depend on the
//! kind: see `quiver_api::ScalarIndexKind`.

use quiver_api::{ScalarIndex, ScalarIndexKind};
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
    check(schema_field, index.kind)?;
    if let Some(old) = meta.scalar_indexes.get(field) {
        if old == index {
            return Ok(MetaResponse::Done);
        }
        return Err(RuleError::StateConflict(format!(
            "CreateIndex failed: at most one distinct index is allowed per field: index {:?} on field {field:?} of collection {:?} exists with other parameters; release the collection and drop the index first",
            old.index_name, meta.name
        )));
    }
    let taken = (meta.scalar_indexes.iter())
        .any(|(f, i)| f != field && i.index_name == index.index_name)
        || meta.index.index_name == index.index_name
        || (meta.field_indexes.values()).any(|i| i.index.index_name == index.index_name);
    if taken {
        return Err(RuleError::StateConflict(format!(
            "CreateIndex failed: index name {:?} is already used by another field of collection {:?}",
            index.index_name, meta.name
        )));
    }
    meta.scalar_indexes.insert(field.to_string(), index.clone());
    meta.updated_ts = ts;
    Ok(MetaResponse::Done)
}

/// Whether `kind` can index `field` (Milvus 2.5's rules).
pub(crate) fn check(field: &FieldSchema, kind: ScalarIndexKind) -> Result<(), RuleError> {
    let t = field.data_type;
    let element = field.element_type.unwrap_or(DataType::Bool);
    let bitmap_type = |t: DataType| t == DataType::Bool || t.is_integer() || t == DataType::VarChar;
    let numeric = t.is_integer() || matches!(t, DataType::Float | DataType::Double);
    let rule = match kind {
        _ if t.is_vector() => Some("a vector field takes a vector index (HNSW, FLAT, ...)"),
        _ if t == DataType::Json => Some(
            "a JSON field takes no index here (JSON path indexes are not supported); its filters are evaluated row by row",
        ),
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
