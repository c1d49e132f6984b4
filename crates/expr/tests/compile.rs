//! Compile-time checks: unknown fields, type errors, templates. Each error
//! names the field or template.

mod support;

use std::collections::HashMap;

use quiver_expr::{ExprError, TemplateValue, compile, parse};
use support::{compile_err, schema, static_schema};

#[test]
fn unknown_fields() {
    let e = parse("nope > 1").expect("parse");
    let err = compile(&e, &static_schema(), &HashMap::new()).expect_err("unknown");
    assert_eq!(err, ExprError::UnknownField("nope".into()));
    assert!(err.to_string().contains("\"nope\""));
    let e = parse("$meta['x'] == 1").expect("parse");
    assert!(compile(&e, &static_schema(), &HashMap::new()).is_err());
    // With a dynamic field the same name is a key of $meta.
    assert!(
        compile(
            &parse("nope > 1").expect("parse"),
            &schema(),
            &HashMap::new()
        )
        .is_ok()
    );
}

#[test]
fn type_errors_name_the_field() {
    let cases = [
        ("name > 1", "name", "VarChar"),
        ("age == 'x'", "age", "Int32"),
        (
            "age in [1, 'x']",
            "age",
            "with \"x\" (string) in an 'in' list",
        ),
        ("name in [1]", "name", "VarChar"),
        ("flag > true", "flag", "using '>'"),
        ("flag == 1", "flag", "Bool"),
        ("age like 'a%'", "age", "'like'"),
        ("score like 'a%'", "score", "Double"),
        ("name + 1 > 2", "name", "needs numbers"),
        ("-name == 1", "name", "needs numbers"),
        ("age", "age", "not a boolean"),
        ("age and flag", "age", "not a boolean"),
        ("vector == 1", "vector", "vector field"),
        ("age['k'] == 1", "age", "not JSON"),
        ("id['k'] == 1", "id", "not JSON"),
        ("id == 'x'", "id", "Int64"),
        ("age == [1]", "age", "only allowed after 'in'"),
        ("age in [name]", "age", "constants"),
        ("(age + 1) is null", "age", "needs a field"),
    ];
    for (text, field, needle) in cases {
        let msg = compile_err(text);
        assert!(msg.contains(&format!("field \"{field}\"")), "{text}: {msg}");
        assert!(msg.contains(needle), "{text}: {msg} (wanted {needle})");
    }
}

#[test]
fn constant_errors() {
    assert!(compile_err("1 == 'a'").contains("cannot compare 1 (integer) with \"a\" (string)"));
    assert!(compile_err("9223372036854775807 + 1 > 0").contains("overflow"));
    assert!(compile_err("1 / 0 > 0").contains("division by zero"));
    assert!(compile_err("1").contains("not a boolean"));
}

#[test]
fn template_errors() {
    let s = schema();
    let mut t = HashMap::new();
    let c = |text: &str, t: &HashMap<String, TemplateValue>| {
        compile(&parse(text).expect("parse"), &s, t).map(|_| ())
    };
    let e = c("age > {x}", &t).expect_err("missing");
    assert!(e.to_string().contains("template {x}: no value"), "{e}");
    t.insert(
        "x".to_string(),
        TemplateValue::Array(vec![TemplateValue::Int(1)]),
    );
    assert!(
        c("age > {x}", &t)
            .expect_err("array")
            .to_string()
            .contains("only allowed after 'in'")
    );
    assert!(c("age in {x}", &t).is_ok());
    t.insert("s".to_string(), TemplateValue::Str("a".into()));
    assert!(
        c("age in {s}", &t)
            .expect_err("scalar")
            .to_string()
            .contains("template {s}: must be an array")
    );
    assert!(
        c("age == {s}", &t)
            .expect_err("type")
            .to_string()
            .contains("field \"age\"")
    );
    assert!(c("age like {x}", &t).is_err());
    assert!(
        c("name like {x}", &t)
            .expect_err("like")
            .to_string()
            .contains("template {x}")
    );
    t.insert(
        "n".to_string(),
        TemplateValue::Array(vec![TemplateValue::Array(vec![])]),
    );
    assert!(c("age in {n}", &t).is_err());
    t.insert("f".to_string(), TemplateValue::Float(f64::NAN));
    assert!(
        c("score > {f}", &t)
            .expect_err("nan")
            .to_string()
            .contains("finite")
    );
}

#[test]
fn converts_to_common_error() {
    let e: quiver_common::Error = parse("a >").expect_err("syntax").into();
    assert_eq!(e.kind(), quiver_common::ErrorKind::InvalidArgument);
    assert!(
        e.to_string().starts_with("invalid expr: at column 4"),
        "{e}"
    );
}
