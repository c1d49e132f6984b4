//! Compiling fields (schema lookup, dynamic keys), `in` lists and `like`.

use quiver_common::{DYNAMIC_FIELD, DataType};

use crate::ast::{CmpOp, Expr, PathElem};
use crate::compile::{Compiler, Ty};
use crate::error::ExprError;
use crate::ir::{Const, Pred, Val, ValueSet};
use crate::like::LikePattern;
use crate::template::TemplateValue;

impl Compiler<'_> {
    /// A field reference: a schema field, `$meta`, or a dynamic key.
    pub(crate) fn field(&mut self, name: &str, path: &[PathElem]) -> Result<(Val, Ty), ExprError> {
        let err = |message: String| ExprError::Field {
            field: name.to_string(),
            message,
        };
        let Some(f) = self.schema.field(name) else {
            if !self.schema.enable_dynamic_field {
                return Err(ExprError::UnknownField(name.to_string()));
            }
            let mut full = Vec::with_capacity(path.len() + 1);
            if name != DYNAMIC_FIELD {
                full.push(PathElem::Key(name.to_string()));
            }
            full.extend_from_slice(path);
            return Ok((self.json(DYNAMIC_FIELD, full), Ty::Json));
        };
        let ty = match f.data_type {
            DataType::Bool => Ty::Bool,
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Ty::Int,
            DataType::Float | DataType::Double => Ty::Float,
            DataType::VarChar => Ty::Str,
            // An Array reads as a JSON array: `tags[0]`, and the array
            // functions, work on both alike.
            DataType::Json | DataType::Array => {
                return Ok((self.json(name, path.to_vec()), Ty::Json));
            }
            DataType::FloatVector
            | DataType::BinaryVector
            | DataType::Float16Vector
            | DataType::BFloat16Vector
            | DataType::Int8Vector
            | DataType::SparseFloatVector => {
                return Err(err("a vector field cannot be used in a filter".into()));
            }
        };
        if !path.is_empty() {
            return Err(err(format!(
                "a {:?} field is not JSON and cannot be indexed with [...]",
                f.data_type
            )));
        }
        let v = if f.is_primary_key {
            Val::Pk
        } else {
            Val::Field(name.to_string())
        };
        Ok((v, ty))
    }

    fn json(&mut self, name: &str, path: Vec<PathElem>) -> Val {
        let slot = match self.json_slots.iter().position(|n| n == name) {
            Some(s) => s,
            None => {
                self.json_slots.push(name.to_string());
                self.json_slots.len() - 1
            }
        };
        Val::Json {
            name: name.to_string(),
            slot,
            path,
        }
    }

    /// `expr [not] in list`.
    pub(crate) fn in_list(
        &mut self,
        expr: &Expr,
        list: &Expr,
        negated: bool,
    ) -> Result<Pred, ExprError> {
        let (val, ty) = self.val(expr)?;
        let items: Vec<Const> = match list {
            Expr::Array(elems) => elems
                .iter()
                .map(|el| match self.val(el)? {
                    (Val::Const(c), _) => Ok(c),
                    _ => Err(self.type_err(
                        expr,
                        format!("the list after 'in' must hold constants, found {el}"),
                    )),
                })
                .collect::<Result<_, _>>()?,
            Expr::Template(name) => match self.template(name)? {
                TemplateValue::Array(vs) => vs
                    .iter()
                    .map(|v| v.to_const(name))
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(ExprError::Template {
                        name: name.clone(),
                        message: "must be an array to follow 'in'".into(),
                    });
                }
            },
            other => {
                return Err(
                    self.type_err(expr, format!("expected a list after 'in', found {other}"))
                );
            }
        };
        // One check per kind of element is enough.
        let mut checked = Vec::new();
        for c in &items {
            let t = Ty::of(c);
            if !checked.contains(&t) {
                checked.push(t);
                self.check_comparable(
                    expr,
                    CmpOp::Eq,
                    "in an 'in' list",
                    (expr, ty),
                    (&const_expr(c), t),
                )?;
            }
        }
        let set = ValueSet::new(items);
        Ok(Pred::In { val, set, negated })
    }

    /// `expr like pattern`.
    pub(crate) fn like(&mut self, expr: &Expr, pattern: &Expr) -> Result<Pred, ExprError> {
        let (val, ty) = self.val(expr)?;
        if !matches!(ty, Ty::Str | Ty::Json) {
            let what = self.describe(expr, ty);
            return Err(self.type_err(
                expr,
                format!("'like' needs a VarChar or JSON value, but {what} is not a string"),
            ));
        }
        let text = match pattern {
            Expr::Str(s) => s.clone(),
            Expr::Template(name) => match self.template(name)? {
                TemplateValue::Str(s) => s.clone(),
                _ => {
                    return Err(ExprError::Template {
                        name: name.clone(),
                        message: "must be a string to be a 'like' pattern".into(),
                    });
                }
            },
            other => {
                return Err(self.type_err(
                    expr,
                    format!("the 'like' pattern must be a string, found {other}"),
                ));
            }
        };
        Ok(Pred::Like {
            val,
            pattern: LikePattern::new(&text),
        })
    }

    /// `e` with its type for messages: `field age (Int64)`, `"x" (string)`.
    pub(crate) fn describe(&self, e: &Expr, ty: Ty) -> String {
        if let Expr::Field { name, path } = e
            && path.is_empty()
            && let Some(f) = self.schema.field(name)
        {
            return format!("field {name} ({:?})", f.data_type);
        }
        match e {
            Expr::Field { .. } => format!("field {e} ({})", ty.name()),
            _ => format!("{e} ({})", ty.name()),
        }
    }
}

fn const_expr(c: &Const) -> Expr {
    match c {
        Const::Bool(b) => Expr::Bool(*b),
        Const::Int(i) => Expr::Int(*i),
        Const::Float(x) => Expr::Float(*x),
        Const::Str(s) => Expr::Str(s.clone()),
    }
}
