//! Evaluating filters against an in-memory row set.

mod support;

use std::collections::HashMap;

use quiver_common::PrimaryKey;
use quiver_expr::TemplateValue;
use support::{filter, filter_with, ids, ids_of};

const NONE: [i64; 0] = [];

#[test]
fn comparisons() {
    assert_eq!(ids("age > 20"), [3, 4, 5]);
    assert_eq!(ids("age >= 20"), [2, 3, 4, 5]);
    assert_eq!(ids("age < 20"), [1]);
    assert_eq!(ids("age <= 20"), [1, 2]);
    assert_eq!(ids("age == 30"), [3]);
    assert_eq!(ids("age != 30"), [1, 2, 4, 5]);
    assert_eq!(ids("30 == age"), [3]);
    assert_eq!(ids("name == 'banana'"), [2]);
    assert_eq!(ids("name > \"c\""), [3, 4]);
    assert_eq!(ids("flag == true"), [1, 3, 5]);
    assert_eq!(ids("flag != True"), [2, 4]);
    assert_eq!(ids("flag"), [1, 3, 5]);
    assert_eq!(ids("not flag"), [2, 4]);
    assert_eq!(ids("!flag"), [2, 4]);
    assert_eq!(ids("true"), [1, 2, 3, 4, 5]);
    assert_eq!(ids("1 > 2"), NONE);
}

#[test]
fn int_float_compare_numerically() {
    assert_eq!(ids("age > 19.5"), [2, 3, 4, 5]);
    assert_eq!(ids("age == 20.0"), [2]);
    assert_eq!(ids("score > 2"), [2, 5]);
    assert_eq!(ids("score == 100"), [5]);
    assert_eq!(ids("score < -0.5"), [4]);
    assert_eq!(ids("score >= -1"), [1, 2, 4, 5]);
}

#[test]
fn ranges() {
    assert_eq!(ids("10 < age < 40"), [2, 3]);
    assert_eq!(ids("10 <= age <= 40"), [1, 2, 3, 4]);
    assert_eq!(ids("40 > age >= 20"), [2, 3]);
    assert_eq!(ids("1 < score < 3"), [1, 2]);
}

#[test]
fn logic_and_parentheses() {
    assert_eq!(ids("age > 10 and age < 50"), [2, 3, 4]);
    assert_eq!(ids("age > 10 AND age < 50 && flag"), [3]);
    assert_eq!(ids("age < 20 or age > 40"), [1, 5]);
    assert_eq!(ids("age < 20 OR age > 40 || name == 'date'"), [1, 4, 5]);
    assert_eq!(ids("flag and (age == 10 or age == 50)"), [1, 5]);
    assert_eq!(ids("flag and age == 10 or age == 50"), [1, 5]);
    assert_eq!(ids("not (age > 20)"), [1, 2]);
    assert_eq!(ids("NOT age > 20"), [1, 2]);
    assert_eq!(ids("not not flag"), [1, 3, 5]);
    assert_eq!(ids("(age > 20) == flag"), [2, 3, 5]);
}

#[test]
fn in_lists() {
    assert_eq!(ids("age in [10, 30, 99]"), [1, 3]);
    assert_eq!(ids("age not in [10, 30]"), [2, 4, 5]);
    assert_eq!(ids("age in [20.0, 40.5]"), [2]);
    assert_eq!(ids("age in []"), NONE);
    assert_eq!(ids("age not in []"), [1, 2, 3, 4, 5]);
    assert_eq!(ids("name in ['apple', \"date\"]"), [1, 4]);
    assert_eq!(ids("score in [1.5, 100]"), [1, 5]);
    assert_eq!(ids("flag in [false]"), [2, 4]);
    assert_eq!(ids("id in [2, 4, 6]"), [2, 4]);
    assert_eq!(ids("age in [10, 20,]"), [1, 2]);
}

#[test]
fn like_patterns() {
    assert_eq!(ids("name like 'b%'"), [2]);
    assert_eq!(ids("name like '%e'"), [1, 4]);
    assert_eq!(ids("name like '%an%'"), [2]);
    assert_eq!(ids("name like 'd_te'"), [4]);
    assert_eq!(ids("name like 'apple'"), [1]);
    assert_eq!(ids(r"name like '%\%%'"), [5]);
    assert_eq!(ids("tag like 'a\\_b'"), [5]);
    assert_eq!(ids("tag like 'r%'"), [1, 3]);
    assert_eq!(ids("meta['color'] like 'y%'"), [2]);
    assert_eq!(ids("not (tag like 'r%')"), [4, 5]);
}

#[test]
fn nulls_are_unknown() {
    // score is NULL in row 3; tag is NULL in row 2.
    assert_eq!(ids("score > 0"), [1, 2, 5]);
    assert_eq!(ids("not (score > 0)"), [4]);
    assert_eq!(ids("score != 1.5"), [2, 4, 5]);
    assert_eq!(ids("score is null"), [3]);
    assert_eq!(ids("score IS NOT NULL"), [1, 2, 4, 5]);
    assert_eq!(ids("tag is null or tag == 'brown'"), [2, 4]);
    assert_eq!(ids("tag not in ['red']"), [4, 5]);
    assert_eq!(ids("score > 0 or age == 30"), [1, 2, 3, 5]);
    assert_eq!(ids("not (score > 0 and age == 30)"), [1, 2, 4, 5]);
    assert_eq!(ids("not (score > 0 or age == 10)"), [4]);
    // Row 5's meta is not valid JSON: it reads as NULL.
    assert_eq!(ids("meta is null"), [3, 5]);
    assert_eq!(ids("meta['color'] is null"), [3, 5]);
    assert_eq!(ids("meta['color'] is not null"), [1, 2, 4]);
}

#[test]
fn json_paths() {
    assert_eq!(ids("meta[\"color\"] == \"red\""), [1]);
    assert_eq!(ids("meta['color'] != 'red'"), [2]);
    assert_eq!(ids("meta['color'] == 7"), [4]);
    assert_eq!(ids("meta['n'] > 1"), [2]);
    assert_eq!(ids("meta['n'] == 1.0"), [1]);
    assert_eq!(ids("meta['arr'][0] == 1"), [1]);
    assert_eq!(ids("meta['arr'][0] >= 1"), [1, 2]);
    assert_eq!(ids("meta['arr'][2] == 3"), [1]);
    assert_eq!(ids("meta['sub']['k'] == 'v'"), [1]);
    assert_eq!(ids("meta['flag']"), [2]);
    assert_eq!(ids("meta['flag'] == true"), [2]);
    assert_eq!(ids("meta['color'] in ['red', 'yellow']"), [1, 2]);
    assert_eq!(ids("meta['color'] in [7, 8]"), [4]);
    assert_eq!(ids("meta['color'] not in ['red']"), [2]);
    assert_eq!(ids("meta['n'] * 2 == 5"), [2]);
}

#[test]
fn dynamic_fields() {
    assert_eq!(ids("city == 'paris'"), [1, 5]);
    assert_eq!(ids("$meta['city'] == 'rome'"), [2]);
    assert_eq!(ids("pop > 2"), [1]);
    assert_eq!(ids("pop >= 2"), [1, 2]);
    assert_eq!(ids("pop is null"), [3, 4, 5]);
    assert_eq!(ids("tags[1] == 'b'"), [1]);
    assert_eq!(ids("city like 'p%' and age > 10"), [5]);
}

#[test]
fn arithmetic() {
    assert_eq!(ids("age * 2 > 70"), [4, 5]);
    assert_eq!(ids("age + 5 == 15"), [1]);
    assert_eq!(ids("age - 5 < 10"), [1]);
    assert_eq!(ids("age / 20 == 1"), [2, 3]);
    assert_eq!(ids("age % 20 == 0"), [2, 4]);
    assert_eq!(ids("age / 0 == 1"), NONE);
    assert_eq!(ids("score * 2 == 3"), [1]);
    assert_eq!(ids("-age < -40"), [5]);
    assert_eq!(ids("age > 2 * 10 + 5"), [3, 4, 5]);
    assert_eq!(ids("(age + 10) * 2 == 60"), [2]);
    assert_eq!(ids("age * 2 == score * 2 + 17"), [1]);
}

#[test]
fn templates() {
    let mut t = HashMap::new();
    t.insert("lo".to_string(), TemplateValue::Int(20));
    t.insert("hi".to_string(), TemplateValue::Float(45.0));
    t.insert(
        "ids".to_string(),
        TemplateValue::Array(vec![TemplateValue::Int(1), TemplateValue::Int(5)]),
    );
    t.insert("pat".to_string(), TemplateValue::Str("%e".into()));
    t.insert("city".to_string(), TemplateValue::Str("paris".into()));
    assert_eq!(ids_of(&filter_with("{lo} < age < {hi}", &t)), [3, 4]);
    assert_eq!(ids_of(&filter_with("id in {ids}", &t)), [1, 5]);
    assert_eq!(ids_of(&filter_with("age in [{lo}, 30]", &t)), [2, 3]);
    assert_eq!(ids_of(&filter_with("name like {pat}", &t)), [1, 4]);
    assert_eq!(ids_of(&filter_with("city == {city}", &t)), [1, 5]);
    assert_eq!(
        filter_with("id in {ids}", &t).primary_keys(),
        Some(vec![PrimaryKey::Int(1), PrimaryKey::Int(5)])
    );
}

#[test]
fn primary_key_shapes() {
    let pks = |t: &str| filter(t).primary_keys();
    let ints = |v: &[i64]| Some(v.iter().map(|i| PrimaryKey::Int(*i)).collect::<Vec<_>>());
    assert_eq!(pks("id in [3, 1, 3, 2]"), ints(&[3, 1, 2]));
    assert_eq!(pks("id == 7"), ints(&[7]));
    assert_eq!(pks("7 == id"), ints(&[7]));
    assert_eq!(pks("id == 7 or id in [8, 7]"), ints(&[7, 8]));
    assert_eq!(pks("id in [1.0, 2.5]"), ints(&[1]));
    assert_eq!(pks("id in []"), ints(&[]));
    assert_eq!(pks("id not in [1]"), None);
    assert_eq!(pks("id > 1"), None);
    assert_eq!(pks("id in [1] and age > 1"), None);
    assert_eq!(pks("age in [1]"), None);
}

#[test]
fn varchar_primary_key() {
    let mut s = support::schema();
    s.fields[0] = quiver_common::FieldSchema::new("id", quiver_common::DataType::VarChar)
        .with_max_length(16)
        .primary(false);
    let e = quiver_expr::parse("id in ['a', 'b']").expect("parse");
    let f = quiver_expr::compile(&e, &s, &HashMap::new()).expect("compile");
    assert_eq!(
        f.primary_keys(),
        Some(vec![
            PrimaryKey::Str("a".into()),
            PrimaryKey::Str("b".into())
        ])
    );
    let row = support::Row {
        pk: PrimaryKey::Str("b".into()),
        fields: HashMap::new(),
    };
    assert!(quiver_api::RowPredicate::eval(&f, &row));
    let e = quiver_expr::parse("id in [1]").expect("parse");
    assert!(quiver_expr::compile(&e, &s, &HashMap::new()).is_err());
}

#[test]
fn filter_is_send_sync_and_shareable() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<quiver_expr::CompiledFilter>();
    let f: std::sync::Arc<dyn quiver_api::RowPredicate> =
        std::sync::Arc::new(filter("meta['n'] >= 1 and city == 'paris'"));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let f = f.clone();
            std::thread::spawn(move || support::rows().iter().filter(|r| f.eval(*r)).count())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), 1);
    }
}

/// Trees at the depth limit compile, evaluate and print without running out
/// of stack on a thread with `stack` bytes.
fn deep_on_stack(stack: usize) -> bool {
    let run = || {
        let d = quiver_expr::MAX_DEPTH;
        let nots = format!("{}flag", "not ".repeat(d - 1));
        let sums = format!("age{} > 0", " + 1".repeat(d - 2));
        let parens = format!("{}age > 0{}", "(".repeat(d - 1), ")".repeat(d - 1));
        let negs = format!("{}age < 0", "-".repeat(d - 2));
        let ors = format!("{}flag{}", "(flag or ".repeat(d - 1), ")".repeat(d - 1));
        let mut n = 0;
        for t in [nots, sums, parens, negs, ors] {
            let f = filter(&t);
            let shown = quiver_expr::parse(&t).expect("parse").to_string();
            assert!(!shown.is_empty());
            n += ids_of(&f).len();
        }
        n
    };
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(run)
        .expect("spawn")
        .join()
        .is_ok()
}

#[test]
fn deep_expressions_fit_the_stack() {
    assert!(deep_on_stack(1 << 20));
}

#[test]
fn deepest_parentheses_fit_the_stack() {
    let run = || {
        let n = 2 * quiver_expr::MAX_DEPTH - 2;
        let t = format!("{}age > 0{}", "(".repeat(n), ")".repeat(n));
        ids_of(&filter(&t)).len()
    };
    let h = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(run)
        .expect("spawn");
    assert_eq!(h.join().expect("no overflow"), 5);
}
