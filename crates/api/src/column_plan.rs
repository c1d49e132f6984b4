//! A filter's plan over whole columns: the part of a compiled filter made
//! of conditions on one scalar column each (`price < 10`, `cat in [1, 2]`,
//! `tag is null`, joined by `and` / `or`, negations pushed down to them), so
//! that a querynode can answer it from its scalar indexes, count how many
//! rows it accepts before choosing exact or graph search, and test a row
//! without a lookup by field name.
//!
//! The plan keeps the evaluator's semantics exactly (SQL-style three-valued
//! logic; ints and floats compared without rounding): a leaf is unknown —
//! accepts nothing, negated or not — for a null, a NaN, or a value of a kind
//! its constants do not compare with. `quiver_expr` builds plans and checks
//! them against its evaluator.

use std::cmp::Ordering;
use std::ops::Bound;

use quiver_common::{ScalarValue, ValueRef};

/// A number in a plan, compared as the evaluator compares numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

/// What a leaf asks of a row's value.
#[derive(Debug, Clone, PartialEq)]
pub enum LeafTest {
    /// A number within the bounds (`==` is a range of one value).
    Range { lo: Bound<Num>, hi: Bound<Num> },
    /// Membership in an `in` list: numbers, strings and booleans.
    In {
        nums: Vec<Num>,
        strs: Vec<String>,
        /// Whether `false` / `true` are members.
        bools: [bool; 2],
    },
    /// A string equal to this one.
    Str(String),
    /// A boolean equal to this one (`flag`, `flag == false`).
    Bool(bool),
    /// A null (never unknown).
    IsNull,
}

/// One condition on one column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnLeaf {
    pub column: String,
    pub test: LeafTest,
    /// Accept the rows where the test is false instead (rows where it is
    /// unknown are accepted either way by neither).
    pub negated: bool,
}

/// A tree of leaves.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanNode {
    Const(bool),
    And(Vec<PlanNode>),
    Or(Vec<PlanNode>),
    Leaf(ColumnLeaf),
}

/// A filter's column plan. `exact`: the plan is the whole filter (its leaves
/// on JSON paths reading the paths' values as `crate::json_path_value`
/// extracts them; where a reader has no such values, it must test the
/// rows the plan accepts with the filter, as for an inexact plan). Otherwise
/// it is some of the filter's top-level conjuncts: every row the filter
/// accepts, the plan accepts, and the rows the plan accepts must still be
/// tested with the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnPlan {
    pub root: PlanNode,
    pub exact: bool,
}

/// Exact ordering of an integer and a float (no rounding of large
/// integers); None for NaN.
pub fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        return None;
    }
    if f >= TWO_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_63 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    // In range, so the cast is exact.
    let ti = t as i64;
    Some(i.cmp(&ti).then(if f > t {
        Ordering::Less
    } else if f < t {
        Ordering::Greater
    } else {
        Ordering::Equal
    }))
}

/// `x` as an integer when it is one exactly.
pub fn float_as_int(x: f64) -> Option<i64> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    // Integral and in range, so the cast is exact.
    (x.fract() == 0.0 && (-TWO_63..TWO_63).contains(&x)).then_some(x as i64)
}

impl Num {
    /// The ordering of `self` against `other`; None with a NaN.
    pub fn cmp_num(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (Num::Int(a), Num::Float(b)) => cmp_int_float(a, b),
            (Num::Float(a), Num::Int(b)) => cmp_int_float(b, a).map(Ordering::reverse),
            (Num::Float(a), Num::Float(b)) => a.partial_cmp(&b),
        }
    }

    /// The number a value holds (None for other values).
    pub fn of(v: ValueRef<'_>) -> Option<Num> {
        match v {
            ValueRef::Int(i) => Some(Num::Int(i)),
            ValueRef::Float(x) => Some(Num::Float(x)),
            _ => None,
        }
    }
}

/// Whether `x` meets the lower bound (None: unknown).
pub fn above(x: Num, lo: &Bound<Num>) -> Option<bool> {
    match lo {
        Bound::Unbounded => (x.cmp_num(x).is_some()).then_some(true),
        Bound::Included(b) => x.cmp_num(*b).map(|o| o != Ordering::Less),
        Bound::Excluded(b) => x.cmp_num(*b).map(|o| o == Ordering::Greater),
    }
}

/// Whether `x` meets the upper bound (None: unknown).
pub fn below(x: Num, hi: &Bound<Num>) -> Option<bool> {
    match hi {
        Bound::Unbounded => (x.cmp_num(x).is_some()).then_some(true),
        Bound::Included(b) => x.cmp_num(*b).map(|o| o != Ordering::Greater),
        Bound::Excluded(b) => x.cmp_num(*b).map(|o| o == Ordering::Less),
    }
}

/// Whether a value is a null to a filter: a missing value, and the values
/// a scalar comparison cannot read (JSON text, arrays, vectors).
pub fn is_null(v: ValueRef<'_>) -> bool {
    matches!(
        v,
        ValueRef::Null
            | ValueRef::Ref(
                ScalarValue::Null
                    | ScalarValue::Json(_)
                    | ScalarValue::Array(_)
                    | ScalarValue::Vector(_)
                    | ScalarValue::Sparse(_)
            )
    )
}

impl LeafTest {
    /// The test on one value: None when unknown.
    pub fn test(&self, v: &ScalarValue) -> Option<bool> {
        self.test_ref(ValueRef::of(v))
    }

    /// [`LeafTest::test`] on a value read from a column.
    #[inline]
    pub fn test_ref(&self, v: ValueRef<'_>) -> Option<bool> {
        let num = Num::of(v);
        match self {
            LeafTest::IsNull => Some(is_null(v)),
            LeafTest::Range { lo, hi } => {
                let x = num?;
                Some(above(x, lo)? && below(x, hi)?)
            }
            LeafTest::In { nums, strs, bools } => {
                if nums.is_empty() && strs.is_empty() && !bools[0] && !bools[1] {
                    return (!is_null(v)).then_some(false);
                }
                match (num, v) {
                    (Some(x), _) if !nums.is_empty() => Some(nums.iter().any(|n| in_eq(x, *n))),
                    (_, ValueRef::Ref(ScalarValue::Str(s))) if !strs.is_empty() => {
                        Some(strs.iter().any(|t| t == s))
                    }
                    (_, ValueRef::Bool(b)) if bools[0] || bools[1] => Some(bools[usize::from(b)]),
                    _ => None,
                }
            }
            LeafTest::Str(want) => v.as_str().map(|s| s == want),
            LeafTest::Bool(want) => match v {
                ValueRef::Bool(b) => Some(b == *want),
                _ => None,
            },
        }
    }
}

/// `in`-list equality: a float equals a float by `==` (NaN never) and an
/// int when it is that integer exactly.
fn in_eq(x: Num, member: Num) -> bool {
    match (x, member) {
        (Num::Int(a), Num::Int(b)) => a == b,
        (Num::Int(a), Num::Float(b)) => cmp_int_float(a, b) == Some(Ordering::Equal),
        (Num::Float(a), Num::Float(b)) => a == b,
        (Num::Float(a), Num::Int(b)) => float_as_int(a) == Some(b),
    }
}

impl ColumnLeaf {
    /// Whether a row whose column holds `v` is accepted.
    #[inline]
    pub fn accepts(&self, v: ValueRef<'_>) -> bool {
        self.test.test_ref(v).is_some_and(|b| b != self.negated)
    }
}

impl PlanNode {
    /// Whether a row is accepted; `value(column)` reads the row's value of
    /// a column (None: the column does not exist, a null). A leaf on a JSON
    /// path (`crate::is_json_path_key`) whose value is None accepts: the
    /// path's values were not extracted (the whole filter then decides,
    /// see [`ColumnPlan`]).
    pub fn accepts<'a>(&self, value: &impl Fn(&str) -> Option<ValueRef<'a>>) -> bool {
        match self {
            PlanNode::Const(b) => *b,
            PlanNode::And(items) => items.iter().all(|p| p.accepts(value)),
            PlanNode::Or(items) => items.iter().any(|p| p.accepts(value)),
            PlanNode::Leaf(l) => match value(&l.column) {
                Some(v) => l.accepts(v),
                None if crate::is_json_path_key(&l.column) => true,
                None => l.accepts(ValueRef::Null),
            },
        }
    }

    /// Every leaf, depth first.
    pub fn leaves(&self) -> Vec<&ColumnLeaf> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a ColumnLeaf>) {
        match self {
            PlanNode::Const(_) => {}
            PlanNode::And(items) | PlanNode::Or(items) => {
                items.iter().for_each(|p| p.collect(out));
            }
            PlanNode::Leaf(l) => out.push(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(lo: Bound<Num>, hi: Bound<Num>) -> LeafTest {
        LeafTest::Range { lo, hi }
    }

    #[test]
    fn ranges_compare_ints_and_floats_exactly_and_nulls_are_unknown() {
        let t = range(
            Bound::Excluded(Num::Float(2.5)),
            Bound::Included(Num::Int(4)),
        );
        assert_eq!(t.test(&ScalarValue::Int(2)), Some(false));
        assert_eq!(t.test(&ScalarValue::Int(3)), Some(true));
        assert_eq!(t.test(&ScalarValue::Float(4.0)), Some(true));
        assert_eq!(t.test(&ScalarValue::Float(4.000001)), Some(false));
        assert_eq!(t.test(&ScalarValue::Float(f64::NAN)), None);
        assert_eq!(t.test(&ScalarValue::Null), None);
        assert_eq!(t.test(&ScalarValue::Str("3".into())), None);
        // 2^53 + 1 is not a float: compared exactly, not rounded.
        let big = (1i64 << 53) + 1;
        let t = range(
            Bound::Excluded(Num::Float((1i64 << 53) as f64)),
            Bound::Unbounded,
        );
        assert_eq!(t.test(&ScalarValue::Int(big)), Some(true));
        let leaf = ColumnLeaf {
            column: "x".into(),
            test: range(Bound::Included(Num::Int(1)), Bound::Included(Num::Int(1))),
            negated: true,
        };
        assert!(leaf.accepts(ValueRef::Int(2)));
        assert!(!leaf.accepts(ValueRef::Int(1)));
        assert!(!leaf.accepts(ValueRef::Null), "not unknown is unknown");
    }

    #[test]
    fn in_lists_follow_the_kinds_they_hold() {
        let t = LeafTest::In {
            nums: vec![Num::Int(1), Num::Float(2.5)],
            strs: vec!["a".into()],
            bools: [false, false],
        };
        assert_eq!(t.test(&ScalarValue::Float(1.0)), Some(true));
        assert_eq!(t.test(&ScalarValue::Float(2.5)), Some(true));
        assert_eq!(t.test(&ScalarValue::Int(2)), Some(false));
        assert_eq!(t.test(&ScalarValue::Str("a".into())), Some(true));
        assert_eq!(t.test(&ScalarValue::Bool(true)), None);
        let empty = LeafTest::In {
            nums: vec![],
            strs: vec![],
            bools: [false, false],
        };
        assert_eq!(empty.test(&ScalarValue::Int(1)), Some(false));
        assert_eq!(empty.test(&ScalarValue::Null), None);
        assert_eq!(LeafTest::IsNull.test(&ScalarValue::Null), Some(true));
        assert_eq!(
            LeafTest::IsNull.test(&ScalarValue::Json("{}".into())),
            Some(true)
        );
    }
}
