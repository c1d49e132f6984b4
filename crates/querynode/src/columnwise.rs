//! A leaf of a filter's column plan evaluated over a whole column at once,
//! into bitset words (row `r` is bit `r % 64` of word `r / 64`), as Milvus
//! evaluates its expressions over column chunks. On a typed column
//! (`StoredColumn::slice`) the values are compared with the leaf's bounds in
//! a loop of 64 rows to a word, with no lookup and no branch per row, and
//! the null mask is applied a word at a time. What a typed loop does not
//! cover (strings, JSON, an `in` list on floats, a bound an `f64` cannot
//! hold exactly) is tested row by row with `ColumnLeaf::accepts`, the same
//! test the row-by-row filter uses: the words are exactly the rows it
//! accepts, null, NaN and negation included (tests below).
//!
//! `select.rs` combines leaves by `and` / `or` a word at a time.

use std::collections::HashSet;
use std::ops::Bound;

use quiver_api::{ColumnLeaf, LeafTest, Num, float_as_int};
use quiver_common::{ColumnSlice, ScalarValue, StoredColumn, ValueRef};

/// The rows `0..n` whose value of `column` the leaf accepts (`column`
/// None: the segment predates the field, every value is null).
pub(crate) fn leaf_words(column: Option<&StoredColumn>, leaf: &ColumnLeaf, n: usize) -> Vec<u64> {
    let Some(c) = column else {
        return filled(n, leaf.accepts(ValueRef::Null));
    };
    if let Some(words) = typed(c, leaf, n) {
        return words;
    }
    let mut words = vec![0u64; n.div_ceil(64)];
    for (w, word) in words.iter_mut().enumerate() {
        let base = w * 64;
        for r in base..(base + 64).min(n) {
            let v = c.get(r).unwrap_or(ValueRef::Null);
            *word |= u64::from(leaf.accepts(v)) << (r - base);
        }
    }
    words
}

/// Words of `n` rows, all set or none (bits past `n` are cleared by
/// `Bitset::from_words`).
pub(crate) fn filled(n: usize, set: bool) -> Vec<u64> {
    vec![if set { u64::MAX } else { 0 }; n.div_ceil(64)]
}

/// The words of `and` (or `or`) over `parts`, each the words of rows
/// `0..n`.
pub(crate) fn combine(n: usize, and: bool, parts: impl Iterator<Item = Vec<u64>>) -> Vec<u64> {
    let mut out = filled(n, and);
    for part in parts {
        for (o, w) in out.iter_mut().zip(part) {
            *o = if and { *o & w } else { *o | w };
        }
    }
    out
}

/// The rows of `values` meeting `test`, 64 to a word.
#[inline]
fn bits<T>(values: &[T], test: impl Fn(&T) -> bool) -> Vec<u64> {
    values
        .chunks(64)
        .map(|chunk| {
            (chunk.iter().enumerate()).fold(0u64, |w, (j, v)| w | (u64::from(test(v)) << j))
        })
        .collect()
}

/// The rows accepted from the rows where the test holds (`test`) and the
/// rows where it is known (`known`: not null, not NaN): the first unless
/// negated, else the known rows where it does not hold.
fn accepted(mut test: Vec<u64>, known: &[u64], negated: bool) -> Vec<u64> {
    for (t, k) in test.iter_mut().zip(known) {
        *t = if negated { k & !*t } else { *t & k };
    }
    test
}

/// The rows of a typed column that are not null.
fn not_null(nulls: &[u64], n: usize) -> Vec<u64> {
    (0..n.div_ceil(64))
        .map(|w| !nulls.get(w).copied().unwrap_or(0))
        .collect()
}

/// The leaf over a typed column in a typed loop (and a string equality over
/// any column); None when the test needs the row-by-row path.
fn typed(c: &StoredColumn, leaf: &ColumnLeaf, n: usize) -> Option<Vec<u64>> {
    let slice = c.slice();
    if c.len() != n {
        return None;
    }
    if let (ColumnSlice::Any(v), LeafTest::Str(want)) = (slice, &leaf.test) {
        // Known for strings only (a string field, or a JSON path's values).
        return Some(bits(v, |x| match x {
            ScalarValue::Str(s) => (s == want) != leaf.negated,
            _ => false,
        }));
    }
    if matches!(slice, ColumnSlice::Any(_)) {
        return None;
    }
    let nulls = c.null_words();
    let known = not_null(nulls, n);
    let test = match (slice, &leaf.test) {
        // Known for every row: whether it is null.
        (_, LeafTest::IsNull) => {
            return Some(match leaf.negated {
                true => known,
                false => known.iter().map(|w| !w).collect(),
            });
        }
        (ColumnSlice::Int(v), LeafTest::Range { lo, hi }) => match int_span(lo, hi) {
            // A NaN bound: unknown, or false where the other bound fails
            // (false and unknown is false), row by row.
            Span::Unknown => return None,
            Span::Empty => filled(n, false),
            Span::Within(a, b) => {
                // One unsigned comparison for both bounds.
                let width = b.wrapping_sub(a) as u64;
                bits(v, |&x| (x.wrapping_sub(a) as u64) <= width)
            }
        },
        (ColumnSlice::Int(v), LeafTest::In { nums, .. }) if !nums.is_empty() => {
            // An int equals a float member only when it is that integer.
            let members: Vec<i64> = (nums.iter())
                .filter_map(|m| match *m {
                    Num::Int(i) => Some(i),
                    Num::Float(f) => float_as_int(f),
                })
                .collect();
            if members.len() <= 8 {
                bits(v, |x| members.contains(x))
            } else {
                let set: HashSet<i64> = members.into_iter().collect();
                bits(v, |x| set.contains(x))
            }
        }
        (ColumnSlice::Float(v), LeafTest::Range { lo, hi }) => {
            let (Some(lo), Some(hi)) = (float_bound(lo), float_bound(hi)) else {
                return None;
            };
            if lo.is_nan() || hi.is_nan() {
                return None;
            }
            let test = bits(v, |&x| lo.below(x) && hi.above(x));
            // A NaN value is unknown: accepted negated or not by neither.
            let numbers = bits(v, |x| !x.is_nan());
            let known: Vec<u64> = known.iter().zip(&numbers).map(|(k, m)| k & m).collect();
            return Some(accepted(test, &known, leaf.negated));
        }
        (ColumnSlice::Bool(v), LeafTest::Bool(want)) => bits(v, |&x| x == *want),
        _ => return None,
    };
    Some(accepted(test, &known, leaf.negated))
}

/// The rows of a column of values as they came (the growing rows') whose
/// value `leaf` accepts. The leaf's test is prepared once (an int
/// range as one unsigned comparison, an int list, float bounds, a bool, a
/// string) and each value of the type it expects is tested in a loop of 64
/// to a word; any other value (a null, another type) goes through
/// `ColumnLeaf::accepts`, the row-by-row test, so the words are exactly the
/// rows it accepts.
pub(crate) fn value_words(values: &[ScalarValue], leaf: &ColumnLeaf) -> Vec<u64> {
    let general = |v: &ScalarValue| leaf.accepts(ValueRef::of(v));
    let neg = leaf.negated;
    match &leaf.test {
        LeafTest::Range { lo, hi } => {
            let ints = int_span(lo, hi);
            let floats = (float_bound(lo).zip(float_bound(hi)))
                .filter(|(lo, hi)| !lo.is_nan() && !hi.is_nan());
            bits(values, |v| match (v, &ints, floats) {
                (ScalarValue::Int(x), Span::Within(a, b), _) => {
                    ((x.wrapping_sub(*a) as u64) <= (b.wrapping_sub(*a) as u64)) != neg
                }
                (ScalarValue::Int(_), Span::Empty, _) => neg,
                (ScalarValue::Float(x), _, Some((lo, hi))) => {
                    !x.is_nan() && ((lo.below(*x) && hi.above(*x)) != neg)
                }
                _ => general(v),
            })
        }
        LeafTest::In { nums, .. } if !nums.is_empty() => {
            let members: HashSet<i64> = (nums.iter())
                .filter_map(|m| match *m {
                    Num::Int(i) => Some(i),
                    Num::Float(f) => float_as_int(f),
                })
                .collect();
            bits(values, |v| match v {
                ScalarValue::Int(x) => members.contains(x) != neg,
                _ => general(v),
            })
        }
        LeafTest::Bool(want) => bits(values, |v| match v {
            ScalarValue::Bool(x) => (x == want) != neg,
            _ => general(v),
        }),
        LeafTest::Str(want) => bits(values, |v| match v {
            ScalarValue::Str(s) => (s == want) != neg,
            _ => general(v),
        }),
        _ => bits(values, general),
    }
}

/// The integers a range of numbers holds.
#[derive(Debug, PartialEq)]
enum Span {
    /// A NaN bound.
    Unknown,
    Empty,
    /// `a..=b`.
    Within(i64, i64),
}

/// Where the integers a bound admits start or end.
enum Limit {
    Unknown,
    Empty,
    At(i64),
}

const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// The least integer meeting a lower bound.
fn int_lo(b: &Bound<Num>) -> Limit {
    match *b {
        Bound::Unbounded => Limit::At(i64::MIN),
        Bound::Included(Num::Int(i)) => Limit::At(i),
        Bound::Excluded(Num::Int(i)) => i.checked_add(1).map_or(Limit::Empty, Limit::At),
        Bound::Included(Num::Float(f)) | Bound::Excluded(Num::Float(f)) if f.is_nan() => {
            Limit::Unknown
        }
        Bound::Included(Num::Float(f)) if f >= TWO_63 => Limit::Empty,
        Bound::Excluded(Num::Float(f)) if f >= TWO_63 => Limit::Empty,
        Bound::Included(Num::Float(f)) | Bound::Excluded(Num::Float(f)) if f < -TWO_63 => {
            Limit::At(i64::MIN)
        }
        // In range: the casts are exact (every f64 in [2^52, 2^63) is an
        // integer, so floor + 1 cannot overflow).
        Bound::Included(Num::Float(f)) => Limit::At(f.ceil() as i64),
        Bound::Excluded(Num::Float(f)) => Limit::At(f.floor() as i64 + 1),
    }
}

/// The greatest integer meeting an upper bound.
fn int_hi(b: &Bound<Num>) -> Limit {
    match *b {
        Bound::Unbounded => Limit::At(i64::MAX),
        Bound::Included(Num::Int(i)) => Limit::At(i),
        Bound::Excluded(Num::Int(i)) => i.checked_sub(1).map_or(Limit::Empty, Limit::At),
        Bound::Included(Num::Float(f)) | Bound::Excluded(Num::Float(f)) if f.is_nan() => {
            Limit::Unknown
        }
        Bound::Included(Num::Float(f)) | Bound::Excluded(Num::Float(f)) if f >= TWO_63 => {
            Limit::At(i64::MAX)
        }
        Bound::Included(Num::Float(f)) if f < -TWO_63 => Limit::Empty,
        Bound::Excluded(Num::Float(f)) if f <= -TWO_63 => Limit::Empty,
        // In range: exact casts; ceil(f) > -2^63 here, so - 1 cannot
        // overflow.
        Bound::Included(Num::Float(f)) => Limit::At(f.floor() as i64),
        Bound::Excluded(Num::Float(f)) => Limit::At(f.ceil() as i64 - 1),
    }
}

fn int_span(lo: &Bound<Num>, hi: &Bound<Num>) -> Span {
    match (int_lo(lo), int_hi(hi)) {
        (Limit::Unknown, _) | (_, Limit::Unknown) => Span::Unknown,
        (Limit::Empty, _) | (_, Limit::Empty) => Span::Empty,
        (Limit::At(a), Limit::At(b)) if a > b => Span::Empty,
        (Limit::At(a), Limit::At(b)) => Span::Within(a, b),
    }
}

/// A bound of a float range as floats.
#[derive(Clone, Copy)]
enum FloatBound {
    Unbounded,
    Included(f64),
    Excluded(f64),
}

impl FloatBound {
    fn is_nan(self) -> bool {
        matches!(self, FloatBound::Included(f) | FloatBound::Excluded(f) if f.is_nan())
    }

    /// Whether `x` is at or past this lower bound (false for NaN).
    #[inline]
    fn below(self, x: f64) -> bool {
        match self {
            FloatBound::Unbounded => true,
            FloatBound::Included(b) => x >= b,
            FloatBound::Excluded(b) => x > b,
        }
    }

    /// Whether `x` is at or before this upper bound (false for NaN).
    #[inline]
    fn above(self, x: f64) -> bool {
        match self {
            FloatBound::Unbounded => true,
            FloatBound::Included(b) => x <= b,
            FloatBound::Excluded(b) => x < b,
        }
    }
}

/// `b` over floats; None for an integer an `f64` does not hold exactly
/// (compared exactly row by row instead).
fn float_bound(b: &Bound<Num>) -> Option<FloatBound> {
    let f = |n: Num| match n {
        Num::Float(f) => Some(f),
        Num::Int(i) if i.unsigned_abs() <= 1 << 53 => Some(i as f64),
        Num::Int(_) => None,
    };
    Some(match *b {
        Bound::Unbounded => FloatBound::Unbounded,
        Bound::Included(n) => FloatBound::Included(f(n)?),
        Bound::Excluded(n) => FloatBound::Excluded(f(n)?),
    })
}

#[cfg(test)]
#[path = "columnwise_tests.rs"]
mod tests;
