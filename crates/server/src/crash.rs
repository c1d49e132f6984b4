//! The crash test's writer process and the model that checks what survives.
//!
//! The writer runs a standalone engine and `tasks` concurrent writers, each
//! owning the keys `k` with `k % tasks == task`, so each key has at most one
//! write in flight. Before submitting, it prints `BEGIN task op kind pks`; after
//! the acknowledgement, `ACK task op`. A test kills it with SIGKILL at a random
//! point, reopens the data directory and checks with [`Model`] that every
//! acknowledged write is there with identical vector bytes, that each
//! unacknowledged write is either wholly applied or wholly absent, and that
//! nothing else is.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use quiver_api::{CreateCollection, IndexKind};
use quiver_common::{CollectionSchema, Metric, PrimaryKey, RowBatch};
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use quiver_roles::{Standalone, StandaloneConfig};

pub const COLLECTION: &str = "crash";
pub const DIM: usize = 8;

#[derive(Debug, Args)]
pub struct WriterArgs {
    #[arg(long)]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Concurrent writers (keys are split between them).
    #[arg(long, default_value_t = 4)]
    pub tasks: u64,
    /// Keys are drawn from 0..key_space, so upserts replace rows.
    #[arg(long, default_value_t = 3000)]
    pub key_space: u64,
    /// First op id (make it unique across runs on one data directory).
    #[arg(long, default_value_t = 1)]
    pub first_op: u64,
}

/// The vector written for `pk` by op `op`: a pure function, so a checker can
/// compare bytes without having seen the write.
pub fn vector_of(pk: i64, op: u64) -> Vec<f32> {
    (0..DIM as u64)
        .map(|i| {
            let x = (pk as u64)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(op.wrapping_mul(0xbf58_476d_1ce4_e5b9))
                .wrapping_add(i.wrapping_mul(0x94d0_49bb_1331_11eb));
            ((x >> 40) as f32) / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

pub fn crash_config(data_dir: &std::path::Path) -> StandaloneConfig {
    let mut c = StandaloneConfig::new(data_dir);
    // Small segments so that kills also land during seals and index builds.
    c.datanode.seal_rows = 1500;
    c.datanode.min_index_rows = 500;
    c.datanode.index_threads = 1;
    // Compaction and garbage collection all the time, so that kills land
    // in them too (a run, a swap, a deletion).
    c.datanode.compaction.interval_ms = 100;
    c.datanode.compaction.dead_ratio = 0.1;
    c.datanode.compaction.merge_small = 2;
    c.datanode.compaction.gc_grace_ms = Some(0);
    c.querynode.search_threads = 1;
    c
}

pub async fn ensure_collection(server: &Standalone) -> Result<()> {
    if server.proxy.describe(COLLECTION).is_ok() {
        return Ok(());
    }
    server
        .proxy
        .create_collection(CreateCollection {
            schema: CollectionSchema::simple(COLLECTION, DIM as u32),
            // One shard: a write is atomic within a shard (one WAL record);
            // see ARCHITECTURE.md on writes that span shards.
            shards: 1,
            metric: Metric::L2,
            index: IndexKind::Hnsw {
                m: 8,
                ef_construction: 40,
            },
            partitions: None,
        })
        .await?;
    Ok(())
}

pub async fn run_writer(args: WriterArgs) -> Result<()> {
    let server = Standalone::open(crash_config(&args.data_dir), CancellationToken::new()).await?;
    ensure_collection(&server).await?;
    println!("READY");
    let server = Arc::new(server);
    let next_op = Arc::new(std::sync::atomic::AtomicU64::new(args.first_op));
    let mut handles = Vec::new();
    for task in 0..args.tasks {
        let server = server.clone();
        let next_op = next_op.clone();
        let (tasks, key_space) = (args.tasks, args.key_space);
        let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed * 1000 + task);
        handles.push(tokio::spawn(async move {
            loop {
                let op = next_op.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let n = rng.random_range(1..=200usize);
                let mut pks: Vec<i64> = (0..n)
                    .map(|_| (rng.random_range(0..key_space / tasks) * tasks + task) as i64)
                    .collect();
                pks.sort_unstable();
                pks.dedup();
                let list = pks
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                let keys: Vec<PrimaryKey> = pks.iter().map(|p| PrimaryKey::Int(*p)).collect();
                let result = if rng.random_bool(0.2) {
                    emit(&format!("BEGIN {task} {op} delete {list}"));
                    server.proxy.delete(COLLECTION, keys).await
                } else {
                    emit(&format!("BEGIN {task} {op} upsert {list}"));
                    let rows = RowBatch {
                        vectors: quiver_common::Vectors::f32(
                            DIM,
                            pks.iter().flat_map(|p| vector_of(*p, op)).collect(),
                        ),
                        pks: keys,
                        columns: vec![],
                    };
                    server.proxy.upsert(COLLECTION, rows).await
                };
                match result {
                    Ok(_) => emit(&format!("ACK {task} {op}")),
                    Err(e) => {
                        emit(&format!("FAIL {task} {op} {e}"));
                        return;
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await?;
    }
    Ok(())
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// One write as the writer announced it.
#[derive(Debug, Clone)]
struct Op {
    upsert: bool,
    op: u64,
    pks: Vec<i64>,
}

/// What the database must hold: per key, the op whose vector it has (or
/// absent), plus at most one unacknowledged op per writer task.
#[derive(Debug, Default)]
pub struct Model {
    rows: HashMap<i64, u64>,
    pending: BTreeMap<u64, Op>,
    pub acked: u64,
    pub max_op: u64,
}

impl Model {
    /// Feeds one line of writer output.
    pub fn feed(&mut self, line: &str) -> Result<()> {
        let mut parts = line.split_whitespace();
        match parts.next() {
            Some("BEGIN") => {
                let task: u64 = parts.next().context("task")?.parse()?;
                let op: u64 = parts.next().context("op")?.parse()?;
                let upsert = parts.next() == Some("upsert");
                let pks = parts
                    .next()
                    .context("pks")?
                    .split(',')
                    .map(|p| p.parse::<i64>())
                    .collect::<Result<Vec<_>, _>>()?;
                self.max_op = self.max_op.max(op);
                if self.pending.insert(task, Op { upsert, op, pks }).is_some() {
                    bail!("task {task} began op {op} with another in flight");
                }
            }
            Some("ACK") => {
                let task: u64 = parts.next().context("task")?.parse()?;
                let op = self.pending.remove(&task).context("ACK without BEGIN")?;
                self.apply(&op);
                self.acked += 1;
            }
            _ => {}
        }
        Ok(())
    }

    fn apply(&mut self, op: &Op) {
        for pk in &op.pks {
            if op.upsert {
                self.rows.insert(*pk, op.op);
            } else {
                self.rows.remove(pk);
            }
        }
    }

    /// Checks the recovered rows (`pk -> vector`) and resolves the
    /// unacknowledged ops: each must be wholly applied or wholly absent.
    pub fn check_and_resolve(&mut self, actual: &HashMap<i64, Vec<f32>>) -> Result<()> {
        let pending: Vec<Op> = std::mem::take(&mut self.pending).into_values().collect();
        let got = |pk: &i64| actual.get(pk).cloned();
        let mut applied = Vec::new();
        for op in &pending {
            let after = |pk: &i64| op.upsert.then(|| vector_of(*pk, op.op));
            let before = |pk: &i64| self.rows.get(pk).map(|o| vector_of(*pk, *o));
            let is_applied = op.pks.iter().all(|pk| got(pk) == after(pk));
            let is_absent = op.pks.iter().all(|pk| got(pk) == before(pk));
            match (is_applied, is_absent) {
                (false, false) => bail!("unacknowledged op {} is half-applied", op.op),
                (true, false) => applied.push(op.clone()),
                _ => {}
            }
        }
        for op in &applied {
            self.apply(op);
        }
        for (pk, op) in &self.rows {
            match actual.get(pk) {
                None => bail!("acknowledged row {pk} (op {op}) is missing"),
                Some(v) if v != &vector_of(*pk, *op) => {
                    bail!("row {pk} has the wrong vector bytes (expected op {op})")
                }
                Some(_) => {}
            }
        }
        for pk in actual.keys() {
            if !self.rows.contains_key(pk) {
                bail!("row {pk} is present but was deleted or never written");
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Every live row of an Int64-keyed collection as `pk -> vector`, read with
/// Strong consistency. A key returned twice is an error.
pub async fn rows_by_key(
    proxy: &quiver_proxy::Proxy,
    collection: &str,
) -> Result<HashMap<i64, Vec<f32>>> {
    let rows = proxy
        .query(
            collection,
            None,
            None,
            usize::MAX,
            vec![],
            true,
            quiver_proxy::Consistency::Strong,
        )
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let PrimaryKey::Int(pk) = r.pk else {
            bail!("{collection} has a non-integer key {}", r.pk)
        };
        let vector = r.vector.context("query returned no vector")?;
        if out.insert(pk, vector).is_some() {
            bail!("key {pk} returned twice");
        }
    }
    Ok(out)
}
