//! The parser: each construct, precedence, and error positions.

use quiver_expr::{ArithOp, CmpOp, Expr, MAX_DEPTH, PathElem, parse};

fn p(t: &str) -> Expr {
    parse(t).unwrap_or_else(|e| panic!("{t:?}: {e}"))
}

fn err(t: &str) -> String {
    match parse(t) {
        Ok(e) => panic!("{t:?} parsed as {e:?}"),
        Err(e) => e.to_string(),
    }
}

fn field(n: &str) -> Expr {
    Expr::Field {
        name: n.into(),
        path: vec![],
    }
}

fn cmp(op: CmpOp, l: Expr, r: Expr) -> Expr {
    Expr::Cmp {
        op,
        lhs: Box::new(l),
        rhs: Box::new(r),
    }
}

#[test]
fn literals() {
    assert_eq!(p("1"), Expr::Int(1));
    assert_eq!(p("-1"), Expr::Int(-1));
    assert_eq!(p("- 9223372036854775808"), Expr::Int(i64::MIN));
    assert_eq!(p("0x1F"), Expr::Int(31));
    assert_eq!(p("0b101"), Expr::Int(5));
    assert_eq!(p("0o17"), Expr::Int(15));
    assert_eq!(p("1.5"), Expr::Float(1.5));
    assert_eq!(p("-2.5e3"), Expr::Float(-2500.0));
    assert_eq!(p("1e-2"), Expr::Float(0.01));
    assert_eq!(p("1E+2"), Expr::Float(100.0));
    assert_eq!(p(".5"), Expr::Float(0.5));
    assert_eq!(p("true"), Expr::Bool(true));
    assert_eq!(p("True"), Expr::Bool(true));
    assert_eq!(p("FALSE"), Expr::Bool(false));
    assert_eq!(p(r#""a\"b""#), Expr::Str("a\"b".into()));
    assert_eq!(p(r"'it\'s'"), Expr::Str("it's".into()));
    assert_eq!(p(r#"'a"b'"#), Expr::Str("a\"b".into()));
    assert_eq!(
        p(r#""\n\t\\\u00e9\u{1F600}""#),
        Expr::Str("\n\t\\é😀".into())
    );
    assert_eq!(p(r#""50\%""#), Expr::Str(r"50\%".into()));
    assert_eq!(
        p("[1, 'a', -2.5]"),
        Expr::Array(vec![Expr::Int(1), Expr::Str("a".into()), Expr::Float(-2.5)])
    );
    assert_eq!(p("[]"), Expr::Array(vec![]));
    assert_eq!(p("{ids}"), Expr::Template("ids".into()));
}

#[test]
fn fields_and_paths() {
    assert_eq!(p("age"), field("age"));
    assert_eq!(
        p(r#"meta["a"]['b'][0]"#),
        Expr::Field {
            name: "meta".into(),
            path: vec![
                PathElem::Key("a".into()),
                PathElem::Key("b".into()),
                PathElem::Index(0)
            ],
        }
    );
    assert_eq!(
        p("$meta['x']"),
        Expr::Field {
            name: "$meta".into(),
            path: vec![PathElem::Key("x".into())],
        }
    );
}

#[test]
fn precedence() {
    // and binds tighter than or; chains are n-ary.
    assert_eq!(
        p("a or b and c or d"),
        Expr::Or(vec![
            field("a"),
            Expr::And(vec![field("b"), field("c")]),
            field("d")
        ])
    );
    assert_eq!(
        p("a && b && c"),
        Expr::And(vec![field("a"), field("b"), field("c")])
    );
    assert_eq!(
        p("(a and b) and c"),
        Expr::And(vec![Expr::And(vec![field("a"), field("b")]), field("c")])
    );
    // not is looser than comparisons.
    assert_eq!(
        p("not a > 1"),
        Expr::Not(Box::new(cmp(CmpOp::Gt, field("a"), Expr::Int(1))))
    );
    // * before +, arithmetic before comparison.
    assert_eq!(
        p("a + 2 * 3 > 1"),
        cmp(
            CmpOp::Gt,
            Expr::Arith {
                op: ArithOp::Add,
                lhs: Box::new(field("a")),
                rhs: Box::new(Expr::Arith {
                    op: ArithOp::Mul,
                    lhs: Box::new(Expr::Int(2)),
                    rhs: Box::new(Expr::Int(3)),
                }),
            },
            Expr::Int(1)
        )
    );
    // subtraction is left-associative.
    assert_eq!(p("a - 1 - 2"), p("(a - 1) - 2"));
    assert_ne!(p("a - 1 - 2"), p("a - (1 - 2)"));
    assert_eq!(p("a - -1"), p("a - (-1)"));
    assert_eq!(p("-a * 2"), p("(-a) * 2"));
    assert_eq!(p("a in [1] and b"), p("(a in [1]) and b"));
    assert_eq!(p("a + 1 in [1]"), p("(a + 1) in [1]"));
    assert_eq!(p("a < b == c"), p("(a < b) == c"));
}

#[test]
fn postfix_forms() {
    assert_eq!(
        p("a not in [1, 2]"),
        Expr::In {
            expr: Box::new(field("a")),
            list: Box::new(Expr::Array(vec![Expr::Int(1), Expr::Int(2)])),
            negated: true,
        }
    );
    assert_eq!(p("a NOT IN {t}"), p("a not in {t}"));
    assert_eq!(
        p("a like 'x%'"),
        Expr::Like {
            expr: Box::new(field("a")),
            pattern: Box::new(Expr::Str("x%".into())),
        }
    );
    assert_eq!(p("a LIKE \"x%\""), p("a like 'x%'"));
    assert_eq!(
        p("a IS NOT NULL"),
        Expr::IsNull {
            expr: Box::new(field("a")),
            negated: true,
        }
    );
    assert_eq!(
        p("a is null"),
        Expr::IsNull {
            expr: Box::new(field("a")),
            negated: false
        }
    );
}

#[test]
fn ranges() {
    assert_eq!(
        p("1 < a <= 10"),
        Expr::Range {
            lower: Box::new(Expr::Int(1)),
            lower_op: CmpOp::Lt,
            mid: Box::new(field("a")),
            upper_op: CmpOp::Le,
            upper: Box::new(Expr::Int(10)),
        }
    );
    assert!(matches!(
        p("10 >= a > 1"),
        Expr::Range {
            lower_op: CmpOp::Ge,
            upper_op: CmpOp::Gt,
            ..
        }
    ));
    assert!(matches!(p("(1 < a) < 2"), Expr::Cmp { .. }));
}

#[test]
fn errors_give_the_column() {
    assert_eq!(err(""), "at column 1: the expression is empty");
    assert_eq!(err("   "), "at column 1: the expression is empty");
    assert!(
        err("a >").starts_with("at column 4: expected an expression"),
        "{}",
        err("a >")
    );
    assert!(err("a = 1").starts_with("at column 3: unexpected '='"));
    assert!(
        err("(a > 1").contains("at column 7: expected ')' to close '(' at column 1"),
        "{}",
        err("(a > 1")
    );
    assert!(err("a > 1)").starts_with("at column 6: unexpected ')'"));
    assert!(err("a > 'x").starts_with("at column 5: unterminated string"));
    assert!(err("a in 1").starts_with("at column 6: expected a list"));
    assert!(err("a like 1").starts_with("at column 8: expected a string pattern"));
    assert!(err("a is 1").starts_with("at column 6: expected 'null'"));
    assert!(err("1 < a > 2").contains("at column 7: a chained comparison"));
    assert!(err("1 < a < 2 < 3").contains("at column 11: a comparison chain"));
    assert!(err("a > 99999999999999999999").contains("out of range"));
    assert!(
        err("a > 9223372036854775808")
            .contains("integer literal 9223372036854775808 is out of range")
    );
    assert!(err("a > 1e999").contains("float literal"));
    assert!(err("a > 1x").starts_with("at column 6: unexpected 'x' after a number"));
    assert!(err("a > 1e").contains("exponent"));
    assert!(err("a[x]").contains("at column 3: expected a string key or an index"));
    assert!(err("a[1").contains("expected ']'"));
    assert!(err("json_contains(a, 1").contains("',' or ')' to close json_contains( at column 1"));
    assert_eq!(
        p("array_contains(tags, 1)"),
        Expr::Call {
            name: "array_contains".into(),
            args: vec![field("tags"), Expr::Int(1)],
        }
    );
    assert!(err("a # 1").starts_with("at column 3: unexpected character '#'"));
    assert!(err("a & b").starts_with("at column 3: unexpected character '&'"));
    assert!(err("$foo > 1").contains("only $meta"));
    assert!(err("{1}").contains("expected a template name"));
    assert!(err("[1, 2").contains("',' or ']' to close '[' at column 1"));
    assert!(err("a > 1 b").starts_with("at column 7: unexpected identifier \"b\""));
    assert!(err("\"\\u12\"").contains("\\u escape"));
    assert!(err("é > 1").starts_with("at column 1: unexpected character 'é'"));
    assert!(
        err("'é' > 1 >").starts_with("at column 10:"),
        "{}",
        err("'é' > 1 >")
    );
}

#[test]
fn depth_is_limited() {
    let ok = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert_eq!(p(&ok), field("a"));
    let deep = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(err(&deep).contains("nested too deeply"));
    let nots = format!("{}a", "not ".repeat(100_000));
    assert!(err(&nots).contains("nested too deeply"));
    let negs = format!("{}a", "-".repeat(100_000));
    assert!(err(&negs).contains("nested too deeply"));
    let arrays = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(err(&arrays).contains("nested too deeply"));
    // Left-leaning chains are deep trees too.
    let sums = format!("a{}", " + 1".repeat(100_000));
    assert!(err(&sums).contains("nested too deeply"));
    // Flat and/or chains are not deep.
    let ors = vec!["id == 1"; 50_000].join(" or ");
    assert!(matches!(p(&ors), Expr::Or(v) if v.len() == 50_000));
    let list = format!("id in [{}]", vec!["7"; 100_000].join(","));
    assert!(parse(&list).is_ok());
}

#[test]
fn display_round_trips() {
    for t in [
        "a > 1 and (b < 2 or not c)",
        "-(5) == -5",
        "- - a",
        "meta[\"k\\\"\"][3] like 'x\\%y'",
        "1 <= a < {hi}",
        "a not in [1, -2.5, 'x', {t}]",
        "x is not null or y is null",
        "(a + 1) * -2 % 3 / b - c == 1e100",
        "a == (b == c)",
        "not not a",
        "$meta['k'] != \"\\n\"",
    ] {
        let e = p(t);
        let shown = e.to_string();
        assert_eq!(p(&shown), e, "{t:?} -> {shown:?}");
    }
    assert_eq!(
        p("a>1&&b<2||!c").to_string(),
        "((a > 1) and (b < 2)) or (not c)"
    );
}
