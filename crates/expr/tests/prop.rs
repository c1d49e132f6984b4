//! Property tests: the parser never panics, printing an AST and reparsing
//! gives the same AST, compile + eval never panic, and a filter's column
//! plan accepts exactly the rows its evaluator accepts (a superset when the
//! plan is inexact).

mod support;

use std::collections::HashMap;

use proptest::prelude::*;
use quiver_api::RowPredicate;
use quiver_common::ValueRef;
use quiver_expr::{ArithOp, CmpOp, Expr, PathElem, TemplateValue, compile, parse};

const KEYWORDS: [&str; 9] = [
    "and", "or", "not", "in", "like", "is", "null", "true", "false",
];

fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["id", "age", "score", "name", "flag", "tag", "meta", "city", "$meta", "vector"])
            .prop_map(String::from),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,6}"
            .prop_filter("keyword", |s| !KEYWORDS.contains(&s.to_ascii_lowercase().as_str())),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z%_ ]{0,6}",
        any::<String>(),
        "[\\\\\"'%_\n\t\u{0}\u{7f}é😀]{0,6}",
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |x| x.is_finite()),
        (-1000i32..1000).prop_map(|i| f64::from(i) / 4.0),
    ]
}

fn leaf() -> impl Strategy<Value = Expr> {
    let path = prop::collection::vec(
        prop_oneof![
            text().prop_map(PathElem::Key),
            (0u64..5).prop_map(PathElem::Index)
        ],
        0..3,
    );
    prop_oneof![
        1 => any::<bool>().prop_map(Expr::Bool),
        1 => any::<i64>().prop_map(Expr::Int),
        1 => (-5i64..60).prop_map(Expr::Int),
        1 => float().prop_map(Expr::Float),
        1 => text().prop_map(Expr::Str),
        3 => (ident(), path).prop_map(|(name, path)| Expr::Field { name, path }),
        1 => ident().prop_map(Expr::Template),
    ]
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(vec![
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ])
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        let b = |e: Expr| Box::new(e);
        let arith = prop::sample::select(vec![ArithOp::Add, ArithOp::Sub, ArithOp::Mul, ArithOp::Div, ArithOp::Mod]);
        let list = prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Expr::Array),
            ident().prop_map(Expr::Template),
        ];
        let pattern = prop_oneof![text().prop_map(Expr::Str), ident().prop_map(Expr::Template)];
        prop_oneof![
            1 => inner.clone().prop_map(move |e| Expr::Neg(b(e))),
            1 => inner.clone().prop_map(move |e| Expr::Not(b(e))),
            1 => (arith, inner.clone(), inner.clone())
                .prop_map(move |(op, l, r)| Expr::Arith { op, lhs: b(l), rhs: b(r) }),
            2 => (cmp_op(), inner.clone(), inner.clone())
                .prop_map(move |(op, l, r)| Expr::Cmp { op, lhs: b(l), rhs: b(r) }),
            1 => (any::<bool>(), any::<[bool; 2]>(), inner.clone(), inner.clone(), inner.clone()).prop_map(
                move |(asc, strict, lower, mid, upper)| {
                    let op = |s: bool| match (asc, s) {
                        (true, true) => CmpOp::Lt,
                        (true, false) => CmpOp::Le,
                        (false, true) => CmpOp::Gt,
                        (false, false) => CmpOp::Ge,
                    };
                    Expr::Range {
                        lower: b(lower),
                        lower_op: op(strict[0]),
                        mid: b(mid),
                        upper_op: op(strict[1]),
                        upper: b(upper),
                    }
                }
            ),
            1 => (inner.clone(), list, any::<bool>())
                .prop_map(move |(e, l, negated)| Expr::In { expr: b(e), list: b(l), negated }),
            1 => (inner.clone(), pattern).prop_map(move |(e, p)| Expr::Like { expr: b(e), pattern: b(p) }),
            1 => (inner.clone(), any::<bool>()).prop_map(move |(e, negated)| Expr::IsNull { expr: b(e), negated }),
            1 => prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            1 => prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            1 => prop::collection::vec(inner, 0..3).prop_map(Expr::Array),
        ]
    })
}

const VALID: [&str; 10] = [
    "age > 10 and (name like 'a%' or not flag)",
    "1 < age <= 40 && score != -2.5e3",
    "id in [1, 2, 3] || id not in {ids}",
    "meta[\"a\"][0] == \"x\\\"y\" and city IS NOT NULL",
    "(age + 2) * 3 % 4 / 5 - -6 >= 7",
    "$meta['k'] in ['a', \"b\", 1.5, true]",
    "not (tag is null) and tag like \"r_d%\"",
    "age == 0x1f or age == 0b11 or age < .5",
    "{lo} < age < {hi}",
    "(((a)))",
];

const TOKENS: [&str; 40] = [
    "a", "meta", "[", "]", "(", ")", "'x'", "\"", "'", "1", "-", "1.5e3", "and", "or", "not", "in",
    "like", "is", "null", "==", "<", ">=", "!", "!=", "{", "}", ",", "%", "*", "+", "\\", "$meta",
    "0x", "1e", "&&", "||", "true", "=", "é", " ",
];

fn templates() -> HashMap<String, TemplateValue> {
    let mut t = HashMap::new();
    t.insert(
        "ids".to_string(),
        TemplateValue::Array(vec![TemplateValue::Int(1), TemplateValue::Str("x".into())]),
    );
    t.insert("lo".to_string(), TemplateValue::Int(1));
    t.insert("name".to_string(), TemplateValue::Str("a%".into()));
    t
}

/// Parses without panicking; when it parses, the printed form parses back
/// to the same tree, and compiling and evaluating do not panic.
fn check(text: &str) -> Result<(), TestCaseError> {
    if let Ok(e) = parse(text) {
        let shown = e.to_string();
        let again =
            parse(&shown).map_err(|err| TestCaseError::fail(format!("{shown:?}: {err}")))?;
        prop_assert_eq!(&again, &e, "printed as {:?}", shown);
        exercise(&e);
    }
    Ok(())
}

fn exercise(e: &Expr) {
    if let Ok(f) = compile(e, &support::schema(), &templates()) {
        for r in support::rows() {
            f.eval(&r);
        }
        let _ = f.primary_keys();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        check(&s)?;
    }

    #[test]
    fn token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(TOKENS.to_vec()), 0..24), sep in prop::sample::select(vec!["", " "])) {
        check(&toks.join(sep))?;
    }

    #[test]
    fn mutated_valid_expressions(
        base in prop::sample::select(VALID.to_vec()),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..4, 0usize..6, prop::sample::select(TOKENS.to_vec())), 1..4),
    ) {
        let mut chars: Vec<char> = base.chars().collect();
        for (at, kind, len, tok) in edits {
            let i = at.index(chars.len() + 1);
            let j = (i + len).min(chars.len());
            match kind {
                0 => { chars.drain(i..j); }
                1 => { chars.splice(i..i, tok.chars()); }
                2 => { let dup: Vec<char> = chars[i..j].to_vec(); chars.splice(i..i, dup); }
                _ => { chars.splice(i..j, tok.chars()); }
            }
        }
        check(&chars.into_iter().collect::<String>())?;
    }

    #[test]
    fn column_plans_agree_with_the_evaluator(e in expr(), rows in prop::collection::vec(typed_row(), 1..6)) {
        if let Ok(f) = compile(&e, &support::schema(), &templates()) {
            agree(&f, &rows)?;
            agree(&f, &support::rows())?;
        }
    }

    #[test]
    fn column_plans_of_comparisons_agree_with_the_evaluator(
        conds in prop::collection::vec(cond(), 1..4),
        joins in prop::collection::vec(prop::sample::select(vec![" and ", " or ", " and not "]), 3),
        rows in prop::collection::vec(typed_row(), 1..8),
    ) {
        let mut text = conds[0].clone();
        for (c, j) in conds[1..].iter().zip(&joins) {
            text = format!("({text}){j}({c})");
        }
        let f = support::filter(&text);
        prop_assert!(f.column_plan().is_some_and(|p| p.exact), "{text} has an exact plan");
        agree(&f, &rows)?;
    }

    #[test]
    fn display_then_parse_is_identity(e in expr()) {
        let shown = e.to_string();
        let again = parse(&shown).map_err(|err| TestCaseError::fail(format!("{shown:?}: {err}")))?;
        prop_assert_eq!(&again, &e, "printed as {:?}", shown);
        exercise(&e);
    }
}

/// A row with values chosen to sit on the edges of comparisons.
fn typed_row() -> impl Strategy<Value = support::Row> {
    let age = prop_oneof![
        (-3i64..4),
        Just(i64::MAX),
        Just(i64::MIN),
        Just((1i64 << 53) + 1)
    ];
    let score = prop_oneof![
        Just(None),
        Just(Some(f64::NAN)),
        (-8i32..8).prop_map(|i| Some(f64::from(i) / 2.0)),
        Just(Some(9_007_199_254_740_992.0)),
    ];
    let tag = prop_oneof![
        Just(None),
        Just(Some("red")),
        Just(Some("a_b")),
        Just(Some(""))
    ];
    (age, score, any::<bool>(), tag).prop_map(|(age, score, flag, tag)| {
        let mut r = support::rows().remove(0);
        r.fields
            .insert("age".into(), quiver_common::ScalarValue::Int(age));
        r.fields.insert(
            "score".into(),
            score.map_or(
                quiver_common::ScalarValue::Null,
                quiver_common::ScalarValue::Float,
            ),
        );
        r.fields
            .insert("flag".into(), quiver_common::ScalarValue::Bool(flag));
        r.fields.insert(
            "tag".into(),
            tag.map_or(quiver_common::ScalarValue::Null, |t| {
                quiver_common::ScalarValue::Str(t.into())
            }),
        );
        r
    })
}

/// A condition on one typed field.
fn cond() -> impl Strategy<Value = String> {
    let num = prop_oneof![
        (-4i64..5).prop_map(|i| i.to_string()),
        (-8i32..8).prop_map(|i| format!("{:?}", f64::from(i) / 2.0)),
        Just("9007199254740993".to_string()),
        Just("9007199254740992.0".to_string()),
        Just(i64::MAX.to_string()),
    ];
    let nums = prop::collection::vec(num.clone(), 0..4).prop_map(|v| v.join(", "));
    let op = prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]);
    let field = prop::sample::select(vec!["age", "score"]);
    prop_oneof![
        (field.clone(), op.clone(), num.clone()).prop_map(|(f, o, n)| format!("{f} {o} {n}")),
        (num.clone(), op, field.clone()).prop_map(|(n, o, f)| format!("{n} {o} {f}")),
        (field.clone(), any::<bool>(), nums)
            .prop_map(|(f, neg, l)| { format!("{f} {}in [{l}]", if neg { "not " } else { "" }) }),
        (
            prop::sample::select(vec!["tag", "score", "age", "name"]),
            any::<bool>()
        )
            .prop_map(|(f, neg)| format!("{f} is {}null", if neg { "not " } else { "" })),
        (
            prop::sample::select(vec!["==", "!="]),
            prop::sample::select(vec!["'red'", "'a_b'", "''"])
        )
            .prop_map(|(o, s)| format!("tag {o} {s}")),
        (prop::sample::select(vec!["flag", "not flag", "flag == false", "flag != true"]))
            .prop_map(String::from),
        (num.clone(), num).prop_map(|(a, b)| format!("{a} < age <= {b}")),
    ]
}

/// The plan of `f` accepts what `f` accepts: exactly when the plan is exact,
/// at least when it is not.
fn agree(f: &quiver_expr::CompiledFilter, rows: &[support::Row]) -> Result<(), TestCaseError> {
    let Some(plan) = f.column_plan() else {
        return Ok(());
    };
    for r in rows {
        let want = f.eval(r);
        // A leaf on a JSON path reads the path's value as a querynode's
        // extracted column holds it (`quiver_api::json_path_value`).
        let paths: std::collections::HashMap<&str, quiver_common::ScalarValue> =
            (plan.root.leaves())
                .into_iter()
                .filter(|l| quiver_api::is_json_path_key(&l.column))
                .filter_map(|l| {
                    let (field, steps) = quiver_api::parse_json_path(&l.column).ok()?;
                    let v = r
                        .fields
                        .get(&field)
                        .cloned()
                        .unwrap_or(quiver_common::ScalarValue::Null);
                    Some((l.column.as_str(), quiver_api::json_path_value(&v, &steps)))
                })
                .collect();
        let got = plan
            .root
            .accepts(&|c| (paths.get(c).or_else(|| r.fields.get(c))).map(ValueRef::of));
        if plan.exact {
            prop_assert_eq!(got, want, "{:?} on {:?}", plan, r.fields);
        } else if want {
            prop_assert!(
                got,
                "inexact {:?} rejects an accepted row {:?}",
                plan,
                r.fields
            );
        }
    }
    Ok(())
}

#[test]
fn valid_examples_parse() {
    for v in VALID {
        let e = parse(v).unwrap_or_else(|err| panic!("{v}: {err}"));
        assert_eq!(parse(&e.to_string()).expect("reparse"), e);
    }
}

/// A row whose `meta` JSON holds at `n` a value of each kind a JSON path
/// can hold, or nothing.
fn json_row() -> impl Strategy<Value = support::Row> {
    let n = prop_oneof![
        (-4i64..5).prop_map(|i| i.to_string()),
        (-8i32..8).prop_map(|i| format!("{:?}", f64::from(i) / 2.0)),
        Just("9007199254740993".to_string()),
        Just(i64::MAX.to_string()),
        Just("18446744073709551615".to_string()),
        Just("1e300".to_string()),
        prop::sample::select(vec![
            "\"3\"",
            "\"red\"",
            "\"\"",
            "true",
            "false",
            "null",
            "[1, 2]",
            "{\"k\": 1}"
        ])
        .prop_map(String::from),
    ];
    prop_oneof![
        4 => n.prop_map(|v| format!("{{\"n\": {v}}}")),
        1 => Just("{}".to_string()),
        1 => Just("[3]".to_string()),
        1 => Just("not json".to_string()),
    ]
    .prop_map(|doc| {
        let mut r = support::rows().remove(0);
        r.fields
            .insert("meta".into(), quiver_common::ScalarValue::Json(doc));
        r
    })
}

/// A condition on the JSON path `meta["n"]`.
fn json_cond() -> impl Strategy<Value = String> {
    let konst = prop_oneof![
        (-4i64..5).prop_map(|i| i.to_string()),
        (-8i32..8).prop_map(|i| format!("{:?}", f64::from(i) / 2.0)),
        Just("9007199254740993".to_string()),
        prop::sample::select(vec!["'3'", "'red'", "''", "true", "false"]).prop_map(String::from),
    ];
    let op = prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]);
    let path = prop::sample::select(vec![r#"meta["n"]"#, r#"meta['n']"#]);
    prop_oneof![
        (path.clone(), op, konst.clone()).prop_map(|(p, o, c)| format!("{p} {o} {c}")),
        (
            path.clone(),
            any::<bool>(),
            prop::collection::vec(konst, 0..4)
        )
            .prop_map(|(p, neg, l)| {
                format!("{p} {}in [{}]", if neg { "not " } else { "" }, l.join(", "))
            }),
        (path, any::<bool>())
            .prop_map(|(p, neg)| format!("{p} is {}null", if neg { "not " } else { "" })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// A leaf on a JSON path, read from the path's extracted value, accepts
    /// exactly what the evaluator accepts: a querynode that has the path's
    /// values tests nothing else.
    #[test]
    fn json_path_leaves_agree_with_the_evaluator(
        conds in prop::collection::vec(json_cond(), 1..3),
        negate in any::<bool>(),
        rows in prop::collection::vec(json_row(), 1..8),
    ) {
        let mut text = conds.join(" or ");
        if negate {
            text = format!("not ({text})");
        }
        let f = support::filter(&text);
        // String orderings have no plan.
        let Some(plan) = f.column_plan() else {
            return Ok(());
        };
        prop_assert!(plan.exact, "{text}: conditions on a JSON path make an exact plan");
        for r in &rows {
            let want = f.eval(r);
            let steps = quiver_api::parse_json_path(r#"meta["n"]"#).expect("path").1;
            let meta = r.fields.get("meta").cloned().unwrap_or(quiver_common::ScalarValue::Null);
            let value = quiver_api::json_path_value(&meta, &steps);
            let got = plan.root.accepts(&|c| {
                if c == r#"meta["n"]"# { Some(ValueRef::of(&value)) } else { r.fields.get(c).map(ValueRef::of) }
            });
            prop_assert_eq!(got, want, "{} on {:?}", text, meta);
        }
    }
}
