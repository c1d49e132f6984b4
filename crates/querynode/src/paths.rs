//! The values of a JSON path in every row of a sealed segment, extracted
//! once per path ([`PathColumns`]): as the segment loads for each declared
//! JSON path index and each path the shard's segments extracted before
//! (`warm.rs`), else by the first filter that tests the path. A column
//! keyed by the path (`quiver_api::json_path_key`) that a filter's column
//! plan binds its path conditions to (so they are tested on values, a
//! column at a time, not by parsing each row's JSON), and that the path's
//! term and sorted indexes are built from.
//!
//! Each value is what the filter evaluator reads at the path
//! (`quiver_api::json_path_value`; numbers as exact floats, so a path
//! holding both 3 and 2.5 still has one sorted index).

use std::sync::Arc;

use quiver_api::{json_path_value, parse_json_path};
use quiver_common::{Column, StoredColumn};

use crate::built::{Built, When};

/// A segment's extracted JSON path columns, by path.
pub(crate) struct PathColumns {
    built: Built<String, StoredColumn>,
}

impl Default for PathColumns {
    fn default() -> Self {
        Self::charging(&crate::path_cache::PATHS)
    }
}

impl PathColumns {
    /// Entries of JSON paths charged to `ledger` (the process's by default).
    pub(crate) fn charging(ledger: &'static crate::path_cache::Ledger) -> Self {
        Self {
            built: Built::with_ledger("path", |_| true, ledger),
        }
    }
}

impl PathColumns {
    /// The values at JSON path `key` of each row of `columns`, extracted
    /// now if they were not (None: `key` is no path of a column there).
    pub(crate) fn get(
        &self,
        columns: &[StoredColumn],
        key: &str,
        when: When,
    ) -> Option<Arc<StoredColumn>> {
        self.built
            .get(&key.to_string(), when, || extract(columns, key))
    }

    /// The paths extracted.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.built.keys()
    }
}

/// The values at JSON path `key` of each row of `columns`' JSON field
/// (None when the key is no path of a column there).
pub(crate) fn extract(columns: &[StoredColumn], key: &str) -> Option<StoredColumn> {
    let (field, steps) = parse_json_path(key).ok()?;
    let column = columns.iter().find(|c| c.name == field)?;
    Some(StoredColumn::new(Column {
        name: key.to_string(),
        values: (column.iter())
            .map(|v| v.with(|v| json_path_value(v, &steps)))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_common::ScalarValue;

    #[test]
    fn a_path_reads_what_the_evaluator_reads() {
        let rows = [
            r#"{"a": {"b": 3}}"#,
            r#"{"a": {"b": 2.5}}"#,
            r#"{"a": {"b": "x"}}"#,
            r#"{"a": {"b": [1]}}"#,
            r#"{"a": {"b": null}}"#,
            r#"{"a": 7}"#,
            "not json",
            r#"{"a": {"b": 9007199254740993}}"#,
        ];
        let mut values: Vec<ScalarValue> = rows
            .iter()
            .map(|t| ScalarValue::Json(t.to_string()))
            .collect();
        values.push(ScalarValue::Null);
        let columns = [StoredColumn::new(Column {
            name: "meta".into(),
            values,
        })];
        let got = extract(&columns, r#"meta["a"]["b"]"#).expect("a path of meta");
        assert_eq!(got.name, r#"meta["a"]["b"]"#);
        assert_eq!(
            got.to_column().values,
            [
                ScalarValue::Float(3.0),
                ScalarValue::Float(2.5),
                ScalarValue::Str("x".into()),
                ScalarValue::Json("[1]".into()),
                ScalarValue::Null,
                ScalarValue::Null,
                ScalarValue::Null,
                ScalarValue::Int(9_007_199_254_740_993),
                ScalarValue::Null,
            ]
        );
        assert!(extract(&columns, r#"other["a"]"#).is_none());
    }
}
