//! Storage tests: openraft's own storage suite, plus crash-shaped cases
//! (reopen, torn last record, interrupted purge) the suite cannot see.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use openraft::storage::{RaftLogReader, RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite, log_id};
use openraft::{EntryPayload, RaftSnapshotBuilder, Vote};
use quiver_common::CollectionSchema;
use quiver_common::Metric;
use tempfile::TempDir;

use super::{Entry, LogStore, StateMachine, StorageError, TypeConfig};
use crate::command::{MetaCommand, MetaRequest, MetaResponse};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = TempDir::new().expect("temp dir");
        let log = LogStore::open(dir.path()).expect("open log");
        let (sm, _rx) = StateMachine::open(dir.path()).expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("openraft storage suite");
}

fn blank(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Blank,
    }
}

fn create(term: u64, index: u64, name: &str) -> Entry {
    let cmd = MetaCommand::CreateCollection {
        schema: CollectionSchema::simple(name, 4),
        shards: 1,
        metric: Metric::L2,
        index: None,
        partitions: None,
    };
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal(MetaRequest {
            ts: index,
            cmd,
            request: None,
        }),
    }
}

async fn indexes(log: &mut LogStore) -> Vec<u64> {
    let entries = log.try_get_log_entries(..).await.expect("read");
    entries.iter().map(|e| e.log_id.index).collect()
}

fn append_raw(dir: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.join("raft-log"))
        .expect("open log file");
    f.write_all(bytes).expect("append");
}

#[tokio::test]
async fn log_survives_reopen_with_truncate_purge_and_vote() {
    let dir = TempDir::new().expect("dir");
    {
        let mut log = LogStore::open(dir.path()).expect("open");
        log.blocking_append((1..=6).map(|i| blank(1, i)))
            .await
            .expect("append");
        log.truncate(log_id(1, 1, 5)).await.expect("truncate");
        log.blocking_append([blank(2, 5)])
            .await
            .expect("append after truncate");
        log.purge(log_id(1, 1, 2)).await.expect("purge");
        log.save_vote(&Vote::new(2, 1)).await.expect("vote");
        log.save_committed(Some(log_id(2, 1, 5)))
            .await
            .expect("committed");
        assert_eq!(indexes(&mut log).await, vec![3, 4, 5]);
    }
    let mut log = LogStore::open(dir.path()).expect("reopen");
    assert_eq!(indexes(&mut log).await, vec![3, 4, 5]);
    let state = log.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 2)));
    assert_eq!(state.last_log_id, Some(log_id(2, 1, 5)));
    assert_eq!(log.read_vote().await.expect("vote"), Some(Vote::new(2, 1)));
    assert_eq!(
        log.read_committed().await.expect("c"),
        Some(log_id(2, 1, 5))
    );
    // Appends continue at the right place after a reopen.
    log.blocking_append([blank(2, 6)]).await.expect("append");
    drop(log);
    let mut log = LogStore::open(dir.path()).expect("reopen 2");
    assert_eq!(indexes(&mut log).await, vec![3, 4, 5, 6]);
}

#[tokio::test]
async fn torn_last_record_is_dropped_on_reopen() {
    let dir = TempDir::new().expect("dir");
    let mut log = LogStore::open(dir.path()).expect("open");
    log.blocking_append((1..=3).map(|i| blank(1, i)))
        .await
        .expect("append");
    drop(log);
    let len = std::fs::metadata(dir.path().join("raft-log"))
        .expect("meta")
        .len();
    // A record whose payload was cut short by a crash.
    append_raw(dir.path(), &[40, 0, 0, 0, 1, 2, 3, 4, b'{', b'"']);
    let mut log = LogStore::open(dir.path()).expect("reopen");
    assert_eq!(indexes(&mut log).await, vec![1, 2, 3]);
    let after = std::fs::metadata(dir.path().join("raft-log"))
        .expect("meta")
        .len();
    assert_eq!(after, len, "the torn bytes are cut off");
    log.blocking_append([blank(1, 4)])
        .await
        .expect("append after repair");
    drop(log);
    // A complete-length last record with a bad checksum is torn too.
    let mut bad = Vec::new();
    super::log_file::encode(&blank(1, 5), &mut bad).expect("encode");
    bad[4] ^= 0xff;
    append_raw(dir.path(), &bad);
    // And just a partial header.
    let mut log = LogStore::open(dir.path()).expect("reopen 2");
    assert_eq!(indexes(&mut log).await, vec![1, 2, 3, 4]);
    drop(log);
    append_raw(dir.path(), &[7, 0]);
    let mut log = LogStore::open(dir.path()).expect("reopen 3");
    assert_eq!(indexes(&mut log).await, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn corruption_before_the_tail_is_an_error() {
    let dir = TempDir::new().expect("dir");
    let mut log = LogStore::open(dir.path()).expect("open");
    log.blocking_append((1..=3).map(|i| blank(1, i)))
        .await
        .expect("append");
    drop(log);
    let path = dir.path().join("raft-log");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[super::log_file::MAGIC.len() + 9] ^= 0xff; // inside the first payload
    std::fs::write(&path, bytes).expect("write");
    let err = LogStore::open(dir.path()).err().expect("must fail");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

#[tokio::test]
async fn second_open_of_a_directory_is_refused() {
    let dir = TempDir::new().expect("dir");
    let _log = LogStore::open(dir.path()).expect("open");
    let err = LogStore::open(dir.path()).err().expect("locked");
    assert!(matches!(err, crate::CoordError::Locked(_)), "{err}");
}

#[tokio::test]
async fn snapshot_restores_state_after_reopen() {
    let dir = TempDir::new().expect("dir");
    let (mut sm, rx) = StateMachine::open(dir.path()).expect("open");
    let replies = sm
        .apply([create(1, 1, "a"), create(1, 2, "a")])
        .await
        .expect("apply");
    assert_eq!(replies[0], Ok(MetaResponse::CollectionCreated { id: 1 }));
    assert!(
        replies[1].is_err(),
        "duplicate name is a rule error, not a storage error"
    );
    assert_eq!(rx.borrow().version(), 1, "watch sees the applied state");
    let snap = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build");
    assert_eq!(snap.meta.last_log_id, Some(log_id(1, 1, 2)));
    sm.apply([create(1, 3, "b")])
        .await
        .expect("apply after snapshot");
    drop(sm);
    let (mut sm, rx) = StateMachine::open(dir.path()).expect("reopen");
    let (applied, _) = sm.applied_state().await.expect("applied");
    assert_eq!(
        applied,
        Some(log_id(1, 1, 2)),
        "state is back at the snapshot"
    );
    assert!(rx.borrow().collection("a").is_some());
    assert!(
        rx.borrow().collection("b").is_none(),
        "b is re-applied from the log by raft"
    );

    // Install the snapshot into a fresh state machine.
    let other = TempDir::new().expect("dir");
    let (mut sm2, rx2) = StateMachine::open(other.path()).expect("open");
    let current = sm.get_current_snapshot().await.expect("get").expect("some");
    sm2.install_snapshot(&current.meta, current.snapshot)
        .await
        .expect("install");
    assert!(rx2.borrow().collection("a").is_some());
    assert_eq!(
        sm2.applied_state().await.expect("applied").0,
        Some(log_id(1, 1, 2))
    );
}

#[tokio::test]
async fn interrupted_purge_is_finished_on_reopen() {
    let dir = TempDir::new().expect("dir");
    let path = dir.path().join("raft-log");
    let mut log = LogStore::open(dir.path()).expect("open");
    log.blocking_append((1..=5).map(|i| blank(1, i)))
        .await
        .expect("append");
    let before_rewrite = std::fs::read(&path).expect("read");
    log.purge(log_id(1, 1, 2)).await.expect("purge");
    drop(log);
    // As if the crash hit after the purge mark was saved but before the rewrite.
    std::fs::write(&path, before_rewrite).expect("restore");
    let mut log = LogStore::open(dir.path()).expect("reopen");
    assert_eq!(indexes(&mut log).await, vec![3, 4, 5]);
}
