//! JSON path indexes (Milvus CreateIndex on a JSON field with `json_path`
//! and `json_cast_type`): the path's one spelling every layer keys them by.
//!
//! A path is its field's name followed by keys and array positions,
//! `meta["a"]["b"]`, `meta["tags"][0]`. [`json_path_key`] writes it in one
//! canonical form (keys in double quotes, `"` and `\` escaped by a
//! backslash, no spaces), so
//! the index recorded from a user's `json_path` and the terms a filter names
//! (`meta['a'] == "x"`) meet on the same key. A plain field's name never
//! holds `[`, so [`is_json_path_key`] tells the two apart.

use serde::{Deserialize, Serialize};

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonStep {
    Key(String),
    Index(u64),
}

/// The canonical key of `field` followed by `steps`.
pub fn json_path_key(field: &str, steps: &[JsonStep]) -> String {
    let mut out = field.to_string();
    for s in steps {
        match s {
            JsonStep::Key(k) => {
                out.push_str("[\"");
                for c in k.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push_str("\"]");
            }
            JsonStep::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Whether `key` names a path inside a JSON field (not a plain field).
pub fn is_json_path_key(key: &str) -> bool {
    key.contains('[')
}

/// Parses a user's `json_path` (`meta["a"]['b'][0]`, spaces allowed
/// between steps) into its field and steps.
pub fn parse_json_path(path: &str) -> Result<(String, Vec<JsonStep>), String> {
    let path = path.trim();
    let end = path.find('[').unwrap_or(path.len());
    let field = path[..end].trim();
    let valid_name = field
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if !valid_name {
        return Err(format!("{path:?} does not start with a field name"));
    }
    let mut steps = Vec::new();
    let mut rest = path[end..].trim_start();
    while !rest.is_empty() {
        let Some(inner) = rest.strip_prefix('[') else {
            return Err(format!("{path:?}: expected '[' at {rest:?}"));
        };
        let inner = inner.trim_start();
        let (step, after) = match inner.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let body = &inner[1..];
                let mut key = String::new();
                let mut chars = body.char_indices();
                let mut close = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some((_, e)) => key.push(e),
                            None => break,
                        },
                        c if c == q => {
                            close = Some(i);
                            break;
                        }
                        c => key.push(c),
                    }
                }
                let Some(close) = close else {
                    return Err(format!("{path:?}: unterminated key"));
                };
                (JsonStep::Key(key), &body[close + 1..])
            }
            _ => {
                let digits =
                    inner.len() - inner.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let index = inner[..digits].parse::<u64>().map_err(|_| {
                    format!("{path:?}: a step is a quoted key or an array position")
                })?;
                (JsonStep::Index(index), &inner[digits..])
            }
        };
        let Some(after) = after.trim_start().strip_prefix(']') else {
            return Err(format!("{path:?}: expected ']'"));
        };
        steps.push(step);
        rest = after.trim_start();
    }
    Ok((field.to_string(), steps))
}

/// Integers a float holds exactly.
const EXACT: i64 = 1 << 53;

/// The value at `steps` in `v`, a JSON field's value, as the filter
/// evaluator reads it: JSON null, a missing key or anything but JSON text
/// is a null, a bool a bool, a string a string, an array or an object stays
/// JSON (no condition compares with it). Numbers are floats when they are
/// exactly one (every integer up to 2^53): a column of them then holds one
/// kind, and conditions compare ints and floats exactly, so 3.0 is 3.
pub fn json_path_value(
    v: &quiver_common::ScalarValue,
    steps: &[JsonStep],
) -> quiver_common::ScalarValue {
    use quiver_common::ScalarValue;
    use serde_json::Value as Json;
    let (ScalarValue::Json(text) | ScalarValue::Str(text)) = v else {
        return ScalarValue::Null;
    };
    let Ok(doc) = serde_json::from_str::<Json>(text) else {
        return ScalarValue::Null;
    };
    let mut cur = &doc;
    for s in steps {
        let next = match (s, cur) {
            (JsonStep::Key(k), Json::Object(m)) => m.get(k),
            (JsonStep::Index(i), Json::Array(a)) => usize::try_from(*i).ok().and_then(|i| a.get(i)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return ScalarValue::Null,
        }
    }
    match cur {
        Json::Null => ScalarValue::Null,
        Json::Bool(b) => ScalarValue::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) if (-EXACT..=EXACT).contains(&i) => ScalarValue::Float(i as f64),
            Some(i) => ScalarValue::Int(i),
            None => n.as_f64().map_or(ScalarValue::Null, ScalarValue::Float),
        },
        Json::String(s) => ScalarValue::Str(s.clone()),
        Json::Array(_) | Json::Object(_) => ScalarValue::Json(cur.to_string()),
    }
}

/// A JSON path index's definition beside its [`crate::ScalarIndex`]: the
/// canonical path and the cast Milvus names (`BOOL`, `DOUBLE`, `VARCHAR`,
/// `ARRAY_BOOL`, `ARRAY_DOUBLE`, `ARRAY_VARCHAR`; upper case), with the
/// optional `json_cast_function` (`STRING_TO_DOUBLE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonPathIndex {
    pub path: String,
    pub cast: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cast_function: Option<String>,
}

/// The casts Milvus accepts for a JSON path index.
pub const JSON_CAST_TYPES: [&str; 6] = [
    "BOOL",
    "DOUBLE",
    "VARCHAR",
    "ARRAY_BOOL",
    "ARRAY_DOUBLE",
    "ARRAY_VARCHAR",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_to_one_canonical_key() {
        for spelled in [
            r#"meta["a"]["b c"]"#,
            r#"meta['a'] ['b c']"#,
            r#" meta[ "a" ][ 'b c' ] "#,
        ] {
            let (field, steps) = parse_json_path(spelled).expect(spelled);
            assert_eq!(field, "meta");
            assert_eq!(json_path_key(&field, &steps), r#"meta["a"]["b c"]"#);
        }
        let (f, steps) = parse_json_path(r#"meta["say \"hi\""][2]"#).expect("escapes");
        assert_eq!(
            steps,
            [JsonStep::Key(r#"say "hi""#.into()), JsonStep::Index(2)]
        );
        assert_eq!(json_path_key(&f, &steps), r#"meta["say \"hi\""][2]"#);
        assert_eq!(parse_json_path("meta").expect("whole").1, []);
        assert!(is_json_path_key(r#"meta["a"]"#) && !is_json_path_key("meta"));
        for bad in [
            "",
            "[\"a\"]",
            "meta[\"a\"",
            "meta[a]",
            "meta.a",
            "9x[\"a\"]",
            "meta[\"a]",
        ] {
            assert!(parse_json_path(bad).is_err(), "{bad:?}");
        }
    }
}
