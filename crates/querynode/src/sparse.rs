//! Searching a sparse vector field: the inner product of sparse queries, or
//! the BM25 relevance of a text's terms to a BM25 function's output.
//!
//! Each sealed segment gets an inverted index of the column the first time
//! a search names it (term → the rows holding it and their values, and each
//! row's length: the sum of its values, a BM25 document's token count),
//! kept with the loaded segment; growing rows are scanned. Only rows that
//! share a term with the query score (as Milvus's inverted index answers).
//!
//! BM25's corpus statistics are the shard's, counted at query time over the
//! same live rows the search sees (N: live rows, avgdl: their mean length,
//! df: live rows holding the term), so inserts, deletes, upserts and
//! compactions change them at once. Milvus keeps them per shard too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use quiver_api::{RowPredicate, ShardHit, SparseQueries};
use quiver_common::{Metric, ScalarValue, StoredColumn, ValueRef};
use quiver_index::{RowFilter, merge_topk};
use quiver_text::Bm25;

use crate::built::{Built, When};
use crate::growing::GrowingFilter;
use crate::search::Projection;
use crate::view::{Loc, ShardView};

/// One segment's inverted index of a sparse column.
pub(crate) struct SparseIndex {
    postings: HashMap<u32, Vec<(u32, f32)>>,
    lengths: Vec<f32>,
    /// The summed length of the live rows, for the live-row count it was
    /// computed at: a segment's rows only ever die, so the count names the
    /// set (BM25's statistics need it per query).
    live_length: Mutex<Option<(usize, f64)>>,
}

impl crate::built::HeapBytes for SparseIndex {
    fn heap_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u32, Vec<(u32, f32)>)>() + 1;
        let postings = self.postings.values().map(|p| p.capacity() * 8);
        self.postings.capacity() * slot + postings.sum::<usize>() + self.lengths.capacity() * 4
    }
}

impl SparseIndex {
    fn build(column: &StoredColumn) -> SparseIndex {
        let mut postings: HashMap<u32, Vec<(u32, f32)>> = HashMap::new();
        let mut lengths = Vec::with_capacity(column.len());
        for (row, v) in column.iter().enumerate() {
            let pairs = match v {
                ValueRef::Ref(v) => sparse(v),
                _ => &[],
            };
            lengths.push(pairs.iter().map(|(_, x)| x).sum());
            for (term, x) in pairs {
                postings.entry(*term).or_default().push((row as u32, *x));
            }
        }
        SparseIndex {
            postings,
            lengths,
            live_length: Mutex::new(None),
        }
    }

    /// The summed length of the rows of `alive` (`live` of them).
    fn live_length(&self, alive: &quiver_index::Bitset, live: usize) -> f64 {
        let mut cached = self.live_length.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, sum)) = *cached
            && n == live
        {
            return sum;
        }
        let sum = alive
            .iter()
            .map(|r| f64::from(self.lengths[r as usize]))
            .sum();
        *cached = Some((live, sum));
        sum
    }
}

/// A segment's sparse indexes, by column.
pub(crate) struct SparseIndexes {
    built: Built<String, SparseIndex>,
}

impl Default for SparseIndexes {
    fn default() -> Self {
        Self {
            built: Built::new("sparse", |_| false),
        }
    }
}

impl SparseIndexes {
    fn get(&self, columns: &[StoredColumn], name: &str) -> Option<Arc<SparseIndex>> {
        self.build(columns, name, When::Search)
    }

    /// The sparse index of column `name`, built now if it was not.
    pub(crate) fn build(
        &self,
        columns: &[StoredColumn],
        name: &str,
        when: When,
    ) -> Option<Arc<SparseIndex>> {
        self.built.get(&name.to_string(), when, || {
            Some(SparseIndex::build(columns.iter().find(|c| c.name == name)?))
        })
    }

    /// The columns whose sparse index was built.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.built.keys()
    }
}

fn sparse(v: &ScalarValue) -> &[(u32, f32)] {
    match v {
        ScalarValue::Sparse(x) => x.as_slice(),
        _ => &[],
    }
}

/// BM25's corpus statistics of the live rows.
#[derive(Default)]
struct Corpus {
    docs: u64,
    length: f64,
    df: Vec<u64>,
}

/// How a row's value of a term scores (IP: the product; BM25: the query
/// weight times idf times the saturated term frequency).
struct Scorer {
    query: Vec<(u32, f32)>,
    /// Per query term: its factor (IP: the query value; BM25: q · idf).
    factor: Vec<f32>,
    bm25: Option<(Bm25, f32)>,
}

impl Scorer {
    fn term(&self, i: usize, value: f32, length: f32) -> f32 {
        match &self.bm25 {
            None => self.factor[i] * value,
            Some((p, avgdl)) => self.factor[i] * p.tf_weight(value, length, *avgdl),
        }
    }
}

/// A row's score against the query (merging two sorted lists).
fn row_score(scorer: &Scorer, row: &[(u32, f32)]) -> Option<f32> {
    let length: f32 = row.iter().map(|(_, x)| x).sum();
    let (mut i, mut j, mut score, mut hit) = (0, 0, 0.0f32, false);
    while i < scorer.query.len() && j < row.len() {
        match scorer.query[i].0.cmp(&row[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                score += scorer.term(i, row[j].1, length);
                hit = true;
                i += 1;
                j += 1;
            }
        }
    }
    hit.then_some(score)
}

/// The `k` best of `(item, score)`, best first.
fn top_k<T>(mut scored: Vec<(T, f32)>, k: usize) -> Vec<(T, f32)> {
    let by_score = |a: &(T, f32), b: &(T, f32)| b.1.total_cmp(&a.1);
    if scored.len() > k {
        scored.select_nth_unstable_by(k.saturating_sub(1), by_score);
        scored.truncate(k);
    }
    scored.sort_by(by_score);
    scored
}

impl ShardView {
    /// Top-k of sparse query `q` over sparse column `field`, best first.
    #[allow(clippy::too_many_arguments)]
    pub fn search_sparse(
        &self,
        pool: &rayon::ThreadPool,
        field: &str,
        queries: &SparseQueries,
        q: usize,
        k: usize,
        predicate: Option<&dyn RowPredicate>,
        proj: &Projection<'_>,
    ) -> Vec<ShardHit> {
        use rayon::prelude::*;
        let query = queries.effective(q);
        if query.is_empty() || k == 0 {
            return Vec::new();
        }
        let indexes: Vec<Option<Arc<SparseIndex>>> = (self.sealed.iter())
            .map(|seg| (seg.seg.sparse).get(seg.seg.data.columns(), field))
            .collect();
        let growing = (self.scalar_names.iter())
            .position(|n| n == field)
            .map(|i| &self.growing.columns[i]);
        let bm25 = queries.bm25.map(|(k1, b)| Bm25 { k1, b });
        let scorer = match bm25 {
            None => Scorer {
                factor: query.iter().map(|(_, x)| *x).collect(),
                query,
                bm25: None,
            },
            Some(p) => {
                let corpus = self.corpus(&indexes, growing, &query);
                let avgdl = if corpus.docs == 0 {
                    0.0
                } else {
                    (corpus.length / corpus.docs as f64) as f32
                };
                Scorer {
                    factor: (query.iter().zip(&corpus.df))
                        .map(|((_, x), df)| x * Bm25::idf(corpus.docs, *df))
                        .collect(),
                    query,
                    bm25: Some((p, avgdl)),
                }
            }
        };
        let sealed: Vec<Vec<(Loc, f32)>> = pool.install(|| {
            (self.sealed.par_iter().zip(&indexes).enumerate())
                .filter(|(_, (seg, index))| seg.live() > 0 && index.is_some())
                .map(|(si, (seg, index))| {
                    let Some(index) = index else {
                        return Vec::new();
                    };
                    let filter = seg.filter(predicate);
                    // Scores in a dense array, with the rows touched.
                    let mut scores = vec![0f32; index.lengths.len()];
                    let mut touched: Vec<u32> = Vec::new();
                    let mut seen = quiver_index::Bitset::new_empty(index.lengths.len());
                    for (i, (term, _)) in scorer.query.iter().enumerate() {
                        for (row, x) in index.postings.get(term).into_iter().flatten() {
                            if seg.alive.contains(*row) {
                                let length = index.lengths[*row as usize];
                                scores[*row as usize] += scorer.term(i, *x, length);
                                if !seen.contains(*row) {
                                    seen.insert(*row);
                                    touched.push(*row);
                                }
                            }
                        }
                    }
                    let allowed = (touched.into_iter())
                        .filter(|row| predicate.is_none() || filter.allows(*row))
                        .map(|row| (row, scores[row as usize]))
                        .collect();
                    top_k(allowed, k)
                        .into_iter()
                        .map(|(row, score)| {
                            let loc = Loc::Sealed {
                                seg: si as u32,
                                row,
                            };
                            (loc, score)
                        })
                        .collect()
                })
                .collect()
        });
        let mut lists = sealed;
        if let Some(column) = growing
            && self.growing.live > 0
        {
            let filter = GrowingFilter::new(&self.growing, &self.scalar_names, predicate);
            let scored = (column.iter().enumerate())
                .filter(|(r, _)| !self.growing.deleted[*r])
                .filter_map(|(r, v)| Some((r as u32, row_score(&scorer, sparse(v))?)))
                .filter(|(r, _)| predicate.is_none() || filter.allows(*r))
                .collect();
            lists.push(
                top_k(scored, k)
                    .into_iter()
                    .map(|(row, score)| (Loc::Growing { row }, score))
                    .collect(),
            );
        }
        merge_topk(lists, k, Metric::Ip)
            .into_iter()
            .map(|(loc, score)| self.materialize(loc, score, proj))
            .collect()
    }

    /// BM25's statistics of the live rows of column `field` for `query`'s
    /// terms (see the module docs).
    fn corpus(
        &self,
        indexes: &[Option<Arc<SparseIndex>>],
        growing: Option<&Vec<ScalarValue>>,
        query: &[(u32, f32)],
    ) -> Corpus {
        let mut c = Corpus {
            df: vec![0; query.len()],
            ..Corpus::default()
        };
        for (seg, index) in self.sealed.iter().zip(indexes) {
            let Some(index) = index else { continue };
            let live = seg.live();
            c.docs += live as u64;
            c.length += index.live_length(&seg.alive, live);
            for (i, (term, _)) in query.iter().enumerate() {
                let postings = index.postings.get(term).into_iter().flatten();
                c.df[i] += postings.filter(|(row, _)| seg.alive.contains(*row)).count() as u64;
            }
        }
        if let Some(column) = growing {
            for (r, v) in column.iter().enumerate() {
                if self.growing.deleted[r] {
                    continue;
                }
                let row = sparse(v);
                c.docs += 1;
                c.length += row.iter().map(|(_, x)| f64::from(*x)).sum::<f64>();
                for (i, (term, _)) in query.iter().enumerate() {
                    if row.binary_search_by_key(term, |(t, _)| *t).is_ok() {
                        c.df[i] += 1;
                    }
                }
            }
        }
        c
    }
}
