//! The syntax tree of a filter expression, as written (no schema knowledge).

use serde::{Deserialize, Serialize};

/// A parsed expression. Parentheses leave no node; `and` / `or` chains are
/// n-ary (at least two operands) so long chains stay shallow.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Bool(bool),
    Int(i64),
    /// Always finite.
    Float(f64),
    Str(String),
    /// `[a, b, ...]`: only meaningful as the right side of `in`.
    Array(Vec<Expr>),
    /// A field, optionally followed by a JSON path: `meta["k"][0]`.
    Field {
        name: String,
        path: Vec<PathElem>,
    },
    /// `{name}`: filled from the template values at compile time.
    Template(String),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Arith {
        op: ArithOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Cmp {
        op: CmpOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `lower lower_op mid upper_op upper`, both ops `<`/`<=` or both `>`/`>=`.
    Range {
        lower: Box<Expr>,
        lower_op: CmpOp,
        mid: Box<Expr>,
        upper_op: CmpOp,
        upper: Box<Expr>,
    },
    /// `expr [not] in list`; `list` is an [`Expr::Array`] or [`Expr::Template`].
    In {
        expr: Box<Expr>,
        list: Box<Expr>,
        negated: bool,
    },
    /// `expr like pattern`; `pattern` is an [`Expr::Str`] or [`Expr::Template`].
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
    },
    /// `expr is [not] null`.
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// `name(args)`: one of the array / JSON functions (`functions.rs`).
    Call {
        name: String,
        args: Vec<Expr>,
    },
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PathElem {
    Key(String),
    Index(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// True for `<` and `<=`.
    pub(crate) fn is_ascending(self) -> bool {
        matches!(self, CmpOp::Lt | CmpOp::Le)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl ArithOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
        }
    }
}

impl Expr {
    /// The first field the expression mentions (for error messages).
    pub(crate) fn first_field(&self) -> Option<&str> {
        match self {
            Expr::Field { name, .. } => Some(name),
            Expr::Bool(_) | Expr::Int(_) | Expr::Float(_) | Expr::Str(_) | Expr::Template(_) => {
                None
            }
            Expr::Array(v) | Expr::And(v) | Expr::Or(v) | Expr::Call { args: v, .. } => {
                v.iter().find_map(Expr::first_field)
            }
            Expr::Neg(e) | Expr::Not(e) => e.first_field(),
            Expr::Arith { lhs, rhs, .. } | Expr::Cmp { lhs, rhs, .. } => {
                lhs.first_field().or_else(|| rhs.first_field())
            }
            Expr::Range {
                lower, mid, upper, ..
            } => mid
                .first_field()
                .or_else(|| lower.first_field())
                .or_else(|| upper.first_field()),
            Expr::In { expr, .. } | Expr::Like { expr, .. } | Expr::IsNull { expr, .. } => {
                expr.first_field()
            }
        }
    }
}
