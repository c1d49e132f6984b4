//! Column-wise leaves against the row-by-row test they replace.

use std::ops::Bound;

use quiver_api::{ColumnLeaf, LeafTest, Num};
use quiver_common::{Column, ColumnSlice, ScalarValue as S, StoredColumn, ValueRef};

use super::leaf_words;

/// splitmix64: a seeded sequence, so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn one_in(&mut self, k: u64) -> bool {
        self.next().is_multiple_of(k)
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.next() as usize % items.len()].clone()
    }
}

const INTS: [i64; 12] = [
    i64::MIN,
    i64::MIN + 1,
    -(1 << 53) - 1,
    -3,
    -1,
    0,
    1,
    2,
    3,
    (1 << 53) + 1,
    i64::MAX - 1,
    i64::MAX,
];

const FLOATS: [f64; 14] = [
    f64::NEG_INFINITY,
    -9_223_372_036_854_775_808.0,
    -1e300,
    -2.5,
    -1.0,
    0.0,
    0.5,
    1.0,
    2.5,
    3.0,
    9_007_199_254_740_992.0,
    9_223_372_036_854_775_808.0,
    f64::INFINITY,
    f64::NAN,
];

fn num(r: &mut Rng) -> Num {
    if r.one_in(2) {
        Num::Int(r.pick(&INTS))
    } else {
        Num::Float(r.pick(&FLOATS))
    }
}

fn bound(r: &mut Rng) -> Bound<Num> {
    match r.next() % 3 {
        0 => Bound::Unbounded,
        1 => Bound::Included(num(r)),
        _ => Bound::Excluded(num(r)),
    }
}

fn test(r: &mut Rng) -> LeafTest {
    match r.next() % 6 {
        0 | 1 => LeafTest::Range {
            lo: bound(r),
            hi: bound(r),
        },
        2 => LeafTest::In {
            nums: (0..r.next() % 12).map(|_| num(r)).collect(),
            strs: if r.one_in(4) {
                vec!["b".into()]
            } else {
                vec![]
            },
            bools: [r.one_in(4), r.one_in(4)],
        },
        3 => LeafTest::Bool(r.one_in(2)),
        4 => LeafTest::IsNull,
        _ => LeafTest::Str(r.pick(&["a", "b"]).into()),
    }
}

/// A column of one kind of value (sometimes with nulls), or of mixed ones.
fn column(r: &mut Rng, n: usize) -> Vec<S> {
    let kind = r.next() % 5;
    let nulls = r.one_in(2);
    (0..n)
        .map(|_| {
            if nulls && r.one_in(7) {
                return S::Null;
            }
            match kind {
                0 => S::Int(r.pick(&INTS)),
                // Small ints too, so that ranges cut through them.
                1 => S::Int((r.next() % 9) as i64 - 4),
                2 => S::Float(r.pick(&FLOATS)),
                3 => S::Bool(r.one_in(2)),
                _ => r.pick(&[S::Int(1), S::Float(2.5), S::Str("b".into()), S::Bool(true)]),
            }
        })
        .collect()
}

fn expected(c: Option<&StoredColumn>, leaf: &ColumnLeaf, n: usize) -> Vec<bool> {
    (0..n)
        .map(|r| leaf.accepts(c.and_then(|c| c.get(r)).unwrap_or(ValueRef::Null)))
        .collect()
}

fn got(words: &[u64], n: usize) -> Vec<bool> {
    (0..n)
        .map(|r| words[r / 64] & (1 << (r % 64)) != 0)
        .collect()
}

#[test]
fn a_leaf_evaluated_over_a_column_accepts_exactly_the_rows_the_row_by_row_test_accepts() {
    let mut r = Rng(7);
    let mut typed = 0;
    for case in 0..4000 {
        let n = [1, 63, 64, 65, 130, 200][case % 6];
        let values = column(&mut r, n);
        let c = StoredColumn::new(Column {
            name: "c".into(),
            values: values.clone(),
        });
        typed += usize::from(!matches!(c.slice(), ColumnSlice::Any(_)));
        let leaf = ColumnLeaf {
            column: "c".into(),
            test: test(&mut r),
            negated: r.one_in(2),
        };
        let words = leaf_words(Some(&c), &leaf, n);
        assert_eq!(words.len(), n.div_ceil(64));
        assert_eq!(
            got(&words, n),
            expected(Some(&c), &leaf, n),
            "case {case}: {leaf:?} over {values:?}"
        );
        // A segment written before the field existed: every value null.
        let words = leaf_words(None, &leaf, n);
        assert_eq!(got(&words, n), expected(None, &leaf, n), "{leaf:?}");
    }
    assert!(typed > 2000, "most columns are typed: {typed}");
}

#[test]
fn int_ranges_with_float_bounds_hold_exactly_the_integers_between_them() {
    use super::{Span, int_span};
    let inc = |x| Bound::Included(Num::Float(x));
    let exc = |x| Bound::Excluded(Num::Float(x));
    assert_eq!(int_span(&inc(-2.5), &inc(2.5)), Span::Within(-2, 2));
    assert_eq!(int_span(&exc(-3.0), &exc(3.0)), Span::Within(-2, 2));
    assert_eq!(int_span(&exc(2.5), &exc(3.0)), Span::Empty);
    assert_eq!(int_span(&inc(f64::NAN), &Bound::Unbounded), Span::Unknown);
    assert_eq!(
        int_span(&inc(-1e300), &exc(9_223_372_036_854_775_808.0)),
        Span::Within(i64::MIN, i64::MAX)
    );
    assert_eq!(
        int_span(&exc(-9_223_372_036_854_775_808.0), &Bound::Unbounded),
        Span::Within(i64::MIN + 1, i64::MAX)
    );
}
