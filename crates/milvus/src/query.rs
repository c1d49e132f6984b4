//! Query (filter or `pk in [..]`, limit/offset, output fields, `count(*)`);
//! pymilvus `get` is a Query with `pk in [..]`.

use std::sync::Arc;

use quiver_api::{RowPredicate, ShardHit};
use quiver_common::{Error, Result, ScalarValue};
use quiver_proto::milvus::{QueryRequest, QueryResults};
use quiver_proto::schema::FieldData;

use super::MilvusFront;
use super::fields::encode_scalar;
use super::filter;
use super::output::Outputs;
use super::search::consistency;
use super::status::{failure, success_with_cost};
use prost::Message;

fn int_param(req: &QueryRequest, key: &str) -> Result<Option<usize>> {
    req.query_params
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| {
            kv.value.trim().parse::<usize>().map_err(|_| {
                Error::invalid(
                    key,
                    format!("must be a non-negative integer (got {:?})", kv.value),
                )
            })
        })
        .transpose()
}

impl MilvusFront {
    pub(crate) async fn query(&self, req: QueryRequest) -> QueryResults {
        match self.query_inner(&req).await {
            Ok((fields_data, output_fields, pk)) => QueryResults {
                status: Some(success_with_cost(
                    fields_data.iter().map(Message::encoded_len).sum(),
                )),
                fields_data,
                collection_name: super::database::plain(&req.collection_name),
                output_fields,
                primary_field_name: pk,
                ..Default::default()
            },
            Err(e) => QueryResults {
                status: Some(failure(&e)),
                ..Default::default()
            },
        }
    }

    async fn query_inner(
        &self,
        req: &QueryRequest,
    ) -> Result<(Vec<FieldData>, Vec<String>, String)> {
        let info = self.proxy.describe(&req.collection_name)?;
        let expr = self.read_expr(&info, &req.expr, &req.partition_names, "partition_names")?;
        let name = info.schema.name.clone();
        let pk_name = info.schema.primary_field().name.clone();
        let consistency = consistency(
            req.consistency_level,
            req.use_default_consistency,
            req.guarantee_timestamp,
            info.schema.consistency,
        );
        let filter = filter::compile(&self.proxy, &name, &expr, &req.expr_template_values)?;
        let limit = int_param(req, "limit")?;
        let offset = int_param(req, "offset")?.unwrap_or(0);
        let max = self.proxy.limits().max_topk;
        if let Some(l) = limit
            && (l == 0 || l.saturating_add(offset) > max)
        {
            return Err(Error::invalid(
                "limit",
                format!(
                    "limit must be >= 1 and limit + offset <= {max} (got limit {l}, offset {offset})"
                ),
            ));
        }
        let count_only = req
            .output_fields
            .iter()
            .any(|f| f.trim().eq_ignore_ascii_case("count(*)"));
        if count_only {
            if req.output_fields.len() != 1 {
                return Err(Error::invalid(
                    "output_fields",
                    "count(*) cannot be combined with other fields",
                ));
            }
            let filter = filter.map(|f| f as Arc<dyn RowPredicate>);
            let n = self.proxy.count_where(&name, filter, consistency).await?;
            let field = quiver_common::FieldSchema::new("count(*)", quiver_common::DataType::Int64);
            let v = ScalarValue::Int(n as i64);
            return Ok((
                vec![encode_scalar(&field, &[&v])],
                vec!["count(*)".to_string()],
                pk_name,
            ));
        }
        if filter.is_none() && limit.is_none() {
            return Err(Error::invalid("expr", "an empty expression needs a limit"));
        }
        let mut outputs = Outputs::resolve(&info, &req.output_fields)?;
        outputs.with_pk = true;
        if !outputs.names.contains(&pk_name) {
            outputs.names.insert(0, pk_name.clone());
        }
        let pks = filter.as_ref().and_then(|f| f.primary_keys());
        let filter = filter.map(|f| f as Arc<dyn RowPredicate>);
        let fetch = limit.map_or(usize::MAX, |l| l + offset);
        let rows = self
            .proxy
            .query(
                &name,
                pks,
                filter,
                fetch,
                outputs.engine_names(),
                outputs.with_vectors,
                consistency,
            )
            .await?;
        let rows: Vec<&ShardHit> = rows.iter().skip(offset).collect();
        Ok((outputs.encode(&info, &rows), outputs.names.clone(), pk_name))
    }
}
