//! Metadata backups: every coord's directory lost at once is recovered
//! from the object store alone, with every acknowledged change.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use object_store::ObjectStore;
use object_store::memory::InMemory;
use quiver_coord::{CoordClient, MetaOps, Standing, backup};
use quiver_test_util::wait_for;

use common::*;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_coord_directory_lost_is_rebuilt_from_the_object_store() -> Result<()> {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut cluster = Cluster::start_with(3, Some(store.clone())).await?;
    cluster.wait_leader(&[1, 2, 3], WAIT).await?;
    let client = CoordClient::connect(cluster.addrs(), client_options()).await?;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create(&client, &format!("c{i}")).await?);
    }
    client.create_alias("live", "c3").await?;
    let last_id = create(&client, "last").await?;
    wait_for(WAIT, "every coord votes", || async {
        [1, 2, 3]
            .iter()
            .all(|id| cluster.coord(*id).standing() == Standing::Voter)
    })
    .await?;

    // Every acknowledged change is already in a backup (no wait needed).
    let (index, bytes) = backup::latest(&store).await?.context("a backup")?;
    let text = String::from_utf8_lossy(&bytes);
    ensure!(
        text.contains("\"last\""),
        "the last acknowledged change is backed up"
    );

    // Every coord stops and loses its directory.
    for id in [1, 2, 3] {
        cluster.kill(id).await?;
        std::fs::remove_dir_all(&cluster.dirs[&id])?;
    }
    for id in [1, 2, 3] {
        let restored = backup::restore(&cluster.dirs[&id], id, &bytes)?;
        ensure!(
            restored.index == index && restored.collections == 6,
            "{restored:?}"
        );
        // A directory that holds state again is refused.
        ensure!(backup::restore(&cluster.dirs[&id], id, &bytes).is_err());
    }
    ensure!(
        backup::restore(&cluster.dirs[&1].with_file_name("coord-9"), 9, &bytes).is_err(),
        "a coord outside the backed-up membership is refused"
    );
    for id in [1, 2, 3] {
        cluster.restart(id).await?;
    }
    cluster.wait_leader(&[1, 2, 3], WAIT).await?;
    let client = CoordClient::connect(cluster.addrs(), client_options()).await?;
    // New changes commit, and ids are not reused.
    let after = create(&client, "after").await?;
    ensure!(
        after > last_id,
        "a new id ({after}) after the recovered ones ({last_id})"
    );
    wait_for(WAIT, "the client to see the new collection", || async {
        client.state().collection("after").is_some()
    })
    .await?;
    let state = client.state();
    for (i, id) in ids.iter().enumerate() {
        let meta = state
            .collection(&format!("c{i}"))
            .context("collection back")?;
        ensure!(meta.id == *id, "c{i} keeps its id");
    }
    ensure!(
        state.collection("live").map(|c| c.id) == Some(ids[3]),
        "alias back"
    );
    for id in [1, 2, 3] {
        ensure!(
            cluster.coord(id).standing() == Standing::Voter,
            "coord {id} votes"
        );
    }
    cluster.shutdown().await
}

/// Changes the lost coords applied and published but had not backed up
/// (acknowledged from the Raft log alone when the store was slow) are gone
/// after a recovery; a client that saw them holds a version past the
/// backup's. The rebuilt coords' versions start past any such version, so
/// that client follows them instead of passing their changes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_saw_changes_past_the_backup_follows_the_rebuilt_coords() -> Result<()> {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut cluster = Cluster::start_with(3, Some(store.clone())).await?;
    cluster.wait_leader(&[1, 2, 3], WAIT).await?;
    let watcher = CoordClient::connect(cluster.addrs(), client_options()).await?;
    create(&watcher, "backed_up").await?;
    let (_, bytes) = backup::latest(&store).await?.context("a backup")?;
    // Changes past that backup, which the watcher sees.
    for i in 0..5 {
        create(&watcher, &format!("lost{i}")).await?;
    }
    wait_for(WAIT, "the watcher to see the last change", || async {
        watcher.state().collection("lost4").is_some()
    })
    .await?;
    let seen = watcher.state().version();

    for id in [1, 2, 3] {
        cluster.kill(id).await?;
        std::fs::remove_dir_all(&cluster.dirs[&id])?;
    }
    for id in [1, 2, 3] {
        backup::restore(&cluster.dirs[&id], id, &bytes)?;
    }
    for id in [1, 2, 3] {
        cluster.restart(id).await?;
    }
    cluster.wait_leader(&[1, 2, 3], WAIT).await?;
    let client = CoordClient::connect(cluster.addrs(), client_options()).await?;
    create(&client, "after").await?;
    wait_for(WAIT, "the watcher to see the change made after", || async {
        watcher.state().collection("after").is_some()
    })
    .await?;
    let state = watcher.state();
    ensure!(
        state.version() > seen && state.collection("backed_up").is_some(),
        "version {} (had seen {seen})",
        state.version()
    );
    ensure!(
        state.collection("lost0").is_none(),
        "the watcher holds the rebuilt coords' state, not the lost one"
    );
    cluster.shutdown().await
}
