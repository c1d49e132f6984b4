//! Membership in an `in` list.

use std::cmp::Ordering;

pub(crate) use quiver_api::float_as_int;

use crate::eval::{V, cmp_int_float};
use crate::ir::ValueSet;

/// Whether `v` is in `set`: unknown for NULL and for a value of a kind the
/// list does not hold (a JSON string against a list of numbers).
pub(crate) fn contains(set: &ValueSet, v: V<'_>) -> Option<bool> {
    if set.items.is_empty() {
        return (!matches!(v, V::Null)).then_some(false);
    }
    match v {
        V::Int(i) if set.has_numbers() => Some(
            set.ints.contains(&i)
                || set
                    .floats
                    .iter()
                    .any(|f| cmp_int_float(i, *f) == Some(Ordering::Equal)),
        ),
        V::Float(x) if set.has_numbers() => {
            Some(set.floats.contains(&x) || float_as_int(x).is_some_and(|i| set.ints.contains(&i)))
        }
        V::Str(s) if !set.strs.is_empty() => Some(set.strs.contains(s)),
        V::Bool(b) if set.bools.iter().any(|x| *x) => Some(set.bools[usize::from(b)]),
        _ => None,
    }
}
