//! `quiver collection compact NAME [--wait]`.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use quiver_client::{Client, CompactionProgress};
use serde_json::json;

use super::{Conn, print_json};

pub(super) async fn run(name: &str, wait: bool, timeout: u64, conn: &Conn) -> Result<()> {
    let client = conn.connect().await?;
    let id = client.compact(name).await?;
    if !wait {
        if conn.json {
            print_json(&json!({ "collection": name, "compaction_id": id, "state": "executing" }));
        } else {
            println!(
                "compaction {id} of {name} started (follow it with --wait, or pymilvus get_compaction_state({id}))"
            );
        }
        return Ok(());
    }
    let p = wait_for(&client, id, Duration::from_secs(timeout)).await?;
    if conn.json {
        let plans: Vec<_> = p
            .plans
            .iter()
            .map(|pl| json!({ "sources": pl.sources, "target": pl.target }))
            .collect();
        print_json(&json!({
            "collection": name, "compaction_id": id, "state": "completed", "plans": plans,
        }));
        return Ok(());
    }
    println!(
        "compaction {id} of {name} completed: {} compaction{}",
        p.plans.len(),
        if p.plans.len() == 1 { "" } else { "s" }
    );
    for pl in &p.plans {
        let target = pl.target.map_or("nothing (no live row)".to_string(), |t| {
            format!("segment {t}")
        });
        println!("  segments {:?} -> {target}", pl.sources);
    }
    Ok(())
}

async fn wait_for(client: &Client, id: i64, timeout: Duration) -> Result<CompactionProgress> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        let p = client.compaction_progress(id).await?;
        if p.completed {
            return Ok(p);
        }
        if Instant::now() >= deadline {
            bail!(
                "--timeout: compaction {id} still running after {} s ({} shard(s) left)",
                timeout.as_secs(),
                p.executing
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}
