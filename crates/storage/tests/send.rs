//! The crate's futures must be spawnable on a multi-threaded runtime.

use std::path::Path;
use std::sync::Arc;

use quiver_common::{Mutation, PrimaryKey};
use quiver_storage::{ObjectStore, SegmentData, Wal, WalOptions, fetch_segment, put_segment};

fn assert_send<T: Send + 'static>(_: T) {}
fn assert_send_ref<T: Send>(_: T) {}

#[allow(dead_code)]
fn futures_are_send(store: Arc<dyn ObjectStore>, wal: Arc<Wal>) {
    assert_send(Wal::open(store.clone(), 1, 0, 1, 0, WalOptions::default()));
    assert_send(wal.submit(Mutation::Delete {
        ts: 1,
        pks: vec![PrimaryKey::Int(1)],
    }));
    let w = wal.clone();
    assert_send(async move { w.truncate(1).await });
    let d = SegmentData::default();
    assert_send_ref(put_segment(&store, 1, 0, &d, None));
    assert_send_ref(fetch_segment(&store, None, 1, 0, 1, Path::new("/tmp")));
    assert_send(async move {
        let (w, _) = Wal::open(store, 1, 0, 1, 0, WalOptions::default()).await?;
        w.close().await
    });
}

#[test]
fn compiles() {}
