//! Segment encode / open (mmap) round trips, corruption, upload and cached download.

use std::sync::Arc;

use object_store::ObjectStoreExt;
use proptest::prelude::*;
use quiver_common::{Column, PrimaryKey, ScalarValue};
use quiver_storage::{
    MappedSegment, ObjectStore, SegmentData, encode_segment, fetch_segment, layout,
    open_local_store, put_segment,
};

fn sample(segment_id: u64, rows: usize, dim: usize, str_pks: bool) -> SegmentData {
    let kinds = |i: usize| match i % 6 {
        0 => ScalarValue::Null,
        1 => ScalarValue::Bool(i % 4 == 1),
        2 => ScalarValue::Int(-(i as i64) * 1_000_000_007),
        3 => ScalarValue::Float(i as f64 / 3.0),
        4 => ScalarValue::Str(format!("s-{i}-ü")),
        _ => ScalarValue::Json(format!("{{\"k\":{i}}}")),
    };
    SegmentData {
        segment_id,
        pks: (0..rows)
            .map(|i| {
                if str_pks {
                    PrimaryKey::Str(format!("key-{i}"))
                } else {
                    PrimaryKey::Int(i as i64 * 7 - 3)
                }
            })
            .collect(),
        timestamps: (0..rows as u64).map(|i| 1000 + i).collect(),
        vectors: quiver_common::Vectors::f32(
            dim,
            (0..rows * dim).map(|i| i as f32 * 0.25 - 1.0).collect(),
        ),
        columns: vec![
            Column {
                name: "mixed".into(),
                values: (0..rows).map(kinds).collect(),
            },
            Column {
                name: "n".into(),
                values: (0..rows).map(|i| ScalarValue::Int(i as i64)).collect(),
            },
        ],
        tombstones: if rows.is_multiple_of(2) {
            vec![]
        } else {
            vec![
                (PrimaryKey::Int(42), 5),
                (PrimaryKey::Str("gone".into()), 6),
            ]
        },
        max_ts: 1000 + rows as u64,
        wal_seq: 99,
    }
}

fn assert_same(seg: &MappedSegment, d: &SegmentData) {
    assert_eq!(seg.segment_id(), d.segment_id);
    assert_eq!(seg.len(), d.pks.len());
    assert_eq!(seg.dim(), d.dim());
    assert_eq!(seg.vectors(), d.vectors.view());
    for i in 0..seg.len() {
        assert_eq!(seg.pk(i), &d.pks[i]);
        assert_eq!(seg.timestamp(i), d.timestamps[i]);
    }
    let columns: Vec<_> = seg.columns().iter().map(|c| c.to_column()).collect();
    assert_eq!(columns, d.columns);
    // An integer column is held as integers (8 bytes a value, not 32).
    if let Some(n) = seg
        .columns()
        .iter()
        .find(|c| c.name == "n" && !c.is_empty())
    {
        assert!(matches!(n.slice(), quiver_common::ColumnSlice::Int(_)));
    }
    assert_eq!(seg.tombstones(), &d.tombstones[..]);
    assert_eq!(seg.max_ts(), d.max_ts);
    assert_eq!(seg.wal_seq(), d.wal_seq);
}

#[test]
fn round_trips_through_a_mapped_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rows, dim, str_pks) in [
        (0, 8, false),
        (1, 1, true),
        (100, 50, false),
        (33, 128, true),
    ] {
        let d = sample(rows as u64 + 1, rows, dim, str_pks);
        d.check().expect("consistent");
        let bytes = encode_segment(&d);
        let path = dir.path().join(format!("{rows}.seg"));
        std::fs::write(&path, &bytes).expect("write");
        let seg = MappedSegment::open(&path).expect("open");
        assert!(seg.is_mapped(), "vectors are read in place");
        assert_same(&seg, &d);
        assert_same(&MappedSegment::from_bytes(bytes).expect("from bytes"), &d);
    }
}

#[test]
fn corrupt_files_are_errors() {
    let d = sample(1, 10, 4, true);
    let bytes = encode_segment(&d);
    for i in [0, 10, 100, 128, 200, bytes.len() - 5, bytes.len() - 1] {
        let mut b = bytes.clone();
        b[i] ^= 1;
        let e = MappedSegment::from_bytes(b).expect_err("flipped");
        assert!(e.is_corrupt(), "{e}");
    }
    assert!(MappedSegment::from_bytes(bytes[..bytes.len() - 1].to_vec()).is_err());
    assert!(MappedSegment::from_bytes(vec![]).is_err());
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bad.seg");
    std::fs::write(&p, &bytes[..200]).expect("write");
    assert!(MappedSegment::open(&p).expect_err("truncated").is_corrupt());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn damaged_bytes_never_panic(
        rows in 0usize..20,
        dim in 1usize..9,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let d = sample(3, rows, dim, rows % 3 == 0);
        let original = encode_segment(&d);
        let mut b = original.clone();
        for (i, x) in &flips {
            let i = i.index(b.len());
            b[i] ^= x;
        }
        if let Some(c) = cut {
            let len = c.index(b.len());
            b.truncate(len);
        }
        let damaged = b != original;
        match MappedSegment::from_bytes(b) {
            Ok(seg) => {
                prop_assert!(!damaged, "damage went unnoticed");
                assert_same(&seg, &d);
            }
            Err(e) => prop_assert!(damaged && e.is_corrupt(), "{}", e),
        }
    }
}

/// A local store at `root` holding segment 5 (with an index) and segment
/// 6 (without) of collection 1, shard 2.
async fn two_segments(root: &std::path::Path) -> (Arc<dyn ObjectStore>, SegmentData, SegmentData) {
    let store: Arc<dyn ObjectStore> = open_local_store(root).expect("store");
    let d = sample(5, 40, 16, false);
    put_segment(&store, 1, 2, &d, Some(b"index!".to_vec()))
        .await
        .expect("put");
    let plain = sample(6, 3, 16, true);
    put_segment(&store, 1, 2, &plain, None).await.expect("put");
    (store, d, plain)
}

#[tokio::test]
async fn put_then_fetch_through_the_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, d, plain) = two_segments(&dir.path().join("store")).await;
    let cache = dir.path().join("cache");

    let (seg, idx) = fetch_segment(&store, None, 1, 2, 5, &cache)
        .await
        .expect("fetch");
    assert_same(&seg, &d);
    assert!(seg.is_mapped());
    assert_eq!(idx.as_deref(), Some(&b"index!"[..]));
    let (seg, idx) = fetch_segment(&store, None, 1, 2, 6, &cache)
        .await
        .expect("fetch");
    assert_same(&seg, &plain);
    assert_eq!(idx, None);

    // A valid cached copy is reused even when the store no longer has the object.
    store
        .delete(&layout::segment_path(1, 2, 5))
        .await
        .expect("delete");
    let (seg, _) = fetch_segment(&store, None, 1, 2, 5, &cache)
        .await
        .expect("cached");
    assert_same(&seg, &d);

    // A damaged cached copy is fetched again.
    let cached = cache.join("1/2").join(format!("{:020}.seg", 6));
    let mut b = std::fs::read(&cached).expect("cached file");
    b[150] ^= 0xff;
    std::fs::write(&cached, b).expect("damage");
    let (seg, _) = fetch_segment(&store, None, 1, 2, 6, &cache)
        .await
        .expect("refetch");
    assert_same(&seg, &plain);

    let e = fetch_segment(&store, None, 1, 2, 77, &cache)
        .await
        .expect_err("missing");
    assert!(
        matches!(e, quiver_storage::StorageError::NotFound(_)),
        "{e}"
    );
    let mut bad = sample(8, 2, 4, false);
    bad.vectors = quiver_common::Vectors::f32(3, vec![0.5; 8]);
    assert!(put_segment(&store, 1, 2, &bad, None).await.is_err());
}

/// Over a store on this file system the cache links the object's files:
/// the same inode, nothing copied. Where no link can be made (here: a
/// directory that is not the store's), the object is downloaded; what the
/// store lacks is still NotFound, and a segment without an index has none.
#[tokio::test]
async fn the_cache_links_the_files_of_a_store_on_this_file_system() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let (store, d, plain) = two_segments(&root).await;
    let inode = |p: std::path::PathBuf| std::fs::metadata(&p).map(|m| m.ino()).expect("stat");
    let object = |p: quiver_storage::ObjectPath| root.join(p.as_ref());

    let linked = dir.path().join("linked");
    let (seg, idx) = fetch_segment(&store, Some(&root), 1, 2, 5, &linked)
        .await
        .expect("fetch");
    assert_same(&seg, &d);
    assert_eq!(idx.as_deref(), Some(&b"index!"[..]));
    for (cached, obj) in [
        ("seg", layout::segment_path(1, 2, 5)),
        ("idx", layout::index_path(1, 2, 5)),
    ] {
        let file = linked.join("1/2").join(format!("{:020}.{cached}", 5));
        assert_eq!(inode(file), inode(object(obj)), "{cached} is a link");
    }
    let (seg, idx) = fetch_segment(&store, Some(&root), 1, 2, 6, &linked)
        .await
        .expect("fetch");
    assert_same(&seg, &plain);
    assert_eq!(idx, None);
    let e = fetch_segment(&store, Some(&root), 1, 2, 77, &linked)
        .await
        .expect_err("missing");
    assert!(
        matches!(e, quiver_storage::StorageError::NotFound(_)),
        "{e}"
    );
    // No temp file is left behind.
    let names: Vec<String> = std::fs::read_dir(linked.join("1/2"))
        .expect("cache dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");

    let copied = dir.path().join("copied");
    let elsewhere = dir.path().join("not-the-store");
    let (seg, idx) = fetch_segment(&store, Some(&elsewhere), 1, 2, 5, &copied)
        .await
        .expect("downloaded");
    assert_same(&seg, &d);
    assert_eq!(idx.as_deref(), Some(&b"index!"[..]));
    let file = copied.join("1/2").join(format!("{:020}.seg", 5));
    assert_ne!(inode(file), inode(object(layout::segment_path(1, 2, 5))));
}

/// The names in the cache directory of collection 1, shard 2.
fn cached_names(cache: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache.join("1/2"))
        .expect("cache dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A fetch cancelled mid-download (its replica released) deletes its temp
/// file; the temp file a crashed process left is pruned, and a fetch in
/// flight in this process and the cached segments are not.
#[tokio::test]
async fn cut_off_fetches_leave_no_temp_files() {
    use quiver_test_util::FailingStore;
    let failing = Arc::new(FailingStore::default());
    let store: Arc<dyn ObjectStore> = failing.clone();
    put_segment(&store, 1, 2, &sample(5, 400, 16, false), None)
        .await
        .expect("put");
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().to_path_buf();
    let temps = |c: &std::path::Path| {
        let dir = c.join("1/2");
        std::fs::read_dir(dir).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .count()
        })
    };

    failing.stall_bodies_under(Some(""));
    // A fetch of segment 5, once its download has written a temp file.
    #[allow(clippy::async_yields_async)] // the fetch's handle, to abort or await later
    let stalled = async || {
        let (store, into) = (store.clone(), cache.clone());
        let task = tokio::spawn(async move {
            fetch_segment(&store, None, 1, 2, 5, &into)
                .await
                .map(|_| ())
        });
        quiver_test_util::wait_for(
            std::time::Duration::from_secs(30),
            "the download to start",
            async || temps(&cache) == 1,
        )
        .await
        .expect("a temp file");
        task
    };
    let task = stalled().await;
    task.abort();
    assert!(task.await.expect_err("cancelled").is_cancelled());
    assert_eq!(cached_names(&cache), Vec::<String>::new());

    // A download in flight here, one a crashed process left, and a cached segment.
    let in_flight = stalled().await;
    let crashed = ".00000000000000000005.seg.0123456789abcdef.7.tmp";
    std::fs::write(cache.join("1/2").join(crashed), b"half a segm").expect("write");
    let mine = cached_names(&cache);
    failing.stall_bodies_under(None);
    let other = dir.path().join("other");
    fetch_segment(&store, None, 1, 2, 5, &other)
        .await
        .expect("fetch");
    std::fs::copy(
        other.join("1/2/00000000000000000005.seg"),
        cache.join("1/2/00000000000000000005.seg"),
    )
    .expect("copy");
    assert_eq!(
        quiver_storage::prune_segment_cache(&cache, 1, 2, |_| true).await,
        1
    );
    let mut left = mine.clone();
    left.retain(|n| n != crashed);
    left.push("00000000000000000005.seg".into());
    left.sort();
    assert_eq!(cached_names(&cache), left);
    in_flight.abort();
    let _ = in_flight.await;
    assert_eq!(temps(&cache), 0);
}
