//! The values of a JSON path in every row of a sealed segment, extracted
//! once as the segment loads for each declared JSON path index: a column
//! keyed by the path (`quiver_api::json_path_key`) that a filter's column
//! plan binds its path conditions to, and that the path's term and sorted
//! indexes are built from.
//!
//! Each value is what the filter evaluator reads at the path: JSON null or
//! a missing key is a null, a bool a bool, a string a string, an array or
//! an object stays JSON (no condition compares with it). Numbers are floats
//! when they are exactly one (every integer up to 2^53), so that a path
//! holding both 3 and 2.5 still has one sorted index; the column plan
//! compares ints and floats exactly, so 3.0 is 3 to every condition.

use quiver_api::{JsonStep, parse_json_path};
use quiver_common::{Column, ScalarValue};
use serde_json::Value as Json;

/// Integers a float holds exactly.
const EXACT: i64 = 1 << 53;

/// The values at JSON path `key` of each row of `columns`' JSON field
/// (None when the key is no path of a column there).
pub(crate) fn extract(columns: &[Column], key: &str) -> Option<Column> {
    let (field, steps) = parse_json_path(key).ok()?;
    let column = columns.iter().find(|c| c.name == field)?;
    let values = (column.values.iter())
        .map(|v| match v {
            ScalarValue::Json(text) | ScalarValue::Str(text) => serde_json::from_str::<Json>(text)
                .ok()
                .as_ref()
                .and_then(|doc| at(doc, &steps))
                .map_or(ScalarValue::Null, value),
            _ => ScalarValue::Null,
        })
        .collect();
    Some(Column {
        name: key.to_string(),
        values,
    })
}

fn at<'a>(doc: &'a Json, steps: &[JsonStep]) -> Option<&'a Json> {
    let mut cur = doc;
    for s in steps {
        cur = match (s, cur) {
            (JsonStep::Key(k), Json::Object(m)) => m.get(k)?,
            (JsonStep::Index(i), Json::Array(a)) => a.get(usize::try_from(*i).ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn value(j: &Json) -> ScalarValue {
    match j {
        Json::Null => ScalarValue::Null,
        Json::Bool(b) => ScalarValue::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) if (-EXACT..=EXACT).contains(&i) => ScalarValue::Float(i as f64),
            Some(i) => ScalarValue::Int(i),
            None => n.as_f64().map_or(ScalarValue::Null, ScalarValue::Float),
        },
        Json::String(s) => ScalarValue::Str(s.clone()),
        Json::Array(_) | Json::Object(_) => ScalarValue::Json(j.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let columns = [Column {
            name: "meta".into(),
            values,
        }];
        let got = extract(&columns, r#"meta["a"]["b"]"#).expect("a path of meta");
        assert_eq!(got.name, r#"meta["a"]["b"]"#);
        assert_eq!(
            got.values,
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
