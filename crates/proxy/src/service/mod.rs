//! The front door's operations, protocol-independent: the Milvus gRPC service
//! and the CLI are thin layers over these.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use quiver_api::{
    CatalogClient, CollectionInfo, CreateCollection, DataClient, QueryClient, RowPredicate,
    ShardId, WriteOp,
};
use quiver_common::{DataType, Error, PrimaryKey, Result, RowBatch, Timestamp};
use quiver_expr::TemplateValue;

use crate::routing::shard_of;

mod read;
pub use read::{SearchRequest, Served, bounded_ts};

/// Bounds on requests (a proxy's `[limits]` table; every key optional).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_batch_rows: usize,
    pub max_topk: usize,
    pub max_nq: usize,
    pub default_ef: usize,
    /// Write data (vector and key bytes) in flight at once through this
    /// front door; more is refused with `Overloaded` (Milvus rate limit).
    pub max_inflight_write_bytes: usize,
    /// Search results (queries x (limit + offset), summed) in flight at once.
    pub max_inflight_search_hits: usize,
    /// Resident memory of the process at which writes are refused with
    /// `Overloaded` until it falls again (0: no limit).
    pub max_memory_bytes: u64,
    /// A Bounded read a shard has not answered within this many ms is also
    /// asked for what the replica has applied; the first answer wins
    /// (`stale.rs`; 0: Bounded reads wait for their bound).
    pub stale_read_after_ms: u64,
    /// A Bounded or Eventually search through a mirrored alias that its
    /// target has not answered within this many ms also goes to the other
    /// collection of the pair, if it is within the alias's allowed lag
    /// (0: never).
    pub mirror_hedge_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch_rows: 100_000,
            max_topk: 16_384,
            max_nq: 16_384,
            default_ef: 64,
            max_inflight_write_bytes: 256 << 20,
            max_inflight_search_hits: 64 << 20,
            max_memory_bytes: 0,
            stale_read_after_ms: 50,
            mirror_hedge_ms: 50,
        }
    }
}

/// Milvus's consistency levels, as the timestamp a read must have applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Consistency {
    /// Everything acknowledged before the read started.
    Strong,
    /// Everything up to the client's last write timestamp (read-your-writes).
    Session(Timestamp),
    /// Everything older than the staleness bound.
    Bounded(Duration),
    /// Whatever has been applied.
    Eventually,
}

/// The outcome of an insert, upsert or delete.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteResult {
    /// The write's timestamp: pass it as `Consistency::Session` to read it.
    pub ts: Timestamp,
    pub pks: Vec<PrimaryKey>,
}

pub struct Proxy {
    catalog: Arc<dyn CatalogClient>,
    data: Arc<dyn DataClient>,
    query: Arc<dyn QueryClient>,
    limits: Limits,
    admission: crate::admission::Admission,
    /// Ids reserved from coord for auto_id keys and not handed out yet.
    ids: tokio::sync::Mutex<std::ops::Range<u64>>,
}

/// Auto ids are reserved from coord in blocks of at least this many.
const ID_BLOCK: u64 = 100_000;

impl Proxy {
    pub fn new(
        catalog: Arc<dyn CatalogClient>,
        data: Arc<dyn DataClient>,
        query: Arc<dyn QueryClient>,
        limits: Limits,
    ) -> Self {
        Self {
            catalog,
            data,
            query,
            admission: crate::admission::Admission::new(
                limits.max_inflight_write_bytes,
                limits.max_inflight_search_hits,
                limits.max_memory_bytes,
            ),
            limits,
            ids: tokio::sync::Mutex::new(0..0),
        }
    }

    /// `n` fresh ids for auto_id keys (one coord round trip per block).
    async fn take_ids(&self, n: u64) -> Result<u64> {
        let mut ids = self.ids.lock().await;
        if ids.end - ids.start < n {
            let size = n.max(ID_BLOCK);
            let first = self.catalog.allocate_ids(size).await?;
            *ids = first..first + size;
        }
        let first = ids.start;
        ids.start += n;
        Ok(first)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub async fn create_collection(&self, req: CreateCollection) -> Result<CollectionInfo> {
        req.schema.validate()?;
        if !(1..=64).contains(&req.shards) {
            return Err(Error::invalid(
                "shards_num",
                format!("must be between 1 and 64 (got {})", req.shards),
            ));
        }
        self.catalog.create_collection(req).await
    }

    pub async fn drop_collection(&self, name: &str) -> Result<()> {
        self.catalog.drop_collection(name).await
    }

    /// The collection `name` names (directly or through an alias).
    pub fn describe(&self, name: &str) -> Result<CollectionInfo> {
        self.catalog
            .collection(name)
            .ok_or_else(|| Error::CollectionNotFound(name.to_string()))
    }

    /// Refuses reads of a released collection (they would wait for a
    /// querynode that no longer serves it).
    fn check_loaded(&self, info: &CollectionInfo) -> Result<()> {
        if self.catalog.is_loaded(&info.schema.name) {
            return Ok(());
        }
        Err(crate::not_loaded(&info.schema.name))
    }

    pub fn list(&self) -> Vec<CollectionInfo> {
        self.catalog.collections()
    }

    /// Inserts rows (an existing key is replaced). Keys of an auto_id
    /// collection are generated and must not be given: unique int64 ids, as
    /// decimal strings for a VarChar key (as Milvus does).
    pub async fn insert(&self, collection: &str, mut rows: RowBatch) -> Result<WriteResult> {
        let info = self.describe(collection)?;
        if info.schema.primary_field().auto_id {
            if !rows.pks.is_empty() {
                return Err(Error::invalid(
                    &info.schema.primary_field().name,
                    "the collection generates its keys (auto_id); do not pass them",
                ));
            }
            let n = rows.rows();
            if n == 0 || n > self.limits.max_batch_rows {
                return Err(Error::invalid(
                    "num_rows",
                    format!(
                        "a batch holds 1 to {} rows (got {n})",
                        self.limits.max_batch_rows
                    ),
                ));
            }
            let first = self.take_ids(n as u64).await?;
            let varchar = info.schema.primary_field().data_type == DataType::VarChar;
            rows.pks = (0..n as u64)
                .map(|i| {
                    let id = (first + i) as i64;
                    if varchar {
                        PrimaryKey::Str(id.to_string())
                    } else {
                        PrimaryKey::Int(id)
                    }
                })
                .collect();
        }
        self.upsert_validated(&info, rows).await
    }

    /// Inserts or replaces rows by key.
    pub async fn upsert(&self, collection: &str, rows: RowBatch) -> Result<WriteResult> {
        let info = self.describe(collection)?;
        self.upsert_validated(&info, rows).await
    }

    async fn upsert_validated(
        &self,
        info: &CollectionInfo,
        mut rows: RowBatch,
    ) -> Result<WriteResult> {
        info.schema.compute_functions(&mut rows)?;
        rows.validate(&info.schema, self.limits.max_batch_rows)?;
        let _admitted = self
            .admission
            .write(rows.vectors.byte_size() + rows.pks.len() * 16)?;
        let pks = rows.pks.clone();
        let parts = split_by_shard(rows, info.shards);
        let writes = parts.into_iter().map(|(shard, part)| {
            self.data.write(
                ShardId {
                    collection_id: info.id,
                    shard,
                },
                WriteOp::Upsert(part),
            )
        });
        let ts = try_join_all(writes).await?.into_iter().max().unwrap_or(0);
        Ok(WriteResult { ts, pks })
    }

    /// Deletes rows by key (keys that do not exist are ignored).
    pub async fn delete(&self, collection: &str, pks: Vec<PrimaryKey>) -> Result<WriteResult> {
        let info = self.describe(collection)?;
        if pks.len() > self.limits.max_batch_rows {
            return Err(Error::invalid(
                "pks",
                format!("at most {} keys per delete", self.limits.max_batch_rows),
            ));
        }
        if pks.is_empty() {
            return Ok(WriteResult { ts: 0, pks });
        }
        let mut by_shard: Vec<Vec<PrimaryKey>> = vec![Vec::new(); info.shards as usize];
        for pk in &pks {
            by_shard[shard_of(pk, info.shards) as usize].push(pk.clone());
        }
        let writes = by_shard
            .into_iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty())
            .map(|(shard, part)| {
                self.data.write(
                    ShardId {
                        collection_id: info.id,
                        shard: shard as u32,
                    },
                    WriteOp::Delete(part),
                )
            });
        let ts = try_join_all(writes).await?.into_iter().max().unwrap_or(0);
        Ok(WriteResult { ts, pks })
    }

    /// Compiles a Milvus filter expression against the collection's schema.
    pub fn compile_filter(
        &self,
        collection: &str,
        expr: &str,
        templates: &HashMap<String, TemplateValue>,
    ) -> Result<Arc<quiver_expr::CompiledFilter>> {
        let info = self.describe(collection)?;
        let parsed = quiver_expr::parse(expr)?;
        Ok(Arc::new(quiver_expr::compile(
            &parsed,
            &info.schema,
            templates,
        )?))
    }

    /// Deletes the rows an expression selects (Milvus's delete by `expr`):
    /// the keys it names when it is of the `pk in [..]` shape, else the keys
    /// of the rows matching it now.
    pub async fn delete_where(
        &self,
        collection: &str,
        expr: &str,
        templates: &HashMap<String, TemplateValue>,
    ) -> Result<WriteResult> {
        let filter = self.compile_filter(collection, expr, templates)?;
        let keys = filter.primary_keys();
        self.delete_matching(collection, keys, filter).await
    }

    /// Deletes `keys` when the filter is of the `pk in [..]` shape (the caller
    /// passes them), else the rows that match `filter` now (read Strong).
    pub async fn delete_matching(
        &self,
        collection: &str,
        keys: Option<Vec<PrimaryKey>>,
        filter: Arc<dyn RowPredicate>,
    ) -> Result<WriteResult> {
        let pks = match keys {
            Some(pks) => pks,
            None => self
                .query(
                    collection,
                    None,
                    Some(filter),
                    usize::MAX,
                    vec![],
                    false,
                    Consistency::Strong,
                )
                .await?
                .into_iter()
                .map(|h| h.pk)
                .collect(),
        };
        self.delete(collection, pks).await
    }

    /// Seals the growing data of every shard of the collection; on return
    /// this front door's metadata cache holds the sealed segments (so
    /// statistics read from it count them).
    pub async fn flush(&self, collection: &str) -> Result<()> {
        let info = self.describe(collection)?;
        try_join_all(shards(&info).map(|s| self.data.flush(s))).await?;
        self.catalog.catch_up().await;
        Ok(())
    }
}

fn shards(info: &CollectionInfo) -> impl Iterator<Item = ShardId> + '_ {
    (0..info.shards).map(|shard| ShardId {
        collection_id: info.id,
        shard,
    })
}

/// Splits a validated batch into one batch per shard (order kept within each).
fn split_by_shard(rows: RowBatch, shards: u32) -> Vec<(u32, RowBatch)> {
    if shards <= 1 {
        return vec![(0, rows)];
    }
    let mut parts: Vec<RowBatch> = (0..shards)
        .map(|_| RowBatch {
            pks: Vec::new(),
            vectors: rows.vectors.empty_like(),
            columns: rows
                .columns
                .iter()
                .map(|c| quiver_common::Column {
                    name: c.name.clone(),
                    values: Vec::new(),
                })
                .collect(),
        })
        .collect();
    for (i, pk) in rows.pks.iter().enumerate() {
        let p = &mut parts[shard_of(pk, shards) as usize];
        p.pks.push(pk.clone());
        p.vectors.push_row(rows.vector(i));
        for (out, col) in p.columns.iter_mut().zip(&rows.columns) {
            out.values.push(col.values[i].clone());
        }
    }
    parts
        .into_iter()
        .enumerate()
        .filter(|(_, p)| !p.is_empty())
        .map(|(s, p)| (s as u32, p))
        .collect()
}
