//! Sorted indexes of sealed segments (Milvus's STL_SORT): a column of
//! numbers' rows in value order, so a range names its rows by two binary
//! searches instead of a scan. Built the first time a filter asks a range
//! of the column, kept with the loaded segment.

use std::ops::Bound;
use std::sync::Arc;

use quiver_api::{Num, above, below};
use quiver_common::{StoredColumn, ValueRef};

use crate::built::{Built, When};

enum Keys {
    Ints(Vec<i64>),
    Floats(Vec<f64>),
}

/// One column's values in ascending order, and the row of each (nulls and
/// NaN left out).
pub(crate) struct SortedIndex {
    keys: Keys,
    rows: Vec<u32>,
}

impl crate::built::HeapBytes for SortedIndex {
    fn heap_bytes(&self) -> usize {
        let keys = match &self.keys {
            Keys::Ints(k) => k.capacity() * 8,
            Keys::Floats(k) => k.capacity() * 8,
        };
        keys + self.rows.capacity() * 4
    }
}

impl SortedIndex {
    /// None when the column holds anything but numbers of one kind and
    /// nulls.
    fn build(column: &StoredColumn) -> Option<SortedIndex> {
        let first = column.iter().find(|v| *v != ValueRef::Null)?;
        Some(match first {
            ValueRef::Int(_) => {
                let mut pairs = Vec::with_capacity(column.len());
                for (i, v) in column.iter().enumerate() {
                    match v {
                        ValueRef::Int(x) => pairs.push((x, i as u32)),
                        ValueRef::Null => {}
                        _ => return None,
                    }
                }
                pairs.sort_unstable();
                let (keys, rows) = pairs.into_iter().unzip();
                SortedIndex {
                    keys: Keys::Ints(keys),
                    rows,
                }
            }
            ValueRef::Float(_) => {
                let mut pairs = Vec::with_capacity(column.len());
                for (i, v) in column.iter().enumerate() {
                    match v {
                        ValueRef::Float(x) if !x.is_nan() => pairs.push((x, i as u32)),
                        ValueRef::Float(_) | ValueRef::Null => {}
                        _ => return None,
                    }
                }
                pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let (keys, rows) = pairs.into_iter().unzip();
                SortedIndex {
                    keys: Keys::Floats(keys),
                    rows,
                }
            }
            _ => return None,
        })
    }

    /// The rows whose value lies within the bounds, compared as the filter
    /// evaluator compares numbers. Each bound's test is monotonic over the
    /// sorted values, so two partition points delimit the rows exactly.
    pub fn range(&self, lo: &Bound<Num>, hi: &Bound<Num>) -> &[u32] {
        let meets = |x: Num| (above(x, lo).unwrap_or(false), below(x, hi).unwrap_or(false));
        let (start, end) = match &self.keys {
            Keys::Ints(k) => (
                k.partition_point(|v| !meets(Num::Int(*v)).0),
                k.partition_point(|v| meets(Num::Int(*v)).1),
            ),
            Keys::Floats(k) => (
                k.partition_point(|v| !meets(Num::Float(*v)).0),
                k.partition_point(|v| meets(Num::Float(*v)).1),
            ),
        };
        self.rows.get(start..end.max(start)).unwrap_or(&[])
    }
}

/// A segment's sorted indexes, by column (None: the column cannot be
/// sorted).
pub(crate) struct SortedIndexes {
    built: Built<String, SortedIndex>,
}

impl Default for SortedIndexes {
    fn default() -> Self {
        Self::charging(&crate::path_cache::PATHS)
    }
}

impl SortedIndexes {
    /// Entries of JSON paths charged to `ledger` (the process's by default).
    pub(crate) fn charging(ledger: &'static crate::path_cache::Ledger) -> Self {
        Self {
            built: Built::with_ledger("sorted", |k| quiver_api::is_json_path_key(k), ledger),
        }
    }
}

impl SortedIndexes {
    /// The sorted index of `column` (a segment's column, or a JSON path's
    /// extracted one): built now if it was not, except a path's, which is
    /// built only as the segment loads.
    pub(crate) fn of(&self, column: &StoredColumn) -> Option<Arc<SortedIndex>> {
        self.built
            .get(&column.name, When::Search, || SortedIndex::build(column))
    }

    /// The sorted index of column `name`, built now if it was not (a JSON
    /// path's only from its extracted values in `columns`, as a term
    /// index's: `TermIndexes::get`).
    pub(crate) fn build(
        &self,
        columns: &[StoredColumn],
        name: &str,
        when: When,
    ) -> Option<Arc<SortedIndex>> {
        let key = name.to_string();
        let column = columns.iter().find(|c| c.name == name);
        if column.is_none() && quiver_api::is_json_path_key(name) {
            return self.built.built(&key);
        }
        self.built.get(&key, when, || SortedIndex::build(column?))
    }

    /// The columns whose sorted index was built.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.built.keys()
    }

    /// Whether column `name` was tried (built, or found not to sort).
    #[cfg(test)]
    pub(crate) fn tried(&self, name: &str) -> bool {
        self.built.tried(&name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_common::{Column, ScalarValue};

    fn column(values: Vec<ScalarValue>) -> StoredColumn {
        StoredColumn::new(Column {
            name: "x".into(),
            values,
        })
    }

    #[test]
    fn ranges_name_exactly_the_rows_within_them() {
        let ints: Vec<ScalarValue> = [5, -1, 3, 3, 9, 0]
            .into_iter()
            .map(ScalarValue::Int)
            .chain([ScalarValue::Null])
            .collect();
        let ix = SortedIndex::build(&column(ints)).expect("ints");
        let mut got = ix
            .range(
                &Bound::Excluded(Num::Float(0.5)),
                &Bound::Included(Num::Int(5)),
            )
            .to_vec();
        got.sort_unstable();
        assert_eq!(got, [0, 2, 3]);
        assert!(
            ix.range(&Bound::Included(Num::Int(6)), &Bound::Excluded(Num::Int(6)))
                .is_empty()
        );
        assert_eq!(ix.range(&Bound::Unbounded, &Bound::Unbounded).len(), 6);
        let floats = vec![
            ScalarValue::Float(0.25),
            ScalarValue::Float(f64::NAN),
            ScalarValue::Float(-2.0),
            ScalarValue::Float(1.0),
        ];
        let ix = SortedIndex::build(&column(floats)).expect("floats");
        assert_eq!(
            ix.range(&Bound::Unbounded, &Bound::Excluded(Num::Int(1))),
            [2, 0]
        );
        let mixed = vec![ScalarValue::Int(1), ScalarValue::Float(1.0)];
        assert!(SortedIndex::build(&column(mixed)).is_none());
        assert!(SortedIndex::build(&column(vec![ScalarValue::Str("a".into())])).is_none());
    }
}
