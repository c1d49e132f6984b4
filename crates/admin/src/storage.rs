//! Shard storage (segments, live and dead rows, bytes, compaction backlog and
//! last run) as the status page, `/metrics` and the admin API show it.

use quiver_api::{CollectionInfo, ShardStorage};
use quiver_proto::admin as pb;
use serde_json::{Value, json};

/// A shard's storage as the admin API sends it.
pub fn to_pb(s: &ShardStorage) -> pb::ShardStorage {
    pb::ShardStorage {
        shard: s.shard,
        segments: s.segments,
        rows: s.rows,
        live_rows: s.live_rows,
        dead: s.dead,
        tombstones: s.tombstones,
        bytes: s.bytes,
        backlog: s.backlog,
        compactions: s.compactions,
        collected: s.collected,
        last_run_ms: s.last_run_ms,
    }
}

/// A shard's storage as the admin API sent it (the reply names the
/// collection, so its id is left 0).
pub fn from_pb(s: &pb::ShardStorage) -> ShardStorage {
    ShardStorage {
        collection_id: 0,
        shard: s.shard,
        segments: s.segments,
        rows: s.rows,
        live_rows: s.live_rows,
        dead: s.dead,
        tombstones: s.tombstones,
        bytes: s.bytes,
        backlog: s.backlog,
        compactions: s.compactions,
        collected: s.collected,
        last_run_ms: s.last_run_ms,
    }
}

/// One collection's storage: totals and each shard's figures.
pub fn storage_json(shards: &[&ShardStorage]) -> Value {
    let sum = |f: fn(&ShardStorage) -> u64| shards.iter().map(|s| f(s)).sum::<u64>();
    let per_shard: Vec<Value> = shards
        .iter()
        .map(|s| {
            json!({
                "shard": s.shard, "segments": s.segments, "rows": s.rows,
                "live_rows": s.live_rows, "dead_rows": s.dead, "tombstones": s.tombstones,
                "bytes": s.bytes, "compaction_backlog": s.backlog, "compactions": s.compactions,
                "collected_objects": s.collected, "last_compaction_ms": s.last_run_ms,
            })
        })
        .collect();
    json!({
        "segments": sum(|s| s.segments),
        "rows": sum(|s| s.rows),
        "live_rows": sum(|s| s.live_rows),
        "dead_rows": sum(|s| s.dead),
        "tombstones": sum(|s| s.tombstones),
        "bytes": sum(|s| s.bytes),
        "compaction_backlog": sum(|s| s.backlog),
        "compactions": sum(|s| s.compactions),
        "collected_objects": sum(|s| s.collected),
        "last_compaction_ms": shards.iter().map(|s| s.last_run_ms).max().unwrap_or(0),
        "shards": per_shard,
    })
}

/// The shards of `collection` in `all`.
pub fn of<'a>(all: &'a [ShardStorage], collection: &CollectionInfo) -> Vec<&'a ShardStorage> {
    all.iter()
        .filter(|s| s.collection_id == collection.id)
        .collect()
}

/// Per-shard gauges and counters, registered in `registry` (built per
/// scrape from what the datanodes last reported).
pub fn register_metrics(
    registry: &quiver_metrics::Registry,
    collections: &[CollectionInfo],
    all: &[ShardStorage],
) {
    type Field = fn(&ShardStorage) -> u64;
    let families: [(&str, bool, &str, Field); 10] = [
        (
            "quiver_shard_segments",
            false,
            "Sealed segments of the shard.",
            |s| s.segments,
        ),
        (
            "quiver_shard_rows",
            false,
            "Rows in the shard's sealed segments, live or not.",
            |s| s.rows,
        ),
        (
            "quiver_shard_live_rows",
            false,
            "Rows that are their key's live version.",
            |s| s.live_rows,
        ),
        (
            "quiver_shard_dead_rows",
            false,
            "Superseded or deleted rows and unneeded tombstones not compacted away yet.",
            |s| s.dead,
        ),
        (
            "quiver_shard_tombstones",
            false,
            "Tombstones in the shard's sealed segments.",
            |s| s.tombstones,
        ),
        (
            "quiver_shard_bytes",
            false,
            "Bytes of the shard's segment and index objects.",
            |s| s.bytes,
        ),
        (
            "quiver_compaction_backlog",
            false,
            "Compactions the shard's planner would run now.",
            |s| s.backlog,
        ),
        (
            "quiver_compactions_total",
            true,
            "Compactions run by the shard's current owner.",
            |s| s.compactions,
        ),
        (
            "quiver_gc_deleted_objects_total",
            true,
            "Unreferenced objects the shard's current owner deleted.",
            |s| s.collected,
        ),
        (
            "quiver_compaction_last_run_timestamp_ms",
            false,
            "When the shard was last compacted (ms since the Unix epoch; 0: never).",
            |s| s.last_run_ms,
        ),
    ];
    let labels = ["collection", "shard"];
    for (name, counter, help, field) in families {
        let opts = quiver_metrics::Opts::new(name, help);
        let shards = collections.iter().flat_map(|c| {
            of(all, c)
                .into_iter()
                .map(move |s| ([c.schema.name.clone(), s.shard.to_string()], field(s)))
        });
        let registered = if counter {
            quiver_metrics::IntCounterVec::new(opts, &labels).map(|m| {
                for (l, v) in shards {
                    m.with_label_values(&[&l[0], &l[1]]).inc_by(v);
                }
                registry.register(Box::new(m))
            })
        } else {
            quiver_metrics::IntGaugeVec::new(opts, &labels).map(|m| {
                for (l, v) in shards {
                    m.with_label_values(&[&l[0], &l[1]]).set(v as i64);
                }
                registry.register(Box::new(m))
            })
        };
        match registered {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(metric = name, error = %e, "storage metric not exported");
            }
        }
    }
}
