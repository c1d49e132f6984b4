//! Printing an [`Expr`] back as text that parses to the same tree. Every
//! compound operand is parenthesized, so no precedence reasoning is needed.

use std::fmt::{self, Display, Formatter, Write};

use crate::ast::{Expr, PathElem};

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Int(i) => write!(f, "{i}"),
            // Debug always prints a '.' or an exponent, so it reparses as a float.
            Expr::Float(x) => write!(f, "{x:?}"),
            Expr::Str(s) => write_str_literal(f, s),
            Expr::Array(items) => {
                f.write_char('[')?;
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_char(']')
            }
            Expr::Field { name, path } => {
                f.write_str(name)?;
                for p in path {
                    match p {
                        PathElem::Key(k) => {
                            f.write_char('[')?;
                            write_str_literal(f, k)?;
                            f.write_char(']')?;
                        }
                        PathElem::Index(i) => write!(f, "[{i}]")?,
                    }
                }
                Ok(())
            }
            Expr::Template(name) => write!(f, "{{{name}}}"),
            Expr::Neg(e) => {
                // `-(5)` must not print as the literal `-5`.
                if is_atom(e) && !matches!(**e, Expr::Int(_) | Expr::Float(_)) {
                    write!(f, "-{e}")
                } else {
                    write!(f, "-({e})")
                }
            }
            Expr::Not(e) => {
                f.write_str("not ")?;
                operand(f, e)
            }
            Expr::Arith { op, lhs, rhs } => binary(f, lhs, op.as_str(), rhs),
            Expr::Cmp { op, lhs, rhs } => binary(f, lhs, op.as_str(), rhs),
            Expr::Range {
                lower,
                lower_op,
                mid,
                upper_op,
                upper,
            } => {
                binary(f, lower, lower_op.as_str(), mid)?;
                write!(f, " {} ", upper_op.as_str())?;
                operand(f, upper)
            }
            Expr::In {
                expr,
                list,
                negated,
            } => {
                operand(f, expr)?;
                let kw = if *negated { " not in " } else { " in " };
                write!(f, "{kw}{list}")
            }
            Expr::Like { expr, pattern } => {
                operand(f, expr)?;
                write!(f, " like {pattern}")
            }
            Expr::IsNull { expr, negated } => {
                operand(f, expr)?;
                f.write_str(if *negated { " is not null" } else { " is null" })
            }
            Expr::And(items) => join(f, items, " and "),
            Expr::Or(items) => join(f, items, " or "),
            Expr::Call { name, args } => {
                write!(f, "{name}(")?;
                join(f, args, ", ")?;
                f.write_str(")")
            }
        }
    }
}

fn is_atom(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Bool(_)
            | Expr::Int(_)
            | Expr::Float(_)
            | Expr::Str(_)
            | Expr::Array(_)
            | Expr::Field { .. }
            | Expr::Template(_)
    )
}

fn operand(f: &mut Formatter<'_>, e: &Expr) -> fmt::Result {
    if is_atom(e) {
        write!(f, "{e}")
    } else {
        write!(f, "({e})")
    }
}

fn binary(f: &mut Formatter<'_>, lhs: &Expr, op: &str, rhs: &Expr) -> fmt::Result {
    operand(f, lhs)?;
    write!(f, " {op} ")?;
    operand(f, rhs)
}

fn join(f: &mut Formatter<'_>, items: &[Expr], sep: &str) -> fmt::Result {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        operand(f, e)?;
    }
    Ok(())
}

/// A double-quoted literal whose escapes the lexer decodes back to `s`.
pub(crate) fn write_str_literal(f: &mut impl Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}
