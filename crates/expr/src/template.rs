//! Values of `{name}` templates (Milvus's `expr_template_values`).

use crate::error::ExprError;
use crate::ir::Const;

/// The value of one template; arrays may only follow `in`.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<TemplateValue>),
}

impl TemplateValue {
    /// The scalar constant this value stands for.
    pub(crate) fn to_const(&self, name: &str) -> Result<Const, ExprError> {
        let err = |message: &str| ExprError::Template {
            name: name.to_string(),
            message: message.to_string(),
        };
        Ok(match self {
            TemplateValue::Bool(b) => Const::Bool(*b),
            TemplateValue::Int(i) => Const::Int(*i),
            TemplateValue::Float(x) if x.is_finite() => Const::Float(*x),
            TemplateValue::Float(_) => return Err(err("a float value must be finite")),
            TemplateValue::Str(s) => Const::Str(s.clone()),
            TemplateValue::Array(_) => {
                return Err(err("an array value is only allowed after 'in'"));
            }
        })
    }
}
