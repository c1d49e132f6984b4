//! Growing rows of a shard: appended in timestamp order as mutations arrive,
//! searched exactly; and how a filter meets them ([`GrowingFilter`]).

use quiver_api::{PlanNode, RowAccess, RowPredicate, is_json_path_key};
use quiver_common::{
    ElementType, PrimaryKey, RowBatch, ScalarValue, Timestamp, ValueRef, VectorSlice, Vectors,
};
use quiver_index::{Bitset, RowFilter};

use crate::columnwise::{combine, filled, value_words};

/// Row-aligned columns of the rows not yet sealed.
#[derive(Debug, Default)]
pub(crate) struct Growing {
    pub pks: Vec<PrimaryKey>,
    pub timestamps: Vec<Timestamp>,
    pub vectors: Vectors,
    /// One column per scalar field of the schema, in schema order.
    pub columns: Vec<Vec<ScalarValue>>,
    pub deleted: Vec<bool>,
    pub live: usize,
    /// Digest hashes of the first rows (`quiver_api::row_hash`), filled in
    /// by the first digest that needs them: rows never change once pushed,
    /// so a digest hashes each row once, and writes never pay for it.
    pub hashes: parking_lot::Mutex<Vec<u64>>,
}

impl Growing {
    /// No rows yet (element types Quiver cannot store never get this far:
    /// their schemas are refused).
    pub fn new(element: ElementType, dim: usize, scalar_fields: usize) -> Self {
        Self {
            vectors: Vectors::with_capacity(element, dim, 0)
                .unwrap_or_else(|| Vectors::f32(dim, Vec::new())),
            columns: vec![Vec::new(); scalar_fields],
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.pks.len()
    }

    /// Appends row `r` of `batch`; `names` are the schema's scalar fields.
    pub fn push(&mut self, ts: Timestamp, batch: &RowBatch, r: usize, names: &[String]) -> u32 {
        let row = self.pks.len() as u32;
        self.pks.push(batch.pks[r].clone());
        self.timestamps.push(ts);
        self.vectors.push_row(batch.vector(r));
        for (col, name) in self.columns.iter_mut().zip(names) {
            let v = batch
                .columns
                .iter()
                .find(|c| &c.name == name)
                .and_then(|c| c.values.get(r).cloned())
                .unwrap_or(ScalarValue::Null);
            col.push(v);
        }
        self.deleted.push(false);
        self.live += 1;
        row
    }

    pub fn delete(&mut self, row: u32) {
        if let Some(d) = self.deleted.get_mut(row as usize)
            && !*d
        {
            *d = true;
            self.live -= 1;
        }
    }

    pub fn vector(&self, row: usize) -> VectorSlice<'_> {
        self.vectors.row(row)
    }

    /// Drops the first `n` rows (now held by a sealed segment).
    pub fn drop_prefix(&mut self, n: usize) {
        let n = n.min(self.len());
        let dropped_live = self.deleted[..n].iter().filter(|d| !**d).count();
        self.pks.drain(..n);
        self.timestamps.drain(..n);
        self.vectors.drain_front(n);
        for c in &mut self.columns {
            c.drain(..n);
        }
        self.deleted.drain(..n);
        let mut hashes = self.hashes.lock();
        let cached = n.min(hashes.len());
        hashes.drain(..cached);
        self.live -= dropped_live;
    }
}

/// One growing row, for predicates.
pub(crate) struct GrowingRow<'a> {
    pub growing: &'a Growing,
    /// The schema's scalar fields, in the order of `growing.columns`.
    pub names: &'a [String],
    pub row: usize,
}

impl RowAccess for GrowingRow<'_> {
    fn pk(&self) -> &PrimaryKey {
        &self.growing.pks[self.row]
    }

    fn field(&self, name: &str) -> Option<ValueRef<'_>> {
        let i = self.names.iter().position(|n| n == name)?;
        self.growing.columns[i].get(self.row).map(ValueRef::of)
    }
}

/// The live growing rows a predicate accepts, found once per request: the
/// filter's column plan bound to the growing columns and evaluated a column
/// at a time into bitset words (the growing rows' counterpart of
/// `select.rs`). When the plan is not all of the filter (a `like`,
/// arithmetic, a JSON path: its values are not extracted from growing rows),
/// the rest is tested on the rows the plan passes: up front when they are
/// few, else as a scan visits them (on the scan's threads). Testing every
/// growing row with the whole predicate, each field found by name, cost far
/// more than the distances of the rows it let through.
pub(crate) struct GrowingFilter<'a> {
    growing: &'a Growing,
    names: &'a [String],
    /// The live rows the column plan passes (every live row when the filter
    /// has none); None: no predicate.
    rows: Option<Bitset>,
    /// The rest of the filter, when `rows` does not decide alone.
    residual: Option<&'a dyn RowPredicate>,
}

/// At most this many rows that the column plan passes are tested with the
/// rest of the filter up front (one thread); more are tested as visited.
const TEST_UP_FRONT: usize = 4_096;

impl<'a> GrowingFilter<'a> {
    pub fn new(
        growing: &'a Growing,
        names: &'a [String],
        predicate: Option<&'a dyn RowPredicate>,
    ) -> Self {
        let mut filter = GrowingFilter {
            growing,
            names,
            rows: None,
            residual: None,
        };
        let Some(p) = predicate else {
            return filter;
        };
        let (mut rows, whole) = plan_rows(growing, names, p);
        if !whole && rows.count_ones() > TEST_UP_FRONT {
            filter.residual = Some(p);
        } else if !whole {
            rows.retain(|r| p.eval(&filter.row(r)));
        }
        filter.rows = Some(rows);
        filter
    }

    fn row(&self, row: u32) -> GrowingRow<'a> {
        GrowingRow {
            growing: self.growing,
            names: self.names,
            row: row as usize,
        }
    }

    /// The rows allowed, ascending.
    pub fn rows(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match &self.rows {
            Some(rows) => Box::new(rows.iter().filter(|&r| self.passes_rest(r))),
            None => Box::new((0..self.growing.len() as u32).filter(|&r| self.allows(r))),
        }
    }

    /// How many rows are allowed.
    pub fn count(&self) -> usize {
        match (&self.rows, self.residual) {
            (None, _) => self.growing.live,
            (Some(rows), None) => rows.count_ones(),
            (Some(_), Some(_)) => self.rows().count(),
        }
    }

    /// At least as many rows as are allowed (no row tested).
    pub fn at_most(&self) -> usize {
        self.rows
            .as_ref()
            .map_or(self.growing.live, Bitset::count_ones)
    }

    #[inline]
    fn passes_rest(&self, row: u32) -> bool {
        self.residual.is_none_or(|p| p.eval(&self.row(row)))
    }
}

impl RowFilter for GrowingFilter<'_> {
    #[inline]
    fn allows(&self, id: u32) -> bool {
        match &self.rows {
            Some(rows) => rows.contains(id) && self.passes_rest(id),
            None => self.growing.deleted.get(id as usize) == Some(&false),
        }
    }

    fn estimated_allowed(&self) -> Option<usize> {
        Some(self.at_most())
    }

    fn as_bitset(&self) -> Option<&Bitset> {
        self.rows.as_ref().filter(|_| self.residual.is_none())
    }
}

/// The live rows the column plan of `predicate` passes, and whether that
/// is the whole filter (the plan is exact and binds every leaf: a JSON
/// path's values are not extracted from growing rows).
fn plan_rows(growing: &Growing, names: &[String], predicate: &dyn RowPredicate) -> (Bitset, bool) {
    let n = growing.len();
    let mut words: Vec<u64> = (growing.deleted.chunks(64))
        .map(|c| (c.iter().enumerate()).fold(0u64, |w, (j, d)| w | (u64::from(!*d) << j)))
        .collect();
    let plan = predicate.column_plan();
    let mut unbound = false;
    if let Some(plan) = plan {
        let accepted = plan_words(&plan.root, growing, names, n, &mut unbound);
        for (w, a) in words.iter_mut().zip(accepted) {
            *w &= a;
        }
    }
    let whole = plan.is_some_and(|p| p.exact) && !unbound;
    (Bitset::from_words(words, n), whole)
}

/// The rows `0..n` a plan node accepts, 64 to a word. A leaf on a JSON path
/// accepts every row and sets `unbound` (the predicate then tests the rows
/// the plan accepts: `and` and `or` only ever widen with it).
fn plan_words(
    p: &PlanNode,
    growing: &Growing,
    names: &[String],
    n: usize,
    unbound: &mut bool,
) -> Vec<u64> {
    match p {
        PlanNode::Const(b) => filled(n, *b),
        PlanNode::And(items) | PlanNode::Or(items) => {
            let and = matches!(p, PlanNode::And(_));
            let parts: Vec<Vec<u64>> = (items.iter())
                .map(|i| plan_words(i, growing, names, n, unbound))
                .collect();
            combine(n, and, parts.into_iter())
        }
        PlanNode::Leaf(leaf) if is_json_path_key(&leaf.column) => {
            *unbound = true;
            filled(n, true)
        }
        PlanNode::Leaf(leaf) => match names.iter().position(|x| *x == leaf.column) {
            // Every push fills every column: `n` values.
            Some(i) => value_words(&growing.columns[i], leaf),
            None => filled(n, leaf.accepts(ValueRef::Null)),
        },
    }
}
