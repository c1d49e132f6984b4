//! WAL behaviour against the real (fsync'd) local object store and a fault-injecting store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quiver_common::{Mutation, PrimaryKey, RowBatch};
use quiver_storage::{ObjectStore, StorageError, Wal, WalOptions, WalRecord, open_local_store};
use quiver_test_util::FailingStore;

const C: u64 = 7;
const S: u32 = 1;

fn upsert(ts: u64, pk: i64, dim: usize) -> Mutation {
    Mutation::Upsert {
        ts,
        rows: RowBatch {
            pks: vec![PrimaryKey::Int(pk)],
            vectors: quiver_common::Vectors::f32(
                dim,
                (0..dim).map(|i| pk as f32 + i as f32 / 8.0).collect(),
            ),
            columns: vec![],
        },
    }
}

fn wal_dir(root: &Path) -> PathBuf {
    root.join("wal").join(C.to_string()).join(S.to_string())
}

fn wal_file(root: &Path, seq: u64) -> PathBuf {
    wal_dir(root).join(format!("{seq:020}.wal"))
}

fn wal_seqs(root: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(wal_dir(root))
        .expect("wal dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".wal")?.parse().ok()
        })
        .collect();
    v.sort_unstable();
    v
}

async fn open(
    store: &Arc<dyn ObjectStore>,
    epoch: u64,
    after: u64,
) -> quiver_storage::Result<(Wal, Vec<WalRecord>)> {
    Wal::open(store.clone(), C, S, epoch, after, WalOptions::default()).await
}

fn ts_of(r: &WalRecord) -> u64 {
    r.mutation.ts()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submitters_are_group_committed_and_recovered_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_local_store(dir.path()).expect("store");
    let (wal, recovered) = open(&store, 1, 0).await.expect("open");
    assert!(recovered.is_empty());
    let wal = Arc::new(wal);
    // Callers stamp timestamps under their own lock and submit under it.
    let clock = Arc::new(std::sync::Mutex::new(0u64));
    let (tasks, per_task) = (50, 100);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (wal, clock) = (wal.clone(), clock.clone());
        handles.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..per_task {
                let pk = (t * per_task + i) as i64;
                let fut = {
                    let mut c = clock.lock().expect("clock");
                    *c += 1;
                    wal.submit(upsert(*c, pk, 4))
                };
                let seq = fut.await.expect("durable");
                acked.push((pk, seq));
            }
            acked
        }));
    }
    let mut acked: HashMap<i64, u64> = HashMap::new();
    for h in handles {
        acked.extend(h.await.expect("task"));
    }
    assert_eq!(acked.len(), tasks * per_task);
    let last = wal.last_seq();
    drop(wal);

    let objects = wal_seqs(dir.path()).len();
    eprintln!("{} submits -> {objects} wal objects", tasks * per_task);
    assert!(
        objects < tasks * per_task / 2,
        "group commit: {objects} objects for 5000 submits"
    );

    let (wal2, recovered) = open(&store, 2, 0).await.expect("reopen");
    assert_eq!(recovered.len(), tasks * per_task);
    let mut seen = HashMap::new();
    for w in recovered.windows(2) {
        assert!(w[0].seq <= w[1].seq, "seq order");
        assert!(ts_of(&w[0]) < ts_of(&w[1]), "timestamp order = wal order");
    }
    for r in &recovered {
        let Mutation::Upsert { rows, .. } = &r.mutation else {
            panic!("upsert expected");
        };
        let PrimaryKey::Int(pk) = rows.pks[0] else {
            panic!("int pk")
        };
        assert_eq!(acked.get(&pk), Some(&r.seq), "acked seq of {pk}");
        assert_eq!(r.epoch, 1);
        assert_eq!(
            rows.vectors,
            quiver_common::Vectors::f32(4, (0..4).map(|i| pk as f32 + i as f32 / 8.0).collect())
        );
        assert!(seen.insert(pk, ()).is_none(), "{pk} recovered twice");
    }
    assert_eq!(
        wal2.last_seq(),
        last + 1,
        "the new epoch's marker follows the log"
    );
}

#[tokio::test]
async fn newer_epoch_fences_the_old_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_local_store(dir.path()).expect("store");
    let (w1, _) = open(&store, 1, 0).await.expect("open 1");
    for ts in 1..=3 {
        w1.submit(upsert(ts, ts as i64, 2))
            .await
            .expect("epoch 1 write");
    }
    let (w2, rec) = open(&store, 2, 0).await.expect("open 2");
    assert_eq!(rec.iter().map(ts_of).collect::<Vec<_>>(), vec![1, 2, 3]);

    let e = w1.submit(upsert(4, 4, 2)).await.expect_err("fenced");
    assert!(matches!(e, StorageError::Fenced(_)), "{e}");
    let e = w1.submit(upsert(5, 5, 2)).await.expect_err("still fenced");
    assert!(e.is_fenced());
    assert_eq!(
        quiver_common::Error::from(e).kind(),
        quiver_common::ErrorKind::Fenced
    );
    assert!(
        w1.truncate(100)
            .await
            .expect_err("fenced truncate")
            .is_fenced()
    );
    w2.submit(upsert(6, 6, 2)).await.expect("epoch 2 write");

    // An older epoch cannot take the log back.
    let e = open(&store, 1, 0).await.expect_err("older epoch");
    assert!(e.is_fenced(), "{e}");

    let (_w3, rec) = open(&store, 3, 0).await.expect("open 3");
    let got: Vec<(u64, u64)> = rec.iter().map(|r| (ts_of(r), r.epoch)).collect();
    assert_eq!(got, vec![(1, 1), (2, 1), (3, 1), (6, 2)]);
}

#[tokio::test]
async fn a_stale_writer_stays_fenced_after_truncation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_local_store(dir.path()).expect("store");
    let (w1, _) = open(&store, 1, 0).await.expect("open 1");
    w1.submit(upsert(1, 1, 2)).await.expect("write");
    let (w2, _) = open(&store, 2, 0).await.expect("open 2");
    for ts in 2..=5 {
        w2.submit(upsert(ts, ts as i64, 2)).await.expect("write");
    }
    let up_to = w2.last_seq() - 1;
    w2.truncate(up_to).await.expect("truncate");
    // w1's next seq is w2's epoch marker, which truncate keeps: w1 stays fenced.
    let e = w1.submit(upsert(9, 9, 2)).await.expect_err("fenced");
    assert!(e.is_fenced(), "{e}");
    let (_w3, rec) = open(&store, 3, up_to).await.expect("open 3");
    assert_eq!(rec.iter().map(ts_of).collect::<Vec<_>>(), vec![5]);
}

#[tokio::test]
async fn torn_tail_is_skipped_and_reported_but_middle_corruption_fails() {
    for damage in ["truncate", "flip"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_local_store(dir.path()).expect("store");
        let (w, _) = open(&store, 1, 0).await.expect("open");
        let mut seqs = Vec::new();
        for ts in 1..=3 {
            seqs.push(w.submit(upsert(ts, ts as i64, 8)).await.expect("write"));
        }
        w.close().await.expect("close");
        let (s1, s2, s3) = (seqs[0], seqs[1], seqs[2]);
        assert!(s1 < s2 && s2 < s3);

        let hurt = |seq: u64| {
            let f = wal_file(dir.path(), seq);
            let mut b = std::fs::read(&f).expect("read");
            match damage {
                "truncate" => b.truncate(b.len() - 5),
                _ => {
                    let i = b.len() - 3;
                    b[i] ^= 0x40;
                }
            }
            std::fs::write(&f, b).expect("write");
        };
        let saved_s2 = std::fs::read(wal_file(dir.path(), s2)).expect("read");
        hurt(s2);
        let e = open(&store, 2, 0).await.expect_err("middle corruption");
        assert!(e.is_corrupt(), "{damage}: {e}");
        std::fs::write(wal_file(dir.path(), s2), saved_s2).expect("restore");

        hurt(s3);
        let (w2, rec) = open(&store, 2, 0).await.expect("torn tail recovers");
        assert_eq!(
            rec.iter().map(ts_of).collect::<Vec<_>>(),
            vec![1, 2],
            "{damage}"
        );
        let torn = w2.recovery().torn_tail.clone().expect("torn tail reported");
        assert_eq!(torn.seq, s3);
        assert!(dir.path().join(&torn.quarantined_to).exists());
        assert!(w2.last_seq() > s3);
        w2.submit(upsert(10, 10, 8))
            .await
            .expect("write after recovery");
        drop(w2);
        // The replaced object now sits in the middle and reads as empty, not corrupt.
        let (w3, rec) = open(&store, 3, 0).await.expect("reopen");
        assert_eq!(rec.iter().map(ts_of).collect::<Vec<_>>(), vec![1, 2, 10]);
        assert!(w3.recovery().torn_tail.is_none());
    }
}

#[tokio::test]
async fn truncate_removes_covered_objects_and_recovery_starts_after_the_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_local_store(dir.path()).expect("store");
    let (w, _) = open(&store, 1, 0).await.expect("open");
    let marker = w.last_seq();
    let mut seqs = Vec::new();
    for ts in 1..=6 {
        seqs.push(w.submit(upsert(ts, ts as i64, 3)).await.expect("write"));
    }
    let checkpoint = seqs[3];
    w.truncate(checkpoint).await.expect("truncate");
    let left = wal_seqs(dir.path());
    let mut want = vec![marker];
    want.extend(&seqs[4..]);
    assert_eq!(
        left, want,
        "data objects <= checkpoint deleted, epoch marker kept"
    );
    // Truncating everything still keeps the newest object (it anchors the next seq).
    w.truncate(u64::MAX).await.expect("truncate all");
    assert_eq!(wal_seqs(dir.path()), vec![marker, seqs[5]]);
    w.close().await.expect("close");

    let (w2, rec) = open(&store, 2, checkpoint).await.expect("reopen");
    assert_eq!(rec.iter().map(ts_of).collect::<Vec<_>>(), vec![6]);
    assert_eq!(w2.last_seq(), seqs[5] + 1);
}

fn fast_refusal() -> WalOptions {
    WalOptions {
        retry_for: std::time::Duration::ZERO,
        probe_every: std::time::Duration::from_millis(10),
        ..WalOptions::default()
    }
}

async fn until_resumed(w: &Wal) {
    quiver_test_util::wait_for(
        std::time::Duration::from_secs(10),
        "the log to take writes again",
        async || w.stalled().is_none(),
    )
    .await
    .expect("resumed");
}

#[tokio::test]
async fn a_full_disk_refuses_writes_at_once_and_the_log_resumes_by_itself() {
    let fs = Arc::new(FailingStore::default());
    let store: Arc<dyn ObjectStore> = fs.clone();
    // The default retry budget: a full disk is not retried at all.
    let (w, _) = Wal::open(store.clone(), C, S, 1, 0, WalOptions::default())
        .await
        .expect("open");
    let seq = w.submit(upsert(1, 1, 2)).await.expect("write");
    fs.fill_disk(true);
    let e = w.submit(upsert(2, 2, 2)).await.expect_err("disk full");
    assert!(
        matches!(e, StorageError::Refused { no_space: true, .. }),
        "{e}"
    );
    assert_eq!(
        quiver_common::Error::from(e).kind(),
        quiver_common::ErrorKind::NoSpace
    );
    // While the disk is full, writes are refused without a put.
    let e = w.submit(upsert(3, 3, 2)).await.expect_err("still full");
    assert!(e.is_refused(), "{e}");
    assert!(w.stalled().is_some());
    fs.fill_disk(false);
    until_resumed(&w).await;
    // The next write takes the very next seq: nothing skipped, nothing reused.
    let seq4 = w.submit(upsert(4, 4, 2)).await.expect("write after room");
    assert_eq!(seq4, seq + 1);
    w.close().await.expect("close");
    let (_, rec) = open(&store, 2, 0).await.expect("reopen");
    assert_eq!(rec.iter().map(ts_of).collect::<Vec<_>>(), vec![1, 4]);
}

#[tokio::test]
async fn a_failing_store_refuses_after_the_retry_budget_and_the_log_resumes() {
    let fs = Arc::new(FailingStore::default());
    let store: Arc<dyn ObjectStore> = fs.clone();
    let (w, _) = Wal::open(store.clone(), C, S, 1, 0, fast_refusal())
        .await
        .expect("open");
    w.submit(upsert(1, 1, 2)).await.expect("write");
    fs.fail_puts(true);
    let e = w.submit(upsert(2, 2, 2)).await.expect_err("put fails");
    assert!(
        matches!(
            e,
            StorageError::Refused {
                no_space: false,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        quiver_common::Error::from(e).kind(),
        quiver_common::ErrorKind::Unavailable
    );
    fs.fail_puts(false);
    until_resumed(&w).await;
    w.submit(upsert(3, 3, 2))
        .await
        .expect("write after the fault");
    w.close().await.expect("close");
    let (_, rec) = open(&store, 2, 0).await.expect("reopen");
    assert_eq!(rec.iter().map(ts_of).collect::<Vec<_>>(), vec![1, 3]);
}

#[tokio::test]
async fn a_refused_batch_that_landed_after_all_stops_the_log_for_a_replay() {
    let fs = Arc::new(FailingStore::default());
    let store: Arc<dyn ObjectStore> = fs.clone();
    let (w, _) = Wal::open(store.clone(), C, S, 1, 0, fast_refusal())
        .await
        .expect("open");
    w.submit(upsert(1, 1, 2)).await.expect("write");
    // The put lands but its answer is lost, and there is no retry budget:
    // the write is refused although it is durable.
    fs.lose_next_answer();
    let e = w.submit(upsert(2, 2, 2)).await.expect_err("answer lost");
    assert!(e.is_refused(), "{e}");
    until_resumed(&w).await;
    // The next batch finds the refused one in its seq: the log cannot go on
    // without replaying it, so it stops (not fenced: the shard reopens).
    let e = w.submit(upsert(3, 3, 2)).await.expect_err("stops");
    assert!(!e.is_fenced() && !e.is_refused(), "{e}");
    let e = w.submit(upsert(4, 4, 2)).await.expect_err("stopped");
    assert!(!e.is_refused(), "{e}");
    let (w2, rec) = open(&store, 2, 0).await.expect("reopen");
    assert_eq!(rec.iter().map(ts_of).collect::<Vec<_>>(), vec![1, 2]);
    w2.submit(upsert(5, 5, 2))
        .await
        .expect("write after reopen");
}

#[tokio::test]
async fn a_batch_larger_than_the_limits_goes_out_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_local_store(dir.path()).expect("store");
    let opts = WalOptions {
        max_batch_bytes: 64,
        max_batch_records: 2,
        ..WalOptions::default()
    };
    let (w, _) = Wal::open(store.clone(), C, S, 1, 0, opts)
        .await
        .expect("open");
    let futs: Vec<_> = (1..=5)
        .map(|ts| w.submit(upsert(ts, ts as i64, 64)))
        .collect();
    let mut seqs = Vec::new();
    for f in futs {
        seqs.push(f.await.expect("write"));
    }
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        5,
        "each 256-byte record exceeds max_batch_bytes"
    );
}

#[tokio::test]
async fn claim_retries_when_the_old_owner_writes_the_seq_first() {
    use object_store::ObjectStoreExt;
    let fs = Arc::new(FailingStore::default());
    let store: Arc<dyn ObjectStore> = fs.clone();
    let (w1, _) = open(&store, 1, 0).await.expect("open 1");
    w1.submit(upsert(1, 1, 2)).await.expect("write");
    let s2 = w1.submit(upsert(2, 2, 2)).await.expect("write");
    w1.close().await.expect("close");
    // Take the object back out, and have it land while epoch 2 tries to claim its seq.
    let path = quiver_storage::layout::wal_path(C, S, s2);
    let bytes = store
        .get(&path)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    store.delete(&path).await.expect("delete");
    fs.race_next_put(path, bytes.into());
    let (w2, rec) = open(&store, 2, 0).await.expect("open 2");
    assert_eq!(rec.iter().map(ts_of).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(w2.recovery().claimed_seq, s2 + 1);
}

#[tokio::test]
async fn transient_put_failures_are_retried_and_acknowledged_once() {
    let fs = Arc::new(FailingStore::default());
    let store: Arc<dyn ObjectStore> = fs.clone();
    let (w, _) = open(&store, 1, 0).await.expect("open");
    fs.fail_next_puts(3);
    let seq = w.submit(upsert(1, 1, 2)).await.expect("retried write");
    // A put that landed but whose answer was lost is recognised by its bytes.
    fs.lose_next_answer();
    let seq2 = w.submit(upsert(2, 2, 2)).await.expect("lost answer");
    assert!(seq2 > seq);
    let seq3 = w.submit(upsert(3, 3, 2)).await.expect("next write");
    assert!(seq3 > seq2);
    drop(w);
    let (_w2, rec) = open(&store, 2, 0).await.expect("reopen");
    assert_eq!(rec.iter().map(ts_of).collect::<Vec<_>>(), vec![1, 2, 3]);
}

#[tokio::test]
async fn a_retry_that_finds_another_owners_object_is_fenced() {
    let fs = Arc::new(FailingStore::default());
    let store: Arc<dyn ObjectStore> = fs.clone();
    let (w, _) = open(&store, 1, 0).await.expect("open");
    w.submit(upsert(1, 1, 2)).await.expect("write");
    // The first attempt fails; meanwhile a newer owner takes the next seq.
    fs.fail_next_puts(1);
    let next = w.last_seq() + 1;
    let path = object_store::path::Path::from(format!("wal/{C}/{S}/{next:020}.wal"));
    fs.race_next_put(path, object_store::PutPayload::from_static(b"someone else"));
    let e = w.submit(upsert(2, 2, 2)).await.expect_err("fenced");
    assert!(e.is_fenced(), "{e}");
}
