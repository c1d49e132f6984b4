//! How partitions reach rows: every row of a collection with partitions
//! carries its partition's id in the hidden column [`PARTITION_COLUMN`]
//! (filled here on insert and upsert: the named partition, `_default`, or
//! the partition its partition-key value hashes to), and reads that name
//! partitions — or skip released or dropped ones — run their filter
//! restricted to those ids. A collection created before partitions has no
//! such column and the one partition `_default`.

use quiver_api::{CollectionInfo, PartitionInfo};
use quiver_common::{Column, Error, Result, RowBatch, ScalarValue};

use super::MilvusFront;
use super::schema::{PARTITION_COLUMN, WRITTEN_COLUMN};

/// The partition of collections without a partition key.
pub(crate) const DEFAULT_PARTITION: &str = "_default";

/// A collection's partitions as reads and writes need them.
pub(crate) struct Partitions {
    pub list: Vec<PartitionInfo>,
    /// A partition was dropped: its rows may still be stored.
    pub dropped: bool,
    /// The partition key field, if any.
    pub key: Option<String>,
}

impl Partitions {
    pub fn find(&self, name: &str) -> Option<&PartitionInfo> {
        self.list.iter().find(|p| p.name == name)
    }
}

/// The partition a partition-key value belongs to (FNV-1a over its bytes:
/// stable across processes and releases).
pub(crate) fn key_partition(value: &ScalarValue, partitions: usize) -> usize {
    let bytes: Vec<u8> = match value {
        ScalarValue::Int(i) => i.to_le_bytes().to_vec(),
        ScalarValue::Str(s) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % partitions.max(1) as u64) as usize
}

/// Milvus's PartitionNotFound (merr 200), naming the request field.
pub(crate) fn not_found(field: &str, collection: &str, name: &str) -> Error {
    Error::PartitionNotFound(format!(
        "partition not found[partition={name}]: invalid {field}: collection {collection:?} has no partition {name:?}"
    ))
}

fn restrict(expr: &str, ids: &[u64]) -> String {
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    let clause = format!("{PARTITION_COLUMN} in [{}]", ids.join(", "));
    if expr.trim().is_empty() {
        clause
    } else {
        format!("({expr}) and {clause}")
    }
}

impl MilvusFront {
    /// None: the collection has only the implicit `_default`.
    pub(crate) fn partitions_of(&self, info: &CollectionInfo) -> Option<Partitions> {
        // Rows of a collection without the column cannot name a partition.
        info.schema.field(PARTITION_COLUMN)?;
        let (list, dropped) = self.catalog.partitions(&info.schema.name)?;
        let key = info
            .schema
            .fields
            .iter()
            .find(|f| f.is_partition_key)
            .map(|f| f.name.clone());
        Some(Partitions { list, dropped, key })
    }

    /// The filter a read of `names` (`field` in the request) runs: `expr`
    /// restricted to the named partitions, or to the loaded ones when none
    /// is named and some are released or were dropped.
    pub(crate) fn read_expr(
        &self,
        info: &CollectionInfo,
        expr: &str,
        names: &[String],
        field: &str,
    ) -> Result<String> {
        let expr = self.partition_expr(info, expr, names, field)?;
        Ok(match info.schema.ttl_ms() {
            Some(ttl) if info.schema.field(WRITTEN_COLUMN).is_some() => {
                let now = quiver_common::ts_physical_ms(quiver_common::wall_ts());
                let clause = format!("{WRITTEN_COLUMN} >= {}", now.saturating_sub(ttl));
                if expr.trim().is_empty() {
                    clause
                } else {
                    format!("({expr}) and {clause}")
                }
            }
            _ => expr,
        })
    }

    fn partition_expr(
        &self,
        info: &CollectionInfo,
        expr: &str,
        names: &[String],
        field: &str,
    ) -> Result<String> {
        let name = &info.schema.name;
        let named: Vec<&String> = names.iter().filter(|n| !n.is_empty()).collect();
        let Some(parts) = self.partitions_of(info) else {
            return match named.iter().find(|n| n.as_str() != DEFAULT_PARTITION) {
                Some(p) => Err(not_found(field, name, p)),
                None => Ok(expr.to_string()),
            };
        };
        if named.is_empty() {
            if !parts.dropped && parts.list.iter().all(|p| !p.released) {
                return Ok(expr.to_string());
            }
            let ids: Vec<u64> = parts
                .list
                .iter()
                .filter(|p| !p.released)
                .map(|p| p.id)
                .collect();
            return Ok(restrict(expr, &ids));
        }
        if parts.key.is_some() {
            return Err(Error::invalid(
                field,
                "not support manually specifying the partition names if partition key mode is used",
            ));
        }
        let mut ids = Vec::with_capacity(named.len());
        for n in named {
            let p = parts.find(n).ok_or_else(|| not_found(field, name, n))?;
            if p.released {
                return Err(Error::NotLoaded(format!(
                    "partition not loaded: partition {n:?} of collection {name:?} was released; load it (load_partitions) first"
                )));
            }
            ids.push(p.id);
        }
        Ok(restrict(expr, &ids))
    }

    /// A delete's filter: `expr`, restricted to partition `name` if named.
    pub(crate) fn delete_expr(
        &self,
        info: &CollectionInfo,
        expr: &str,
        name: &str,
    ) -> Result<String> {
        if name.is_empty() {
            return Ok(expr.to_string());
        }
        let Some(parts) = self.partitions_of(info) else {
            return match name {
                DEFAULT_PARTITION => Ok(expr.to_string()),
                other => Err(not_found("partition_name", &info.schema.name, other)),
            };
        };
        let p = parts
            .find(name)
            .ok_or_else(|| not_found("partition_name", &info.schema.name, name))?;
        Ok(restrict(expr, &[p.id]))
    }

    /// Fills the partition column of rows written to partition `name`
    /// (empty: `_default`, or by partition key).
    pub(crate) fn place_rows(
        &self,
        info: &CollectionInfo,
        rows: &mut RowBatch,
        name: &str,
    ) -> Result<()> {
        let collection = &info.schema.name;
        // Keys may be generated later (auto_id): count the vectors.
        let n = rows.rows();
        if info.schema.field(WRITTEN_COLUMN).is_some() {
            let now =
                ScalarValue::Int(quiver_common::ts_physical_ms(quiver_common::wall_ts()) as i64);
            rows.columns.retain(|c| c.name != WRITTEN_COLUMN);
            rows.columns.push(Column {
                name: WRITTEN_COLUMN.to_string(),
                values: vec![now; n],
            });
        }
        let Some(parts) = self.partitions_of(info) else {
            return match name {
                "" | DEFAULT_PARTITION => Ok(()),
                other => Err(not_found("partition_name", collection, other)),
            };
        };
        let values = match &parts.key {
            Some(_) if !name.is_empty() => {
                return Err(Error::invalid(
                    "partition_name",
                    "not support manually specifying the partition names if partition key mode is used",
                ));
            }
            Some(key) => {
                let column = rows.columns.iter().find(|c| &c.name == key);
                let column = column.ok_or_else(|| {
                    Error::invalid(key, "missing: the partition key field is required")
                })?;
                column
                    .values
                    .iter()
                    .map(|v| {
                        let i = key_partition(v, parts.list.len());
                        ScalarValue::Int(parts.list[i].id as i64)
                    })
                    .collect()
            }
            None => {
                let name = if name.is_empty() {
                    DEFAULT_PARTITION
                } else {
                    name
                };
                let p = parts
                    .find(name)
                    .ok_or_else(|| not_found("partition_name", collection, name))?;
                vec![ScalarValue::Int(p.id as i64); n]
            }
        };
        rows.columns.retain(|c| c.name != PARTITION_COLUMN);
        rows.columns.push(Column {
            name: PARTITION_COLUMN.to_string(),
            values,
        });
        Ok(())
    }
}
