//! Collection rules: create, drop, index, load state.

use quiver_common::{CollectionSchema, DataType, MMAP_PROPERTY, Metric, Timestamp, validate_name};

use crate::command::MetaResponse;
use crate::error::RuleError;
use crate::state::{CollectionMeta, FieldIndexMeta, IndexKind, IndexSpec, MetaState};

/// Milvus's limits on the number of shards of a collection.
const MAX_SHARDS: u32 = 64;
/// Milvus's bounds for HNSW's `M`.
const HNSW_M: std::ops::RangeInclusive<u32> = 2..=2048;

pub(super) fn create(
    state: &mut MetaState,
    schema: &CollectionSchema,
    shards: u32,
    metric: Metric,
    index: Option<&IndexSpec>,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    schema.validate()?;
    let name = &schema.name;
    super::database::check_exists(state, name)?;
    if state.names.contains_key(name) {
        return Err(RuleError::AlreadyExists(format!("collection {name:?}")));
    }
    if state.aliases.contains_key(name) {
        return Err(RuleError::NameConflict(format!(
            "{name:?} is an alias; a collection cannot take an alias's name"
        )));
    }
    if !(1..=MAX_SHARDS).contains(&shards) {
        return Err(RuleError::invalid(
            "shards_num",
            format!("must be between 1 and {MAX_SHARDS} (got {shards})"),
        ));
    }
    let index = match index {
        Some(spec) => {
            if spec.kind != IndexKind::None {
                check_metric(schema, &schema.vector_field().name, metric)?;
            }
            checked_index(schema, spec)?
        }
        None => IndexSpec::none(&schema.vector_field().name),
    };
    // Without an index there is nothing to load: reads answer "not loaded"
    // (Milvus's NotLoad) until CreateIndex and LoadCollection.
    // Not loaded until every vector field has an index.
    let released = index.kind == IndexKind::None || schema.vector_fields().count() > 1;
    let id = state.next_id;
    state.next_id += 1;
    state.names.insert(name.clone(), id);
    state.collections.insert(
        id,
        CollectionMeta {
            id,
            name: name.clone(),
            schema: schema.clone(),
            shards,
            metric,
            index,
            index_version: 0,
            created_ts: ts,
            updated_ts: ts,
            loaded: false,
            released,
            replica_number: 1,
            partitions: Vec::new(),
            partitions_dropped: 0,
            index_properties: Default::default(),
            field_indexes: Default::default(),
            scalar_indexes: Default::default(),
            unplaced: None,
        },
    );
    Ok(MetaResponse::CollectionCreated { id })
}

/// Renames a collection (by its own name), possibly into another database
/// (names are qualified: `quiver_common::qualify`). Aliases point by id and
/// follow it; one moving to another database must have none (as Milvus).
pub(super) fn rename(
    state: &mut MetaState,
    old: &str,
    new: &str,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    quiver_common::validate_qualified("newName", new)?;
    super::database::check_exists(state, new)?;
    let Some(&id) = state.names.get(old) else {
        return Err(RuleError::CollectionNotFound(format!("{old:?}")));
    };
    if state.names.contains_key(new) {
        return Err(RuleError::invalid(
            "newName",
            format!("duplicated new collection name {new:?}: a collection of that name exists"),
        ));
    }
    if state.aliases.contains_key(new) {
        return Err(RuleError::NameConflict(format!(
            "{new:?} is an alias; a collection cannot take an alias's name"
        )));
    }
    let (old_db, _) = quiver_common::split_qualified(old);
    let (new_db, _) = quiver_common::split_qualified(new);
    if old_db != new_db && state.aliases.values().any(|a| a.target == id) {
        return Err(RuleError::StateConflict(format!(
            "fail to rename collection {old:?} to a different database: it has aliases, drop them first"
        )));
    }
    state.names.remove(old);
    state.names.insert(new.to_string(), id);
    if let Some(meta) = state.collections.get_mut(&id) {
        meta.name = new.to_string();
        meta.schema.name = new.to_string();
        meta.updated_ts = ts;
    }
    Ok(MetaResponse::Done)
}

pub(super) fn drop(state: &mut MetaState, name: &str) -> Result<MetaResponse, RuleError> {
    let Some(&id) = state.names.get(name) else {
        if let Some(alias) = state.aliases.get(name) {
            return Err(RuleError::invalid(
                "collection_name",
                format!(
                    "{name:?} is an alias of {:?}; drop a collection by its own name",
                    state.collection_name(alias.target)
                ),
            ));
        }
        return Err(RuleError::CollectionNotFound(name.to_string()));
    };
    let aliases: Vec<&str> = state
        .aliases
        .iter()
        .filter(|(_, a)| a.target == id || a.mirror.is_some_and(|m| m.holds(id)))
        .map(|(alias, _)| alias.as_str())
        .collect();
    if !aliases.is_empty() {
        return Err(RuleError::invalid(
            "collection_name",
            format!("collection {name:?} still has aliases {aliases:?}; drop or alter them first"),
        ));
    }
    state.names.remove(name);
    state.collections.remove(&id);
    state.segments.remove(&id);
    state.owners.remove(&id);
    state.replicas.remove(&id);
    state.leaving.remove(&id);
    state.compactions.retain(|_, j| j.collection_id != id);
    Ok(MetaResponse::Done)
}

/// Sets the index of a collection without one (a new `index_version`: its
/// shards' owners re-index every segment built under another), or the same
/// index again (no change). Another index while one exists is refused, as
/// Milvus does: drop it first (which needs a release).
pub(super) fn set_index(
    state: &mut MetaState,
    collection: &str,
    spec: &IndexSpec,
    metric: Option<Metric>,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    if spec.kind == IndexKind::None {
        return Err(RuleError::invalid(
            "index_type",
            "an index needs a kind (HNSW or FLAT); use DropIndex to remove one",
        ));
    }
    let meta = lookup_mut(state, collection)?;
    let spec = checked_index(&meta.schema, spec)?;
    if spec.field_name != meta.schema.vector_field().name {
        return set_field_index(meta, spec, metric, ts);
    }
    let metric = metric.unwrap_or(meta.metric);
    check_metric(&meta.schema, &spec.field_name, metric)?;
    if meta.index.kind != IndexKind::None {
        if meta.index == spec && meta.metric == metric {
            return Ok(MetaResponse::Done);
        }
        return Err(RuleError::StateConflict(format!(
            "CreateIndex failed: at most one distinct index is allowed per field: index {:?} on field {:?} of collection {:?} exists with other parameters; release the collection and drop the index first",
            meta.index.index_name, meta.index.field_name, meta.name
        )));
    }
    meta.index = spec;
    meta.metric = metric;
    meta.index_version += 1;
    meta.updated_ts = ts;
    Ok(MetaResponse::Done)
}

/// The index of a vector field other than the first (one per field, as
/// Milvus: the same again changes nothing, another one is refused).
fn set_field_index(
    meta: &mut CollectionMeta,
    spec: IndexSpec,
    metric: Option<Metric>,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    let Some(metric) = metric else {
        return Err(RuleError::invalid(
            "metric_type",
            format!("an index on field {:?} needs a metric", spec.field_name),
        ));
    };
    check_metric(&meta.schema, &spec.field_name, metric)?;
    let new = FieldIndexMeta {
        index: spec,
        metric,
    };
    if let Some(old) = meta.field_indexes.get(&new.index.field_name) {
        if *old == new {
            return Ok(MetaResponse::Done);
        }
        return Err(RuleError::StateConflict(format!(
            "CreateIndex failed: at most one distinct index is allowed per field: index {:?} on field {:?} of collection {:?} exists with other parameters; release the collection and drop the index first",
            old.index.index_name, old.index.field_name, meta.name
        )));
    }
    meta.field_indexes.insert(new.index.field_name.clone(), new);
    meta.updated_ts = ts;
    Ok(MetaResponse::Done)
}

/// Bits are compared by HAMMING / JACCARD, numbers by L2 / IP / COSINE
/// (Milvus's message).
pub(super) fn check_metric(
    schema: &CollectionSchema,
    field: &str,
    metric: Metric,
) -> Result<(), RuleError> {
    if schema
        .field(field)
        .is_some_and(|f| f.data_type == DataType::SparseFloatVector)
    {
        // A BM25 function's output is searched by BM25 only, any other
        // sparse field by inner product (Milvus's rules and messages).
        return match (schema.function_output(field).is_some(), metric) {
            (true, Metric::Bm25) | (false, Metric::Ip) => Ok(()),
            (true, m) => Err(RuleError::invalid(
                "metric_type",
                format!(
                    "BM25 function output field only supports BM25 metric type (got {})",
                    m.as_str()
                ),
            )),
            (false, m) => Err(RuleError::invalid(
                "metric_type",
                format!(
                    "only IP is the supported metric type for sparse index (got {})",
                    m.as_str()
                ),
            )),
        };
    }
    let element = schema
        .field(field)
        .and_then(|f| f.data_type.element_type())
        .unwrap_or(quiver_common::ElementType::F32);
    if metric.fits(element) {
        return Ok(());
    }
    let kind = if element == quiver_common::ElementType::Binary {
        "binary"
    } else {
        "float"
    };
    Err(RuleError::invalid(
        "metric_type",
        format!(
            "{kind} vector index does not support metric type: {}",
            metric.as_str()
        ),
    ))
}

pub(super) fn drop_index(
    state: &mut MetaState,
    collection: &str,
    field: Option<&str>,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    let meta = lookup_mut(state, collection)?;
    if !meta.released {
        return Err(RuleError::StateConflict(format!(
            "index cannot be dropped, collection is loaded, please release it first: collection={}",
            meta.name
        )));
    }
    if let Some(f) = field.filter(|f| *f != meta.index.field_name) {
        meta.field_indexes.remove(f);
        meta.scalar_indexes.remove(f);
        meta.updated_ts = ts;
        return Ok(MetaResponse::Done);
    }
    meta.index = IndexSpec::none(&meta.index.field_name);
    meta.index_properties.clear();
    meta.updated_ts = ts;
    Ok(MetaResponse::Done)
}

pub(super) fn set_loaded(
    state: &mut MetaState,
    collection: &str,
    loaded: bool,
    replica_number: Option<u32>,
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    if replica_number == Some(0) {
        return Err(RuleError::invalid(
            "replica_number",
            "must be at least 1 (got 0)",
        ));
    }
    let meta = lookup_mut(state, collection)?;
    let unindexed = (meta.schema.vector_fields())
        .map(|f| f.name.as_str())
        .find(|f| {
            if *f == meta.index.field_name {
                meta.index.kind == IndexKind::None
            } else {
                !meta.field_indexes.contains_key(*f)
            }
        });
    if let Some(field) = unindexed.filter(|_| loaded) {
        return Err(RuleError::StateConflict(format!(
            "there is no vector index on field: [{field}], please create index firstly: collection={}: index not found",
            meta.name
        )));
    }
    meta.loaded = loaded;
    meta.released = !loaded;
    if let Some(n) = replica_number {
        meta.replica_number = n;
    }
    meta.updated_ts = ts;
    Ok(MetaResponse::Done)
}

/// Sets and deletes collection properties (TTL, mmap, any other key);
/// refused as a whole if one is invalid.
pub(super) fn alter(
    state: &mut MetaState,
    collection: &str,
    set: &std::collections::BTreeMap<String, String>,
    delete: &[String],
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    let meta = lookup_mut(state, collection)?;
    let mut schema = meta.schema.clone();
    for k in delete {
        schema.properties.remove(k);
    }
    for (k, v) in set {
        schema.properties.insert(k.clone(), v.clone());
    }
    schema.validate_properties()?;
    meta.schema = schema;
    meta.updated_ts = ts;
    Ok(MetaResponse::Done)
}

/// Whether `v` is a boolean as Milvus's properties write them.
fn is_bool(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "false")
}

/// Sets and deletes properties of the vector index: `mmap.enabled` only
/// (its build parameters are fixed until it is dropped).
pub(super) fn alter_index(
    state: &mut MetaState,
    collection: &str,
    set: &std::collections::BTreeMap<String, String>,
    delete: &[String],
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    let meta = lookup_mut(state, collection)?;
    if meta.index.kind == IndexKind::None {
        return Err(RuleError::IndexNotFound(format!(
            "collection {:?} has no index to alter",
            meta.name
        )));
    }
    for (k, v) in set {
        if k != MMAP_PROPERTY {
            return Err(RuleError::invalid(
                format!("extra_params.{k}"),
                format!("{k} cannot be altered on an index (only {MMAP_PROPERTY} can)"),
            ));
        }
        if !is_bool(v) {
            return Err(RuleError::invalid(
                format!("extra_params.{k}"),
                format!("must be true or false (got {v:?})"),
            ));
        }
    }
    for k in delete {
        meta.index_properties.remove(k);
    }
    meta.index_properties
        .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
    meta.updated_ts = ts;
    Ok(MetaResponse::Done)
}

/// Sets and deletes properties of one field: `max_length` of a VarChar
/// field (never below what it was: stored rows must still fit) and
/// `mmap.enabled`.
pub(super) fn alter_field(
    state: &mut MetaState,
    collection: &str,
    field: &str,
    set: &std::collections::BTreeMap<String, String>,
    delete: &[String],
    ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    let meta = lookup_mut(state, collection)?;
    let mut schema = meta.schema.clone();
    let Some(f) = schema.fields.iter_mut().find(|f| f.name == field) else {
        return Err(RuleError::invalid(
            "field_name",
            format!("no field {field:?} in collection {:?}", meta.name),
        ));
    };
    for k in delete {
        f.properties.remove(k);
    }
    for (k, v) in set {
        match k.as_str() {
            "max_length" => {
                let Some(old) = f.max_length else {
                    return Err(RuleError::invalid(
                        "properties.max_length",
                        format!("field {field:?} is not a VarChar field"),
                    ));
                };
                let new = v.trim().parse::<u32>().map_err(|_| {
                    RuleError::invalid(
                        "properties.max_length",
                        format!("must be a whole number (got {v:?})"),
                    )
                })?;
                if new < old {
                    return Err(RuleError::invalid(
                        "properties.max_length",
                        format!("cannot shrink from {old} to {new}: stored values may not fit"),
                    ));
                }
                f.max_length = Some(new);
            }
            MMAP_PROPERTY if is_bool(v) => {
                f.properties.insert(k.clone(), v.clone());
            }
            other => {
                return Err(RuleError::invalid(
                    format!("properties.{other}"),
                    format!(
                        "{other}={v:?} cannot be altered on a field (max_length, {MMAP_PROPERTY}=true|false can)"
                    ),
                ));
            }
        }
    }
    schema.validate()?;
    meta.schema = schema;
    meta.updated_ts = ts;
    Ok(MetaResponse::Done)
}

/// The collection named `name_or_alias` (aliases resolved), for changing it.
pub(super) fn lookup_mut<'a>(
    state: &'a mut MetaState,
    name_or_alias: &str,
) -> Result<&'a mut CollectionMeta, RuleError> {
    let id = state
        .resolve(name_or_alias)
        .and_then(|name| state.names.get(name))
        .copied();
    id.and_then(|id| state.collections.get_mut(&id))
        .ok_or_else(|| RuleError::CollectionNotFound(name_or_alias.to_string()))
}

/// Checks an index spec against the schema; fills in the default index name.
fn checked_index(schema: &CollectionSchema, spec: &IndexSpec) -> Result<IndexSpec, RuleError> {
    let Some(field) = schema.field(&spec.field_name) else {
        return Err(RuleError::invalid(
            "field_name",
            format!(
                "no field {:?} in collection {:?}",
                spec.field_name, schema.name
            ),
        ));
    };
    if !field.data_type.is_vector() {
        return Err(RuleError::invalid(
            "field_name",
            format!("field {:?} is not a vector field", spec.field_name),
        ));
    }
    let sparse_field = field.data_type == DataType::SparseFloatVector;
    let sparse_index = matches!(spec.kind, IndexKind::Sparse { .. });
    if sparse_field != sparse_index && spec.kind != IndexKind::None {
        return Err(RuleError::invalid(
            "index_type",
            if sparse_field {
                format!(
                    "sparse vector field {:?} takes SPARSE_INVERTED_INDEX or SPARSE_WAND",
                    field.name
                )
            } else {
                format!(
                    "SPARSE_INVERTED_INDEX and SPARSE_WAND are for sparse vector fields ({:?} is {:?})",
                    field.name, field.data_type
                )
            },
        ));
    }
    if let IndexKind::Sparse {
        bm25_k1_milli,
        bm25_b_milli,
        ..
    } = spec.kind
    {
        if !(1200..=2000).contains(&bm25_k1_milli) {
            return Err(RuleError::invalid(
                "bm25_k1",
                format!(
                    "must be between 1.2 and 2.0 (got {})",
                    bm25_k1_milli as f32 / 1000.0
                ),
            ));
        }
        if bm25_b_milli > 1000 {
            return Err(RuleError::invalid(
                "bm25_b",
                format!(
                    "must be between 0 and 1 (got {})",
                    bm25_b_milli as f32 / 1000.0
                ),
            ));
        }
    }
    if let IndexKind::HnswSq { .. } = spec.kind
        && field.data_type == DataType::BinaryVector
    {
        return Err(RuleError::invalid(
            "index_type",
            format!(
                "HNSW_SQ quantizes float vectors; binary vector field {:?} takes HNSW or BIN_FLAT",
                field.name
            ),
        ));
    }
    if let IndexKind::Hnsw { m, ef_construction } | IndexKind::HnswSq { m, ef_construction } =
        spec.kind
    {
        if !HNSW_M.contains(&m) {
            return Err(RuleError::invalid(
                "M",
                format!(
                    "must be between {} and {} (got {m})",
                    HNSW_M.start(),
                    HNSW_M.end()
                ),
            ));
        }
        if ef_construction == 0 {
            return Err(RuleError::invalid(
                "efConstruction",
                "must be at least 1 (got 0)",
            ));
        }
    }
    let mut spec = spec.clone();
    if spec.index_name.is_empty() {
        spec.index_name = spec.field_name.clone();
    } else {
        validate_name("index_name", &spec.index_name)?;
    }
    Ok(spec)
}
