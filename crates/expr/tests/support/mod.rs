//! A schema and an in-memory row set for tests.

#![allow(dead_code)]

use std::collections::HashMap;

use quiver_api::{RowAccess, RowPredicate};
use quiver_common::{CollectionSchema, DataType, FieldSchema, PrimaryKey, ScalarValue};
use quiver_expr::{CompiledFilter, TemplateValue, compile, parse};

#[derive(Debug, Clone)]
pub struct Row {
    pub pk: PrimaryKey,
    pub fields: HashMap<String, ScalarValue>,
}

impl RowAccess for Row {
    fn pk(&self) -> &PrimaryKey {
        &self.pk
    }

    fn field(&self, name: &str) -> Option<quiver_common::ValueRef<'_>> {
        self.fields.get(name).map(quiver_common::ValueRef::of)
    }
}

/// id (Int64 pk), vector, age Int32, score Double (nullable), name VarChar,
/// flag Bool, tag VarChar (nullable), meta Json (nullable); dynamic field on.
pub fn schema() -> CollectionSchema {
    let mut s = CollectionSchema::simple("c", 2);
    s.fields.extend([
        FieldSchema::new("age", DataType::Int32),
        FieldSchema::new("score", DataType::Double).nullable(),
        FieldSchema::new("name", DataType::VarChar).with_max_length(64),
        FieldSchema::new("flag", DataType::Bool),
        FieldSchema::new("tag", DataType::VarChar)
            .with_max_length(64)
            .nullable(),
        FieldSchema::new("meta", DataType::Json).nullable(),
    ]);
    s.enable_dynamic_field = true;
    s.validate().expect("valid test schema");
    s
}

pub fn static_schema() -> CollectionSchema {
    let mut s = schema();
    s.enable_dynamic_field = false;
    s
}

#[allow(clippy::too_many_arguments)]
fn row(
    id: i64,
    age: i64,
    score: Option<f64>,
    name: &str,
    flag: bool,
    tag: Option<&str>,
    meta: Option<&str>,
    dynamic: &str,
) -> Row {
    let mut f = HashMap::new();
    f.insert("age".into(), ScalarValue::Int(age));
    f.insert(
        "score".into(),
        score.map_or(ScalarValue::Null, ScalarValue::Float),
    );
    f.insert("name".into(), ScalarValue::Str(name.into()));
    f.insert("flag".into(), ScalarValue::Bool(flag));
    f.insert(
        "tag".into(),
        tag.map_or(ScalarValue::Null, |t| ScalarValue::Str(t.into())),
    );
    f.insert(
        "meta".into(),
        meta.map_or(ScalarValue::Null, |m| ScalarValue::Json(m.into())),
    );
    f.insert("$meta".into(), ScalarValue::Json(dynamic.into()));
    Row {
        pk: PrimaryKey::Int(id),
        fields: f,
    }
}

pub fn rows() -> Vec<Row> {
    vec![
        row(
            1,
            10,
            Some(1.5),
            "apple",
            true,
            Some("red"),
            Some(r#"{"color":"red","n":1,"arr":[1,2,3],"sub":{"k":"v"}}"#),
            r#"{"city":"paris","pop":2.1,"tags":["a","b"]}"#,
        ),
        row(
            2,
            20,
            Some(2.5),
            "banana",
            false,
            None,
            Some(r#"{"color":"yellow","n":2.5,"arr":[4],"flag":true}"#),
            r#"{"city":"rome","pop":2}"#,
        ),
        row(
            3,
            30,
            None,
            "cherry",
            true,
            Some("red"),
            None,
            r#"{"pop":null}"#,
        ),
        row(
            4,
            40,
            Some(-1.0),
            "date",
            false,
            Some("brown"),
            Some(r#"{"color":7,"n":"x"}"#),
            "{}",
        ),
        row(
            5,
            50,
            Some(100.0),
            "50% off",
            true,
            Some("a_b"),
            Some("not json"),
            r#"{"city":"paris"}"#,
        ),
    ]
}

pub fn filter(text: &str) -> CompiledFilter {
    filter_with(text, &HashMap::new())
}

pub fn filter_with(text: &str, t: &HashMap<String, TemplateValue>) -> CompiledFilter {
    let e = parse(text).unwrap_or_else(|e| panic!("parse {text:?}: {e}"));
    compile(&e, &schema(), t).unwrap_or_else(|e| panic!("compile {text:?}: {e}"))
}

/// Ids of the rows the filter passes.
pub fn ids(text: &str) -> Vec<i64> {
    ids_of(&filter(text))
}

pub fn ids_of(f: &CompiledFilter) -> Vec<i64> {
    rows()
        .iter()
        .filter(|r| f.eval(*r))
        .map(|r| match r.pk {
            PrimaryKey::Int(i) => i,
            PrimaryKey::Str(_) => -1,
        })
        .collect()
}

/// The compile error for `text`, as a string.
pub fn compile_err(text: &str) -> String {
    let e = parse(text).unwrap_or_else(|e| panic!("parse {text:?}: {e}"));
    match compile(&e, &schema(), &HashMap::new()) {
        Ok(_) => panic!("{text:?} compiled"),
        Err(e) => e.to_string(),
    }
}
