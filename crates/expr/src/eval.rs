//! Evaluation of compiled expressions against one row, with SQL-style
//! three-valued logic: `None` is unknown (a NULL took part) and a row
//! passes only when its filter is `Some(true)`.

use std::cell::OnceCell;
use std::cmp::Ordering;

use quiver_api::RowAccess;
pub(crate) use quiver_api::cmp_int_float;
use quiver_common::{PrimaryKey, ScalarValue, ValueRef};
use serde_json::Value as Json;

use crate::ast::{ArithOp, CmpOp, PathElem};
use crate::ir::{Const, Pred, Val};

/// A value during evaluation. JSON scalars become their plain variants.
#[derive(Debug, Clone, Copy)]
pub(crate) enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    /// A JSON array or object.
    Json(&'a Json),
}

/// Per-row state: the row and the JSON fields parsed so far (lives on the
/// stack of one `eval` call, so the filter itself stays immutable).
pub(crate) struct Ctx<'a> {
    row: &'a dyn RowAccess,
    json: Vec<OnceCell<Option<Json>>>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(row: &'a dyn RowAccess, json_slots: usize) -> Self {
        Ctx {
            row,
            json: (0..json_slots).map(|_| OnceCell::new()).collect(),
        }
    }
}

impl Const {
    pub(crate) fn as_v(&self) -> V<'_> {
        match self {
            Const::Bool(b) => V::Bool(*b),
            Const::Int(i) => V::Int(*i),
            Const::Float(x) => V::Float(*x),
            Const::Str(s) => V::Str(s),
        }
    }
}

pub(crate) fn value<'a>(v: &'a Val, cx: &'a Ctx<'a>) -> V<'a> {
    match v {
        Val::Const(c) => c.as_v(),
        Val::Pk => match cx.row.pk() {
            PrimaryKey::Int(i) => V::Int(*i),
            PrimaryKey::Str(s) => V::Str(s),
        },
        Val::Field(name) => match cx.row.field(name) {
            Some(ValueRef::Bool(b)) => V::Bool(b),
            Some(ValueRef::Int(i)) => V::Int(i),
            Some(ValueRef::Float(x)) => V::Float(x),
            Some(ValueRef::Ref(ScalarValue::Str(s))) => V::Str(s),
            Some(ValueRef::Null | ValueRef::Ref(_)) | None => V::Null,
        },
        Val::Json { name, slot, path } => {
            let Some(cell) = cx.json.get(*slot) else {
                return V::Null;
            };
            let doc = cell.get_or_init(|| (cx.row.field(name)).and_then(|v| v.with(json_of)));
            let mut cur = match doc {
                Some(d) => d,
                None => return V::Null,
            };
            for p in path {
                let next = match (p, cur) {
                    (PathElem::Key(k), Json::Object(m)) => m.get(k),
                    (PathElem::Index(i), Json::Array(a)) => {
                        usize::try_from(*i).ok().and_then(|i| a.get(i))
                    }
                    _ => None,
                };
                match next {
                    Some(n) => cur = n,
                    None => return V::Null,
                }
            }
            json_v(cur)
        }
        Val::Neg(x) => match value(x, cx) {
            V::Int(i) => i.checked_neg().map_or(V::Null, V::Int),
            V::Float(f) => V::Float(-f),
            _ => V::Null,
        },
        Val::Arith { op, lhs, rhs } => arith(*op, value(lhs, cx), value(rhs, cx)),
        Val::Pred(p) => eval(p, cx).map_or(V::Null, V::Bool),
        Val::Len(x) => match value(x, cx) {
            V::Json(Json::Array(items)) => V::Int(items.len() as i64),
            _ => V::Null,
        },
    }
}

fn json_of(v: &ScalarValue) -> Option<Json> {
    match v {
        ScalarValue::Json(text) | ScalarValue::Str(text) => serde_json::from_str(text).ok(),
        ScalarValue::Null | ScalarValue::Vector(_) | ScalarValue::Sparse(_) => None,
        ScalarValue::Bool(b) => Some(Json::Bool(*b)),
        ScalarValue::Int(i) => Some(Json::from(*i)),
        ScalarValue::Float(x) => Some(Json::from(*x)),
        // An Array field's elements are values, not JSON text.
        ScalarValue::Array(items) => Some(Json::Array(
            items
                .iter()
                .filter_map(|i| match i {
                    ScalarValue::Str(s) => Some(Json::String(s.clone())),
                    other => json_of(other),
                })
                .collect(),
        )),
    }
}

fn json_v(j: &Json) -> V<'_> {
    match j {
        Json::Null => V::Null,
        Json::Bool(b) => V::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => V::Int(i),
            None => n.as_f64().map_or(V::Null, V::Float),
        },
        Json::String(s) => V::Str(s),
        Json::Array(_) | Json::Object(_) => V::Json(j),
    }
}

pub(crate) fn eval<'a>(p: &'a Pred, cx: &'a Ctx<'a>) -> Option<bool> {
    match p {
        Pred::Const(b) => Some(*b),
        Pred::And(items) => {
            let mut unknown = false;
            for i in items {
                match eval(i, cx) {
                    Some(false) => return Some(false),
                    None => unknown = true,
                    Some(true) => {}
                }
            }
            (!unknown).then_some(true)
        }
        Pred::Or(items) => {
            let mut unknown = false;
            for i in items {
                match eval(i, cx) {
                    Some(true) => return Some(true),
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            (!unknown).then_some(false)
        }
        Pred::Not(x) => eval(x, cx).map(|b| !b),
        Pred::Cmp { op, lhs, rhs } => compare(*op, value(lhs, cx), value(rhs, cx)),
        Pred::In { val, set, negated } => {
            crate::eval_ops::contains(set, value(val, cx)).map(|b| b != *negated)
        }
        Pred::Like { val, pattern } => match value(val, cx) {
            V::Str(s) => Some(pattern.matches(s)),
            _ => None,
        },
        Pred::IsNull { val, negated } => Some(matches!(value(val, cx), V::Null) != *negated),
        Pred::Contains { val, set, all } => match value(val, cx) {
            V::Json(Json::Array(items)) if *all => Some(set.items.iter().all(|c| {
                items
                    .iter()
                    .any(|j| compare(CmpOp::Eq, json_v(j), c.as_v()) == Some(true))
            })),
            V::Json(Json::Array(items)) => Some(
                items
                    .iter()
                    .any(|j| crate::eval_ops::contains(set, json_v(j)) == Some(true)),
            ),
            V::Null => None,
            _ => Some(false),
        },
        Pred::Truth(v) => match value(v, cx) {
            V::Bool(b) => Some(b),
            _ => None,
        },
        Pred::Text(m) => (cx.row.field(&m.field))
            .and_then(ValueRef::as_str)
            .map(|text| m.matches(text)),
    }
}

/// `a op b`; unknown when either side is NULL or the types do not compare.
pub(crate) fn compare(op: CmpOp, a: V<'_>, b: V<'_>) -> Option<bool> {
    let ord = match (a, b) {
        (V::Int(x), V::Int(y)) => x.cmp(&y),
        (V::Int(x), V::Float(y)) => cmp_int_float(x, y)?,
        (V::Float(x), V::Int(y)) => cmp_int_float(y, x)?.reverse(),
        (V::Float(x), V::Float(y)) => x.partial_cmp(&y)?,
        (V::Str(x), V::Str(y)) => x.cmp(y),
        (V::Bool(x), V::Bool(y)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => x.cmp(&y),
        (V::Json(x), V::Json(y)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => {
            return Some((x == y) == (op == CmpOp::Eq));
        }
        _ => return None,
    };
    Some(match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    })
}

/// Arithmetic: integer when both sides are integers (overflow and division
/// by zero give NULL), float otherwise; non-numbers give NULL.
pub(crate) fn arith<'a>(op: ArithOp, a: V<'_>, b: V<'_>) -> V<'a> {
    if let (V::Int(x), V::Int(y)) = (a, b) {
        let r = match op {
            ArithOp::Add => x.checked_add(y),
            ArithOp::Sub => x.checked_sub(y),
            ArithOp::Mul => x.checked_mul(y),
            ArithOp::Div => x.checked_div(y),
            ArithOp::Mod => x.checked_rem(y),
        };
        return r.map_or(V::Null, V::Int);
    }
    let num = |v: V<'_>| match v {
        V::Int(i) => Some(i as f64),
        V::Float(x) => Some(x),
        _ => None,
    };
    let (Some(x), Some(y)) = (num(a), num(b)) else {
        return V::Null;
    };
    let r = match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div => x / y,
        ArithOp::Mod => x % y,
    };
    if r.is_finite() { V::Float(r) } else { V::Null }
}
