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
    insert_into(client, "feed", from, n).await
}

async fn insert_into(client: &Client, collection: &str, from: i64, n: i64) -> Result<Vec<i64>> {
    let ids: Vec<i64> = (from..from + n).collect();
    let data = ids
        .iter()
        .flat_map(|i| (0..DIM).map(move |d| ((*i as usize * 7 + d) % 13) as f32))
        .collect();
    client
        .insert(collection, Rows::new(DIM, data).with_ids(ids.clone()))
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

/// Writes `op` to the shard of `pk` of `collection` as a mirrored copy: it
/// lands in that collection only (the way a lost or corrupted copy would
/// leave the pair), bypassing the alias.
async fn write_one_side(
    cluster: &Cluster,
    collection: &str,
    pk: i64,
    op: quiver_api::WriteOp,
) -> Result<()> {
    use quiver_api::{DataClient, RouteTable, ShardId, WriteOp};
    let routes: std::sync::Arc<dyn RouteTable> = std::sync::Arc::new(cluster.observer().clone());
    let data =
        quiver_proxy::ClusterData::new(routes, quiver_proxy::ClusterClientConfig::default())?;
    let info = cluster
        .observer()
        .state()
        .collection(collection)
        .cloned()
        .context("collection")?;
    let shard = ShardId {
        collection_id: info.id,
        shard: quiver_proxy::shard_of(&quiver_common::PrimaryKey::Int(pk), info.shards),
    };
    data.write(shard, WriteOp::Mirrored(Box::new(op))).await?;
    Ok(())
}

fn row(pk: i64, value: f32) -> quiver_api::WriteOp {
    quiver_api::WriteOp::Upsert(quiver_common::RowBatch {
        pks: vec![quiver_common::PrimaryKey::Int(pk)],
        vectors: quiver_common::Vectors::f32(DIM, vec![value; DIM]),
        columns: Vec::new(),
    })
}

/// Breaks the pair in three ways (a row changed, a row missing, a row
/// extra on the standby) behind the alias's back.
async fn diverge(cluster: &Cluster) -> Result<()> {
    write_one_side(cluster, "feed_b", 5, row(5, 42.0)).await?;
    let gone = quiver_api::WriteOp::Delete(vec![quiver_common::PrimaryKey::Int(6)]);
    write_one_side(cluster, "feed_b", 6, gone).await?;
    write_one_side(cluster, "feed_b", 100_000, row(100_000, 1.0)).await?;
    Ok(())
}

/// Keys written to the primary before it was mirrored.
const BEFORE: std::ops::Range<i64> = 10_000..10_050;

/// A cluster with `feed` mirrored over `feed_a` and `feed_b` (two shards
/// each) and 200 rows written through it; with `backfill`, [`BEFORE`] was
/// written to `feed_a` before the pair was mirrored.
async fn mirrored_pair(repair: bool, backfill: bool) -> Result<(Cluster, Client, Vec<i64>)> {
    let mut spec = ClusterSpec::new(1, 1, 1);
    spec.divergence.repair = repair;
    let cluster = Cluster::start(spec).await?;
    let client = cluster.client().await?;
    for name in ["feed_a", "feed_b"] {
        let mut spec = CollectionSpec::new(name, DIM);
        spec.shards = Some(2);
        client.create_collection(&spec).await?;
    }
    if backfill {
        insert_into(&client, "feed_a", BEFORE.start, BEFORE.end - BEFORE.start).await?;
    }
    let spec = MirrorSpec {
        alias: "feed".into(),
        primary: "feed_a".into(),
        standby: "feed_b".into(),
        auto_failover: false,
        max_lag_ms: None,
    };
    client.mirror_alias(&spec, &Actor::new("test", "")).await?;
    let acked = insert(&client, 0, 200).await?;
    wait_for(Duration::from_secs(30), "the standby caught up", || async {
        has_all(&client, "feed_b", &acked).await.unwrap_or(false)
    })
    .await?;
    Ok((cluster, client, acked))
}

/// Waits until the continuous check reports `rows` divergent rows.
async fn check_counts(client: &Client, rows: u64) -> Result<()> {
    wait_for(
        Duration::from_secs(30),
        &format!("the check counts {rows}"),
        || async {
            client
                .show_alias("feed")
                .await
                .is_ok_and(|s| s.divergent_rows == Some(rows))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_finds_each_kind_of_divergence_and_repair_ends_it() -> Result<()> {
    let (cluster, client, _) = mirrored_pair(false, false).await?;
    let clean = client.verify_alias("feed", false, Some(200)).await?;
    ensure!(
        clean.divergent_rows == 0 && clean.target_rows == 200 && clean.other_rows == 200,
        "a pair in step: {clean:?}"
    );
    // Sealed rows (read from segment files) and growing rows hash alike.
    client.flush(&["feed_a"]).await?;
    let sealed = client.verify_alias("feed", false, Some(200)).await?;
    ensure!(
        sealed.divergent_rows == 0 && sealed.target_rows == 200,
        "one side sealed, the other growing: {sealed:?}"
    );
    check_counts(&client, 0).await?;

    diverge(&cluster).await?;
    let found = client.verify_alias("feed", false, Some(200)).await?;
    let mut kinds: Vec<(String, String)> = found
        .samples
        .iter()
        .map(|d| (d.pk.clone(), d.kind.clone()))
        .collect();
    kinds.sort();
    ensure!(
        found.divergent_rows == 3 && found.remaining_rows == 3 && found.repaired_rows == 0,
        "three divergent rows: {found:?}"
    );
    ensure!(
        kinds
            == [
                ("100000".to_string(), "extra".to_string()),
                ("5".into(), "different".into()),
                ("6".into(), "missing".into()),
            ],
        "kinds: {kinds:?}"
    );
    // The continuous check (repair off here) counts them too.
    check_counts(&client, 3).await?;

    let repaired = client.verify_alias("feed", true, Some(200)).await?;
    ensure!(
        repaired.divergent_rows == 3 && repaired.repaired_rows == 3 && repaired.remaining_rows == 0,
        "repaired: {repaired:?}"
    );
    ensure!(has_all(&client, "feed_b", &[6]).await?, "row 6 is back");
    ensure!(
        !has_all(&client, "feed_b", &[100_000]).await?,
        "the extra row is gone"
    );
    let after = client.verify_alias("feed", false, Some(200)).await?;
    ensure!(after.divergent_rows == 0, "after the repair: {after:?}");
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_continuous_check_repairs_divergence_and_backfills_by_itself() -> Result<()> {
    let (cluster, client, _) = mirrored_pair(true, true).await?;
    let before: Vec<i64> = BEFORE.collect();
    wait_for(
        Duration::from_secs(60),
        "rows written before mirroring copied to the standby",
        || async { has_all(&client, "feed_b", &before).await.unwrap_or(false) },
    )
    .await?;
    diverge(&cluster).await?;
    ensure!(
        !has_all(&client, "feed_b", &[6]).await?,
        "row 6 was deleted from the standby"
    );
    wait_for(
        Duration::from_secs(60),
        "row 6 back on the standby and the extra row gone",
        || async {
            has_all(&client, "feed_b", &[6]).await.unwrap_or(false)
                && !has_all(&client, "feed_b", &[100_000]).await.unwrap_or(true)
        },
    )
    .await?;
    check_counts(&client, 0).await?;
    let after = client.verify_alias("feed", false, Some(200)).await?;
    ensure!(after.divergent_rows == 0, "after the repair: {after:?}");
    cluster.shutdown().await;
    Ok(())
}
