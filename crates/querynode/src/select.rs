//! How a filter meets a sealed segment — the planner of filtered reads.
//!
//! A filter's column plan (`quiver_api::ColumnPlan`) is bound to the
//! segment's columns once per request, so a row is tested without a lookup
//! by field name; the rest of the filter (when the plan is not all of it)
//! is evaluated row by row after the plan accepts the row.
//!
//! [`SealedSeg::select`] then chooses, per segment, from how many rows the
//! filter can accept, estimated from the segment's scalar indexes (term
//! indexes for equality and `in`, sorted indexes for ranges — `terms.rs`,
//! `sorted.rs`), and where they cannot bound it (a boolean, `is null`, a
//! negation, an `or` across columns) from the plan tested on a sample of
//! the segment's rows:
//! - few (at most `max_rows`): the caller gets exactly the accepted rows as
//!   a bitset (a vector search then scans those rows exactly, or walks its
//!   graph testing a bit per row, depending on how many there are). The
//!   indexes name the candidate rows when they can, each then tested;
//!   else the plan is evaluated a column at a time (`columnwise.rs`) and
//!   the rest of the filter tested on the rows it accepts;
//! - many: the caller tests rows as it visits them (a graph search visits a
//!   few thousand of a segment's rows; testing them all up front would cost
//!   more than the search). The values a node's neighbours will be tested
//!   on are prefetched with their vectors (`RowFilter::prefetch`): a test
//!   was mostly the cache miss on its row's value.
//!
//! A read of every accepted row (`query`, `count`, a delete by filter)
//! selects with no limit: the plan is evaluated column-wise over the whole
//! segment.
//!
//! With no predicate and no deleted row, a graph is walked unfiltered
//! ([`Selection::graph_filter`]).

use std::sync::Arc;

use quiver_api::{
    ColumnLeaf, LeafTest, Num, PlanNode, RowAccess, RowPredicate, float_as_int, is_json_path_key,
};
use quiver_common::{ColumnSlice, PrimaryKey, ScalarValue, StoredColumn, ValueRef};
use quiver_index::{Bitset, RowFilter, prefetch};

use crate::columnwise::{combine, filled, leaf_words};
use crate::sorted::SortedIndex;
use crate::terms::TermIndex;
use crate::view::SealedSeg;

/// One row of a sealed segment, for predicates.
pub(crate) struct SealedRow<'a> {
    pub seg: &'a SealedSeg,
    pub row: usize,
}

impl RowAccess for SealedRow<'_> {
    fn pk(&self) -> &PrimaryKey {
        self.seg.seg.data.pk(self.row)
    }

    fn field(&self, name: &str) -> Option<ValueRef<'_>> {
        (self.seg.seg.data.columns().iter())
            .find(|c| c.name == name)
            .and_then(|c| c.get(self.row))
    }
}

/// A column a leaf tests: one of the segment's, or a JSON path's values
/// (`paths.rs`).
enum Col<'a> {
    Field(&'a StoredColumn),
    Path(Arc<StoredColumn>),
}

impl std::ops::Deref for Col<'_> {
    type Target = StoredColumn;

    fn deref(&self) -> &StoredColumn {
        match self {
            Col::Field(c) => c,
            Col::Path(c) => c,
        }
    }
}

/// A plan node with its columns found in one segment.
enum Node<'a> {
    Const(bool),
    And(Vec<Node<'a>>),
    Or(Vec<Node<'a>>),
    /// `column` None: the segment predates the field (every value null).
    Leaf {
        leaf: &'a ColumnLeaf,
        column: Option<Col<'a>>,
    },
}

impl<'a> Node<'a> {
    /// A leaf on a JSON path binds to the path's values in `seg`, extracted
    /// by the first filter that tests the path; a path of no column of the
    /// segment accepts every row, and sets `unbound` (the whole filter must
    /// then test the rows).
    fn bind(p: &'a PlanNode, seg: &'a SealedSeg, unbound: &mut bool) -> Self {
        let mut all = |items: &'a [PlanNode]| {
            (items.iter())
                .map(|i| Node::bind(i, seg, unbound))
                .collect()
        };
        match p {
            PlanNode::Const(b) => Node::Const(*b),
            PlanNode::And(items) => Node::And(all(items)),
            PlanNode::Or(items) => Node::Or(all(items)),
            PlanNode::Leaf(leaf) if is_json_path_key(&leaf.column) => {
                match seg.seg.path_column(&leaf.column) {
                    Some(c) => Node::Leaf {
                        leaf,
                        column: Some(Col::Path(c)),
                    },
                    None => {
                        *unbound = true;
                        Node::Const(true)
                    }
                }
            }
            PlanNode::Leaf(leaf) => Node::Leaf {
                leaf,
                column: (seg.seg.data.columns().iter())
                    .find(|c| c.name == leaf.column)
                    .map(Col::Field),
            },
        }
    }

    #[inline]
    fn accepts(&self, row: usize) -> bool {
        match self {
            Node::Const(b) => *b,
            Node::And(items) => items.iter().all(|i| i.accepts(row)),
            Node::Or(items) => items.iter().any(|i| i.accepts(row)),
            Node::Leaf { leaf, column } => leaf.accepts(
                column
                    .as_ref()
                    .and_then(|c| c.get(row))
                    .unwrap_or(ValueRef::Null),
            ),
        }
    }

    /// The rows `0..n` accepted, a column at a time (bits past `n` may be
    /// set: `Bitset::from_words` clears them).
    fn words(&self, n: usize) -> Vec<u64> {
        match self {
            Node::Const(b) => filled(n, *b),
            Node::And(items) => combine(n, true, items.iter().map(|i| i.words(n))),
            Node::Or(items) => combine(n, false, items.iter().map(|i| i.words(n))),
            Node::Leaf { leaf, column } => leaf_words(column.as_deref(), leaf, n),
        }
    }

    /// Hints the CPU to load the values of `row` the leaves test.
    fn prefetch(&self, row: usize) {
        match self {
            Node::Const(_) => {}
            Node::And(items) | Node::Or(items) => items.iter().for_each(|i| i.prefetch(row)),
            Node::Leaf { column, .. } => match column.as_ref().map(|c| c.slice()) {
                Some(ColumnSlice::Int(v)) => prefetch(v, row, 1),
                Some(ColumnSlice::Float(v)) => prefetch(v, row, 1),
                Some(ColumnSlice::Bool(v)) => prefetch(v, row, 1),
                Some(ColumnSlice::Any(v)) => prefetch(v, row, 1),
                None => {}
            },
        }
    }

    /// An upper bound of the rows accepted, from the indexes (`n` when they
    /// cannot tell).
    fn estimate(&self, seg: &SealedSeg, n: usize) -> usize {
        match self {
            Node::Const(b) => usize::from(*b) * n,
            Node::And(items) => (items.iter().map(|i| i.estimate(seg, n)).min()).unwrap_or(n),
            Node::Or(items) => (items.iter().map(|i| i.estimate(seg, n)))
                .fold(0, usize::saturating_add)
                .min(n),
            Node::Leaf { leaf, column } => match (column.as_deref(), leaf.negated) {
                (None, _) => n,
                (Some(c), false) => leaf_count(seg, c, leaf).map_or(n, |r| r.min(n)),
                (Some(c), true) => n - leaf_count(seg, c, leaf).map_or(0, |r| r.min(n)),
            },
        }
    }

    /// Whether [`Node::estimate`] is the exact count (a constant, or one
    /// leaf an index counts).
    fn counted(&self, seg: &SealedSeg) -> bool {
        match self {
            Node::Const(_) => true,
            // A negated leaf's estimate counts its nulls too.
            Node::Leaf {
                leaf,
                column: Some(c),
            } => !leaf.negated && leaf_count(seg, c, leaf).is_some(),
            _ => false,
        }
    }

    /// Rows that include every row accepted, from the indexes; None when
    /// they cannot name them.
    fn candidates(&self, seg: &SealedSeg, n: usize) -> Option<Vec<u32>> {
        match self {
            Node::Const(false) => Some(Vec::new()),
            Node::Const(true) => None,
            Node::And(items) => {
                let mut by_size: Vec<(usize, &Node)> =
                    items.iter().map(|i| (i.estimate(seg, n), i)).collect();
                by_size.sort_by_key(|(e, _)| *e);
                by_size.iter().find_map(|(_, i)| i.candidates(seg, n))
            }
            Node::Or(items) => {
                let mut out = Vec::new();
                for i in items {
                    out.extend(i.candidates(seg, n)?);
                }
                Some(out)
            }
            Node::Leaf { leaf, column } => match column.as_deref() {
                Some(c) if !leaf.negated => leaf_rows(seg, c, leaf),
                _ => None,
            },
        }
    }
}

/// How an index of a leaf's column names the rows meeting its test.
enum Lookup {
    /// A range of a sorted index.
    Sorted(Arc<SortedIndex>),
    /// Values of a term index.
    Terms(Arc<TermIndex>, Vec<ScalarValue>),
}

fn lookup(seg: &SealedSeg, column: &StoredColumn, leaf: &ColumnLeaf) -> Option<Lookup> {
    let path = is_json_path_key(&column.name);
    // A path's index is built from its extracted values, the column here.
    let columns = match path {
        true => std::slice::from_ref(column),
        false => seg.seg.data.columns(),
    };
    let terms = |values: Vec<ScalarValue>| {
        let index = seg.seg.terms.column(columns, &column.name)?;
        Some(Lookup::Terms(index, values))
    };
    match &leaf.test {
        LeafTest::Range { .. } => seg.seg.sorted.of(column).map(Lookup::Sorted),
        // A path's term index holds strings and integral numbers only: a
        // bool or another number may be among its values.
        LeafTest::In { nums, bools, .. }
            if path
                && (bools.iter().any(|b| *b)
                    || nums
                        .iter()
                        .any(|n| matches!(n, Num::Float(x) if float_as_int(*x).is_none()))) =>
        {
            None
        }
        LeafTest::In { nums, strs, .. } => {
            // A term index holds ints and strings: an int row matches an
            // int member or an integral float one.
            let ints = nums.iter().filter_map(|n| match *n {
                Num::Int(i) => Some(i),
                Num::Float(x) => float_as_int(x),
            });
            let values = (ints.map(ScalarValue::Int))
                .chain(strs.iter().cloned().map(ScalarValue::Str))
                .collect();
            terms(values)
        }
        LeafTest::Str(s) => terms(vec![ScalarValue::Str(s.clone())]),
        LeafTest::Bool(_) | LeafTest::IsNull => None,
    }
}

/// How many rows of a segment meet `leaf`'s test, from an index of its
/// column (None: no index can tell).
fn leaf_count(seg: &SealedSeg, column: &StoredColumn, leaf: &ColumnLeaf) -> Option<usize> {
    Some(match (lookup(seg, column, leaf)?, &leaf.test) {
        (Lookup::Sorted(index), LeafTest::Range { lo, hi }) => index.range(lo, hi).len(),
        (Lookup::Terms(index, values), _) => index.count(&values),
        (Lookup::Sorted(_), _) => return None,
    })
}

/// The rows of a segment meeting `leaf`'s test, from an index of its column.
fn leaf_rows(seg: &SealedSeg, column: &StoredColumn, leaf: &ColumnLeaf) -> Option<Vec<u32>> {
    Some(match (lookup(seg, column, leaf)?, &leaf.test) {
        (Lookup::Sorted(index), LeafTest::Range { lo, hi }) => index.range(lo, hi).to_vec(),
        (Lookup::Terms(index, values), _) => index.rows(&values).collect(),
        (Lookup::Sorted(_), _) => return None,
    })
}

/// The live rows of a sealed segment a predicate accepts, tested one at a
/// time.
pub(crate) struct SegmentFilter<'a> {
    seg: &'a SealedSeg,
    plan: Option<Node<'a>>,
    /// The predicate, when the plan is not all of it.
    residual: Option<&'a dyn RowPredicate>,
    estimate: Option<usize>,
}

/// Rows of a segment a sample tests to estimate how many a filter accepts.
const SAMPLE: usize = 256;

impl SegmentFilter<'_> {
    /// Exactly the live rows accepted: the plan evaluated a column at a
    /// time, then the rest of the predicate tested on the rows it accepts.
    fn exact(&self) -> Bitset {
        let n = self.seg.alive.len();
        let mut rows = match &self.plan {
            Some(plan) => {
                let mut rows = Bitset::from_words(plan.words(n), n);
                rows.intersect(&self.seg.alive);
                rows
            }
            None => self.seg.alive.clone(),
        };
        if let Some(p) = self.residual {
            rows.retain(|r| {
                p.eval(&SealedRow {
                    seg: self.seg,
                    row: r as usize,
                })
            });
        }
        rows
    }

    /// Whether a sample of evenly spaced rows says the column plan accepts
    /// at most `max_rows` of the segment's live rows: then the rows the
    /// filter accepts are found column-wise, the rest of the filter tested
    /// on few rows. (Where the plan is not selective, the rest of the
    /// filter — a JSON path without an extracted column, a `like` — would
    /// have to be tested on most rows, which costs more than testing the
    /// rows a graph visits.) It stops as soon as the rows accepted rule
    /// that out, so a plan that accepts many costs a hundred tests or so.
    fn sample_says_few(&self, max_rows: usize) -> bool {
        let Some(plan) = &self.plan else {
            return false;
        };
        let live = self.seg.live();
        if live <= max_rows {
            return true;
        }
        let n = self.seg.alive.len();
        let share = max_rows as f64 / live as f64;
        let enough = share * SAMPLE as f64 * 1.5 + 8.0;
        let (mut seen, mut accepted) = (0usize, 0usize);
        let step = (n / SAMPLE).max(1);
        for row in (step / 2..n).step_by(step).map(|r| r as u32) {
            if !self.seg.alive.contains(row) {
                continue;
            }
            seen += 1;
            if plan.accepts(row as usize) {
                accepted += 1;
                if accepted as f64 > enough {
                    return false;
                }
            }
        }
        accepted as f64 <= share * seen as f64
    }
}

impl RowFilter for SegmentFilter<'_> {
    #[inline]
    fn allows(&self, id: u32) -> bool {
        self.seg.alive.contains(id)
            && self.plan.as_ref().is_none_or(|p| p.accepts(id as usize))
            && self.residual.is_none_or(|p| {
                p.eval(&SealedRow {
                    seg: self.seg,
                    row: id as usize,
                })
            })
    }

    fn estimated_allowed(&self) -> Option<usize> {
        self.estimate
    }

    #[inline]
    fn prefetch(&self, id: u32) {
        if let Some(p) = &self.plan {
            p.prefetch(id as usize);
        }
    }
}

/// Which rows of a segment a read covers (see the module docs).
pub(crate) enum Selection<'a> {
    /// Exactly the live rows the predicate accepts.
    Rows(Bitset),
    /// Rows to test as they are visited.
    Test(SegmentFilter<'a>),
}

impl Selection<'_> {
    pub fn filter(&self) -> &dyn RowFilter {
        match self {
            Selection::Rows(rows) => rows,
            Selection::Test(f) => f,
        }
    }

    /// The filter a graph search needs: none when every row of the
    /// segment is allowed (the unfiltered beam is faster than testing rows).
    pub fn graph_filter(&self) -> Option<&dyn RowFilter> {
        match self {
            // No predicate (no plan, no residual) and no deleted row.
            Selection::Test(f)
                if f.plan.is_none()
                    && f.residual.is_none()
                    && f.estimate == Some(f.seg.alive.len()) =>
            {
                None
            }
            _ => Some(self.filter()),
        }
    }

    /// Nothing to read.
    pub fn is_empty(&self) -> bool {
        matches!(self, Selection::Rows(rows) if rows.count_ones() == 0)
    }

    /// How many rows are covered (for `Test`, found column-wise first).
    pub fn count(&self) -> usize {
        match self {
            Selection::Rows(rows) => rows.count_ones(),
            Selection::Test(f) => f.exact().count_ones(),
        }
    }

    /// The rows covered, ascending (for `Test`, found column-wise first).
    pub fn rows(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            Selection::Rows(rows) => Box::new(rows.iter()),
            Selection::Test(f) => Box::new(f.exact().iter().collect::<Vec<_>>().into_iter()),
        }
    }
}

impl SealedSeg {
    /// The segment's live rows that `predicate` accepts, as a filter that
    /// tests each row (no index used).
    pub fn filter<'a>(&'a self, predicate: Option<&'a dyn RowPredicate>) -> SegmentFilter<'a> {
        let plan = predicate.and_then(|p| p.column_plan());
        let mut unbound = false;
        let bound = plan.map(|p| Node::bind(&p.root, self, &mut unbound));
        // The plan decides alone when it is the whole filter and the
        // segment has the values of each JSON path it tests.
        let whole = plan.is_some_and(|p| p.exact) && !unbound;
        SegmentFilter {
            seg: self,
            plan: bound,
            residual: predicate.filter(|_| !whole),
            estimate: predicate.is_none().then(|| self.live()),
        }
    }

    /// The segment's live rows that `predicate` accepts: exactly, when its
    /// indexes say at most `max_rows` rows can be; else as a filter to test
    /// rows with (see the module docs).
    pub fn select<'a>(
        &'a self,
        predicate: Option<&'a dyn RowPredicate>,
        max_rows: usize,
    ) -> Selection<'a> {
        let mut filter = self.filter(predicate);
        let Some(p) = predicate else {
            return Selection::Test(filter);
        };
        let columns = self.seg.data.columns();
        // Equality terms of the top conjunction (a partition, a partition
        // key, a TEXT_MATCH): the term indexes name their rows.
        if let Some(rows) =
            (self.seg.terms).candidates(columns, &self.alive, p, max_rows, |r| filter.allows(r))
        {
            return Selection::Rows(rows);
        }
        if let Some(plan) = &filter.plan {
            let n = self.alive.len();
            let estimate = plan.estimate(self, n);
            filter.estimate = Some(estimate);
            if estimate <= max_rows {
                let Some(candidates) = plan.candidates(self, n) else {
                    return Selection::Rows(filter.exact());
                };
                let mut rows = Bitset::new_empty(n);
                for r in candidates {
                    if filter.allows(r) {
                        rows.insert(r);
                    }
                }
                return Selection::Rows(rows);
            }
        }
        // No index counts the rows accepted: a sample tells whether few are.
        let counted =
            filter.residual.is_none() && (filter.plan.as_ref()).is_some_and(|p| p.counted(self));
        if !counted && filter.sample_says_few(max_rows) {
            return Selection::Rows(filter.exact());
        }
        Selection::Test(filter)
    }
}
