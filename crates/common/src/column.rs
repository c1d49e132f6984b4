//! A sealed segment's scalar column as it is held in memory, and a value
//! read from it.
//!
//! A [`Column`] of a batch holds one [`ScalarValue`] per row: 32 bytes each,
//! whatever the type. A sealed segment's columns are read far more often
//! than they change (never), so [`StoredColumn`] keeps the values of an
//! integer, float or boolean column in a plain vector of that type (8, 8 and
//! 1 bytes a value, plus one bit a row when some are null) and everything
//! else (strings, JSON, arrays, further vectors) as scalar values. A reader
//! gets a [`ValueRef`]: numbers and booleans by value, the rest by
//! reference.

use crate::batch::{Column, ScalarValue};

/// One value of a row: numbers and booleans by value, anything else by
/// reference to the stored [`ScalarValue`]. [`ValueRef::of`] is the one way
/// from a `&ScalarValue`; it never makes a `Ref` of a null, a bool or a
/// number, so a match on the by-value variants sees every one of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string, JSON, an array, a vector or a sparse vector.
    Ref(&'a ScalarValue),
}

impl<'a> ValueRef<'a> {
    pub fn of(v: &'a ScalarValue) -> ValueRef<'a> {
        match v {
            ScalarValue::Null => ValueRef::Null,
            ScalarValue::Bool(b) => ValueRef::Bool(*b),
            ScalarValue::Int(i) => ValueRef::Int(*i),
            ScalarValue::Float(x) => ValueRef::Float(*x),
            other => ValueRef::Ref(other),
        }
    }

    /// The value as an owned [`ScalarValue`] (a clone for a `Ref`).
    pub fn to_scalar(self) -> ScalarValue {
        match self {
            ValueRef::Null => ScalarValue::Null,
            ValueRef::Bool(b) => ScalarValue::Bool(b),
            ValueRef::Int(i) => ScalarValue::Int(i),
            ValueRef::Float(x) => ScalarValue::Float(x),
            ValueRef::Ref(v) => v.clone(),
        }
    }

    /// Calls `f` with the value as a `&ScalarValue`, without cloning a
    /// `Ref` (for code written over scalar values).
    #[inline]
    pub fn with<R>(self, f: impl FnOnce(&ScalarValue) -> R) -> R {
        match self {
            ValueRef::Ref(v) => f(v),
            ValueRef::Null => f(&ScalarValue::Null),
            ValueRef::Bool(b) => f(&ScalarValue::Bool(b)),
            ValueRef::Int(i) => f(&ScalarValue::Int(i)),
            ValueRef::Float(x) => f(&ScalarValue::Float(x)),
        }
    }

    /// The string, when the value is one.
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            ValueRef::Ref(ScalarValue::Str(s)) => Some(s),
            _ => None,
        }
    }
}

/// Values of one type with a null mask (a set bit: the row is null, its
/// slot holds the type's default). `nulls` is empty when no row is null.
#[derive(Debug, Clone, PartialEq)]
struct Typed<T> {
    values: Vec<T>,
    nulls: Vec<u64>,
}

impl<T: Copy + Default> Typed<T> {
    /// The typed values of `values` when every one is null or `pick`s; None
    /// otherwise (or when none does: a column of nulls keeps its type
    /// unknown).
    fn collect(values: &[ScalarValue], pick: impl Fn(&ScalarValue) -> Option<T>) -> Option<Self> {
        let mut out = Vec::with_capacity(values.len());
        let mut nulls = Vec::new();
        let mut any = false;
        for (row, v) in values.iter().enumerate() {
            if let ScalarValue::Null = v {
                if nulls.is_empty() {
                    nulls = vec![0u64; values.len().div_ceil(64)];
                }
                nulls[row / 64] |= 1 << (row % 64);
                out.push(T::default());
            } else {
                out.push(pick(v)?);
                any = true;
            }
        }
        any.then_some(Typed { values: out, nulls })
    }

    #[inline]
    fn get(&self, row: usize) -> Option<Option<T>> {
        let v = *self.values.get(row)?;
        let null = (self.nulls.get(row / 64)).is_some_and(|w| w & (1 << (row % 64)) != 0);
        Some((!null).then_some(v))
    }

    fn bytes(&self) -> usize {
        self.values.len() * std::mem::size_of::<T>() + self.nulls.len() * 8
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Values {
    Int(Typed<i64>),
    Float(Typed<f64>),
    Bool(Typed<bool>),
    Any(Vec<ScalarValue>),
}

/// The values of a column, typed where they allow it, for prefetching or a
/// typed loop.
#[derive(Debug, Clone, Copy)]
pub enum ColumnSlice<'a> {
    Int(&'a [i64]),
    Float(&'a [f64]),
    Bool(&'a [bool]),
    Any(&'a [ScalarValue]),
}

/// A sealed segment's column (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredColumn {
    pub name: String,
    values: Values,
}

impl StoredColumn {
    /// Stores `c`'s values by type when all of them (nulls aside) are
    /// integers, all floats or all booleans.
    pub fn new(c: Column) -> StoredColumn {
        let v = &c.values;
        let values = if let Some(t) = Typed::collect(v, |x| match x {
            ScalarValue::Int(i) => Some(*i),
            _ => None,
        }) {
            Values::Int(t)
        } else if let Some(t) = Typed::collect(v, |x| match x {
            ScalarValue::Float(f) => Some(*f),
            _ => None,
        }) {
            Values::Float(t)
        } else if let Some(t) = Typed::collect(v, |x| match x {
            ScalarValue::Bool(b) => Some(*b),
            _ => None,
        }) {
            Values::Bool(t)
        } else {
            Values::Any(c.values)
        };
        StoredColumn {
            name: c.name,
            values,
        }
    }

    /// Bytes the column holds on the heap (its values, their strings and
    /// its null bits; the name aside): what keeping it costs.
    pub fn heap_bytes(&self) -> usize {
        fn typed<T>(t: &Typed<T>) -> usize {
            t.values.capacity() * std::mem::size_of::<T>() + t.nulls.capacity() * 8
        }
        match &self.values {
            Values::Int(t) => typed(t),
            Values::Float(t) => typed(t),
            Values::Bool(t) => typed(t),
            Values::Any(v) => {
                v.capacity() * std::mem::size_of::<ScalarValue>()
                    + v.iter().map(ScalarValue::heap_bytes).sum::<usize>()
            }
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match &self.values {
            Values::Int(t) => t.values.len(),
            Values::Float(t) => t.values.len(),
            Values::Bool(t) => t.values.len(),
            Values::Any(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `row`; None past the last row.
    #[inline]
    pub fn get(&self, row: usize) -> Option<ValueRef<'_>> {
        Some(match &self.values {
            Values::Int(t) => t.get(row)?.map_or(ValueRef::Null, ValueRef::Int),
            Values::Float(t) => t.get(row)?.map_or(ValueRef::Null, ValueRef::Float),
            Values::Bool(t) => t.get(row)?.map_or(ValueRef::Null, ValueRef::Bool),
            Values::Any(v) => ValueRef::of(v.get(row)?),
        })
    }

    /// Every row's value, in row order.
    pub fn iter(&self) -> impl Iterator<Item = ValueRef<'_>> + '_ {
        (0..self.len()).filter_map(|row| self.get(row))
    }

    /// The values as stored (a typed slot of a null row holds the default).
    pub fn slice(&self) -> ColumnSlice<'_> {
        match &self.values {
            Values::Int(t) => ColumnSlice::Int(&t.values),
            Values::Float(t) => ColumnSlice::Float(&t.values),
            Values::Bool(t) => ColumnSlice::Bool(&t.values),
            Values::Any(v) => ColumnSlice::Any(v),
        }
    }

    /// The null mask of a typed column (see [`StoredColumn::slice`]): row
    /// `r` is null when bit `r % 64` of word `r / 64` is set; empty when no
    /// row is. Empty for a column of scalar values too, whose nulls are
    /// values.
    pub fn null_words(&self) -> &[u64] {
        match &self.values {
            Values::Int(t) => &t.nulls,
            Values::Float(t) => &t.nulls,
            Values::Bool(t) => &t.nulls,
            Values::Any(_) => &[],
        }
    }

    /// Bytes the values take in memory, not counting what a stored scalar
    /// value owns on the heap (a string's text, ...).
    pub fn bytes(&self) -> usize {
        match &self.values {
            Values::Int(t) => t.bytes(),
            Values::Float(t) => t.bytes(),
            Values::Bool(t) => t.bytes(),
            Values::Any(v) => std::mem::size_of_val(v.as_slice()),
        }
    }

    /// The column as a batch's column (values cloned).
    pub fn to_column(&self) -> Column {
        Column {
            name: self.name.clone(),
            values: self.iter().map(ValueRef::to_scalar).collect(),
        }
    }
}

impl From<Column> for StoredColumn {
    fn from(c: Column) -> Self {
        StoredColumn::new(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(values: Vec<ScalarValue>) -> StoredColumn {
        StoredColumn::new(Column {
            name: "c".into(),
            values,
        })
    }

    #[test]
    fn numbers_and_booleans_are_stored_by_type_and_read_back_as_they_were_with_their_nulls() {
        use ScalarValue as S;
        let cases = [
            vec![S::Int(3), S::Null, S::Int(-7), S::Int(i64::MAX)],
            vec![S::Float(1.5), S::Float(f64::NAN), S::Null],
            vec![S::Null, S::Bool(true), S::Bool(false)],
            (0..200)
                .map(|i| if i % 3 == 0 { S::Null } else { S::Int(i) })
                .collect(),
        ];
        for values in cases {
            let c = col(values.clone());
            assert!(
                !matches!(c.slice(), ColumnSlice::Any(_)),
                "typed: {values:?}"
            );
            assert_eq!(c.len(), values.len());
            let back: Vec<ScalarValue> = c.iter().map(ValueRef::to_scalar).collect();
            // NaN != NaN: compare the debug forms.
            assert_eq!(format!("{back:?}"), format!("{values:?}"));
            assert_eq!(c.get(values.len()), None);
            // At most 8 bytes a value and a bit a row, against 32 a value.
            assert!(c.bytes() <= values.len() * 8 + 8 * values.len().div_ceil(64));
        }
    }

    #[test]
    fn mixed_strings_and_all_null_columns_keep_their_scalar_values() {
        use ScalarValue as S;
        for values in [
            vec![S::Str("a".into()), S::Null],
            vec![S::Int(1), S::Float(2.0)],
            vec![S::Null, S::Null],
            vec![S::Json("{}".into())],
            vec![],
        ] {
            let c = col(values.clone());
            assert!(matches!(c.slice(), ColumnSlice::Any(_)), "{values:?}");
            assert_eq!(c.to_column().values, values);
        }
        let c = col(vec![S::Str("abc".into())]);
        assert_eq!(c.get(0).and_then(ValueRef::as_str), Some("abc"));
    }

    #[test]
    fn a_value_ref_is_by_value_for_every_null_bool_and_number() {
        use ScalarValue as S;
        assert_eq!(ValueRef::of(&S::Null), ValueRef::Null);
        assert_eq!(ValueRef::of(&S::Int(4)), ValueRef::Int(4));
        assert_eq!(ValueRef::of(&S::Bool(true)), ValueRef::Bool(true));
        assert_eq!(ValueRef::of(&S::Float(0.5)), ValueRef::Float(0.5));
        let s = S::Str("x".into());
        assert_eq!(ValueRef::of(&s), ValueRef::Ref(&s));
        assert_eq!(ValueRef::Int(4).with(|v| v.clone()), S::Int(4));
    }
}
