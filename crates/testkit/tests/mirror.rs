//! A mirrored alias in a cluster: writes through the alias reach the
//! standby while the standby's datanode is killed and restarted, and while
//! the primary's datanode is killed (its shard's new owner re-ships from the
//! mirror cursor): every acknowledged write ends up in both collections.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use quiver_client::{Actor, Client, CollectionSpec, MirrorSpec, Rows};
use quiver_testkit::{Cluster, ClusterSpec, has_all, wait_for};

fn owner(cluster: &Cluster, collection: &str) -> Option<u64> {
    cluster.owners(collection).first().copied().flatten()
}

const DIM: usize = 8;

async fn insert(client: &Client, from: i64, n: i64) -> Result<Vec<i64>> {
    let ids: Vec<i64> = (from..from + n).collect();
    let data = ids
        .iter()
        .flat_map(|i| (0..DIM).map(move |d| ((*i as usize * 7 + d) % 13) as f32))
        .collect();
    client
        .insert("feed", Rows::new(DIM, data).with_ids(ids.clone()))
        .await?;
    Ok(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_write_reaches_the_standby_through_datanode_failures() -> Result<()> {
    let mut cluster = Cluster::start(ClusterSpec::new(1, 2, 1)).await?;
    let client = cluster.client().await?;
    for name in ["feed_a", "feed_b"] {
        let mut spec = CollectionSpec::new(name, DIM);
        spec.shards = Some(1);
        client.create_collection(&spec).await?;
    }
    let spec = MirrorSpec {
        alias: "feed".into(),
        primary: "feed_a".into(),
        standby: "feed_b".into(),
        auto_failover: false,
        max_lag_ms: None,
    };
    client.mirror_alias(&spec, &Actor::new("test", "")).await?;
    wait_for(
        Duration::from_secs(30),
        "both collections owned",
        || async { owner(&cluster, "feed_a").is_some() && owner(&cluster, "feed_b").is_some() },
    )
    .await?;
    let mut acked = insert(&client, 0, 100).await?;
    wait_for(Duration::from_secs(30), "the standby caught up", || async {
        has_all(&client, "feed_b", &acked).await.unwrap_or(false)
    })
    .await?;

    // The standby's owner dies: writes through the alias keep being
    // acknowledged (the primary's WAL holds them for the standby).
    let standby_owner = owner(&cluster, "feed_b").context("owner")?;
    cluster.kill(standby_owner).await?;
    for round in 0..5 {
        acked.extend(insert(&client, 1_000 + round * 10, 10).await?);
    }
    cluster.restart(standby_owner).await?;
    wait_for(
        Duration::from_secs(60),
        "the standby caught up after its datanode died",
        || async { has_all(&client, "feed_b", &acked).await.unwrap_or(false) },
    )
    .await?;

    // The primary's owner dies: its shard moves; the new owner ships what
    // the cursor says the standby may lack.
    let primary_owner = owner(&cluster, "feed_a").context("owner")?;
    for round in 0..5 {
        acked.extend(insert(&client, 2_000 + round * 10, 10).await?);
    }
    cluster.kill(primary_owner).await?;
    for round in 0..5 {
        acked.extend(insert(&client, 3_000 + round * 10, 10).await?);
    }
    let caught_up = wait_for(
        Duration::from_secs(60),
        "the standby caught up after the primary's datanode died",
        || async { has_all(&client, "feed_b", &acked).await.unwrap_or(false) },
    )
    .await;
    if caught_up.is_err() {
        let mut missing = Vec::new();
        for id in &acked {
            if !has_all(&client, "feed_b", &[*id]).await? {
                missing.push(*id);
            }
        }
        eprintln!("missing from the standby: {missing:?}");
    }
    caught_up?;
    ensure!(
        has_all(&client, "feed_a", &acked).await?,
        "the primary has every acknowledged write"
    );
    let (a, b) = (client.count("feed_a").await?, client.count("feed_b").await?);
    ensure!(
        a == b && a == acked.len() as u64,
        "counts: primary {a}, standby {b}, acknowledged {}",
        acked.len()
    );
    cluster.shutdown().await;
    Ok(())
}
