//! `output_fields` of Search / Query: which columns to fetch and how to send
//! them back (schema fields, the vector, `*`, `$meta` and dynamic keys).

use quiver_api::{CollectionInfo, ShardHit};
use quiver_common::{DYNAMIC_FIELD, DataType, Error, FieldSchema, Result, ScalarValue};
use quiver_proto::schema::FieldData;

use super::fields::{encode_pks, encode_scalar, encode_sparse, encode_vectors};
use super::schema::{DYNAMIC_COLUMN, is_hidden, user_fields};

/// What to fetch for the requested output fields.
pub(crate) struct Outputs {
    /// Scalar columns the engine returns with each hit (in this order).
    pub columns: Vec<FieldSchema>,
    pub with_vectors: bool,
    pub with_pk: bool,
    /// The `output_fields` of the response.
    pub names: Vec<String>,
}

impl Outputs {
    pub fn resolve(info: &CollectionInfo, requested: &[String]) -> Result<Self> {
        let schema = &info.schema;
        let mut out = Outputs {
            columns: Vec::new(),
            with_vectors: false,
            with_pk: false,
            names: Vec::new(),
        };
        let dynamic = schema.field(DYNAMIC_COLUMN).cloned();
        // The first dense vector field travels as each hit's vector;
        // further vector fields are columns.
        let first_vector = schema
            .dense_field()
            .map(|f| f.name.clone())
            .unwrap_or_default();
        let add_column = |out: &mut Outputs, f: &FieldSchema| {
            if !out.columns.iter().any(|c| c.name == f.name) {
                out.columns.push(f.clone());
            }
        };
        for name in requested.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            let push_name = |out: &mut Outputs, n: &str| {
                if !out.names.iter().any(|x| x == n) {
                    out.names.push(n.to_string());
                }
            };
            if name == "*" {
                // A function's output is never returned (as Milvus).
                for f in user_fields(schema).filter(|f| schema.function_output(&f.name).is_none()) {
                    if f.is_primary_key {
                        out.with_pk = true;
                    } else if f.name == first_vector {
                        out.with_vectors = true;
                    } else {
                        add_column(&mut out, f);
                    }
                    push_name(&mut out, &f.name);
                }
                if let Some(d) = &dynamic {
                    add_column(&mut out, d);
                    push_name(&mut out, DYNAMIC_FIELD);
                }
                continue;
            }
            if let Some(func) = schema.function_output(name) {
                return Err(Error::invalid(
                    "output_fields",
                    format!(
                        "not allowed to retrieve raw data of field {name:?}: it is the output of function {:?}",
                        func.name
                    ),
                ));
            }
            match schema.field(name).filter(|f| !is_hidden(&f.name)) {
                Some(f) if f.is_primary_key => out.with_pk = true,
                Some(f) if f.name == first_vector => out.with_vectors = true,
                Some(f) => add_column(&mut out, f),
                None => match &dynamic {
                    Some(d) => add_column(&mut out, d),
                    None => {
                        return Err(Error::invalid(
                            "output_fields",
                            format!("no field {name:?} in the collection"),
                        ));
                    }
                },
            }
            push_name(&mut out, name);
        }
        Ok(out)
    }

    /// Engine column names.
    pub fn engine_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// The columns of `hits` (all queries concatenated) for the client.
    pub fn encode(&self, info: &CollectionInfo, hits: &[&ShardHit]) -> Vec<FieldData> {
        let mut out = Vec::new();
        if self.with_pk {
            let pks: Vec<_> = hits.iter().map(|h| &h.pk).collect();
            out.push(encode_pks(info.schema.primary_field(), &pks));
        }
        for (i, f) in self.columns.iter().enumerate() {
            if f.data_type == DataType::SparseFloatVector {
                let values: Vec<&ScalarValue> = hits
                    .iter()
                    .map(|h| h.fields.get(i).unwrap_or(&ScalarValue::Null))
                    .collect();
                out.push(encode_sparse(f, &values));
                continue;
            }
            if f.data_type.is_vector() {
                let dim = f.dim.unwrap_or(0) as usize;
                let mut data = Vec::with_capacity(hits.len() * dim);
                for h in hits {
                    match h.fields.get(i) {
                        Some(ScalarValue::Vector(v)) if v.len() == dim => data.extend_from_slice(v),
                        _ => data.extend(std::iter::repeat_n(0.0, dim)),
                    }
                }
                out.push(encode_vectors(f, dim, data));
                continue;
            }
            let values: Vec<&ScalarValue> = hits
                .iter()
                .map(|h| h.fields.get(i).unwrap_or(&ScalarValue::Null))
                .collect();
            out.push(encode_scalar(f, &values));
        }
        if self.with_vectors {
            let vf = info.schema.vector_field();
            let dim = info.schema.dim();
            let mut data = Vec::with_capacity(hits.len() * dim);
            for h in hits {
                match &h.vector {
                    Some(v) if v.len() == dim => data.extend_from_slice(v),
                    _ => data.extend(std::iter::repeat_n(0.0, dim)),
                }
            }
            out.push(encode_vectors(vf, dim, data));
        }
        out
    }
}
