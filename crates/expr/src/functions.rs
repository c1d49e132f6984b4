//! The functions of the filter language, Milvus's array and JSON ones:
//! `array_contains(f, v)`, `array_contains_all(f, [..])`,
//! `array_contains_any(f, [..])`, `array_length(f)`, and `json_contains*`
//! (the same on a JSON array). `f` is an Array field, or a JSON field or
//! path holding an array; an Array field reads as a JSON array.

use crate::ast::Expr;
use crate::compile::{Compiler, Ty};
use crate::error::ExprError;
use crate::ir::{Const, Pred, Val, ValueSet};
use crate::template::TemplateValue;

/// The functions a filter may call, for messages.
const FUNCTIONS: &str = "array_contains, array_contains_all, array_contains_any, array_length, json_contains, json_contains_all, json_contains_any, text_match, phrase_match";

impl Compiler<'_> {
    /// A call used as a condition.
    pub(crate) fn call_pred(
        &mut self,
        e: &Expr,
        name: &str,
        args: &[Expr],
    ) -> Result<Pred, ExprError> {
        let all = match name.to_ascii_lowercase().as_str() {
            "array_contains" | "json_contains" => None,
            "array_contains_any" | "json_contains_any" => Some(false),
            "array_contains_all" | "json_contains_all" => Some(true),
            "array_length" => {
                return Err(self.type_err(e, format!("{e} is a number, not a condition")));
            }
            "text_match" | "phrase_match" => return self.text_pred(e, name, args),
            _ => return Err(self.unknown(e, name)),
        };
        let [target, values] = args else {
            return Err(self.type_err(e, format!("{name} takes 2 arguments (got {})", args.len())));
        };
        let val = self.array_arg(e, name, target)?;
        let items = match all {
            // One value.
            None => vec![self.constant(e, values)?],
            Some(_) => self.constants(e, values)?,
        };
        Ok(Pred::Contains {
            val,
            set: ValueSet::new(items),
            all: all.unwrap_or(false),
        })
    }

    /// A call used as a value.
    pub(crate) fn call_val(
        &mut self,
        e: &Expr,
        name: &str,
        args: &[Expr],
    ) -> Result<(Val, Ty), ExprError> {
        if !name.eq_ignore_ascii_case("array_length") {
            return match self.call_pred(e, name, args)? {
                Pred::Const(b) => Ok((Val::Const(Const::Bool(b)), Ty::Bool)),
                p => Ok((Val::Pred(Box::new(p)), Ty::Bool)),
            };
        }
        let [target] = args else {
            return Err(self.type_err(e, format!("{name} takes 1 argument (got {})", args.len())));
        };
        let val = self.array_arg(e, name, target)?;
        Ok((Val::Len(Box::new(val)), Ty::Int))
    }

    fn array_arg(&mut self, e: &Expr, name: &str, target: &Expr) -> Result<Val, ExprError> {
        match self.val(target)? {
            (v @ Val::Json { .. }, Ty::Json) => Ok(v),
            _ => Err(self.type_err(
                e,
                format!("the first argument of {name} must be an Array field or a JSON array, found {target}"),
            )),
        }
    }

    fn constant(&mut self, e: &Expr, x: &Expr) -> Result<Const, ExprError> {
        match x {
            Expr::Template(name) => self.template(name)?.to_const(name),
            _ => match self.val(x)? {
                (Val::Const(c), _) => Ok(c),
                _ => Err(self.type_err(e, format!("{x} must be a constant"))),
            },
        }
    }

    fn constants(&mut self, e: &Expr, x: &Expr) -> Result<Vec<Const>, ExprError> {
        match x {
            Expr::Array(items) => items.iter().map(|i| self.constant(e, i)).collect(),
            Expr::Template(name) => match self.template(name)? {
                TemplateValue::Array(vs) => vs.iter().map(|v| v.to_const(name)).collect(),
                _ => Err(ExprError::Template {
                    name: name.clone(),
                    message: "must be an array".into(),
                }),
            },
            other => Err(self.type_err(e, format!("expected a list of values, found {other}"))),
        }
    }

    fn unknown(&self, e: &Expr, name: &str) -> ExprError {
        self.type_err(
            e,
            format!("function {name}(...) is not supported (the functions are {FUNCTIONS})"),
        )
    }
}

#[cfg(test)]
mod tests {
    use quiver_api::{RowAccess, RowPredicate};
    use quiver_common::{CollectionSchema, DataType, FieldSchema, PrimaryKey, ScalarValue};

    struct Row(PrimaryKey, Vec<(&'static str, ScalarValue)>);

    impl RowAccess for Row {
        fn pk(&self) -> &PrimaryKey {
            &self.0
        }
        fn field(&self, name: &str) -> Option<quiver_common::ValueRef<'_>> {
            (self.1.iter().find(|(n, _)| *n == name)).map(|(_, v)| quiver_common::ValueRef::of(v))
        }
    }

    fn schema() -> CollectionSchema {
        let mut s = CollectionSchema::simple("c", 2);
        s.fields
            .push(FieldSchema::array("tags", DataType::Int64, 8));
        let mut names = FieldSchema::array("names", DataType::VarChar, 4);
        names.max_length = Some(16);
        s.fields.push(names);
        s.fields.push(FieldSchema::new("meta", DataType::Json));
        s
    }

    fn ints(v: &[i64]) -> ScalarValue {
        ScalarValue::Array(v.iter().map(|i| ScalarValue::Int(*i)).collect())
    }

    fn check(expr: &str, rows: &[Row]) -> Vec<i64> {
        let parsed = crate::parse(expr).expect("parses");
        let f = crate::compile(&parsed, &schema(), &Default::default()).expect("compiles");
        rows.iter()
            .filter(|r| f.eval(*r))
            .map(|r| match r.0 {
                PrimaryKey::Int(i) => i,
                PrimaryKey::Str(_) => -1,
            })
            .collect()
    }

    fn rows() -> Vec<Row> {
        let row = |id, tags: &[i64], names: &[&str], meta: &str| {
            Row(
                PrimaryKey::Int(id),
                vec![
                    ("tags", ints(tags)),
                    (
                        "names",
                        ScalarValue::Array(
                            names
                                .iter()
                                .map(|s| ScalarValue::Str(s.to_string()))
                                .collect(),
                        ),
                    ),
                    ("meta", ScalarValue::Json(meta.to_string())),
                ],
            )
        };
        vec![
            row(1, &[1, 2, 3], &["a"], r#"{"xs": [1, 5]}"#),
            row(2, &[3, 4], &["a", "b"], r#"{"xs": []}"#),
            row(3, &[], &[], r#"{"xs": 7}"#),
            Row(PrimaryKey::Int(4), vec![("tags", ScalarValue::Null)]),
        ]
    }

    #[test]
    fn array_functions_as_milvus() {
        let r = rows();
        assert_eq!(check("array_contains(tags, 3)", &r), [1, 2]);
        assert_eq!(check("ARRAY_CONTAINS(tags, 3.0)", &r), [1, 2]);
        assert_eq!(check("array_contains_all(tags, [3, 4])", &r), [2]);
        assert_eq!(check("array_contains_any(tags, [1, 4])", &r), [1, 2]);
        assert_eq!(check("array_contains_any(names, [\"b\", \"z\"])", &r), [2]);
        assert_eq!(check("array_length(tags) == 0", &r), [3]);
        assert_eq!(check("array_length(names) >= 1 and tags[0] == 3", &r), [2]);
        assert_eq!(check("not array_contains(tags, 1)", &r), [2, 3]);
        assert_eq!(check("json_contains(meta[\"xs\"], 5)", &r), [1]);
        assert_eq!(check("json_contains_all(meta[\"xs\"], [])", &r), [1, 2]);
    }

    #[test]
    fn bad_calls_name_the_problem() {
        let err = |expr: &str| {
            let parsed = crate::parse(expr).expect("parses");
            crate::compile(&parsed, &schema(), &Default::default())
                .expect_err("refused")
                .to_string()
        };
        assert!(err("text_match(names, \"a\")").contains("must be a VarChar field"));
        assert!(err("bm25(names)").contains("not supported"));
        assert!(err("array_contains(tags)").contains("2 arguments"));
        assert!(err("array_contains(id, 1)").contains("must be an Array field"));
        assert!(err("array_contains_all(tags, 3)").contains("list of values"));
        assert!(err("array_length(tags)").contains("not a condition"));
    }
}
