//! `quiver cluster status --dir D [--json]`: who leads coord, where each
//! collection is served, and the health of every process (its pid, and what
//! coord's leases say).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use quiver_coord::CoordApi as _;
use quiver_coord::CoordClient;
use serde_json::{Value, json};

use super::local::{ClusterFile, running};

/// How long status waits for coord before reporting what it has.
const COORD_TIMEOUT: Duration = Duration::from_secs(5);

/// The status as JSON:
/// `{"coord_leader": ID|null, "collections": {NAME: {"querynodes": [IDs],
/// "datanodes": [IDs]}}, "aliases": {ALIAS: NAME}, "processes": [{"role", "id",
/// "pid", "addr", "running", "lease": "alive"|"expired"|null}], "nodes": [{"id",
/// "role", "state": "active"|"draining"|"drained"|"gone", "rows", "memory_bytes",
/// "shards_owned", "replicas", "addr"}], "errors": [...]}`.
pub async fn status(dir: &Path) -> Result<Value> {
    let file = ClusterFile::read(dir)?;
    let mut errors = Vec::new();
    let mut leader = Value::Null;
    let mut collections = serde_json::Map::new();
    let mut aliases = serde_json::Map::new();
    let mut leases: BTreeMap<u64, bool> = BTreeMap::new();
    // Each coord's own word on whether it may vote (`voter`, `not admitted: …`).
    let mut standing: BTreeMap<u64, String> = BTreeMap::new();
    let mut nodes: Vec<Value> = Vec::new();

    let coords: Vec<String> = file
        .by_role("coord")
        .filter(|p| running(p.pid))
        .map(|p| p.addr.clone())
        .collect();
    match tokio::time::timeout(
        COORD_TIMEOUT,
        CoordClient::connect(coords.clone(), file.coord_options()?),
    )
    .await
    {
        Ok(Ok(client)) => {
            // The leader as the coord with the newest term sees it (a paused
            // or cut-off coord may still believe in an older one).
            let mut newest: Option<(u64, Option<u64>)> = None;
            for addr in &coords {
                let Ok(Ok(s)) = tokio::time::timeout(COORD_TIMEOUT, client.status_of(addr)).await
                else {
                    continue;
                };
                standing.insert(s.node_id, s.standing.clone());
                if newest.is_none_or(|(term, _)| s.term > term) {
                    newest = Some((s.term, s.leader));
                }
            }
            if let Some((_, Some(id))) = newest {
                leader = json!(id);
            }
            let state = client.state();
            for meta in state.collections() {
                let mut qn = BTreeSet::new();
                let mut dn = BTreeSet::new();
                for shard in 0..meta.shards {
                    qn.extend(state.shard_replicas(meta.id, shard));
                    if let Some(o) = state.shard_owner(meta.id, shard) {
                        dn.insert(o.node_id);
                    }
                }
                collections.insert(
                    meta.name.clone(),
                    json!({"querynodes": qn, "datanodes": dn, "shards": meta.shards,
                           "replica_number": meta.replica_number,
                           "unplaced": meta.unplaced}),
                );
            }
            for (alias, a) in state.aliases() {
                aliases.insert(alias.clone(), json!(a.collection));
            }
            match tokio::time::timeout(COORD_TIMEOUT, client.node_health()).await {
                Ok(Ok(health)) => {
                    for h in health {
                        leases.insert(h.id, h.alive);
                    }
                }
                Ok(Err(e)) => errors.push(format!("node health: {e}")),
                Err(_) => errors.push("node health: coord did not answer in 5 s".to_string()),
            }
            match tokio::time::timeout(COORD_TIMEOUT, quiver_coord::node_admin::nodes(&client))
                .await
            {
                Ok(Ok(list)) => {
                    nodes = (list.iter())
                        .map(|n| {
                            json!({"id": n.id, "role": n.role, "state": n.state.as_str(),
                                   "rows": n.rows, "memory_bytes": n.memory_bytes,
                                   "shards_owned": n.shards_owned, "replicas": n.replicas,
                                   "addr": n.addr})
                        })
                        .collect();
                }
                Ok(Err(e)) => errors.push(format!("nodes: {e}")),
                Err(_) => errors.push("nodes: coord did not answer in 5 s".to_string()),
            }
        }
        Ok(Err(e)) => errors.push(format!("coord: {e}")),
        Err(_) => errors.push("coord: no answer in 5 s".to_string()),
    }

    let processes: Vec<Value> = file
        .processes
        .iter()
        .map(|p| {
            let lease = match leases.get(&p.id) {
                Some(true) => json!("alive"),
                Some(false) => json!("expired"),
                None => Value::Null,
            };
            let mut v = json!({"role": p.role, "id": p.id, "pid": p.pid, "addr": p.addr,
                               "running": running(p.pid), "lease": lease});
            if let Some(s) = standing.get(&p.id).filter(|_| p.role == "coord") {
                v["standing"] = json!(s);
            }
            v
        })
        .collect();
    Ok(json!({
        "proxy": file.proxy,
        "coord_leader": leader,
        "collections": collections,
        "aliases": aliases,
        "processes": processes,
        "nodes": nodes,
        "errors": errors,
    }))
}

/// The status as a few readable lines.
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "proxy {}   coord leader {}\n",
        v["proxy"].as_str().unwrap_or("-"),
        v["coord_leader"]
    ));
    out.push_str(
        "\nROLE       ID  PID      ADDR                   RUNNING  LEASE (coords: VOTE)\n",
    );
    for p in v["processes"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<10} {:<3} {:<8} {:<22} {:<8} {}\n",
            p["role"].as_str().unwrap_or("?"),
            p["id"],
            p["pid"],
            p["addr"].as_str().unwrap_or("?"),
            if p["running"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            p["lease"]
                .as_str()
                .or(p["standing"].as_str())
                .unwrap_or("-"),
        ));
    }
    if let Some(c) = v["collections"].as_object()
        && !c.is_empty()
    {
        out.push_str("\nCOLLECTION                 DATANODES   QUERYNODES\n");
        for (name, c) in c {
            out.push_str(&format!(
                "{:<26} {:<11} {}\n",
                name, c["datanodes"], c["querynodes"]
            ));
            if let Some(why) = c["unplaced"].as_str() {
                out.push_str(&format!("  not fully placed: {why}\n"));
            }
        }
    }
    for e in v["errors"].as_array().into_iter().flatten() {
        out.push_str(&format!("error: {}\n", e.as_str().unwrap_or("?")));
    }
    out
}
