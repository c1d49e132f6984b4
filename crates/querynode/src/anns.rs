//! Searching a vector field other than a collection's first. Its vectors are
//! a column (`ScalarValue::Vector`, one per row) in every segment and in the
//! growing rows, so the search is exact: each live row the filter accepts is
//! scored with the metric of the field's index, segments in parallel on the
//! scan pool, then merged into one top-k like any search.

use quiver_api::{RowPredicate, ShardHit};
use quiver_common::{Metric, ScalarValue};
use quiver_index::{RowFilter, flat_search_rows, merge_topk};

use crate::growing::GrowingFilter;
use crate::search::Projection;
use crate::view::{Loc, ShardView};

/// The vector of a column cell (None for anything else).
fn vector(v: &ScalarValue) -> Option<&[f32]> {
    match v {
        ScalarValue::Vector(x) => Some(x.as_slice()),
        _ => None,
    }
}

impl ShardView {
    /// Top-k of one query over vector column `field`, best first.
    #[allow(clippy::too_many_arguments)]
    pub fn search_column(
        &self,
        pool: &rayon::ThreadPool,
        field: &str,
        metric: Metric,
        query: &[f32],
        k: usize,
        predicate: Option<&dyn RowPredicate>,
        proj: &Projection<'_>,
    ) -> Vec<ShardHit> {
        use rayon::prelude::*;
        let sealed: Vec<Vec<(Loc, f32)>> = pool.install(|| {
            (self.sealed.par_iter().enumerate())
                .filter(|(_, seg)| seg.live() > 0)
                .map(|(si, seg)| {
                    let Some(column) = seg.seg.data.columns().iter().find(|c| c.name == field)
                    else {
                        return Vec::new();
                    };
                    // Every row the filter accepts is scored: the indexes name
                    // them when they can.
                    let selection = seg.select(predicate, usize::MAX);
                    let rows = selection.rows().filter_map(|r| {
                        let quiver_common::ValueRef::Ref(v) = column.get(r as usize)? else {
                            return None;
                        };
                        let v = vector(v)?;
                        Some((r, v))
                    });
                    flat_search_rows(rows, metric, query, k)
                        .into_iter()
                        .map(|n| {
                            let loc = Loc::Sealed {
                                seg: si as u32,
                                row: n.id,
                            };
                            (loc, n.score)
                        })
                        .collect()
                })
                .collect()
        });
        let mut lists = sealed;
        let column = (self.scalar_names.iter())
            .position(|n| n == field)
            .map(|i| &self.growing.columns[i]);
        if let Some(column) = column
            && self.growing.live > 0
        {
            let filter = GrowingFilter::new(&self.growing, &self.scalar_names, predicate);
            let rows = (column.iter().enumerate())
                .filter(|(r, _)| filter.allows(*r as u32))
                .filter_map(|(r, v)| Some((r as u32, vector(v)?)));
            lists.push(
                flat_search_rows(rows, metric, query, k)
                    .into_iter()
                    .map(|n| (Loc::Growing { row: n.id }, n.score))
                    .collect(),
            );
        }
        merge_topk(lists, k, metric)
            .into_iter()
            .map(|(loc, score)| self.materialize(loc, score, proj))
            .collect()
    }
}
