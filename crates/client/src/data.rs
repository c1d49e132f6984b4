//! Writes (insert, upsert, delete) and reads by filter (query, count).

use quiver_proto::milvus::{DeleteRequest, InsertRequest, QueryRequest, UpsertRequest};
use quiver_proto::schema::{
    DataType, FieldData, FloatArray, LongArray, ScalarField, VectorField, field_data, scalar_field,
    vector_field,
};

use crate::Client;
use crate::collection::{DEFAULT_PK_FIELD, DEFAULT_VECTOR_FIELD, kv};
use crate::error::{Error, Result, check, grpc};
use crate::value::{Id, Row, Value, decode_ids, decode_rows};

/// Rows to write: Int64 keys (omitted for an auto-id collection) and
/// row-major vectors.
#[derive(Clone, Debug)]
pub struct Rows {
    dim: usize,
    vectors: Vec<f32>,
    ids: Option<Vec<i64>>,
    pk_field: String,
    vector_field: String,
}

impl Rows {
    /// `vectors.len() / dim` rows, for fields `id` and `vector`.
    pub fn new(dim: usize, vectors: Vec<f32>) -> Self {
        Self {
            dim,
            vectors,
            ids: None,
            pk_field: DEFAULT_PK_FIELD.to_string(),
            vector_field: DEFAULT_VECTOR_FIELD.to_string(),
        }
    }

    /// The primary keys, one per row.
    pub fn with_ids(mut self, ids: Vec<i64>) -> Self {
        self.ids = Some(ids);
        self
    }

    /// Other field names than `id` and `vector`.
    pub fn with_fields(mut self, pk_field: &str, vector_field: &str) -> Self {
        self.pk_field = pk_field.to_string();
        self.vector_field = vector_field.to_string();
        self
    }

    pub fn len(&self) -> usize {
        self.vectors.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn into_fields(self) -> Result<(Vec<FieldData>, u32)> {
        if self.dim == 0 || !self.vectors.len().is_multiple_of(self.dim) {
            return Err(Error::invalid(
                &self.vector_field,
                format!(
                    "{} floats are not whole vectors of dim {}",
                    self.vectors.len(),
                    self.dim
                ),
            ));
        }
        let n = self.len();
        if n == 0 {
            return Err(Error::invalid(&self.vector_field, "no rows"));
        }
        let num_rows = u32::try_from(n)
            .map_err(|_| Error::invalid(&self.vector_field, format!("too many rows ({n})")))?;
        let mut fields = Vec::with_capacity(2);
        if let Some(ids) = self.ids {
            if ids.len() != n {
                return Err(Error::invalid(
                    &self.pk_field,
                    format!("{} ids for {n} vectors", ids.len()),
                ));
            }
            fields.push(FieldData {
                r#type: DataType::Int64 as i32,
                field_name: self.pk_field,
                field: Some(field_data::Field::Scalars(ScalarField {
                    data: Some(scalar_field::Data::LongData(LongArray { data: ids })),
                })),
                ..Default::default()
            });
        }
        fields.push(FieldData {
            r#type: DataType::FloatVector as i32,
            field_name: self.vector_field,
            field: Some(field_data::Field::Vectors(VectorField {
                dim: self.dim as i64,
                data: Some(vector_field::Data::FloatVector(FloatArray {
                    data: self.vectors,
                })),
            })),
            ..Default::default()
        });
        Ok((fields, num_rows))
    }
}

/// What a write did.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteResult {
    /// The keys written (assigned by the server for an auto-id collection).
    pub ids: Vec<Id>,
    /// Rows inserted, upserted or deleted.
    pub count: u64,
    /// The write's timestamp (Milvus layout).
    pub timestamp: u64,
}

impl Client {
    /// Inserts rows; they are durable and searchable when this returns.
    pub async fn insert(&self, collection: &str, rows: Rows) -> Result<WriteResult> {
        let (fields_data, num_rows) = rows.into_fields()?;
        let r = grpc(
            "Insert",
            self.stub()
                .insert(InsertRequest {
                    collection_name: collection.to_string(),
                    fields_data,
                    num_rows,
                    ..Default::default()
                })
                .await,
        )?;
        check("Insert", r.status)?;
        Ok(WriteResult {
            ids: decode_ids(r.i_ds),
            count: u64::try_from(r.insert_cnt).unwrap_or(0),
            timestamp: r.timestamp,
        })
    }

    /// Inserts rows, replacing the rows that have the same keys.
    pub async fn upsert(&self, collection: &str, rows: Rows) -> Result<WriteResult> {
        let (fields_data, num_rows) = rows.into_fields()?;
        let r = grpc(
            "Upsert",
            self.stub()
                .upsert(UpsertRequest {
                    collection_name: collection.to_string(),
                    fields_data,
                    num_rows,
                    ..Default::default()
                })
                .await,
        )?;
        check("Upsert", r.status)?;
        Ok(WriteResult {
            ids: decode_ids(r.i_ds),
            count: u64::try_from(r.upsert_cnt).unwrap_or(0),
            timestamp: r.timestamp,
        })
    }

    /// Deletes the rows matching a filter expression (`id in [1, 2]`, `age > 3`).
    pub async fn delete(&self, collection: &str, filter: &str) -> Result<WriteResult> {
        let r = grpc(
            "Delete",
            self.stub()
                .delete(DeleteRequest {
                    collection_name: collection.to_string(),
                    expr: filter.to_string(),
                    ..Default::default()
                })
                .await,
        )?;
        check("Delete", r.status)?;
        Ok(WriteResult {
            ids: decode_ids(r.i_ds),
            count: u64::try_from(r.delete_cnt).unwrap_or(0),
            timestamp: r.timestamp,
        })
    }

    /// The rows matching `filter` (at most `limit`; an empty filter needs a
    /// limit), with `output_fields` (`*` for all, the key is always included).
    /// Reads are Strong: everything acknowledged before is visible.
    pub async fn query(
        &self,
        collection: &str,
        filter: &str,
        output_fields: &[&str],
        limit: Option<usize>,
    ) -> Result<Vec<Row>> {
        let r = grpc(
            "Query",
            self.stub()
                .query(QueryRequest {
                    collection_name: collection.to_string(),
                    expr: filter.to_string(),
                    output_fields: output_fields.iter().map(|f| f.to_string()).collect(),
                    query_params: limit
                        .map(|l| vec![kv("limit", l.to_string())])
                        .unwrap_or_default(),
                    ..Default::default()
                })
                .await,
        )?;
        check("Query", r.status)?;
        let n = r
            .fields_data
            .iter()
            .find(|f| f.field_name == r.primary_field_name)
            .or_else(|| r.fields_data.first())
            .map_or(0, column_len);
        decode_rows("Query", &r.fields_data, n)
    }

    /// The number of rows in the collection (Strong).
    pub async fn count(&self, collection: &str) -> Result<u64> {
        let r = grpc(
            "Query",
            self.stub()
                .query(QueryRequest {
                    collection_name: collection.to_string(),
                    output_fields: vec!["count(*)".to_string()],
                    ..Default::default()
                })
                .await,
        )?;
        check("Query", r.status)?;
        let column = r
            .fields_data
            .first()
            .ok_or_else(|| Error::protocol("Query", "count(*) returned no column"))?;
        match crate::value::decode_column("Query", column, 1)?.first() {
            Some(Value::Int(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
            other => Err(Error::protocol(
                "Query",
                format!("count(*) returned {other:?}"),
            )),
        }
    }
}

/// The number of rows in a result column.
fn column_len(fd: &FieldData) -> usize {
    use scalar_field::Data;
    match &fd.field {
        Some(field_data::Field::Scalars(s)) => match &s.data {
            Some(Data::BoolData(a)) => a.data.len(),
            Some(Data::IntData(a)) => a.data.len(),
            Some(Data::LongData(a)) => a.data.len(),
            Some(Data::FloatData(a)) => a.data.len(),
            Some(Data::DoubleData(a)) => a.data.len(),
            Some(Data::StringData(a)) => a.data.len(),
            Some(Data::JsonData(a)) => a.data.len(),
            _ => 0,
        },
        Some(field_data::Field::Vectors(v)) => match &v.data {
            Some(vector_field::Data::FloatVector(a)) => a
                .data
                .len()
                .checked_div(usize::try_from(v.dim).unwrap_or(0))
                .unwrap_or(0),
            _ => 0,
        },
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_checked_before_sending() {
        let e = Rows::new(3, vec![1.0; 4])
            .into_fields()
            .expect_err("ragged");
        assert!(e.to_string().contains("vector"), "{e}");
        let e = Rows::new(2, vec![1.0; 4])
            .with_ids(vec![1])
            .into_fields()
            .expect_err("ids");
        assert!(e.to_string().contains("1 ids for 2 vectors"), "{e}");
        let (fields, n) = Rows::new(2, vec![1.0; 4])
            .with_ids(vec![1, 2])
            .with_fields("pk", "emb")
            .into_fields()
            .expect("fields");
        assert_eq!(n, 2);
        assert_eq!(fields[0].field_name, "pk");
        assert_eq!(fields[1].field_name, "emb");
        assert!(Rows::new(2, vec![]).into_fields().is_err());
    }
}
