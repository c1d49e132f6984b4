//! Type checking an [`Expr`] against a schema and turning it into the
//! compiled form ([`Pred`] / [`Val`]).

use std::collections::HashMap;

use quiver_common::CollectionSchema;

use crate::ast::{CmpOp, Expr};
use crate::error::ExprError;
use crate::eval::{V, arith, compare};
use crate::ir::{Const, Pred, Val};
use crate::template::TemplateValue;

/// The static type of a value; `Json` is only known per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Bool,
    Int,
    Float,
    Str,
    Json,
}

impl Ty {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::Int => "integer",
            Ty::Float => "float",
            Ty::Str => "string",
            Ty::Json => "JSON",
        }
    }

    pub(crate) fn is_numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float | Ty::Json)
    }

    pub(crate) fn of(c: &Const) -> Ty {
        match c {
            Const::Bool(_) => Ty::Bool,
            Const::Int(_) => Ty::Int,
            Const::Float(_) => Ty::Float,
            Const::Str(_) => Ty::Str,
        }
    }
}

pub(crate) struct Compiler<'s> {
    pub(crate) schema: &'s CollectionSchema,
    pub(crate) templates: &'s HashMap<String, TemplateValue>,
    /// Names of the JSON fields used, by cache slot.
    pub(crate) json_slots: Vec<String>,
}

impl Compiler<'_> {
    /// A type error about `e`, attributed to the first field it mentions.
    pub(crate) fn type_err(&self, e: &Expr, message: String) -> ExprError {
        match e.first_field() {
            Some(f) => ExprError::Field {
                field: f.to_string(),
                message,
            },
            None => ExprError::Type(message),
        }
    }

    /// A field-less type error inside `whole`, attributed to its field.
    fn attribute(&self, whole: &Expr, err: ExprError) -> ExprError {
        match err {
            ExprError::Type(m) => self.type_err(whole, m),
            other => other,
        }
    }

    /// `e` used as a condition.
    pub(crate) fn pred(&mut self, e: &Expr) -> Result<Pred, ExprError> {
        Ok(match e {
            Expr::And(items) => Pred::And(self.preds(items)?),
            Expr::Or(items) => Pred::Or(self.preds(items)?),
            Expr::Not(x) => match self.pred(x)? {
                Pred::Const(b) => Pred::Const(!b),
                p => Pred::Not(Box::new(p)),
            },
            Expr::Cmp { op, lhs, rhs } => self.cmp(e, *op, lhs, rhs)?,
            Expr::Range {
                lower,
                lower_op,
                mid,
                upper_op,
                upper,
            } => Pred::And(vec![
                self.cmp(e, *lower_op, lower, mid)?,
                self.cmp(e, *upper_op, mid, upper)?,
            ]),
            Expr::In {
                expr,
                list,
                negated,
            } => self.in_list(expr, list, *negated)?,
            Expr::Like { expr, pattern } => self.like(expr, pattern)?,
            Expr::Call { name, args } => self.call_pred(e, name, args)?,
            Expr::IsNull { expr, negated } => match &**expr {
                Expr::Field { name, path } => Pred::IsNull {
                    val: self.field(name, path)?.0,
                    negated: *negated,
                },
                other => {
                    return Err(self.type_err(e, format!("'is null' needs a field, found {other}")));
                }
            },
            _ => match self.val(e)? {
                (Val::Const(Const::Bool(b)), _) => Pred::Const(b),
                (v, Ty::Bool | Ty::Json) => Pred::Truth(v),
                (_, ty) => {
                    let what = self.describe(e, ty);
                    return Err(self.type_err(e, format!("{what} is not a boolean condition")));
                }
            },
        })
    }

    fn preds(&mut self, items: &[Expr]) -> Result<Vec<Pred>, ExprError> {
        items.iter().map(|i| self.pred(i)).collect()
    }

    /// `e` used as a value.
    pub(crate) fn val(&mut self, e: &Expr) -> Result<(Val, Ty), ExprError> {
        let c = |c: Const| {
            let ty = Ty::of(&c);
            Ok((Val::Const(c), ty))
        };
        match e {
            Expr::Bool(b) => c(Const::Bool(*b)),
            Expr::Int(i) => c(Const::Int(*i)),
            Expr::Float(x) => c(Const::Float(*x)),
            Expr::Str(s) => c(Const::Str(s.clone())),
            Expr::Array(_) => Err(self.type_err(
                e,
                format!("the list {e} is only allowed after 'in' / 'not in'"),
            )),
            Expr::Template(name) => c(self.template(name)?.to_const(name)?),
            Expr::Field { name, path } => self.field(name, path),
            Expr::Call { name, args } => self.call_val(e, name, args),
            Expr::Neg(x) => {
                let (v, ty) = self.val(x)?;
                self.numeric(x, ty, "'-'")?;
                self.fold(e, Val::Neg(Box::new(v)), ty)
            }
            Expr::Arith { op, lhs, rhs } => {
                let (l, lt) = self.val(lhs)?;
                let (r, rt) = self.val(rhs)?;
                self.numeric(lhs, lt, op.as_str())?;
                self.numeric(rhs, rt, op.as_str())?;
                let ty = match (lt, rt) {
                    (Ty::Json, _) | (_, Ty::Json) => Ty::Json,
                    (Ty::Int, Ty::Int) => Ty::Int,
                    _ => Ty::Float,
                };
                let v = Val::Arith {
                    op: *op,
                    lhs: Box::new(l),
                    rhs: Box::new(r),
                };
                self.fold(e, v, ty)
            }
            _ => match self.pred(e)? {
                Pred::Const(b) => c(Const::Bool(b)),
                p => Ok((Val::Pred(Box::new(p)), Ty::Bool)),
            },
        }
    }

    pub(crate) fn template(&self, name: &str) -> Result<&TemplateValue, ExprError> {
        self.templates.get(name).ok_or_else(|| ExprError::Template {
            name: name.to_string(),
            message: "no value was given for this template".to_string(),
        })
    }

    fn numeric(&self, e: &Expr, ty: Ty, op: &str) -> Result<(), ExprError> {
        if ty.is_numeric() {
            return Ok(());
        }
        let what = self.describe(e, ty);
        Err(self.type_err(e, format!("{op} needs numbers, but {what} is not a number")))
    }

    /// Computes `v` now when all its inputs are constants.
    fn fold(&self, e: &Expr, v: Val, ty: Ty) -> Result<(Val, Ty), ExprError> {
        let r = match &v {
            Val::Neg(x) => match &**x {
                Val::Const(Const::Int(i)) => i.checked_neg().map_or(V::Null, V::Int),
                Val::Const(Const::Float(f)) => V::Float(-f),
                _ => return Ok((v, ty)),
            },
            Val::Arith { op, lhs, rhs } => match (&**lhs, &**rhs) {
                (Val::Const(a), Val::Const(b)) => arith(*op, a.as_v(), b.as_v()),
                _ => return Ok((v, ty)),
            },
            _ => return Ok((v, ty)),
        };
        let c = match r {
            V::Int(i) => Const::Int(i),
            V::Float(f) => Const::Float(f),
            _ => {
                return Err(ExprError::Type(format!(
                    "{e}: integer overflow or division by zero"
                )));
            }
        };
        let ty = Ty::of(&c);
        Ok((Val::Const(c), ty))
    }

    /// `lhs op rhs` (`whole` is the expression for error messages).
    fn cmp(&mut self, whole: &Expr, op: CmpOp, lhs: &Expr, rhs: &Expr) -> Result<Pred, ExprError> {
        let (l, lt) = self.val(lhs).map_err(|e| self.attribute(whole, e))?;
        let (r, rt) = self.val(rhs).map_err(|e| self.attribute(whole, e))?;
        let how = format!("using '{}'", op.as_str());
        self.check_comparable(whole, op, &how, (lhs, lt), (rhs, rt))?;
        if let (Val::Const(a), Val::Const(b)) = (&l, &r) {
            return Ok(Pred::Const(
                compare(op, a.as_v(), b.as_v()).unwrap_or(false),
            ));
        }
        Ok(Pred::Cmp { op, lhs: l, rhs: r })
    }

    pub(crate) fn check_comparable(
        &self,
        whole: &Expr,
        op: CmpOp,
        how: &str,
        (a, at): (&Expr, Ty),
        (b, bt): (&Expr, Ty),
    ) -> Result<(), ExprError> {
        let ok = match (at, bt) {
            (Ty::Json, _) | (_, Ty::Json) => true,
            (Ty::Int | Ty::Float, Ty::Int | Ty::Float) | (Ty::Str, Ty::Str) => true,
            (Ty::Bool, Ty::Bool) => matches!(op, CmpOp::Eq | CmpOp::Ne),
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let message = format!(
            "cannot compare {} with {} {how}",
            self.describe(a, at),
            self.describe(b, bt),
        );
        Err(self.type_err(whole, message))
    }
}
