//! What to compact: the key directory of a shard's sealed segments (every
//! version of every key, so live rows and needed tombstones are exact) and
//! the pure planning rule over per-segment statistics.

use std::collections::HashMap;

use quiver_common::{PrimaryKey, SegmentId, Timestamp};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// Compaction and garbage-collection settings (`[datanode.compaction]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompactionConfig {
    /// Compact in the background (manual compactions run either way).
    pub enabled: bool,
    /// A segment whose dead share (superseded or deleted rows, tombstones
    /// nothing needs) reaches this is rewritten with its live rows only.
    pub dead_ratio: f64,
    /// Compaction output never grows past this many rows ...
    pub target_rows: usize,
    /// ... or this many bytes of vectors.
    pub target_bytes: usize,
    /// A segment with fewer live rows than half the target is small; this
    /// many small segments next to each other are merged into one.
    pub merge_small: usize,
    /// How often a shard looks for work without being woken (ms).
    pub interval_ms: u64,
    /// Threads building a compaction output's HNSW (at low priority). One by
    /// default: a compaction is never urgent, and the other cores stay with
    /// searches and seals.
    pub index_threads: usize,
    /// An object no catalog entry references is deleted once it has stayed
    /// unreferenced this long (ms). Nothing's correctness depends on it: a
    /// querynode whose fetch finds a segment gone subscribes again and gets
    /// the current list; it only bounds that retry. Unset: 0 on a local
    /// store (a reader that opened a file keeps reading it after the unlink;
    /// one that opens it later subscribes again), 60 s on S3, where a
    /// download in progress would fail (see [`Self::for_store`]).
    pub gc_grace_ms: Option<u64>,
    /// How often the shard's objects are listed to find garbage nobody
    /// retired (what a crash left behind) and to count bytes (ms). Segments
    /// a compaction swaps out are deleted after the grace period without it.
    pub gc_sweep_ms: u64,
    /// How much older than a collection's TTL a row must be before
    /// compaction drops it (ms): the front door's clock, which hides expired
    /// rows from reads, and the datanode's may disagree by this much.
    pub expiry_margin_ms: u64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dead_ratio: 0.2,
            target_rows: 400_000,
            target_bytes: 256 << 20,
            merge_small: 4,
            interval_ms: 10_000,
            index_threads: 1,
            gc_grace_ms: None,
            gc_sweep_ms: 60_000,
            expiry_margin_ms: 60_000,
        }
    }
}

impl CompactionConfig {
    /// The grace period when none is set: none on a local store (an open
    /// file outlives its unlink), 60 s on S3 (a download must not lose
    /// its object midway).
    pub fn for_store(mut self, local: bool) -> Self {
        if self.gc_grace_ms.is_none() {
            self.gc_grace_ms = Some(if local { 0 } else { 60_000 });
        }
        self
    }

    /// The grace period in force (60 s if none was set or resolved).
    pub fn gc_grace(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.gc_grace_ms.unwrap_or(60_000))
    }

    pub fn validate(&self) -> quiver_common::Result<()> {
        use quiver_common::Error;
        if !(self.dead_ratio > 0.0 && self.dead_ratio <= 1.0) {
            return Err(Error::invalid(
                "datanode.compaction.dead_ratio",
                "must be in (0, 1]",
            ));
        }
        if self.target_rows == 0 || self.target_bytes == 0 {
            return Err(Error::invalid(
                "datanode.compaction.target_rows",
                "target_rows and target_bytes must be > 0",
            ));
        }
        if self.index_threads == 0 {
            return Err(Error::invalid(
                "datanode.compaction.index_threads",
                "must be > 0",
            ));
        }
        if self.merge_small < 2 {
            return Err(Error::invalid(
                "datanode.compaction.merge_small",
                "must be >= 2",
            ));
        }
        Ok(())
    }
}

/// One version of a key in a sealed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    pub seg: SegmentId,
    pub ts: Timestamp,
    pub tombstone: bool,
}

/// Counts of one sealed segment, as the directory knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SegStats {
    pub id: SegmentId,
    pub max_ts: Timestamp,
    pub rows: u64,
    pub tombstones: u64,
    /// Rows that are their key's newest version.
    pub live_rows: u64,
    /// Tombstones that still hide an older row in another segment.
    pub needed_tombstones: u64,
    /// Bytes of vectors per row.
    pub row_bytes: u64,
    /// Sealed before its graph was built, which the shard's builder does
    /// next: never planned (merging it would build that graph anyway, and
    /// the builder's swap would race the compaction's), and a boundary no
    /// plan reaches across.
    pub graph_pending: bool,
}

impl SegStats {
    pub fn dead(&self) -> u64 {
        (self.rows - self.live_rows) + (self.tombstones - self.needed_tombstones)
    }

    pub fn dead_share(&self) -> f64 {
        let all = self.rows + self.tombstones;
        if all == 0 {
            return 1.0;
        }
        self.dead() as f64 / all as f64
    }
}

/// Every version of every key in a shard's sealed segments.
#[derive(Default)]
pub(crate) struct Directory {
    keys: HashMap<PrimaryKey, SmallVec<[Version; 1]>>,
    /// id -> (max_ts, rows, tombstones, row_bytes)
    segments: HashMap<SegmentId, (Timestamp, u64, u64, u64)>,
}

impl Directory {
    pub fn knows(&self, seg: SegmentId) -> bool {
        self.segments.contains_key(&seg)
    }

    pub fn segment_ids(&self) -> Vec<SegmentId> {
        self.segments.keys().copied().collect()
    }

    /// Adds a segment's rows (pk, ts) and tombstones.
    pub fn add<'a>(
        &mut self,
        seg: SegmentId,
        max_ts: Timestamp,
        rows: impl IntoIterator<Item = (&'a PrimaryKey, Timestamp)>,
        tombstones: impl IntoIterator<Item = (&'a PrimaryKey, Timestamp)>,
        row_bytes: u64,
    ) {
        let (mut r, mut t) = (0u64, 0u64);
        for (pk, ts) in rows {
            r += 1;
            self.push(pk, seg, ts, false);
        }
        for (pk, ts) in tombstones {
            t += 1;
            self.push(pk, seg, ts, true);
        }
        self.segments.insert(seg, (max_ts, r, t, row_bytes));
    }

    fn push(&mut self, pk: &PrimaryKey, seg: SegmentId, ts: Timestamp, tombstone: bool) {
        let v = Version { seg, ts, tombstone };
        match self.keys.get_mut(pk) {
            Some(vs) => vs.push(v),
            None => {
                self.keys.insert(pk.clone(), smallvec::smallvec![v]);
            }
        }
    }

    /// Forgets segments (compacted away).
    pub fn remove(&mut self, segs: &[SegmentId]) {
        if segs.is_empty() {
            return;
        }
        for s in segs {
            self.segments.remove(s);
        }
        self.keys.retain(|_, vs| {
            vs.retain(|v| !segs.contains(&v.seg));
            !vs.is_empty()
        });
    }

    /// Whether the version `(seg, ts)` of `pk` must be kept: a row when it
    /// is the key's newest version; a tombstone when it is the newest and an
    /// older row of the key is in a segment outside `leaving` (segments
    /// about to be replaced, whose rows go with them).
    pub fn keep(&self, pk: &PrimaryKey, v: Version, leaving: &[SegmentId]) -> bool {
        let Some(vs) = self.keys.get(pk) else {
            return !v.tombstone;
        };
        let newest = vs.iter().map(|x| x.ts).max().unwrap_or(0);
        if v.ts < newest {
            return false;
        }
        !v.tombstone
            || vs
                .iter()
                .any(|x| !x.tombstone && x.ts < v.ts && !leaving.contains(&x.seg))
    }

    /// Per-segment counts, in timestamp order.
    pub fn stats(&self) -> Vec<SegStats> {
        let mut out: HashMap<SegmentId, SegStats> = self
            .segments
            .iter()
            .map(|(&id, &(max_ts, rows, tombstones, row_bytes))| {
                let s = SegStats {
                    id,
                    max_ts,
                    rows,
                    tombstones,
                    row_bytes,
                    ..SegStats::default()
                };
                (id, s)
            })
            .collect();
        for (pk, vs) in &self.keys {
            let Some(newest) = vs.iter().copied().max_by_key(|v| v.ts) else {
                continue;
            };
            if let Some(s) = out.get_mut(&newest.seg) {
                if !newest.tombstone {
                    s.live_rows += 1;
                } else if self.keep(pk, newest, &[]) {
                    s.needed_tombstones += 1;
                }
            }
        }
        let mut v: Vec<SegStats> = out.into_values().collect();
        v.sort_by_key(|s| (s.max_ts, s.id));
        v
    }
}

/// Why a plan was made (for logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Dead,
    Small,
    Manual,
    /// Built under another index than the collection's current one.
    Reindex,
    /// Sealed before its graph was built (`INDEX_PENDING`).
    Index,
    /// Every row is older than the collection's TTL.
    Expired,
}

/// The next compaction of a shard: a run of segments adjacent in
/// timestamp order (so the output takes their place and segments stay
/// ordered and disjoint in time), or None. `manual`: compact anything with
/// a dead row and merge any two small neighbours.
pub(crate) fn plan(
    segs: &[SegStats],
    cfg: &CompactionConfig,
    manual: bool,
) -> Option<(Vec<SegmentId>, Reason)> {
    let target_rows = cfg.target_rows as u64;
    let fits = |live: u64, row_bytes: u64| {
        live <= target_rows && live.saturating_mul(row_bytes) <= cfg.target_bytes as u64
    };
    let small = |s: &SegStats| !s.graph_pending && s.live_rows * 2 < target_rows;
    let dirty = |s: &SegStats| {
        if s.graph_pending {
            false
        } else if manual {
            s.dead() > 0
        } else {
            s.dead_share() >= cfg.dead_ratio
        }
    };
    // 1. The dirtiest segment, widened over dirty neighbours while the
    //    output still fits, and over small ones once it has an output
    //    anyway (a segment with no live row goes alone: dropping it costs
    //    nothing, rewriting a neighbour would).
    let seed = (0..segs.len())
        .filter(|&i| dirty(&segs[i]))
        .max_by(|&a, &b| segs[a].dead_share().total_cmp(&segs[b].dead_share()));
    if let Some(i) = seed {
        let (mut lo, mut hi) = (i, i);
        let mut live = segs[i].live_rows;
        let row_bytes = segs.iter().map(|s| s.row_bytes).max().unwrap_or(0);
        loop {
            let takes = |j: usize| dirty(&segs[j]) || (live > 0 && small(&segs[j]));
            let left = lo.checked_sub(1).filter(|&j| takes(j));
            let right = Some(hi + 1).filter(|&j| j < segs.len() && takes(j));
            let next = match (left, right) {
                (Some(l), Some(r)) if segs[l].live_rows <= segs[r].live_rows => Some(l),
                (Some(_), Some(r)) => Some(r),
                (l, r) => l.or(r),
            };
            let Some(j) = next.filter(|&j| fits(live + segs[j].live_rows, row_bytes)) else {
                break;
            };
            live += segs[j].live_rows;
            if j < lo {
                lo = j;
            } else {
                hi = j;
            }
        }
        let ids = segs[lo..=hi].iter().map(|s| s.id).collect();
        return Some((ids, if manual { Reason::Manual } else { Reason::Dead }));
    }
    // 2. The longest run of small neighbours that fits.
    let need = if manual { 2 } else { cfg.merge_small };
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < segs.len() {
        if !small(&segs[i]) {
            i += 1;
            continue;
        }
        let (mut j, mut live) = (i, 0u64);
        while j < segs.len() && small(&segs[j]) && fits(live + segs[j].live_rows, segs[j].row_bytes)
        {
            live += segs[j].live_rows;
            j += 1;
        }
        if j - i >= need && best.is_none_or(|(a, b)| j - i > b - a) {
            best = Some((i, j));
        }
        i = j.max(i + 1);
    }
    best.map(|(a, b)| {
        let ids = segs[a..b].iter().map(|s| s.id).collect();
        (
            ids,
            if manual {
                Reason::Manual
            } else {
                Reason::Small
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pk(i: i64) -> PrimaryKey {
        PrimaryKey::Int(i)
    }

    fn add(d: &mut Directory, seg: u64, ts: u64, rows: &[i64], tombs: &[i64]) {
        let rows: Vec<PrimaryKey> = rows.iter().map(|&i| pk(i)).collect();
        let tombs: Vec<PrimaryKey> = tombs.iter().map(|&i| pk(i)).collect();
        d.add(
            seg,
            ts,
            rows.iter().map(|p| (p, ts)),
            tombs.iter().map(|p| (p, ts)),
            8,
        );
    }

    fn cfg() -> CompactionConfig {
        CompactionConfig {
            target_rows: 100,
            merge_small: 3,
            ..CompactionConfig::default()
        }
    }

    fn stat(id: u64, rows: u64, live: u64) -> SegStats {
        SegStats {
            id,
            max_ts: id,
            rows,
            live_rows: live,
            row_bytes: 8,
            ..SegStats::default()
        }
    }

    #[test]
    fn the_directory_counts_live_rows_and_needed_tombstones() {
        let mut d = Directory::default();
        add(&mut d, 1, 10, &[1, 2, 3, 4], &[]);
        add(&mut d, 2, 20, &[1, 5], &[2, 9]);
        add(&mut d, 3, 30, &[2], &[1]);
        let s = d.stats();
        assert_eq!(s.iter().map(|s| s.id).collect::<Vec<_>>(), vec![1, 2, 3]);
        // Segment 1: 3 and 4 live; 1 and 2 superseded.
        assert_eq!((s[0].live_rows, s[0].dead()), (2, 2));
        // Segment 2: 5 live, 1 superseded by the tombstone in 3; tombstone 2
        // superseded by a later row; tombstone 9 hides nothing.
        assert_eq!((s[1].live_rows, s[1].needed_tombstones), (1, 0));
        assert_eq!(s[1].dead(), 3);
        // Segment 3: row 2 live; the tombstone of 1 hides older rows of 1.
        assert_eq!(
            (s[2].live_rows, s[2].needed_tombstones, s[2].dead()),
            (1, 1, 0)
        );
        // Once the segments with older rows of 1 leave, the tombstone goes too.
        let tomb = Version {
            seg: 3,
            ts: 30,
            tombstone: true,
        };
        assert!(d.keep(&pk(1), tomb, &[]));
        assert!(!d.keep(&pk(1), tomb, &[1, 2, 3]));
        d.remove(&[1, 2]);
        assert!(!d.keep(&pk(1), tomb, &[]));
        assert_eq!(d.stats()[0].dead(), 1);
    }

    #[test]
    fn a_dirty_segment_is_rewritten_with_its_small_neighbours() {
        let segs = [
            stat(1, 90, 90),
            stat(2, 50, 5),
            stat(3, 10, 10),
            stat(4, 60, 60),
        ];
        let (ids, why) = plan(&segs, &cfg(), false).expect("plan");
        assert_eq!(why, Reason::Dead);
        // 2 is dirty; 3 is small and fits; 1 and 4 are neither.
        assert_eq!(ids, vec![2, 3]);
    }

    #[test]
    fn a_dead_segment_goes_alone() {
        // The churn of a feed: each round supersedes the whole previous one.
        let segs = [stat(1, 50, 0), stat(2, 50, 50)];
        assert_eq!(plan(&segs, &cfg(), false), Some((vec![1], Reason::Dead)));
    }

    #[test]
    fn the_output_never_passes_the_target() {
        let segs = [stat(1, 100, 40), stat(2, 100, 40), stat(3, 100, 40)];
        let (ids, _) = plan(&segs, &cfg(), false).expect("plan");
        assert_eq!(ids.len(), 2, "{ids:?}");
    }

    #[test]
    fn small_neighbours_merge_only_in_a_long_enough_run() {
        let mut segs = vec![stat(1, 80, 80), stat(2, 10, 10), stat(3, 10, 10)];
        assert_eq!(plan(&segs, &cfg(), false), None);
        segs.push(stat(4, 10, 10));
        assert_eq!(
            plan(&segs, &cfg(), false),
            Some((vec![2, 3, 4], Reason::Small))
        );
        // A manual compaction merges two.
        segs.truncate(3);
        assert_eq!(
            plan(&segs, &cfg(), true),
            Some((vec![2, 3], Reason::Manual))
        );
    }

    #[test]
    fn a_manual_compaction_takes_any_dead_row_and_nothing_clean() {
        let segs = [stat(1, 80, 79), stat(2, 80, 80)];
        assert_eq!(plan(&segs, &cfg(), false), None);
        assert_eq!(plan(&segs, &cfg(), true), Some((vec![1], Reason::Manual)));
        let clean = [stat(1, 80, 80), stat(2, 80, 80)];
        assert_eq!(plan(&clean, &cfg(), true), None);
    }

    #[test]
    fn a_segment_waiting_for_its_graph_is_never_planned_nor_reached_across() {
        let pending = |mut s: SegStats| {
            s.graph_pending = true;
            s
        };
        // The dirtiest segment waits for its graph: the next dirtiest goes.
        let segs = [stat(1, 50, 10), pending(stat(2, 50, 0)), stat(3, 10, 10)];
        assert_eq!(plan(&segs, &cfg(), false), Some((vec![1], Reason::Dead)));
        assert_eq!(plan(&segs, &cfg(), true), Some((vec![1], Reason::Manual)));
        // Only a waiting segment is dirty: nothing to do yet.
        let segs = [stat(1, 80, 80), pending(stat(2, 50, 0))];
        assert_eq!(plan(&segs, &cfg(), true), None);
        // A run of small neighbours ends at a waiting one.
        let segs = [
            stat(1, 10, 10),
            stat(2, 10, 10),
            pending(stat(3, 10, 10)),
            stat(4, 10, 10),
        ];
        assert_eq!(plan(&segs, &cfg(), false), None);
        assert_eq!(
            plan(&segs, &cfg(), true),
            Some((vec![1, 2], Reason::Manual))
        );
    }
}
