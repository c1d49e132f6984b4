//! Milvus filter expressions over collections with a hidden dynamic column:
//! the compiled filter reads `$meta`, rows hold it as [`DYNAMIC_COLUMN`]; the
//! filter is rewritten to read that column, so it also works when encoded
//! and evaluated on a remote querynode.

use std::collections::HashMap;
use std::sync::Arc;

use quiver_api::{RowAccess, RowPredicate};
use quiver_common::{DYNAMIC_FIELD, Error, PrimaryKey, Result};
use quiver_expr::{CompiledFilter, TemplateValue};
use quiver_proto::schema::{TemplateArrayValue, TemplateValue as PbTemplate};
use quiver_proto::schema::{template_array_value, template_value};

use super::schema::DYNAMIC_COLUMN;
use quiver_proxy::Proxy;

/// A compiled filter that reads `$meta` from the hidden dynamic column.
pub struct MilvusFilter {
    inner: Arc<CompiledFilter>,
}

impl MilvusFilter {
    /// The keys the filter names when it is of the `pk in [..]` shape.
    pub fn primary_keys(&self) -> Option<Vec<PrimaryKey>> {
        self.inner.primary_keys()
    }
}

impl RowPredicate for MilvusFilter {
    fn eval(&self, row: &dyn RowAccess) -> bool {
        self.inner.eval(row)
    }

    fn encode(&self) -> Option<Vec<u8>> {
        self.inner.encode()
    }

    fn column_terms(&self) -> &[quiver_api::ColumnTerms] {
        self.inner.column_terms()
    }

    fn column_plan(&self) -> Option<&quiver_api::ColumnPlan> {
        self.inner.column_plan()
    }
}

/// Compiles `expr` (None when it is blank).
pub fn compile(
    proxy: &Proxy,
    collection: &str,
    expr: &str,
    templates: &HashMap<String, PbTemplate>,
) -> Result<Option<Arc<MilvusFilter>>> {
    if expr.trim().is_empty() {
        return Ok(None);
    }
    let templates = templates
        .iter()
        .map(|(k, v)| Ok((k.clone(), template(k, v)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    // The rename lives inside the compiled filter (not in a row wrapper), so
    // that a remote querynode decoding it reads the same column.
    let compiled = proxy.compile_filter(collection, expr, &templates)?;
    let inner =
        Arc::new(CompiledFilter::clone(&compiled).rename_field(DYNAMIC_FIELD, DYNAMIC_COLUMN));
    Ok(Some(Arc::new(MilvusFilter { inner })))
}

fn template(name: &str, v: &PbTemplate) -> Result<TemplateValue> {
    let bad = || Error::invalid(format!("expr_template_values.{name}"), "has no value");
    Ok(match v.val.as_ref().ok_or_else(bad)? {
        template_value::Val::BoolVal(b) => TemplateValue::Bool(*b),
        template_value::Val::Int64Val(i) => TemplateValue::Int(*i),
        template_value::Val::FloatVal(f) => TemplateValue::Float(*f),
        template_value::Val::StringVal(s) => TemplateValue::Str(s.clone()),
        template_value::Val::ArrayVal(a) => array(name, a)?,
    })
}

fn array(name: &str, a: &TemplateArrayValue) -> Result<TemplateValue> {
    use template_array_value::Data;
    let bad = || Error::invalid(format!("expr_template_values.{name}"), "empty array value");
    Ok(TemplateValue::Array(
        match a.data.as_ref().ok_or_else(bad)? {
            Data::BoolData(d) => d.data.iter().map(|b| TemplateValue::Bool(*b)).collect(),
            Data::LongData(d) => d.data.iter().map(|i| TemplateValue::Int(*i)).collect(),
            Data::DoubleData(d) => d.data.iter().map(|f| TemplateValue::Float(*f)).collect(),
            Data::StringData(d) => d.data.iter().cloned().map(TemplateValue::Str).collect(),
            Data::ArrayData(d) => d
                .data
                .iter()
                .map(|x| array(name, x))
                .collect::<Result<_>>()?,
            Data::JsonData(_) => {
                return Err(Error::invalid(
                    format!("expr_template_values.{name}"),
                    "JSON template values are not supported",
                ));
            }
        },
    ))
}
