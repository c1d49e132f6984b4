//! The checks every object store Quiver runs on must pass (local directory and S3 alike):
//! WAL append + replay, fencing of a stale epoch, put-if-absent (also under a race), segment
//! upload + cached download, listing and shard deletion. Each check uses its own collection
//! id, so one store holds them all.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutPayload};
use quiver_common::{Mutation, PrimaryKey, RowBatch};
use quiver_storage::{
    ObjectStore, SegmentData, Wal, WalOptions, WalRecord, delete_shard_data, fetch_segment, layout,
    put_segment,
};

const S: u32 = 0;

fn upsert(ts: u64, pk: i64) -> Mutation {
    Mutation::Upsert {
        ts,
        rows: RowBatch {
            pks: vec![PrimaryKey::Int(pk)],
            vectors: quiver_common::Vectors::f32(2, vec![pk as f32, 0.5]),
            columns: vec![],
        },
    }
}

async fn open(
    store: &Arc<dyn ObjectStore>,
    c: u64,
    epoch: u64,
    after: u64,
) -> quiver_storage::Result<(Wal, Vec<WalRecord>)> {
    Wal::open(store.clone(), c, S, epoch, after, WalOptions::default()).await
}

fn tss(rec: &[WalRecord]) -> Vec<u64> {
    rec.iter().map(|r| r.mutation.ts()).collect()
}

/// What a store guarantees beyond the basics.
pub struct Expect {
    /// Concurrent create-only puts of one key have exactly one winner. True of the local
    /// store (hard link), AWS S3 and MinIO; s3s-fs 0.14 checks If-None-Match and then writes,
    /// so it refuses an existing key but lets racing creates all win.
    pub atomic_create_race: bool,
}

/// Runs every check against `store`; `what` names the store in failures.
pub async fn run_all(store: Arc<dyn ObjectStore>, what: &str, expect: Expect) {
    let t = std::time::Instant::now();
    wal_append_and_replay(&store).await;
    eprintln!("{what}: wal append + replay ok ({:?})", t.elapsed());
    newer_epoch_fences_the_old_writer(&store).await;
    stale_writer_stays_fenced_after_truncation(&store).await;
    eprintln!("{what}: fencing ok ({:?})", t.elapsed());
    put_if_absent_refuses_an_existing_key(&store).await;
    if expect.atomic_create_race {
        put_if_absent_race_has_one_winner(&store).await;
    } else {
        eprintln!("{what}: put-if-absent race not checked (the server's create is not atomic)");
    }
    eprintln!("{what}: put-if-absent ok ({:?})", t.elapsed());
    segments_round_trip_and_list(&store).await;
    eprintln!("{what}: segments + listing ok ({:?})", t.elapsed());
}

async fn wal_append_and_replay(store: &Arc<dyn ObjectStore>) {
    const C: u64 = 101;
    let (wal, rec) = open(store, C, 1, 0).await.expect("open");
    assert!(rec.is_empty());
    let wal = Arc::new(wal);
    // 4 concurrent submitters, timestamps in submit order (stamped under one lock).
    let clock = Arc::new(std::sync::Mutex::new(0u64));
    let mut tasks = Vec::new();
    for t in 0..4i64 {
        let (wal, clock) = (wal.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..25 {
                let fut = {
                    let mut c = clock.lock().expect("clock");
                    *c += 1;
                    wal.submit(upsert(*c, t * 100 + i))
                };
                acked.push(fut.await.expect("durable"));
            }
            acked
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task").len(), 25);
    }
    let last = wal.last_seq();
    let wal = Arc::into_inner(wal).expect("sole owner");
    wal.close().await.expect("close");

    let (w2, rec) = open(store, C, 2, 0).await.expect("reopen");
    assert_eq!(
        tss(&rec),
        (1..=100).collect::<Vec<_>>(),
        "all acked, in order"
    );
    assert!(rec.iter().all(|r| r.epoch == 1));
    assert_eq!(w2.last_seq(), last + 1, "the new marker follows the log");
    assert!(w2.recovery().torn_tail.is_none());
    w2.submit(upsert(101, 1)).await.expect("epoch 2 write");
    w2.close().await.expect("close");
    let (_w3, rec) = open(store, C, 3, last)
        .await
        .expect("replay after a checkpoint");
    assert_eq!(tss(&rec), vec![101]);
}

async fn newer_epoch_fences_the_old_writer(store: &Arc<dyn ObjectStore>) {
    const C: u64 = 102;
    let (w1, _) = open(store, C, 1, 0).await.expect("open 1");
    for ts in 1..=3 {
        w1.submit(upsert(ts, ts as i64))
            .await
            .expect("epoch 1 write");
    }
    let (w2, rec) = open(store, C, 2, 0).await.expect("open 2");
    assert_eq!(tss(&rec), vec![1, 2, 3]);

    let e = w1.submit(upsert(4, 4)).await.expect_err("fenced");
    assert!(e.is_fenced(), "{e}");
    assert!(
        w1.submit(upsert(5, 5))
            .await
            .expect_err("still")
            .is_fenced()
    );
    assert!(w1.truncate(100).await.expect_err("truncate").is_fenced());
    w2.submit(upsert(6, 6)).await.expect("epoch 2 write");

    let e = open(store, C, 1, 0).await.expect_err("an older epoch");
    assert!(e.is_fenced(), "{e}");
    let (_w3, rec) = open(store, C, 3, 0).await.expect("open 3");
    let got: Vec<(u64, u64)> = rec.iter().map(|r| (r.mutation.ts(), r.epoch)).collect();
    assert_eq!(got, vec![(1, 1), (2, 1), (3, 1), (6, 2)]);
}

async fn stale_writer_stays_fenced_after_truncation(store: &Arc<dyn ObjectStore>) {
    const C: u64 = 103;
    let (w1, _) = open(store, C, 1, 0).await.expect("open 1");
    w1.submit(upsert(1, 1)).await.expect("write");
    let (w2, _) = open(store, C, 2, 0).await.expect("open 2");
    for ts in 2..=5 {
        w2.submit(upsert(ts, ts as i64)).await.expect("write");
    }
    let up_to = w2.last_seq() - 1;
    w2.truncate(up_to).await.expect("truncate");
    let e = w1.submit(upsert(9, 9)).await.expect_err("fenced");
    assert!(e.is_fenced(), "{e}");
    let (_w3, rec) = open(store, C, 3, up_to).await.expect("open 3");
    assert_eq!(tss(&rec), vec![5]);
}

async fn put_if_absent_refuses_an_existing_key(store: &Arc<dyn ObjectStore>) {
    let p = Path::from("suite/put-if-absent/key");
    store
        .put_opts(
            &p,
            PutPayload::from_static(b"first"),
            PutMode::Create.into(),
        )
        .await
        .expect("create a new key");
    let e = store
        .put_opts(
            &p,
            PutPayload::from_static(b"second"),
            PutMode::Create.into(),
        )
        .await
        .expect_err("the key exists");
    assert!(
        matches!(e, object_store::Error::AlreadyExists { .. }),
        "{e:?}"
    );
    let got = store
        .get(&p)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&got[..], b"first", "the refused put changed nothing");
}

async fn put_if_absent_race_has_one_winner(store: &Arc<dyn ObjectStore>) {
    for round in 0..3 {
        let p = Path::from(format!("suite/race/{round}"));
        let puts = (0..8u8).map(|i| {
            let (store, p) = (store.clone(), p.clone());
            tokio::spawn(async move {
                let body = PutPayload::from(vec![i; 64]);
                (i, store.put_opts(&p, body, PutMode::Create.into()).await)
            })
        });
        let mut winners = Vec::new();
        for h in futures::future::join_all(puts).await {
            match h.expect("task") {
                (i, Ok(_)) => winners.push(i),
                (_, Err(object_store::Error::AlreadyExists { .. })) => {}
                (i, Err(e)) => panic!("put {i}: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let got = store
            .get(&p)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(&got[..], &[winners[0]; 64][..], "the winner's bytes");
    }
}

fn segment(id: u64, rows: usize) -> SegmentData {
    let dim = 4;
    SegmentData {
        segment_id: id,
        pks: (0..rows as i64).map(PrimaryKey::Int).collect(),
        timestamps: (0..rows as u64).map(|i| 100 + i).collect(),
        vectors: quiver_common::Vectors::f32(
            dim,
            (0..rows * dim).map(|i| i as f32 / 7.0).collect(),
        ),
        columns: vec![],
        tombstones: vec![(PrimaryKey::Int(-1), 50)],
        max_ts: 100 + rows as u64,
        wal_seq: 9,
    }
}

async fn segments_round_trip_and_list(store: &Arc<dyn ObjectStore>) {
    const C: u64 = 104;
    let cache = tempfile::tempdir().expect("tempdir");
    let with_index = segment(1, 300);
    put_segment(store, C, S, &with_index, Some(vec![7u8; 5000]))
        .await
        .expect("put");
    put_segment(store, C, S, &segment(2, 3), None)
        .await
        .expect("put");
    put_segment(store, C, S + 1, &segment(3, 1), None)
        .await
        .expect("put");

    let (seg, idx) = fetch_segment(store, None, C, S, 1, cache.path())
        .await
        .expect("fetch");
    assert_eq!((seg.segment_id(), seg.len(), seg.dim()), (1, 300, 4));
    assert_eq!(seg.vectors(), with_index.vectors.view());
    assert_eq!(seg.tombstones(), &with_index.tombstones[..]);
    assert_eq!(idx.as_deref(), Some(&[7u8; 5000][..]));
    let (seg, idx) = fetch_segment(store, None, C, S, 2, cache.path())
        .await
        .expect("fetch");
    assert_eq!((seg.len(), idx), (3, None));
    // Keys alone, by range reads.
    let keys = quiver_storage::read_segment_keys(store, C, S, 1)
        .await
        .expect("keys");
    assert_eq!(keys.pks, with_index.pks);
    assert_eq!(keys.timestamps, with_index.timestamps);
    assert_eq!(keys.tombstones, with_index.tombstones);
    assert_eq!(keys.dim, 4);
    let e = quiver_storage::read_segment_keys(store, C, S, 99)
        .await
        .expect_err("missing");
    assert!(
        matches!(e, quiver_storage::StorageError::NotFound(_)),
        "{e}"
    );
    let e = fetch_segment(store, None, C, S, 99, cache.path())
        .await
        .expect_err("missing");
    assert!(
        matches!(e, quiver_storage::StorageError::NotFound(_)),
        "{e}"
    );

    // Listing: a prefix lists what is under it, and only that.
    let prefix = layout::segments_prefix(C, S);
    let mut ids: Vec<u64> = store
        .list(Some(&prefix))
        .map_ok(|m| layout::parse_segment_id(&m.location))
        .try_collect::<Vec<_>>()
        .await
        .expect("list")
        .into_iter()
        .flatten()
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2]);
    let metas: Vec<_> = store.list(Some(&prefix)).try_collect().await.expect("list");
    assert_eq!(metas.len(), 3, "two segments and one index: {metas:?}");
    let idx_meta = metas
        .iter()
        .find(|m| m.location == layout::index_path(C, S, 1))
        .expect("index listed");
    assert_eq!(idx_meta.size, 5000);
    let shards = store
        .list_with_delimiter(Some(&Path::from(format!("segments/{C}"))))
        .await
        .expect("list with delimiter");
    let mut dirs: Vec<String> = shards
        .common_prefixes
        .iter()
        .map(|p| p.to_string())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        vec![format!("segments/{C}/0"), format!("segments/{C}/1")]
    );

    assert_eq!(delete_shard_data(store, C, S).await.expect("delete"), 3);
    let left: Vec<_> = store
        .list(Some(&Path::from(format!("segments/{C}"))))
        .try_collect()
        .await
        .expect("list");
    assert_eq!(left.len(), 1, "only the other shard's segment: {left:?}");
}
