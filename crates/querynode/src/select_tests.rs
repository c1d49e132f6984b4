//! How a filter meets a sealed segment with no index that can bound it: a
//! sample decides between exact rows and rows tested as visited, and a
//! read of every accepted row evaluates the plan a column at a time.

use std::sync::Arc;

use quiver_api::{ColumnLeaf, ColumnPlan, IndexKind, LeafTest, PlanNode, RowAccess, RowPredicate};
use quiver_api::{Num, SegmentInfo};
use quiver_common::{Column, DataType, FieldSchema, Mutation, PrimaryKey, ScalarValue};
use quiver_storage::{MappedSegment, SegmentData, encode_segment};

use crate::scan_tests::info;
use crate::select::Selection;
use crate::view::{LoadedSegment, ShardView};

const N: usize = 5_000;

/// Row `r`: `flag` true for one row in a hundred, `half` for every other
/// row, `x` = r % 10 (null for r % 13 == 0), `name` = "n{r % 100}",
/// `meta` = `{"lang": "l{r % 100}", "n": r}`.
fn view() -> ShardView {
    let col = |name: &str, f: &dyn Fn(usize) -> ScalarValue| Column {
        name: name.into(),
        values: (0..N).map(f).collect(),
    };
    let data = SegmentData {
        segment_id: 7,
        pks: (0..N as i64).map(PrimaryKey::Int).collect(),
        timestamps: vec![1; N],
        vectors: quiver_common::Vectors::f32(16, vec![0.5; N * 16]),
        columns: vec![
            col("flag", &|r| ScalarValue::Bool(r % 100 == 7)),
            col("half", &|r| ScalarValue::Bool(r % 2 == 0)),
            col("x", &|r| match r % 13 {
                0 => ScalarValue::Null,
                _ => ScalarValue::Int((r % 10) as i64),
            }),
            col("name", &|r| ScalarValue::Str(format!("n{}", r % 100))),
            col("meta", &|r| {
                ScalarValue::Json(format!(r#"{{"lang": "l{}", "n": {}}}"#, r % 100, r))
            }),
        ],
        tombstones: vec![],
        max_ts: 1,
        wal_seq: 1,
    };
    let seg_info = SegmentInfo {
        id: 7,
        rows: N as u64,
        max_ts: 1,
        wal_seq: 1,
        has_index: false,
        index_version: 0,
    };
    let data = MappedSegment::from_bytes(encode_segment(&data)).expect("segment");
    // The schema names the segment's columns (growing rows hold its fields).
    let mut info = info(IndexKind::Flat);
    info.schema.fields.extend([
        FieldSchema::new("flag", DataType::Bool),
        FieldSchema::new("half", DataType::Bool),
        FieldSchema::new("x", DataType::Int64).nullable(),
        FieldSchema::new("name", DataType::VarChar).with_max_length(8),
        FieldSchema::new("meta", DataType::Json),
    ]);
    let mut view = ShardView::new(info);
    view.add_initial_segment(Arc::new(LoadedSegment::new(seg_info, data, None)));
    view
}

/// A filter with a column plan (`exact`: the plan is all of it) and the
/// same test row by row.
struct Filter {
    plan: Option<ColumnPlan>,
    row: fn(usize) -> bool,
}

impl RowPredicate for Filter {
    fn eval(&self, row: &dyn RowAccess) -> bool {
        match row.pk() {
            PrimaryKey::Int(k) => (self.row)(*k as usize),
            PrimaryKey::Str(_) => false,
        }
    }
    fn column_plan(&self) -> Option<&ColumnPlan> {
        self.plan.as_ref()
    }
}

fn leaf(column: &str, test: LeafTest, negated: bool) -> PlanNode {
    PlanNode::Leaf(ColumnLeaf {
        column: column.into(),
        test,
        negated,
    })
}

fn exact(root: PlanNode, row: fn(usize) -> bool) -> Filter {
    Filter {
        plan: Some(ColumnPlan { root, exact: true }),
        row,
    }
}

fn rows(s: &Selection<'_>) -> Vec<u32> {
    s.rows().collect()
}

#[test]
fn a_selective_filter_no_index_can_bound_gets_exactly_its_rows() {
    let view = view();
    let seg = &view.sealed[0];
    let want: Vec<u32> = (0..N as u32).filter(|r| r % 100 == 7).collect();
    // A boolean leaf (no term or sorted index holds booleans), alone and
    // with a rest of the filter to test on the rows it accepts: both 1 %.
    let flag = exact(leaf("flag", LeafTest::Bool(true), false), |r| r % 100 == 7);
    let flag_and_more = Filter {
        plan: Some(ColumnPlan {
            root: leaf("flag", LeafTest::Bool(true), false),
            exact: false,
        }),
        row: |r| r % 200 == 7,
    };
    for (p, want) in [
        (&flag, want.clone()),
        (
            &flag_and_more,
            want.iter().copied().filter(|r| r % 200 == 7).collect(),
        ),
    ] {
        let s = seg.select(Some(p), N / 10);
        assert!(matches!(s, Selection::Rows(_)), "few rows: named exactly");
        assert_eq!(rows(&s), want);
    }
    // With no column plan (a `like`, arithmetic) the rows could only be
    // found by testing every one: a search tests those it visits.
    let opaque = Filter {
        plan: None,
        row: |r| r % 100 == 7,
    };
    let s = seg.select(Some(&opaque), N / 10);
    assert!(matches!(s, Selection::Test(_)));
    assert_eq!(rows(&s), want);
    // Half the rows: tested as a search visits them.
    let half = exact(leaf("half", LeafTest::Bool(true), false), |r| r % 2 == 0);
    let s = seg.select(Some(&half), N / 10);
    assert!(matches!(s, Selection::Test(_)), "many rows: tested");
    let all: Vec<u32> = (0..N as u32).filter(|r| r % 2 == 0).collect();
    assert_eq!(rows(&s), all, "and all of them read when asked");
}

#[test]
fn reading_every_accepted_row_evaluates_and_or_and_nulls_column_wise_minus_deleted_rows() {
    let mut view = view();
    // (x in [3, 4] or not half) and not (x < 2), over rows some of which
    // are deleted; x is null for every 13th row (never accepted).
    let root = PlanNode::And(vec![
        PlanNode::Or(vec![
            leaf(
                "x",
                LeafTest::In {
                    nums: vec![Num::Int(3), Num::Float(4.0)],
                    strs: vec![],
                    bools: [false, false],
                },
                false,
            ),
            leaf("half", LeafTest::Bool(true), true),
        ]),
        leaf(
            "x",
            LeafTest::Range {
                lo: std::ops::Bound::Unbounded,
                hi: std::ops::Bound::Excluded(Num::Int(2)),
            },
            true,
        ),
    ]);
    let accepts = |r: usize| {
        let x = (!r.is_multiple_of(13)).then_some(r % 10);
        x.is_some_and(|x| (x == 3 || x == 4 || r % 2 == 1) && x >= 2)
    };
    let p = exact(root, |_| {
        unreachable!("an exact plan is not tested row by row")
    });
    view.apply(&Mutation::Delete {
        ts: 2,
        pks: (0..N as i64).step_by(7).map(PrimaryKey::Int).collect(),
    });
    let seg = &view.sealed[0];
    let want: Vec<u32> = (0..N)
        .filter(|r| accepts(*r) && r % 7 != 0)
        .map(|r| r as u32)
        .collect();
    assert!(want.len() > 1_000);
    assert_eq!(rows(&seg.select(Some(&p), usize::MAX)), want);
    // An inexact plan: its rows are then tested with the whole filter.
    let inexact = Filter {
        plan: Some(ColumnPlan {
            root: leaf("name", LeafTest::Str("n7".into()), false),
            exact: false,
        }),
        row: |r| r % 200 == 7,
    };
    let want: Vec<u32> = (0..N as u32)
        .filter(|r| r % 200 == 7 && r % 7 != 0)
        .collect();
    assert_eq!(rows(&seg.select(Some(&inexact), usize::MAX)), want);
    assert_eq!(rows(&seg.select(Some(&inexact), N / 10)), want);
}

#[test]
fn a_json_path_a_filter_tests_is_extracted_once_and_its_conditions_need_no_json_parsing() {
    use quiver_api::{JsonStep, json_path_key};
    let view = view();
    let seg = &view.sealed[0];
    let lang = json_path_key("meta", &[JsonStep::Key("lang".into())]);
    let p = exact(leaf(&lang, LeafTest::Str("l7".into()), false), |_| {
        unreachable!("the path's values decide: no row's JSON is parsed")
    });
    let want: Vec<u32> = (0..N as u32).filter(|r| r % 100 == 7).collect();
    let s = seg.select(Some(&p), N / 10);
    assert!(matches!(s, Selection::Rows(_)), "1 %: named exactly");
    assert_eq!(rows(&s), want);
    assert_eq!(seg.seg.paths.keys(), std::slice::from_ref(&lang));
    // Its term index, built from those values, named the rows.
    assert_eq!(seg.seg.terms.keys(), [(lang.clone(), None)]);
    // A range on a number at a path, read column-wise for a query.
    let n = json_path_key("meta", &[JsonStep::Key("n".into())]);
    let range = LeafTest::Range {
        lo: std::ops::Bound::Included(Num::Float(10.5)),
        hi: std::ops::Bound::Excluded(Num::Int(14)),
    };
    let p = exact(leaf(&n, range, false), |_| unreachable!("no JSON parsed"));
    assert_eq!(rows(&seg.select(Some(&p), usize::MAX)), [11, 12, 13]);
    // A path of a field the segment does not have: the whole filter
    // decides (none of its rows has the field).
    let other = json_path_key("other", &[JsonStep::Key("lang".into())]);
    let p = exact(leaf(&other, LeafTest::Str("l7".into()), false), |_| false);
    assert!(rows(&seg.select(Some(&p), usize::MAX)).is_empty());
}

#[test]
fn a_filtered_count_is_the_number_of_rows_a_filtered_query_returns() {
    let mut view = view();
    view.apply(&Mutation::Delete {
        ts: 2,
        pks: (0..N as i64).step_by(7).map(PrimaryKey::Int).collect(),
    });
    // Keys written again as growing rows (their sealed rows die) and new
    // keys, a few of them deleted again; `flag` and `name` as a sealed row
    // of that key would hold them (the growing rows' column plan reads them).
    let keys: Vec<i64> = (0..300).chain(N as i64..N as i64 + 200).collect();
    let col = |name: &str, f: &dyn Fn(i64) -> ScalarValue| Column {
        name: name.into(),
        values: keys.iter().map(|&k| f(k)).collect(),
    };
    view.apply(&Mutation::Upsert {
        ts: 3,
        rows: quiver_common::RowBatch {
            pks: keys.iter().map(|&k| PrimaryKey::Int(k)).collect(),
            vectors: quiver_common::Vectors::f32(16, vec![0.25; keys.len() * 16]),
            columns: vec![
                col("flag", &|k| ScalarValue::Bool(k % 100 == 7)),
                col("name", &|k| ScalarValue::Str(format!("n{}", k % 100))),
            ],
        },
    });
    view.apply(&Mutation::Delete {
        ts: 4,
        pks: [7, 107, N as i64 + 7].map(PrimaryKey::Int).to_vec(),
    });
    let proj = crate::search::Projection {
        fields: &[],
        with_vectors: false,
    };
    let flag = exact(leaf("flag", LeafTest::Bool(true), false), |r| r % 100 == 7);
    let inexact = Filter {
        plan: Some(ColumnPlan {
            root: leaf("name", LeafTest::Str("n7".into()), false),
            exact: false,
        }),
        row: |r| r % 200 == 7,
    };
    let planless = Filter {
        plan: None,
        row: |r| r % 3 == 0,
    };
    for (what, p) in [
        ("flag", &flag),
        ("inexact", &inexact),
        ("no plan", &planless),
    ] {
        let rows = view.query(None, Some(p), usize::MAX, &proj).rows;
        let want = (0..N + 200)
            .filter(|&r| (p.row)(r) && (r % 7 != 0 || !(300..N).contains(&r)))
            .filter(|r| ![7, 107, N + 7].contains(r))
            .count();
        assert!(want > 10, "{what}");
        assert_eq!(rows.len(), want, "{what}: the query");
        assert_eq!(view.count_matching(p), want, "{what}: the count");
    }
}
