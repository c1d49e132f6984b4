//! Recognizing the equality terms of a filter's top-level conjunction
//! (`field == v`, `field in [..]`, each alone or `and`-ed with anything), so
//! a querynode can ask an index of the field's values for the only rows
//! worth evaluating (`RowPredicate::column_terms`).

use quiver_api::ColumnTerms;
use quiver_common::ScalarValue;

use crate::ast::CmpOp;
use crate::eval_ops::float_as_int;
use crate::ir::{Const, Pred, Val};

/// The terms every row `p` accepts meets, in conjunct order.
pub(crate) fn column_terms(p: &Pred) -> Vec<ColumnTerms> {
    let mut out = Vec::new();
    collect(p, &mut out);
    out
}

fn collect(p: &Pred, out: &mut Vec<ColumnTerms>) {
    match p {
        // A nested conjunction is part of the conjunction.
        Pred::And(items) => items.iter().for_each(|i| collect(i, out)),
        other => out.extend(term(other)),
    }
}

fn term(p: &Pred) -> Option<ColumnTerms> {
    if let Pred::Text(m) = p {
        // Any row a text or phrase match accepts holds one of its tokens.
        return Some(ColumnTerms {
            column: m.field.clone(),
            values: m.tokens.iter().cloned().map(ScalarValue::Str).collect(),
            analyzer: Some(m.analyzer.clone()),
        });
    }
    let (val, consts): (&Val, Vec<&Const>) = match p {
        Pred::In {
            val,
            set,
            negated: false,
        } => (val, set.items.iter().collect()),
        Pred::Cmp {
            op: CmpOp::Eq,
            lhs: val,
            rhs: Val::Const(c),
        }
        | Pred::Cmp {
            op: CmpOp::Eq,
            lhs: Val::Const(c),
            rhs: val,
        } => (val, vec![c]),
        _ => return None,
    };
    // A plain field, or a path in a JSON field (keyed as a JSON path
    // index is: `quiver_api::json_path_key`).
    let column = crate::column_plan::column_of(val)?;
    let mut values = Vec::with_capacity(consts.len());
    for c in consts {
        match c {
            Const::Int(i) => values.push(ScalarValue::Int(*i)),
            Const::Str(s) => values.push(ScalarValue::Str(s.clone())),
            // An integral float matches an int column (3.0 == 3); any
            // other float matches no int or string value.
            Const::Float(x) => {
                if let Some(i) = float_as_int(*x) {
                    values.push(ScalarValue::Int(i));
                } else {
                    return None;
                }
            }
            Const::Bool(_) => return None,
        }
    }
    Some(ColumnTerms {
        column,
        values,
        analyzer: None,
    })
}

#[cfg(test)]
mod tests {
    use quiver_api::{ColumnTerms, RowPredicate};
    use quiver_common::{CollectionSchema, DataType, FieldSchema, ScalarValue};

    fn terms(expr: &str) -> Vec<ColumnTerms> {
        let mut schema = CollectionSchema::simple("c", 2);
        schema
            .fields
            .push(FieldSchema::new("tenant", DataType::Int64));
        schema
            .fields
            .push(FieldSchema::new("tag", DataType::VarChar).with_max_length(8));
        schema
            .fields
            .push(FieldSchema::new("price", DataType::Double));
        schema.fields.push(FieldSchema::new("meta", DataType::Json));
        let parsed = crate::parse(expr).expect("parses");
        let f = crate::compile(&parsed, &schema, &Default::default()).expect("compiles");
        f.column_terms().to_vec()
    }

    #[test]
    fn equality_terms_of_the_top_conjunction_are_found() {
        let t = terms("(tenant == 7 and price > 1) and tag in [\"a\", \"b\"]");
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].column.as_str(), &t[0].values[..]),
            ("tenant", &[ScalarValue::Int(7)][..])
        );
        assert_eq!(t[1].column, "tag");
        assert_eq!(t[1].values.len(), 2);
        assert_eq!(terms("tenant == 3.0")[0].values, [ScalarValue::Int(3)]);
        // Not every accepted row meets these: no terms.
        assert!(terms("tenant == 7 or price > 1").is_empty());
        assert!(terms("not (tenant == 7)").is_empty());
        assert!(terms("tenant not in [1, 2]").is_empty());
        assert!(terms("tenant == 2.5").is_empty());
    }

    #[test]
    fn a_json_path_equality_is_keyed_as_its_path_index() {
        let t = terms(r#"meta['a']["b"] == "x" and meta["n"] in [1, 2.0] and price > 1"#);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].column, r#"meta["a"]["b"]"#);
        assert_eq!(t[0].values, [ScalarValue::Str("x".into())]);
        assert_eq!(t[1].column, r#"meta["n"]"#);
        assert_eq!(t[1].values, [ScalarValue::Int(1), ScalarValue::Int(2)]);
        assert!(terms(r#"meta["a"] == true"#).is_empty());
        assert!(terms(r#"meta["a"] != "x""#).is_empty());
    }
}
