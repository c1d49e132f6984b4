//! End-to-end: a real on-disk coord, reopened after shutdown, after a drop
//! without shutdown, after log compaction, and after kill -9 of a process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use quiver_common::{CollectionSchema, ErrorKind, Metric};
use quiver_coord::{
    Coord, CoordError, CoordOptions, IndexKind, IndexSpec, MetaCommand, MetaOps, NoPeers,
    SegmentMeta,
};
use quiver_test_util::wait_for;
use tempfile::TempDir;

fn hnsw() -> IndexSpec {
    IndexSpec {
        kind: IndexKind::Hnsw {
            m: 16,
            ef_construction: 100,
        },
        field_name: "vector".into(),
        index_name: "vec_idx".into(),
    }
}

fn seg(id: u64, wal_seq: u64) -> SegmentMeta {
    SegmentMeta {
        id,
        rows: 100,
        max_ts: 9,
        wal_seq,
        has_index: true,
        index_version: 0,
    }
}

/// Writes one of everything; returns the collection id.
async fn populate(coord: &Coord) -> Result<u64> {
    let a = coord
        .create_collection(
            CollectionSchema::simple("feed_a", 8),
            2,
            Metric::Cosine,
            None,
        )
        .await?;
    coord
        .create_collection(
            CollectionSchema::simple("feed_b", 8),
            1,
            Metric::L2,
            Some(hnsw()),
        )
        .await?;
    coord.set_index("feed_a", hnsw(), None).await?;
    coord.set_loaded("feed_a", true, None).await?;
    let e1 = coord.create_alias("feed", "feed_a").await?;
    let e2 = coord.alter_alias("feed", "feed_b").await?;
    assert!(e2 > e1);
    coord.create_alias("other", "feed_a").await?;
    coord.drop_alias("other").await?;
    assert_eq!(
        coord
            .register_segments(a.id, 1, 0, vec![seg(1, 10), seg(2, 20)], 20)
            .await?,
        20
    );
    assert_eq!(coord.acquire_shard(a.id, 0, 7).await?, 1);
    assert_eq!(coord.acquire_shard(a.id, 0, 8).await?, 2);
    let ids = coord.allocate_ids(100).await?;
    assert_eq!(ids.end - ids.start, 100);
    Ok(a.id)
}

fn check(coord: &Coord, id: u64) {
    assert_eq!(
        coord.collection("feed").expect("alias resolves").name,
        "feed_b"
    );
    let a = coord.collection("feed_a").expect("feed_a");
    assert!(a.loaded);
    assert_eq!(a.index.index_name, "vec_idx");
    assert_eq!(coord.collections().len(), 2);
    assert_eq!(coord.aliases().keys().collect::<Vec<_>>(), vec!["feed"]);
    let (segs, ckpt) = coord.segments(id, 1);
    assert_eq!((segs.len(), ckpt), (2, 20));
    assert_eq!(
        coord
            .state()
            .shard_owner(id, 0)
            .map(|o| (o.node_id, o.epoch)),
        Some((8, 2))
    );
}

#[tokio::test]
async fn reopen_after_shutdown_restores_everything() -> Result<()> {
    let dir = TempDir::new()?;
    let coord = Coord::open(dir.path(), 1).await?;
    let id = populate(&coord).await?;
    check(&coord, id);
    let before = coord.state();
    coord.shutdown().await?;
    let err = coord
        .propose(MetaCommand::AllocateIds { count: 1 }, None)
        .await
        .expect_err("shut down");
    assert!(matches!(err, CoordError::Shutdown), "{err}");
    drop(coord);
    let coord = Coord::open(dir.path(), 1).await?;
    check(&coord, id);
    assert_eq!(*coord.state(), *before);
    let more = coord.allocate_ids(1).await?;
    assert!(
        more.start >= before.next_id(),
        "ids are never handed out twice"
    );
    coord.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn reopen_after_drop_without_shutdown() -> Result<()> {
    let dir = TempDir::new()?;
    let coord = Coord::open(dir.path(), 1).await?;
    let id = populate(&coord).await?;
    let before = coord.state();
    drop(coord); // no shutdown: the raft task stops on its own, like a crash
    let coord = Coord::open(dir.path(), 1).await?;
    check(&coord, id);
    assert_eq!(*coord.state(), *before);
    Ok(())
}

#[tokio::test]
async fn compaction_by_snapshot_then_reopen() -> Result<()> {
    let dir = TempDir::new()?;
    let options = CoordOptions {
        snapshot_every: 5,
        keep_logs_after_snapshot: 2,
        ..Default::default()
    };
    let coord = Coord::open_with(dir.path(), 1, &options, Arc::new(NoPeers)).await?;
    let id = populate(&coord).await?;
    for _ in 0..20 {
        coord.allocate_ids(3).await?;
    }
    let snap = dir.path().join("snapshot.json");
    wait_for(Duration::from_secs(10), "a snapshot file", async || {
        snap.exists()
    })
    .await?;
    let raft_state = dir.path().join("raft-state.json");
    let purged =
        async || std::fs::read_to_string(&raft_state).is_ok_and(|s| s.contains("\"purged\":{"));
    wait_for(Duration::from_secs(10), "the log to be purged", purged).await?;
    let before = coord.state();
    drop(coord);
    let coord = Coord::open_with(dir.path(), 1, &options, Arc::new(NoPeers)).await?;
    check(&coord, id);
    assert_eq!(*coord.state(), *before);
    Ok(())
}

#[tokio::test]
async fn watch_delivers_each_new_version() -> Result<()> {
    let dir = TempDir::new()?;
    let coord = Coord::open(dir.path(), 1).await?;
    let mut rx = coord.watch();
    let v0 = rx.borrow_and_update().version();
    coord
        .create_collection(CollectionSchema::simple("c", 4), 1, Metric::Ip, None)
        .await?;
    tokio::time::timeout(Duration::from_secs(5), rx.changed()).await??;
    let s = rx.borrow_and_update().clone();
    assert_eq!(s.version(), v0 + 1);
    assert!(s.collection("c").is_some());
    coord.create_alias("al", "c").await?;
    tokio::time::timeout(Duration::from_secs(5), rx.changed()).await??;
    assert_eq!(rx.borrow().version(), v0 + 2);
    coord.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn rule_errors_reach_the_caller_with_their_kind() -> Result<()> {
    let dir = TempDir::new()?;
    let coord = Coord::open(dir.path(), 1).await?;
    coord
        .create_collection(CollectionSchema::simple("c", 4), 1, Metric::L2, None)
        .await?;
    let kind = |e: quiver_common::Error| e.kind();
    let e = coord
        .create_collection(CollectionSchema::simple("c", 4), 1, Metric::L2, None)
        .await;
    assert_eq!(kind(e.expect_err("dup")), ErrorKind::AlreadyExists);
    let e = coord
        .create_alias("al", "missing")
        .await
        .expect_err("missing");
    assert_eq!(kind(e), ErrorKind::CollectionNotFound);
    let e = coord
        .create_collection(CollectionSchema::simple("d", 4), 0, Metric::L2, None)
        .await;
    assert_eq!(kind(e.expect_err("shards")), ErrorKind::InvalidArgument);
    coord.create_alias("al", "c").await?;
    let e = coord.drop_collection("c").await.expect_err("aliased");
    assert!(e.to_string().contains("still has aliases"), "{e}");
    assert!(coord.collection("c").is_some());
    coord.shutdown().await?;
    Ok(())
}

const CRASH_DIR: &str = "QUIVER_COORD_CRASH_DIR";

/// The child of `kill_9_keeps_committed_state`: writes until it is killed,
/// printing each id range once its allocation is committed.
#[tokio::test]
#[ignore = "run by kill_9_keeps_committed_state in a child process"]
async fn crash_child() -> Result<()> {
    let Ok(dir) = std::env::var(CRASH_DIR) else {
        return Ok(());
    };
    let options = CoordOptions {
        snapshot_every: 7,
        keep_logs_after_snapshot: 3,
        ..Default::default()
    };
    let coord = Coord::open_with(dir.as_ref(), 1, &options, Arc::new(NoPeers)).await?;
    if coord.collection("crash").is_none() {
        coord
            .create_collection(CollectionSchema::simple("crash", 4), 1, Metric::L2, None)
            .await?;
        coord.create_alias("crash_alias", "crash").await?;
    }
    loop {
        let ids = coord.allocate_ids(2).await?;
        println!("ACK {}", ids.end);
    }
}

/// Reads ACK lines from a crash child until `n` were seen, then kills it with SIGKILL.
fn run_child_and_kill(dir: &std::path::Path, n: usize) -> Result<u64> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut acked = 0;
    let mut seen = 0;
    for line in BufReader::new(stdout).lines() {
        if let Some(end) = line?.strip_prefix("ACK ") {
            acked = end.parse()?;
            seen += 1;
            if seen == n {
                break;
            }
        }
    }
    child.kill()?; // SIGKILL
    child.wait()?;
    if seen < n {
        bail!("the child stopped after {seen} acknowledged writes");
    }
    Ok(acked)
}

#[tokio::test]
async fn kill_9_keeps_committed_state() -> Result<()> {
    let dir = TempDir::new()?;
    let mut last = 0;
    for round in 0..3 {
        let acked = run_child_and_kill(dir.path(), 15 + round * 10)?;
        assert!(acked > last, "the child made progress");
        let coord = Coord::open(dir.path(), 1).await?;
        let state = coord.state();
        assert_eq!(
            coord.collection("crash_alias").map(|c| c.name),
            Some("crash".into())
        );
        assert!(
            state.next_id() >= acked,
            "acknowledged ids {acked} were lost (next id {})",
            state.next_id()
        );
        last = acked;
        coord.shutdown().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_directory_of_another_node_is_refused() -> Result<()> {
    let dir = TempDir::new()?;
    Coord::open(dir.path(), 1).await?.shutdown().await?;
    let err = Coord::open(dir.path(), 2)
        .await
        .err()
        .context("node 2 must be refused")?;
    assert!(err.to_string().contains("not a member"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_on_a_multi_threaded_runtime() -> Result<()> {
    let dir = TempDir::new()?;
    let coord = Coord::open(dir.path(), 1).await?;
    let id = populate(&coord).await?;
    coord.shutdown().await?;
    let coord = Coord::open(dir.path(), 1).await?;
    check(&coord, id);
    coord.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn users_roles_and_grants_survive_snapshots_and_refusals_change_nothing() -> Result<()> {
    use quiver_auth::{Grant, Need, ObjectType, SecurityOp};
    let dir = TempDir::new()?;
    let options = CoordOptions {
        snapshot_every: 3,
        keep_logs_after_snapshot: 1,
        ..Default::default()
    };
    let coord = Coord::open_with(dir.path(), 1, &options, Arc::new(NoPeers)).await?;
    let ops = [
        SecurityOp::CreateUser {
            name: "alice".into(),
            password_hash: "$argon2id$stand-in".into(),
            if_absent: false,
        },
        SecurityOp::CreateRole {
            name: "readers".into(),
        },
        SecurityOp::Grant {
            role: "readers".into(),
            grant: Grant {
                object: ObjectType::Collection,
                object_name: "books".into(),
                privilege: "Search".into(),
                grantor: "root".into(),
            },
        },
        SecurityOp::AddUserToRole {
            user: "alice".into(),
            role: "readers".into(),
        },
    ];
    for op in ops {
        coord.change_security(op).await?;
    }
    let before = coord.state();
    // A refused change: an error of kind AlreadyExists, and nothing changes.
    let dup = coord
        .change_security(SecurityOp::CreateUser {
            name: "alice".into(),
            password_hash: "other".into(),
            if_absent: false,
        })
        .await
        .expect_err("a second alice");
    assert_eq!(dup.kind(), ErrorKind::AlreadyExists, "{dup}");
    assert_eq!(coord.state().security(), before.security());
    for _ in 0..6 {
        coord.allocate_ids(1).await?;
    }
    let snap = dir.path().join("snapshot.json");
    wait_for(Duration::from_secs(10), "a snapshot file", async || {
        snap.exists()
    })
    .await?;
    drop(coord);
    let coord = Coord::open_with(dir.path(), 1, &options, Arc::new(NoPeers)).await?;
    let security = coord.state().security().clone();
    assert_eq!(security, *before.security());
    assert!(security.allows("alice", &Need::on("Search", ["books"])));
    assert!(!security.allows("alice", &Need::on("Insert", ["books"])));
    Ok(())
}
