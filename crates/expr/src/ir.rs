//! The compiled form of an expression: fields resolved against the schema,
//! templates filled in, types checked. Serializable (see `wire.rs`) so a
//! filter compiled by the front door can be evaluated on a remote querynode.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::ast::{ArithOp, CmpOp, PathElem};
use crate::like::LikePattern;

/// A constant scalar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Const {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// An expression producing a value for a row. (De)serialized through
/// `wire.rs`, which bounds the nesting depth of untrusted input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub(crate) enum Val {
    Const(Const),
    /// The primary key (read through `RowAccess::pk`).
    Pk,
    /// A scalar (non-JSON) field.
    Field(String),
    /// A JSON field and a path into it; `slot` indexes the per-row parse cache.
    Json {
        name: String,
        slot: usize,
        path: Vec<PathElem>,
    },
    Neg(Box<Val>),
    Arith {
        op: ArithOp,
        lhs: Box<Val>,
        rhs: Box<Val>,
    },
    /// A boolean sub-expression used as a value (`(a > 1) == true`).
    Pred(Box<Pred>),
    /// The number of elements of an array value (`array_length(f)`).
    Len(Box<Val>),
}

/// A boolean expression; evaluates to true, false or unknown (NULL).
/// (De)serialized through `wire.rs`, like [`Val`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub(crate) enum Pred {
    Const(bool),
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
    Cmp {
        op: CmpOp,
        lhs: Val,
        rhs: Val,
    },
    In {
        val: Val,
        set: ValueSet,
        negated: bool,
    },
    Like {
        val: Val,
        pattern: LikePattern,
    },
    IsNull {
        val: Val,
        negated: bool,
    },
    /// A boolean-valued field or JSON value used as a condition.
    Truth(Val),
    /// An array value holds one of `set`'s values (`all`: every one of
    /// them): `array_contains`, `_any`, `_all` and their `json_` twins.
    Contains {
        val: Val,
        set: ValueSet,
        all: bool,
    },
    /// `TEXT_MATCH` / `PHRASE_MATCH` on an analysed field (`text.rs`).
    Text(crate::text::TextMatch),
}

/// The constants after `in`, indexed for lookup. Serialized as `items`
/// only; the indexes are rebuilt on decoding.
#[derive(Debug, Clone, Default)]
pub(crate) struct ValueSet {
    /// As written (for primary key extraction).
    pub(crate) items: Vec<Const>,
    pub(crate) ints: HashSet<i64>,
    pub(crate) floats: Vec<f64>,
    pub(crate) strs: HashSet<String>,
    /// Whether `false` / `true` are members.
    pub(crate) bools: [bool; 2],
}

impl ValueSet {
    pub(crate) fn new(items: Vec<Const>) -> Self {
        let mut s = ValueSet::default();
        for c in &items {
            match c {
                Const::Bool(b) => s.bools[usize::from(*b)] = true,
                Const::Int(i) => {
                    s.ints.insert(*i);
                }
                Const::Float(x) => s.floats.push(*x),
                Const::Str(v) => {
                    s.strs.insert(v.clone());
                }
            }
        }
        s.items = items;
        s
    }

    pub(crate) fn has_numbers(&self) -> bool {
        !self.ints.is_empty() || !self.floats.is_empty()
    }
}

impl Pred {
    /// Makes every reference to field `from` read field `to` instead.
    pub(crate) fn rename_field(&mut self, from: &str, to: &str) {
        match self {
            Pred::Const(_) => {}
            Pred::Text(m) => {
                if m.field == from {
                    m.field = to.to_string();
                }
            }
            Pred::And(v) | Pred::Or(v) => v.iter_mut().for_each(|p| p.rename_field(from, to)),
            Pred::Not(p) => p.rename_field(from, to),
            Pred::Cmp { lhs, rhs, .. } => {
                lhs.rename_field(from, to);
                rhs.rename_field(from, to);
            }
            Pred::In { val, .. }
            | Pred::Like { val, .. }
            | Pred::IsNull { val, .. }
            | Pred::Contains { val, .. }
            | Pred::Truth(val) => val.rename_field(from, to),
        }
    }
}

impl Val {
    fn rename_field(&mut self, from: &str, to: &str) {
        match self {
            Val::Const(_) | Val::Pk => {}
            Val::Field(name) | Val::Json { name, .. } => {
                if name == from {
                    *name = to.to_string();
                }
            }
            Val::Neg(v) | Val::Len(v) => v.rename_field(from, to),
            Val::Arith { lhs, rhs, .. } => {
                lhs.rename_field(from, to);
                rhs.rename_field(from, to);
            }
            Val::Pred(p) => p.rename_field(from, to),
        }
    }
}
