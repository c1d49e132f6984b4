//! Insert / Upsert / Delete: FieldData columns -> `RowBatch` -> Proxy.

use quiver_api::CollectionInfo;
use quiver_common::{
    Column, DYNAMIC_FIELD, DataType, Error, Result, RowBatch, ScalarValue, Vectors,
};
use quiver_proto::common::Status;
use quiver_proto::milvus::{DeleteRequest, InsertRequest, MutationResult, UpsertRequest};
use quiver_proto::schema::{FieldData, IDs};

use super::MilvusFront;
use super::fields::{ids, json_value, pk_values, scalar_values, sparse_values, vector_values};
use super::filter;
use super::schema::{DYNAMIC_COLUMN, is_hidden};
use super::status::{failure, schema_mismatch, success_with_cost};
use prost::Message;
use quiver_proxy::WriteResult;

/// Builds the batch of an Insert / Upsert (keys left empty when absent).
pub(crate) fn decode_rows(
    info: &CollectionInfo,
    fields: &[FieldData],
    num_rows: u32,
) -> Result<RowBatch> {
    let schema = &info.schema;
    let mut rows = RowBatch {
        vectors: Vectors::f32(schema.dim(), Vec::new()),
        ..Default::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut has_vectors = false;
    for fd in fields {
        if seen.contains(&fd.field_name.as_str()) {
            return Err(Error::invalid(&fd.field_name, "the field is given twice"));
        }
        seen.push(&fd.field_name);
        if fd.is_dynamic || fd.field_name == DYNAMIC_FIELD {
            if !schema.enable_dynamic_field {
                return Err(Error::invalid(
                    DYNAMIC_FIELD,
                    "the collection has no dynamic field (enable_dynamic_field is false)",
                ));
            }
            let Some(quiver_proto::schema::field_data::Field::Scalars(s)) = &fd.field else {
                return Err(Error::invalid(DYNAMIC_FIELD, "expected JSON data"));
            };
            let Some(quiver_proto::schema::scalar_field::Data::JsonData(a)) = &s.data else {
                return Err(Error::invalid(DYNAMIC_FIELD, "expected JSON data"));
            };
            let values = a
                .data
                .iter()
                .enumerate()
                .map(|(i, b)| json_value(DYNAMIC_FIELD, i, b, true))
                .collect::<Result<_>>()?;
            rows.columns.push(Column {
                name: DYNAMIC_COLUMN.to_string(),
                values,
            });
            continue;
        }
        let f = schema
            .field(&fd.field_name)
            .filter(|f| !is_hidden(&f.name))
            .ok_or_else(|| Error::invalid(&fd.field_name, "no such field in the collection"))?;
        if f.is_primary_key {
            rows.pks = pk_values(f, fd)?;
        } else if f.data_type == DataType::SparseFloatVector {
            rows.columns.push(Column {
                name: f.name.clone(),
                values: sparse_values(f, fd)?,
            });
        } else if f.data_type.is_vector() && Some(f) != schema.dense_field() {
            // A further vector field: a column of vectors.
            let (dim, data) = vector_values(f, fd)?;
            let want = f.dim.unwrap_or(1) as usize;
            if (dim != 0 && dim != want) || !data.len().is_multiple_of(want) {
                return Err(Error::invalid(
                    &f.name,
                    format!(
                        "the field's dim is {want} (got dim {dim}, {} values)",
                        data.len()
                    ),
                ));
            }
            let dim = want;
            rows.columns.push(Column {
                name: f.name.clone(),
                values: data
                    .chunks(dim.max(1))
                    .map(|v| ScalarValue::Vector(v.to_vec()))
                    .collect(),
            });
        } else if f.data_type.is_vector() {
            let (dim, data) = vector_values(f, fd)?;
            let dim = if dim != 0 { dim } else { rows.dim() };
            rows.vectors = Vectors::f32(dim, data);
            has_vectors = true;
        } else {
            rows.columns.push(Column {
                name: f.name.clone(),
                values: scalar_values(f, fd)?,
            });
        }
    }
    let pk = schema.primary_field();
    if schema.dense_field().is_some() && !has_vectors {
        return Err(Error::invalid(
            &schema.vector_field().name,
            "missing: vectors are required",
        ));
    }
    let n = if has_vectors {
        rows.vectors.len()
    } else if num_rows != 0 {
        num_rows as usize
    } else {
        rows.rows().max(rows.pks.len())
    };
    if num_rows != 0 && n != num_rows as usize {
        return Err(Error::invalid(
            &schema.vector_field().name,
            format!(
                "expected {num_rows} vectors of dim {} (got {} floats)",
                rows.dim(),
                rows.vectors.raw_len()
            ),
        ));
    }
    fill_defaults(schema, &mut rows.columns, n);
    if schema.enable_dynamic_field && !rows.columns.iter().any(|c| c.name == DYNAMIC_COLUMN) {
        rows.columns.push(Column {
            name: DYNAMIC_COLUMN.to_string(),
            values: vec![ScalarValue::Json("{}".to_string()); n],
        });
    }
    for c in &rows.columns {
        if c.values.len() != n {
            let name = if c.name == DYNAMIC_COLUMN {
                DYNAMIC_FIELD
            } else {
                &c.name
            };
            return Err(Error::invalid(
                name,
                format!("expected {n} values (got {})", c.values.len()),
            ));
        }
    }
    if !pk.auto_id && rows.pks.is_empty() {
        return Err(Error::invalid(
            &pk.name,
            "missing: the primary key is required",
        ));
    }
    if !rows.pks.is_empty() && rows.pks.len() != n {
        return Err(Error::invalid(
            &pk.name,
            format!("expected {n} keys (got {})", rows.pks.len()),
        ));
    }
    Ok(rows)
}

/// Milvus's defaults: a field with a `default_value` takes it where a row
/// gives none (the column left out, or null); a nullable field left out is
/// null.
fn fill_defaults(schema: &quiver_common::CollectionSchema, columns: &mut Vec<Column>, n: usize) {
    for f in schema.column_fields().filter(|f| !is_hidden(&f.name)) {
        match (
            columns.iter_mut().find(|c| c.name == f.name),
            &f.default_value,
        ) {
            (Some(c), Some(d)) => {
                for v in c.values.iter_mut().filter(|v| **v == ScalarValue::Null) {
                    *v = d.clone();
                }
            }
            (None, Some(d)) => columns.push(Column {
                name: f.name.clone(),
                values: vec![d.clone(); n],
            }),
            (None, None) if f.nullable => columns.push(Column {
                name: f.name.clone(),
                values: vec![ScalarValue::Null; n],
            }),
            _ => {}
        }
    }
}

/// Whether a key occurs twice (Milvus refuses such an upsert batch).
fn has_duplicate(pks: &[quiver_common::PrimaryKey]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(pks.len());
    !pks.iter().all(|pk| seen.insert(pk))
}

/// The answer to a write of `bytes` (its encoded request).
fn mutation(
    info: &CollectionInfo,
    r: Result<WriteResult>,
    kind: Kind,
    bytes: usize,
) -> MutationResult {
    match r {
        Ok(w) => {
            let n = w.pks.len() as i64;
            let (insert_cnt, upsert_cnt, delete_cnt) = match kind {
                Kind::Insert => (n, 0, 0),
                Kind::Upsert => (0, n, 0),
                Kind::Delete => (0, 0, n),
            };
            // Milvus (since 2.3.2) answers a delete with its count only; pymilvus
            // returns the keys instead of `delete_count` when there are any.
            let (i_ds, succ_index) = match kind {
                Kind::Delete => (IDs::default(), Vec::new()),
                Kind::Insert | Kind::Upsert => (ids(&w.pks, &info.schema), (0..n as u32).collect()),
            };
            MutationResult {
                status: Some(success_with_cost(bytes + w.pks.len() * 16)),
                i_ds: Some(i_ds),
                succ_index,
                insert_cnt,
                upsert_cnt,
                delete_cnt,
                timestamp: w.ts,
                ..Default::default()
            }
        }
        Err(e) => MutationResult {
            status: Some(failure(&e)),
            ..Default::default()
        },
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Insert,
    Upsert,
    Delete,
}

fn failed(e: Error) -> MutationResult {
    status_only(failure(&e))
}

fn status_only(status: Status) -> MutationResult {
    MutationResult {
        status: Some(status),
        ..Default::default()
    }
}

impl MilvusFront {
    /// Milvus clients cache a collection's schema with its `update_timestamp`
    /// and send it with rows (`schema_timestamp`, 0 = unknown). Rows laid out
    /// for another version of the collection (e.g. dropped and re-created
    /// under the same name) are refused with `SchemaMismatch`, on which
    /// pymilvus describes the collection again and retries once.
    fn stale_schema(&self, info: &CollectionInfo, schema_ts: u64) -> Option<Status> {
        let current = self.times(info).updated;
        (schema_ts != 0 && current != 0 && schema_ts != current)
            .then(|| schema_mismatch(&info.schema.name, schema_ts, current))
    }

    pub(crate) async fn insert(&self, req: InsertRequest) -> MutationResult {
        let bytes = req.encoded_len();
        let info = match self.proxy.describe(&req.collection_name) {
            Ok(i) => i,
            Err(e) => return failed(e),
        };
        if let Some(status) = self.stale_schema(&info, req.schema_timestamp) {
            return status_only(status);
        }
        let r = match decode_rows(&info, &req.fields_data, req.num_rows).and_then(|mut rows| {
            self.place_rows(&info, &mut rows, &req.partition_name)?;
            Ok(rows)
        }) {
            Ok(rows) => self.proxy.insert(&info.schema.name, rows).await,
            Err(e) => Err(e),
        };
        mutation(&info, r, Kind::Insert, bytes)
    }

    pub(crate) async fn upsert(&self, req: UpsertRequest) -> MutationResult {
        let bytes = req.encoded_len();
        let info = match self.proxy.describe(&req.collection_name) {
            Ok(i) => i,
            Err(e) => return failed(e),
        };
        if let Some(status) = self.stale_schema(&info, req.schema_timestamp) {
            return status_only(status);
        }
        let r = match decode_rows(&info, &req.fields_data, req.num_rows).and_then(|mut rows| {
            self.place_rows(&info, &mut rows, &req.partition_name)?;
            Ok(rows)
        }) {
            Ok(rows) if rows.pks.is_empty() => Err(Error::invalid(
                &info.schema.primary_field().name,
                "missing: an upsert needs the primary keys",
            )),
            Ok(rows) if has_duplicate(&rows.pks) => Err(Error::invalid(
                &info.schema.primary_field().name,
                "duplicate primary keys are not allowed in the same batch",
            )),
            Ok(rows) => self.proxy.upsert(&info.schema.name, rows).await,
            Err(e) => Err(e),
        };
        mutation(&info, r, Kind::Upsert, bytes)
    }

    pub(crate) async fn delete(&self, req: DeleteRequest) -> MutationResult {
        let bytes = req.encoded_len();
        let info = match self.proxy.describe(&req.collection_name) {
            Ok(i) => i,
            Err(e) => return failed(e),
        };
        let r = self.delete_where(&info, &req).await;
        mutation(&info, r, Kind::Delete, bytes)
    }

    /// Deletes the rows `expr` selects: the keys it names (`pk in [..]`), else
    /// the keys of the rows matching it now.
    async fn delete_where(
        &self,
        info: &CollectionInfo,
        req: &DeleteRequest,
    ) -> Result<WriteResult> {
        let expr = self.delete_expr(info, &req.expr, &req.partition_name)?;
        let name = &info.schema.name;
        let filter = filter::compile(&self.proxy, name, &expr, &req.expr_template_values)?
            .ok_or_else(|| Error::invalid("expr", "a delete needs a filter expression"))?;
        let keys = filter.primary_keys();
        self.proxy.delete_matching(name, keys, filter).await
    }
}
