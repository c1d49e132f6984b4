//! Recognizing filters that only select primary keys (`pk in [..]`,
//! `pk == v`, and `or` of those), so callers can look the keys up directly.

use std::collections::HashSet;

use quiver_common::PrimaryKey;

use crate::ast::CmpOp;
use crate::eval_ops::float_as_int;
use crate::ir::{Const, Pred, Val};

/// The keys the filter selects, in first-mention order without duplicates,
/// or None when the filter is not of that shape.
pub(crate) fn primary_keys(p: &Pred) -> Option<Vec<PrimaryKey>> {
    let mut keys = Vec::new();
    collect(p, &mut keys)?;
    let mut seen = HashSet::with_capacity(keys.len());
    keys.retain(|k| seen.insert(k.clone()));
    Some(keys)
}

fn collect(p: &Pred, out: &mut Vec<PrimaryKey>) -> Option<()> {
    match p {
        Pred::In {
            val: Val::Pk,
            set,
            negated: false,
        } => set.items.iter().try_for_each(|c| push(c, out)),
        Pred::Cmp {
            op: CmpOp::Eq,
            lhs: Val::Pk,
            rhs: Val::Const(c),
        }
        | Pred::Cmp {
            op: CmpOp::Eq,
            lhs: Val::Const(c),
            rhs: Val::Pk,
        } => push(c, out),
        Pred::Or(items) => items.iter().try_for_each(|i| collect(i, out)),
        _ => None,
    }
}

fn push(c: &Const, out: &mut Vec<PrimaryKey>) -> Option<()> {
    match c {
        Const::Int(i) => out.push(PrimaryKey::Int(*i)),
        Const::Str(s) => out.push(PrimaryKey::Str(s.clone())),
        // 3.0 selects key 3; 3.5 selects nothing.
        Const::Float(x) => {
            if let Some(i) = float_as_int(*x) {
                out.push(PrimaryKey::Int(i));
            }
        }
        Const::Bool(_) => return None,
    }
    Some(())
}
