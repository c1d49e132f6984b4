//! The growing rows a filter accepts, found a column at a time
//! (`GrowingFilter`), against the whole predicate tested row by row: real
//! filters compiled by `quiver_expr`, nulls, JSON paths (tested by the
//! predicate on the rows the plan accepts: up front when few, as visited
//! when many), deleted rows.

use quiver_api::RowPredicate;
use quiver_common::{
    CollectionSchema, Column, DataType, FieldSchema, PrimaryKey, RowBatch, ScalarValue, Vectors,
};
use quiver_index::RowFilter;

use crate::growing::{Growing, GrowingFilter, GrowingRow};

const N: usize = 10_000;

fn schema() -> CollectionSchema {
    let mut s = CollectionSchema::simple("c", 2);
    s.fields.extend([
        FieldSchema::new("cat", DataType::Int64).nullable(),
        FieldSchema::new("price", DataType::Double),
        FieldSchema::new("flag", DataType::Bool),
        FieldSchema::new("name", DataType::VarChar).with_max_length(16),
        FieldSchema::new("meta", DataType::Json),
    ]);
    s
}

/// Row `r`: `cat` = r % 100 (null for r % 17 == 0), `price` = r / N,
/// `flag` for one row in ten, `name` "n{r % 7}", `meta` {"lang": "l{r % 5}"};
/// every row with r % 9 == 4 deleted.
fn growing(names: &[String]) -> Growing {
    let col = |name: &str, f: &dyn Fn(usize) -> ScalarValue| Column {
        name: name.into(),
        values: (0..N).map(f).collect(),
    };
    let batch = RowBatch {
        pks: (0..N as i64).map(PrimaryKey::Int).collect(),
        vectors: Vectors::f32(2, vec![0.0; 2 * N]),
        columns: vec![
            col("cat", &|r| match r % 17 {
                0 => ScalarValue::Null,
                _ => ScalarValue::Int((r % 100) as i64),
            }),
            col("price", &|r| ScalarValue::Float(r as f64 / N as f64)),
            col("flag", &|r| ScalarValue::Bool(r % 10 == 3)),
            col("name", &|r| ScalarValue::Str(format!("n{}", r % 7))),
            col("meta", &|r| {
                ScalarValue::Json(format!(r#"{{"lang": "l{}"}}"#, r % 5))
            }),
        ],
    };
    let mut g = Growing::new(quiver_common::ElementType::F32, 2, names.len());
    for r in 0..N {
        g.push(1, &batch, r, names);
    }
    for r in (4..N as u32).step_by(9) {
        g.delete(r);
    }
    g
}

#[test]
fn the_growing_rows_a_filter_accepts_are_the_rows_its_predicate_accepts() {
    let schema = schema();
    let names: Vec<String> = schema.column_fields().map(|f| f.name.clone()).collect();
    let g = growing(&names);
    for expr in [
        "cat == 7",
        "cat < 50",
        "cat != 7",
        "not (cat < 50)",
        "cat in [1, 2, 3] or flag",
        "cat is null",
        "price >= 0.25 and price < 0.5",
        "flag == false and name == 'n3'",
        "name like 'n%' and cat > 90",
        "meta['lang'] == 'l2'",
        "meta['lang'] == 'l2' or cat == 5",
        "meta['lang'] == 'l2' and price < 0.5",
        "cat + 1 == 8",
        "cat > 7.5 and cat <= 20",
        "cat >= 1e30 or flag",
        "not (price < 0.5)",
        "not (price > 3)",
        "name != 'n3'",
        "cat not in [1, 2, 3.0]",
        "flag != true",
        "price < 0.9 and name like 'n1%'",
    ] {
        let parsed = quiver_expr::parse(expr).expect("parses");
        let p = quiver_expr::compile(&parsed, &schema, &Default::default()).expect("compiles");
        let filter = GrowingFilter::new(&g, &names, Some(&p));
        let got: Vec<u32> = filter.rows().collect();
        let want: Vec<u32> = (0..N as u32)
            .filter(|&r| !g.deleted[r as usize])
            .filter(|&r| {
                p.eval(&GrowingRow {
                    growing: &g,
                    names: &names,
                    row: r as usize,
                })
            })
            .collect();
        assert!(!want.is_empty(), "{expr}: a filter that accepts nothing");
        assert!(
            got == want,
            "{expr}: {} rows, want {}",
            got.len(),
            want.len()
        );
        assert_eq!(filter.count(), want.len(), "{expr}");
        assert!(filter.at_most() >= want.len(), "{expr}");
        // A set of rows exactly when it is the answer.
        if let Some(set) = filter.as_bitset() {
            assert!(set.iter().eq(want.iter().copied()), "{expr}: the set");
        }
        assert!((0..N as u32).all(|r| filter.allows(r) == want.contains(&r)));
        assert!(
            p.column_plan().is_some() || expr.contains('+'),
            "{expr}: no plan"
        );
    }
    // No predicate: every live row.
    let all = GrowingFilter::new(&g, &names, None);
    assert_eq!(all.count(), g.live);
    assert_eq!(all.rows().count(), g.live);
}
