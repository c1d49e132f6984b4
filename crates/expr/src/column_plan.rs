//! The column plan of a compiled filter ([`quiver_api::ColumnPlan`]): its
//! conditions on one scalar field each, negations pushed down to them
//! (De Morgan holds in three-valued logic), so a querynode answers them from
//! scalar indexes and typed scans. A top-level conjunct that is not such a
//! condition (`like`, arithmetic) leaves the plan inexact: the querynode
//! then tests the rows the plan accepts with the whole filter. A condition
//! on a JSON path is a leaf keyed by the path (`quiver_api::json_path_key`)
//! that reads the path's values as a querynode extracts them
//! (`quiver_api::json_path_value`, the evaluator's reading); where a
//! querynode has no such values (the path's field is not in the segment)
//! the leaf accepts every row and the querynode tests the rows with the
//! whole filter even when the plan is exact (see
//! [`quiver_api::PlanNode::accepts`]).

use std::ops::Bound;

use quiver_api::{
    ColumnLeaf, ColumnPlan, JsonStep, LeafTest, Num, PlanNode, is_json_path_key, json_path_key,
};

use crate::ast::{CmpOp, PathElem};
use crate::ir::{Const, Pred, Val};

/// The plan of `p`; None when no part of it is a column condition.
pub(crate) fn column_plan(p: &Pred) -> Option<ColumnPlan> {
    let mut conjuncts = Vec::new();
    flatten(p, &mut conjuncts);
    let total = conjuncts.len();
    let mut nodes: Vec<PlanNode> = conjuncts
        .into_iter()
        .filter_map(|c| node(c, false))
        .collect();
    let exact = nodes.len() == total;
    let root = match nodes.len() {
        0 => return None,
        1 => nodes.pop()?,
        _ => PlanNode::And(nodes),
    };
    Some(ColumnPlan { root, exact })
}

/// The column a leaf tests: a field, or a path in a JSON field (keyed as a
/// JSON path index is).
pub(crate) fn column_of(v: &Val) -> Option<String> {
    match v {
        Val::Field(f) => Some(f.clone()),
        // A whole JSON field (no path) is no column of values: its
        // conditions stay with the evaluator.
        Val::Json { name, path, .. } if !path.is_empty() => {
            let steps: Vec<JsonStep> = (path.iter())
                .map(|p| match p {
                    PathElem::Key(k) => JsonStep::Key(k.clone()),
                    PathElem::Index(i) => JsonStep::Index(*i),
                })
                .collect();
            Some(json_path_key(name, &steps))
        }
        _ => None,
    }
}

fn flatten<'a>(p: &'a Pred, out: &mut Vec<&'a Pred>) {
    match p {
        Pred::And(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

/// `p` (negated when `neg`) as a plan node; None when any part of it is
/// not a column condition.
fn node(p: &Pred, neg: bool) -> Option<PlanNode> {
    Some(match p {
        Pred::Const(b) => PlanNode::Const(*b != neg),
        Pred::Not(x) => return node(x, !neg),
        Pred::And(items) | Pred::Or(items) => {
            let nodes = items
                .iter()
                .map(|i| node(i, neg))
                .collect::<Option<Vec<_>>>()?;
            if matches!(p, Pred::And(_)) != neg {
                PlanNode::And(nodes)
            } else {
                PlanNode::Or(nodes)
            }
        }
        Pred::Cmp { op, lhs, rhs } => {
            let (column, op, c) = match (lhs, rhs) {
                (v, Val::Const(c)) => (column_of(v)?, *op, c),
                (Val::Const(c), v) => (column_of(v)?, flip(*op), c),
                _ => return None,
            };
            let (test, negated) = cmp_test(op, c)?;
            leaf(&column, test, negated != neg)
        }
        Pred::In { val, set, negated } => {
            let f = column_of(val)?;
            // A path may hold an array or an object, which an empty list
            // finds absent (not unknown, as it would a null).
            if set.items.is_empty() && is_json_path_key(&f) {
                return None;
            }
            let mut ints: Vec<i64> = set.ints.iter().copied().collect();
            ints.sort_unstable();
            let mut nums: Vec<Num> = ints.into_iter().map(Num::Int).collect();
            nums.extend(set.floats.iter().map(|x| Num::Float(*x)));
            let mut strs: Vec<String> = set.strs.iter().cloned().collect();
            strs.sort_unstable();
            let test = LeafTest::In {
                nums,
                strs,
                bools: set.bools,
            };
            leaf(&f, test, *negated != neg)
        }
        // An array or object at a path is no null: `is null` on a path
        // stays with the evaluator.
        Pred::IsNull { val, negated } => {
            let c = column_of(val)?;
            if is_json_path_key(&c) {
                return None;
            }
            leaf(&c, LeafTest::IsNull, *negated != neg)
        }
        Pred::Truth(val) => leaf(&column_of(val)?, LeafTest::Bool(true), neg),
        _ => return None,
    })
}

fn leaf(column: &str, test: LeafTest, negated: bool) -> PlanNode {
    PlanNode::Leaf(ColumnLeaf {
        column: column.to_string(),
        test,
        negated,
    })
}

/// `c op x` is `x flip(op) c`.
fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        other => other,
    }
}

/// `x op c` as a test and whether it is negated; None for comparisons the
/// evaluator never answers (ordering of booleans) or that the plan does not
/// cover (ordering of strings).
fn cmp_test(op: CmpOp, c: &Const) -> Option<(LeafTest, bool)> {
    let n = match c {
        Const::Int(i) => Num::Int(*i),
        Const::Float(x) => Num::Float(*x),
        Const::Str(s) => {
            return match op {
                CmpOp::Eq => Some((LeafTest::Str(s.clone()), false)),
                CmpOp::Ne => Some((LeafTest::Str(s.clone()), true)),
                _ => None,
            };
        }
        Const::Bool(b) => {
            return match op {
                CmpOp::Eq => Some((LeafTest::Bool(*b), false)),
                CmpOp::Ne => Some((LeafTest::Bool(*b), true)),
                _ => None,
            };
        }
    };
    let (lo, hi) = match op {
        CmpOp::Eq | CmpOp::Ne => (Bound::Included(n), Bound::Included(n)),
        CmpOp::Lt => (Bound::Unbounded, Bound::Excluded(n)),
        CmpOp::Le => (Bound::Unbounded, Bound::Included(n)),
        CmpOp::Gt => (Bound::Excluded(n), Bound::Unbounded),
        CmpOp::Ge => (Bound::Included(n), Bound::Unbounded),
    };
    Some((LeafTest::Range { lo, hi }, op == CmpOp::Ne))
}
