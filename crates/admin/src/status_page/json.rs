//! The JSON shapes of the status page, shared with `quiver alias show --json`
//! (one shape for an alias wherever it is shown).

use quiver_api::{AliasMeta, CatalogClient, CollectionInfo, IndexKind, ShardStorage};
use quiver_proto::admin as pb;
use serde_json::{Value, json};

use crate::admin::alias_status_seen;

/// How many alias changes `recent_flips` lists.
pub const RECENT_FLIPS: usize = 20;

/// An alias as `quiver alias show --json` prints it: `{alias, target,
/// primary, standby, epoch, standby_lag_ms, divergent_rows, mirrored,
/// auto_failover, max_lag_ms, pinned, history: [{epoch, at_ms, at, action,
/// from, to, by, reason}]}`; `primary`/`standby` are null unless mirrored,
/// lag and divergence null while unknown; history oldest first.
pub fn alias_json(s: &pb::AliasStatus) -> Value {
    let history: Vec<_> = s.history.iter().map(event_json).collect();
    json!({
        "alias": s.alias,
        "target": s.target,
        "primary": named(&s.primary),
        "standby": named(&s.standby),
        "epoch": s.epoch,
        "standby_lag_ms": s.standby_lag_ms,
        "divergent_rows": s.divergent_rows,
        "mirrored": s.mirrored,
        "auto_failover": s.auto_failover,
        "max_lag_ms": s.max_lag_ms,
        "pinned": s.pinned,
        "history": history,
    })
}

fn named(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

fn event_json(e: &pb::AliasEvent) -> Value {
    json!({
        "epoch": e.epoch,
        "at_ms": e.at_ms,
        "at": utc(e.at_ms),
        "action": e.action,
        "from": named(&e.from),
        "to": e.to,
        "by": e.by,
        "reason": e.reason,
    })
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Every alias with its meta, sorted by name (from the catalog's cache).
pub(super) fn aliases(catalog: &dyn CatalogClient) -> Vec<(String, AliasMeta)> {
    let mut names: Vec<String> = catalog.aliases().into_iter().map(|(a, _)| a).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|a| catalog.alias(&a).map(|m| (a, m)))
        .collect()
}

/// A collection with the aliases that target it.
pub(super) fn collection_json(info: &CollectionInfo, aliases: &[(String, AliasMeta)]) -> Value {
    let index = match info.index {
        IndexKind::Flat => json!({ "kind": "FLAT" }),
        IndexKind::None => json!({ "kind": "NONE" }),
        IndexKind::Hnsw { m, ef_construction } => {
            json!({ "kind": "HNSW", "m": m, "ef_construction": ef_construction })
        }
        IndexKind::HnswSq { m, ef_construction } => {
            json!({ "kind": "HNSW_SQ", "m": m, "ef_construction": ef_construction })
        }
        IndexKind::Sparse { wand, .. } => json!({
            "kind": if wand { "SPARSE_WAND" } else { "SPARSE_INVERTED_INDEX" }
        }),
    };
    let targeted_by: Vec<&str> = aliases
        .iter()
        .filter(|(_, m)| m.collection == info.schema.name)
        .map(|(a, _)| a.as_str())
        .collect();
    json!({
        "name": info.schema.name,
        "id": info.id,
        "shards": info.shards,
        "dim": info.schema.dim(),
        "metric": info.metric.as_str(),
        "index": index,
        "fields": info.schema.fields.len(),
        "aliases": targeted_by,
    })
}

/// A collection's load state: `{state, replicas, memory_bytes}`. `state` is
/// `loaded` (reads served) or `released`; `replicas` the querynodes serving
/// each shard where coord places replicas (a cluster; empty in standalone);
/// `memory_bytes` what querynodes map to serve it: each shard's segment and
/// index bytes once per replica (at least one while loaded), 0 released.
pub(super) fn load_json(loaded: bool, replicas: &[Vec<u64>], shards: &[&ShardStorage]) -> Value {
    let memory: u64 = if loaded {
        shards
            .iter()
            .map(|s| {
                let copies = replicas.get(s.shard as usize).map_or(0, Vec::len).max(1);
                s.bytes.saturating_mul(copies as u64)
            })
            .sum()
    } else {
        0
    };
    json!({
        "state": if loaded { "loaded" } else { "released" },
        "replicas": replicas,
        "memory_bytes": memory,
    })
}

/// The last `limit` flips and alters of any alias, newest first, each with
/// the alias it changed.
pub(super) fn recent_flips(aliases: &[(String, AliasMeta)], limit: usize) -> Vec<Value> {
    let mut events: Vec<(&str, &quiver_api::AliasEvent)> = aliases
        .iter()
        .flat_map(|(a, m)| m.history.iter().map(move |e| (a.as_str(), e)))
        .filter(|(_, e)| e.action.moves_target())
        .collect();
    events.sort_by(|(a, x), (b, y)| (y.at_ms, y.epoch, *b).cmp(&(x.at_ms, x.epoch, *a)));
    events
        .into_iter()
        .take(limit)
        .map(|(alias, e)| {
            json!({
                "alias": alias,
                "epoch": e.epoch,
                "at_ms": e.at_ms,
                "at": utc(e.at_ms),
                "action": e.action,
                "from": e.from,
                "to": e.to,
                "by": e.by,
                "reason": e.reason,
            })
        })
        .collect()
}

/// `alias_json` of an alias's meta, with the lag `catalog` can see.
pub(super) async fn alias_meta_json(
    catalog: &dyn CatalogClient,
    alias: &str,
    meta: &AliasMeta,
) -> Value {
    alias_json(&alias_status_seen(catalog, alias, meta).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_api::{AliasEvent, MirrorMeta};

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_795_340_645_123), "2026-11-22T09:44:05.123Z");
    }

    fn event(
        epoch: u64,
        at_ms: u64,
        action: quiver_api::AliasAction,
        from: Option<&str>,
        to: &str,
    ) -> AliasEvent {
        AliasEvent {
            epoch,
            at_ms,
            action,
            from: from.map(String::from),
            to: to.into(),
            by: "t".into(),
            reason: String::new(),
        }
    }

    #[test]
    fn memory_counts_each_replica_of_a_loaded_collection() {
        let shard = |shard, bytes| ShardStorage {
            shard,
            bytes,
            ..ShardStorage::default()
        };
        let (a, b) = (shard(0, 100), shard(1, 10));
        let shards = [&a, &b];
        let one = load_json(true, &[], &shards);
        assert_eq!(one["state"], "loaded");
        assert_eq!(one["memory_bytes"], 110, "standalone: one copy");
        let two = load_json(true, &[vec![1, 2], vec![3]], &shards);
        assert_eq!(two["memory_bytes"], 210);
        assert_eq!(two["replicas"], json!([[1, 2], [3]]));
        let released = load_json(false, &[], &shards);
        assert_eq!(released["state"], "released");
        assert_eq!(released["memory_bytes"], 0);
    }

    #[test]
    fn recent_flips_are_flips_and_alters_newest_first() {
        let feed = AliasMeta {
            collection: "b".into(),
            epoch: 3,
            mirror: Some(MirrorMeta {
                primary: "a".into(),
                standby: "b".into(),
                auto_failover: false,
                max_lag_ms: 1000,
                pinned: false,
            }),
            history: vec![
                event(1, 10, quiver_api::AliasAction::Mirror, None, "a"),
                event(2, 30, quiver_api::AliasAction::Flip, Some("a"), "b"),
                event(3, 50, quiver_api::AliasAction::Pin, Some("b"), "b"),
            ],
        };
        let other = AliasMeta {
            collection: "c".into(),
            epoch: 2,
            mirror: None,
            history: vec![
                event(1, 5, quiver_api::AliasAction::Create, None, "d"),
                event(2, 40, quiver_api::AliasAction::Alter, Some("d"), "c"),
            ],
        };
        let aliases = vec![("feed".to_string(), feed.clone()), ("other".into(), other)];
        let flips = recent_flips(&aliases, 10);
        let got: Vec<(&str, &str)> = flips
            .iter()
            .map(|f| {
                (
                    f["alias"].as_str().unwrap_or(""),
                    f["action"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(got, vec![("other", "alter"), ("feed", "flip")]);
        assert_eq!(recent_flips(&aliases, 1).len(), 1);

        let shown = alias_json(&crate::admin::alias_status("feed", &feed));
        assert_eq!(shown["target"], "b");
        assert_eq!(shown["primary"], "a");
        assert_eq!(shown["standby_lag_ms"], Value::Null);
        assert_eq!(shown["history"][0]["from"], Value::Null);
        assert_eq!(shown["history"][1]["from"], "a");
    }
}
