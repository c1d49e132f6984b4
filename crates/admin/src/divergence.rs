//! Divergence between the two collections of a mirrored alias: find the
//! rows that differ, tell them from rows still in flight, and repair them.
//!
//! **Finding.** A *pass* asks, for every shard index, one replica of each
//! collection for its digest (row counts and hash sums per key bucket, see
//! [`quiver_api::ShardDigest`]); mirrored collections have the same shard
//! count and shard keys the same way, so shard `i` of one holds the keys of
//! shard `i` of the other. Only buckets whose digests differ are listed row
//! by row, and only those rows are compared.
//!
//! **In flight or divergent.** A pass is not a snapshot of both sides at
//! one instant: a write the target acknowledged a moment ago may not have
//! reached the other side yet (it is queued, within the standby lag). A row
//! is therefore *divergent* only when it differs the same way (same row
//! hashes on both sides) in two passes at least `settle` apart, where
//! `settle` exceeds the mirror lag. A row written again in between is still
//! moving and is not counted.
//!
//! **Repair.** The alias's target is the truth: it is what clients read and
//! write. A divergent row is copied from the target to the other collection
//! (or deleted there when the target has no such key) as a mirrored write,
//! so it is logged durably on that side and never shipped back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use quiver_api::{
    AliasMeta, CatalogClient, CollectionInfo, DIGEST_BUCKETS, DataClient, DigestRequest,
    QueryClient, ShardDigest, ShardId, ShardQuery, WriteOp,
};
use quiver_common::{Column, Error, PrimaryKey, Result, RowBatch, Timestamp, VectorSlice, Vectors};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Rows a report lists by key at most.
pub const SAMPLE_ROWS: usize = 20;
/// Rows one repair write carries at most.
const REPAIR_BATCH: usize = 500;

/// How the continuous check runs (`[divergence]` in a config file).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DivergenceOptions {
    /// Time between two passes over every mirrored alias.
    pub every_ms: u64,
    /// A difference counts only once it has held this long (and longer than
    /// the mirror lag plus a second).
    pub settle_ms: u64,
    /// Key buckets per shard digest.
    pub buckets: u32,
    /// Copy divergent rows from the target to the other side by itself.
    pub repair: bool,
}

impl Default for DivergenceOptions {
    fn default() -> Self {
        Self {
            every_ms: 5_000,
            settle_ms: 2_000,
            buckets: DIGEST_BUCKETS,
            repair: true,
        }
    }
}

impl DivergenceOptions {
    pub fn validate(&self) -> Result<()> {
        if self.every_ms == 0 {
            return Err(Error::invalid("divergence.every_ms", "must be > 0"));
        }
        if self.buckets == 0 || self.buckets > quiver_api::MAX_DIGEST_BUCKETS {
            return Err(Error::invalid(
                "divergence.buckets",
                format!("must be 1..={}", quiver_api::MAX_DIGEST_BUCKETS),
            ));
        }
        Ok(())
    }
}

/// What the check needs to know of the catalog.
#[async_trait]
pub trait PairCatalog: Send + Sync {
    /// Every alias (name, target).
    fn aliases(&self) -> Vec<String>;
    fn alias(&self, alias: &str) -> Option<AliasMeta>;
    fn collection(&self, name: &str) -> Option<CollectionInfo>;
    /// How far `collection`'s mirror partner is behind it (None: unknown).
    async fn mirror_lag_ms(&self, collection: &str) -> Option<u64>;
}

/// A front door's catalog as a [`PairCatalog`].
pub struct CatalogPairs(pub Arc<dyn CatalogClient>);

#[async_trait]
impl PairCatalog for CatalogPairs {
    fn aliases(&self) -> Vec<String> {
        self.0.aliases().into_iter().map(|(a, _)| a).collect()
    }

    fn alias(&self, alias: &str) -> Option<AliasMeta> {
        self.0.alias(alias)
    }

    fn collection(&self, name: &str) -> Option<CollectionInfo> {
        self.0.collection(name)
    }

    async fn mirror_lag_ms(&self, collection: &str) -> Option<u64> {
        self.0.mirror_lag_ms(collection).await
    }
}

/// Divergent rows per alias as last counted, for a process that runs the
/// check itself (`quiver standalone`).
#[derive(Default)]
pub struct Board(parking_lot::Mutex<HashMap<String, u64>>);

impl Board {
    pub fn publish(&self, alias: &str, rows: Option<u64>) {
        let mut m = self.0.lock();
        match rows {
            Some(n) => {
                m.insert(alias.to_string(), n);
            }
            None => {
                m.remove(alias);
            }
        }
    }

    pub fn get(&self, alias: &str) -> Option<u64> {
        self.0.lock().get(alias).copied()
    }
}

/// How one row differs: its hash on each side (None: no such key there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDiff {
    pub shard: u32,
    pub pk: PrimaryKey,
    pub target: Option<u64>,
    pub other: Option<u64>,
}

impl RowDiff {
    /// `missing` (only on the target), `extra` (only on the other side) or
    /// `different`.
    pub fn kind(&self) -> &'static str {
        match (self.target, self.other) {
            (Some(_), None) => "missing",
            (None, Some(_)) => "extra",
            _ => "different",
        }
    }
}

/// The outcome of one pass.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    pub target_rows: u64,
    pub other_rows: u64,
    pub diffs: Vec<RowDiff>,
}

/// Both collections of a pair, resolved.
#[derive(Debug, Clone)]
pub struct PairSides {
    /// What the alias points at.
    pub target: CollectionInfo,
    pub other: CollectionInfo,
}

impl PairSides {
    /// The pair of a mirrored alias as the catalog knows it now.
    pub fn resolve(catalog: &dyn PairCatalog, alias: &str) -> Result<Self> {
        let meta = catalog
            .alias(alias)
            .ok_or_else(|| Error::invalid("alias", format!("alias {alias:?} does not exist")))?;
        let mirror = meta
            .mirror
            .as_ref()
            .ok_or_else(|| Error::invalid("alias", format!("{alias:?} is not a mirrored alias")))?;
        let get = |name: &str| {
            catalog
                .collection(name)
                .ok_or_else(|| Error::CollectionNotFound(name.to_string()))
        };
        let target = get(&meta.collection)?;
        let other = get(mirror.other(&meta.collection))?;
        if target.shards != other.shards {
            return Err(Error::invalid(
                "alias",
                format!(
                    "{alias:?}: {} has {} shards and {} has {}; a mirrored pair needs the same count",
                    meta.collection,
                    target.shards,
                    mirror.other(&meta.collection),
                    other.shards
                ),
            ));
        }
        Ok(Self { target, other })
    }

    fn shard(&self, target: bool, shard: u32) -> ShardId {
        ShardId {
            collection_id: if target {
                self.target.id
            } else {
                self.other.id
            },
            shard,
        }
    }
}

fn digest_request(shard: ShardId, buckets: u32) -> DigestRequest {
    DigestRequest {
        shard,
        guarantee_ts: 0,
        buckets,
        detail_buckets: Vec::new(),
        pks: Vec::new(),
        pks_only: false,
    }
}

/// Rows of `a` and `b` (sorted by key) whose hashes differ.
fn diff_rows(shard: u32, a: &[(PrimaryKey, u64)], b: &[(PrimaryKey, u64)]) -> Vec<RowDiff> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.0.cmp(&y.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let (pk, target, other) = match order {
            std::cmp::Ordering::Less => {
                i += 1;
                (&a[i - 1].0, Some(a[i - 1].1), None)
            }
            std::cmp::Ordering::Greater => {
                j += 1;
                (&b[j - 1].0, None, Some(b[j - 1].1))
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
                (&a[i - 1].0, Some(a[i - 1].1), Some(b[j - 1].1))
            }
        };
        if target != other {
            out.push(RowDiff {
                shard,
                pk: pk.clone(),
                target,
                other,
            });
        }
    }
    out
}

/// One pass over every shard of the pair (see the module docs).
pub async fn pass(query: &dyn QueryClient, sides: &PairSides, buckets: u32) -> Result<Pass> {
    let mut out = Pass::default();
    for shard in 0..sides.target.shards {
        let (t, o) = tokio::try_join!(
            query.digest(digest_request(sides.shard(true, shard), buckets)),
            query.digest(digest_request(sides.shard(false, shard), buckets)),
        )?;
        out.target_rows += t.rows;
        out.other_rows += o.rows;
        let differing: Vec<u32> = (0..buckets)
            .filter(|b| t.buckets.get(*b as usize) != o.buckets.get(*b as usize))
            .collect();
        if differing.is_empty() {
            continue;
        }
        let detail = |target: bool| {
            let mut req = digest_request(sides.shard(target, shard), buckets);
            req.detail_buckets = differing.clone();
            query.digest(req)
        };
        let (t, o) = tokio::try_join!(detail(true), detail(false))?;
        out.diffs.extend(diff_rows(shard, &t.detail, &o.detail));
    }
    Ok(out)
}

/// The current hashes of the given rows on both sides.
/// `other_ts`: read the other side at least as of this timestamp (e.g.
/// after a repair wrote to it).
pub async fn recheck(
    query: &dyn QueryClient,
    sides: &PairSides,
    rows: &[RowDiff],
    other_ts: Timestamp,
) -> Result<Vec<RowDiff>> {
    let mut by_shard: BTreeMap<u32, Vec<PrimaryKey>> = BTreeMap::new();
    for r in rows {
        by_shard.entry(r.shard).or_default().push(r.pk.clone());
    }
    let mut out = Vec::new();
    for (shard, pks) in by_shard {
        let ask = |target: bool| {
            let mut req = digest_request(sides.shard(target, shard), 1);
            if !target {
                req.guarantee_ts = other_ts;
            }
            req.pks = pks.clone();
            req.pks_only = true;
            query.digest(req)
        };
        let (t, o): (ShardDigest, ShardDigest) = tokio::try_join!(ask(true), ask(false))?;
        out.extend(diff_rows(shard, &t.detail, &o.detail));
    }
    Ok(out)
}

type Seen = (Option<u64>, Option<u64>, Instant);

/// Which differences have held still long enough to count.
#[derive(Default)]
pub struct Tracker {
    /// (shard, key) -> (target hash, other hash, differing so since).
    seen: HashMap<(u32, PrimaryKey), Seen>,
}

impl Tracker {
    /// Feeds the differences of a pass; returns those that differed the same
    /// way in an earlier pass at least `settle` ago.
    pub fn update(&mut self, diffs: &[RowDiff], settle: Duration, now: Instant) -> Vec<RowDiff> {
        let mut next = HashMap::with_capacity(diffs.len());
        let mut stable = Vec::new();
        for d in diffs {
            let key = (d.shard, d.pk.clone());
            let since = match self.seen.get(&key) {
                Some((t, o, since)) if *t == d.target && *o == d.other => *since,
                _ => now,
            };
            if now.duration_since(since) >= settle {
                stable.push(d.clone());
            }
            next.insert(key, (d.target, d.other, since));
        }
        self.seen = next;
        stable
    }
}

/// Copies the target's version of each row to the other side (or deletes
/// the key there); returns the rows written and the timestamp of the last
/// write.
pub async fn repair(
    query: &dyn QueryClient,
    data: &dyn DataClient,
    sides: &PairSides,
    rows: &[RowDiff],
) -> Result<(u64, Timestamp)> {
    let fields: Vec<String> = sides
        .target
        .schema
        .column_fields()
        .map(|f| f.name.clone())
        .collect();
    let dim = sides.target.schema.dim();
    let mut by_shard: BTreeMap<u32, (Vec<PrimaryKey>, Vec<PrimaryKey>)> = BTreeMap::new();
    for r in rows {
        let (copy, delete) = by_shard.entry(r.shard).or_default();
        if r.target.is_some() {
            copy.push(r.pk.clone());
        } else {
            delete.push(r.pk.clone());
        }
    }
    let mut written = 0u64;
    let mut last_ts: Timestamp = 0;
    for (shard, (copy, delete)) in by_shard {
        let dest = sides.shard(false, shard);
        for pks in copy.chunks(REPAIR_BATCH) {
            let found = query
                .query(ShardQuery {
                    shard: sides.shard(true, shard),
                    guarantee_ts: 0,
                    filter: None,
                    pks: Some(pks.to_vec()),
                    limit: pks.len(),
                    output_fields: fields.clone(),
                    with_vectors: true,
                })
                .await?;
            if found.rows.is_empty() {
                continue;
            }
            let mut batch = RowBatch {
                pks: Vec::with_capacity(found.rows.len()),
                vectors: Vectors::f32(dim, Vec::with_capacity(found.rows.len() * dim)),
                columns: fields
                    .iter()
                    .map(|name| Column {
                        name: name.clone(),
                        values: Vec::with_capacity(found.rows.len()),
                    })
                    .collect(),
            };
            for row in found.rows {
                let vector = row.vector.ok_or_else(|| {
                    Error::Internal(format!("row {} came back without its vector", row.pk))
                })?;
                batch.pks.push(row.pk);
                batch.vectors.push_row(VectorSlice::F32(&vector));
                for (col, value) in batch.columns.iter_mut().zip(row.fields) {
                    col.values.push(value);
                }
            }
            written += batch.len() as u64;
            let ts = data
                .write(dest, WriteOp::Mirrored(Box::new(WriteOp::Upsert(batch))))
                .await?;
            last_ts = last_ts.max(ts);
        }
        for pks in delete.chunks(REPAIR_BATCH) {
            let ts = data
                .write(
                    dest,
                    WriteOp::Mirrored(Box::new(WriteOp::Delete(pks.to_vec()))),
                )
                .await?;
            last_ts = last_ts.max(ts);
            written += pks.len() as u64;
        }
    }
    Ok((written, last_ts))
}

/// What an on-demand verify found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub target: String,
    pub other: String,
    pub target_rows: u64,
    pub other_rows: u64,
    /// Rows that differed in both passes, before any repair.
    pub divergent_rows: u64,
    /// Rows rewritten on the other side.
    pub repaired_rows: u64,
    /// Divergent rows still differing after the repair (= `divergent_rows`
    /// without `--repair`).
    pub remaining_rows: u64,
    /// Up to [`SAMPLE_ROWS`] of the divergent rows.
    pub samples: Vec<RowDiff>,
    pub settle: Duration,
}

/// Compares the pair now: a pass, a second look at the differing rows
/// after `settle`, and with `repair` a copy of the rows that still differ
/// and a last look at them.
pub async fn verify(
    query: &dyn QueryClient,
    data: &dyn DataClient,
    catalog: &dyn PairCatalog,
    alias: &str,
    settle: Duration,
    repair_rows: bool,
) -> Result<VerifyReport> {
    let sides = PairSides::resolve(catalog, alias)?;
    let first = pass(query, &sides, DIGEST_BUCKETS).await?;
    let mut report = VerifyReport {
        target: sides.target.schema.name.clone(),
        other: sides.other.schema.name.clone(),
        target_rows: first.target_rows,
        other_rows: first.other_rows,
        settle,
        ..VerifyReport::default()
    };
    if first.diffs.is_empty() {
        return Ok(report);
    }
    tokio::time::sleep(settle).await;
    let again = recheck(query, &sides, &first.diffs, 0).await?;
    // Differing the same way both times.
    let stable: Vec<RowDiff> = again
        .into_iter()
        .filter(|r| first.diffs.contains(r))
        .collect();
    report.divergent_rows = stable.len() as u64;
    report.remaining_rows = report.divergent_rows;
    report.samples = stable.iter().take(SAMPLE_ROWS).cloned().collect();
    if repair_rows && !stable.is_empty() {
        let (written, ts) = repair(query, data, &sides, &stable).await?;
        report.repaired_rows = written;
        report.remaining_rows = recheck(query, &sides, &stable, ts).await?.len() as u64;
    }
    Ok(report)
}

/// Where the continuous check reports each alias's divergent rows (None:
/// unknown, e.g. a side is unavailable).
pub type Publish = Arc<dyn Fn(&str, Option<u64>) + Send + Sync>;

/// The continuous check (see the module docs): every `every_ms`, a pass
/// over each mirrored alias while `active()` holds (on coord: while this
/// coord leads), publishing the count of divergent rows and, with
/// `repair`, copying them from the target.
pub fn spawn_watch(
    catalog: Arc<dyn PairCatalog>,
    query: Arc<dyn QueryClient>,
    data: Arc<dyn DataClient>,
    opts: DivergenceOptions,
    active: Arc<dyn Fn() -> bool + Send + Sync>,
    publish: Publish,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut trackers: HashMap<String, (String, Tracker)> = HashMap::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(opts.every_ms)) => {}
            }
            if !active() {
                trackers.clear();
                continue;
            }
            let mirrored: Vec<String> = catalog
                .aliases()
                .into_iter()
                .filter(|a| catalog.alias(a).is_some_and(|m| m.mirror.is_some()))
                .collect();
            trackers.retain(|a, _| mirrored.contains(a));
            for alias in mirrored {
                let count = watch_one(
                    catalog.as_ref(),
                    query.as_ref(),
                    data.as_ref(),
                    &opts,
                    &alias,
                    &mut trackers,
                )
                .await;
                if let Err(e) = &count {
                    tracing::debug!(alias, error = %e, "divergence unknown");
                }
                publish(&alias, count.ok());
            }
        }
    })
}

async fn watch_one(
    catalog: &dyn PairCatalog,
    query: &dyn QueryClient,
    data: &dyn DataClient,
    opts: &DivergenceOptions,
    alias: &str,
    trackers: &mut HashMap<String, (String, Tracker)>,
) -> Result<u64> {
    let sides = PairSides::resolve(catalog, alias)?;
    let lag = catalog
        .mirror_lag_ms(&sides.target.schema.name)
        .await
        .ok_or_else(|| Error::Unavailable("the mirror lag is unknown".into()))?;
    let settle = Duration::from_millis(opts.settle_ms.max(lag + 1_000));
    let found = pass(query, &sides, opts.buckets).await?;
    // A flip changes which side is the truth: start over.
    let entry = trackers
        .entry(alias.to_string())
        .or_insert_with(|| (sides.target.schema.name.clone(), Tracker::default()));
    if entry.0 != sides.target.schema.name {
        *entry = (sides.target.schema.name.clone(), Tracker::default());
    }
    let stable = entry.1.update(&found.diffs, settle, Instant::now());
    if stable.is_empty() || !opts.repair {
        return Ok(stable.len() as u64);
    }
    let (written, _) = repair(query, data, &sides, &stable).await?;
    tracing::warn!(
        alias,
        target = sides.target.schema.name,
        other = sides.other.schema.name,
        rows = stable.len(),
        written,
        "divergent rows repaired from the alias's target"
    );
    // Reported until a pass shows them gone.
    Ok(stable.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(pk: i64, t: Option<u64>, o: Option<u64>) -> RowDiff {
        RowDiff {
            shard: 0,
            pk: PrimaryKey::Int(pk),
            target: t,
            other: o,
        }
    }

    #[test]
    fn rows_are_diffed_by_key() {
        let a = [
            (PrimaryKey::Int(1), 10),
            (PrimaryKey::Int(2), 20),
            (PrimaryKey::Int(4), 40),
        ];
        let b = [
            (PrimaryKey::Int(2), 21),
            (PrimaryKey::Int(3), 30),
            (PrimaryKey::Int(4), 40),
        ];
        let diffs = diff_rows(0, &a, &b);
        assert_eq!(
            diffs,
            vec![
                d(1, Some(10), None),
                d(2, Some(20), Some(21)),
                d(3, None, Some(30))
            ]
        );
        assert_eq!(
            diffs.iter().map(RowDiff::kind).collect::<Vec<_>>(),
            ["missing", "different", "extra"]
        );
        assert!(diff_rows(0, &a, &a).is_empty());
    }

    #[test]
    fn only_differences_that_hold_still_count() {
        let mut t = Tracker::default();
        let t0 = Instant::now();
        let settle = Duration::from_secs(2);
        assert!(
            t.update(&[d(1, Some(1), None), d(2, Some(2), None)], settle, t0)
                .is_empty()
        );
        let t1 = t0 + Duration::from_secs(1);
        assert!(
            t.update(&[d(1, Some(1), None)], settle, t1).is_empty(),
            "too soon"
        );
        // Row 2 caught up in between; row 1 is still missing.
        let t2 = t0 + Duration::from_secs(3);
        assert_eq!(
            t.update(&[d(1, Some(1), None)], settle, t2),
            vec![d(1, Some(1), None)]
        );
        // Row 1 changed (written again): its clock restarts.
        assert!(t.update(&[d(1, Some(5), None)], settle, t2).is_empty());
        assert_eq!(
            t.update(&[d(1, Some(5), None)], settle, t2 + settle),
            vec![d(1, Some(5), None)]
        );
    }
}
