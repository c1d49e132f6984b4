//! Term indexes of sealed segments: for an int or string column, the rows
//! holding each value, built the first time a filter's equality terms
//! (`RowPredicate::column_terms`) name the column, and kept with the
//! loaded segment. A search then evaluates its filter only on the rows the
//! terms allow and hands the index an exact set of candidates (a
//! [`Bitset`] whose size decides exact vs graph search), instead of
//! testing the filter on every row the graph visits. This is how a
//! partition (`__quiver_partition in [..]`) or a partition key
//! (`tenant == 7`) prunes a collection's other rows.

use std::collections::HashMap;
use std::sync::Arc;

use quiver_api::{RowPredicate, float_as_int, is_json_path_key};
use quiver_common::{ScalarValue, StoredColumn, ValueRef};
use quiver_index::Bitset;

use crate::built::{Built, When};

/// A value a term index is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Int(i64),
    Str(String),
}

impl Key {
    fn of(v: &ScalarValue) -> Option<Key> {
        match v {
            ScalarValue::Int(i) => Some(Key::Int(*i)),
            ScalarValue::Str(s) => Some(Key::Str(s.clone())),
            _ => None,
        }
    }
}

/// The rows of each value of one column (ascending row ids).
pub(crate) struct TermIndex {
    rows: HashMap<Key, Vec<u32>>,
}

impl crate::built::HeapBytes for TermIndex {
    fn heap_bytes(&self) -> usize {
        // A table slot holds a key and a Vec (and a control byte).
        let slot = std::mem::size_of::<(Key, Vec<u32>)>() + 1;
        let owned = (self.rows.iter()).map(|(k, rows)| {
            let key = match k {
                Key::Str(s) => s.capacity(),
                Key::Int(_) => 0,
            };
            key + rows.capacity() * 4
        });
        self.rows.capacity() * slot + owned.sum::<usize>()
    }
}

impl TermIndex {
    /// The rows holding each token of a text column analysed by `analyzer`
    /// (a `TEXT_MATCH`'s index). None when the parameters make no analyzer.
    fn build_text(column: &StoredColumn, analyzer: &str) -> Option<TermIndex> {
        let analyzer = quiver_text::Analyzer::from_params(analyzer).ok()?;
        let mut rows: HashMap<Key, Vec<u32>> = HashMap::new();
        for (i, v) in column.iter().enumerate() {
            let Some(text) = v.as_str() else { continue };
            let mut tokens: Vec<String> = (analyzer.tokens(text).into_iter())
                .map(|t| t.text)
                .collect();
            tokens.sort_unstable();
            tokens.dedup();
            for t in tokens {
                rows.entry(Key::Str(t)).or_default().push(i as u32);
            }
        }
        Some(TermIndex { rows })
    }

    /// The rows of each value of a JSON path's column (`paths.rs`):
    /// strings, and numbers that are integers (as a filter compares them:
    /// 3.0 is 3). Other values (other numbers, bools, arrays, objects,
    /// nulls) are left out: no equality term names them (`quiver_expr`'s
    /// terms; `select.rs` asks no term index for them), so candidates still
    /// hold every row a filter accepts.
    fn build_path(column: &StoredColumn) -> TermIndex {
        let mut rows: HashMap<Key, Vec<u32>> = HashMap::new();
        for (i, v) in column.iter().enumerate() {
            let key = match v {
                ValueRef::Ref(ScalarValue::Str(s)) => Key::Str(s.clone()),
                ValueRef::Int(x) => Key::Int(x),
                ValueRef::Float(x) => match float_as_int(x) {
                    Some(x) => Key::Int(x),
                    None => continue,
                },
                _ => continue,
            };
            rows.entry(key).or_default().push(i as u32);
        }
        TermIndex { rows }
    }

    /// None when the column holds values other than ints, strings and nulls.
    fn build(column: &StoredColumn) -> Option<TermIndex> {
        let mut rows: HashMap<Key, Vec<u32>> = HashMap::new();
        for (i, v) in column.iter().enumerate() {
            if v == ValueRef::Null {
                continue;
            }
            rows.entry(v.with(Key::of)?).or_default().push(i as u32);
        }
        Some(TermIndex { rows })
    }

    /// How many rows hold one of `values`.
    pub(crate) fn count(&self, values: &[ScalarValue]) -> usize {
        (values.iter().filter_map(Key::of))
            .filter_map(|k| self.rows.get(&k))
            .map(Vec::len)
            .sum()
    }

    pub(crate) fn rows<'a>(&'a self, values: &'a [ScalarValue]) -> impl Iterator<Item = u32> + 'a {
        values
            .iter()
            .filter_map(Key::of)
            .filter_map(|k| self.rows.get(&k))
            .flatten()
            .copied()
    }
}

/// A term index's key: its column and, for a text match, the analyzer.
pub(crate) type TermKey = (String, Option<String>);

/// A segment's term indexes, by column (None: the column cannot be indexed).
pub(crate) struct TermIndexes {
    built: Built<TermKey, TermIndex>,
}

impl Default for TermIndexes {
    fn default() -> Self {
        Self::charging(&crate::path_cache::PATHS)
    }
}

impl TermIndexes {
    /// Entries of JSON paths charged to `ledger` (the process's by default).
    pub(crate) fn charging(ledger: &'static crate::path_cache::Ledger) -> Self {
        Self {
            built: Built::with_ledger("terms", |k| is_json_path_key(&k.0), ledger),
        }
    }
}

impl TermIndexes {
    /// The term index of plain column `name` (not a text analysis of it).
    pub(crate) fn column(&self, columns: &[StoredColumn], name: &str) -> Option<Arc<TermIndex>> {
        self.get(columns, &(name.to_string(), None), When::Search)
    }

    /// The index of `key`, built now if it was not. A JSON path's is built
    /// from the path's extracted values (`paths.rs`); asked without them in
    /// `columns`, it is only looked up (built later, once they are).
    pub(crate) fn get(
        &self,
        columns: &[StoredColumn],
        key: &TermKey,
        when: When,
    ) -> Option<Arc<TermIndex>> {
        let column = columns.iter().find(|c| c.name == key.0);
        if column.is_none() && is_json_path_key(&key.0) {
            return self.built.built(key);
        }
        self.built.get(key, when, || {
            let column = column?;
            match &key.1 {
                None if is_json_path_key(&key.0) => Some(TermIndex::build_path(column)),
                None => TermIndex::build(column),
                Some(a) => TermIndex::build_text(column, a),
            }
        })
    }

    /// The keys of the indexes built.
    pub(crate) fn keys(&self) -> Vec<TermKey> {
        self.built.keys()
    }

    /// The rows among `alive` that `predicate` accepts, found through the
    /// first of its equality terms whose column can be indexed and names at
    /// most `max_rows` rows; None when there is none (then the caller tests
    /// rows itself — a search lazily, on the rows its graph visits, which is
    /// cheaper than testing most of a segment up front).
    pub fn candidates(
        &self,
        columns: &[StoredColumn],
        alive: &Bitset,
        predicate: &dyn RowPredicate,
        max_rows: usize,
        accepts: impl Fn(u32) -> bool,
    ) -> Option<Bitset> {
        let (index, terms) = predicate.column_terms().iter().find_map(|t| {
            let index = self.get(
                columns,
                &(t.column.clone(), t.analyzer.clone()),
                When::Search,
            )?;
            (index.count(&t.values) <= max_rows).then_some((index, t))
        })?;
        let mut out = Bitset::new_empty(alive.len());
        for row in index.rows(&terms.values) {
            if alive.contains(row) && accepts(row) {
                out.insert(row);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_api::{ColumnTerms, RowAccess};

    struct Terms(Vec<ColumnTerms>);

    impl RowPredicate for Terms {
        fn eval(&self, _: &dyn RowAccess) -> bool {
            true
        }
        fn column_terms(&self) -> &[ColumnTerms] {
            &self.0
        }
    }

    fn col(name: &str, values: Vec<ScalarValue>) -> StoredColumn {
        StoredColumn::new(quiver_common::Column {
            name: name.into(),
            values,
        })
    }

    #[test]
    fn candidates_are_the_rows_of_the_values_that_are_alive_and_accepted() {
        let tenant: Vec<ScalarValue> = (0..20).map(|i| ScalarValue::Int(i % 4)).collect();
        let price: Vec<ScalarValue> = (0..20).map(|i| ScalarValue::Float(i as f64)).collect();
        let columns = [col("tenant", tenant), col("price", price)];
        let mut alive = Bitset::new_full(20);
        alive.remove(5);
        let p = Terms(vec![
            ColumnTerms {
                column: "price".into(),
                values: vec![ScalarValue::Int(3)],
                analyzer: None,
            },
            ColumnTerms {
                column: "tenant".into(),
                values: vec![ScalarValue::Int(1), ScalarValue::Int(9)],
                analyzer: None,
            },
        ]);
        let t = TermIndexes::default();
        // price holds floats: not indexed; tenant is.
        let got = t
            .candidates(&columns, &alive, &p, 20, |row| row != 13)
            .expect("tenant");
        assert_eq!(got.iter().collect::<Vec<_>>(), [1, 9, 17]);
        let none = Terms(vec![ColumnTerms {
            column: "price".into(),
            values: vec![],
            analyzer: None,
        }]);
        assert!(
            t.candidates(&columns, &alive, &none, 20, |_| true)
                .is_none()
        );
        // Terms naming more rows than allowed are not used.
        assert!(t.candidates(&columns, &alive, &p, 4, |_| true).is_none());
    }
}
