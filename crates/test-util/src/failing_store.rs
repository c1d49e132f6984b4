//! An in-memory object store whose puts can be made to fail and whose gets
//! can be held (fault injection for tests).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

#[derive(Debug, Default)]
pub struct FailingStore {
    inner: InMemory,
    fail: AtomicBool,
    /// Puts fail as on a full disk (ENOSPC).
    full: AtomicBool,
    /// Puts still to fail before they work again.
    fail_next: AtomicUsize,
    /// The next put lands but reports a failure (its answer is lost).
    lose_answer: AtomicBool,
    /// Puts under this path prefix fail (e.g. only segments, not the WAL).
    fail_prefix: Mutex<Option<String>>,
    /// `(path, bytes)`: written just before the next put to `path` (a concurrent writer).
    race: Mutex<Option<(Path, PutPayload)>>,
    /// Gets under this path prefix wait until it is lifted (a store as slow
    /// as a test needs).
    hold_prefix: Mutex<Option<String>>,
    /// Only whole-object gets are held (a ranged read, as of a segment's
    /// keys, goes through).
    hold_whole_only: AtomicBool,
    released: tokio::sync::Notify,
    /// Gets waiting on `hold_prefix` now.
    held: AtomicUsize,
    /// Whole-object gets under this prefix send half their bytes, then stall
    /// (a download cut off mid-way).
    stall_prefix: Mutex<Option<String>>,
}

impl FailingStore {
    pub fn fail_puts(&self, on: bool) {
        self.fail.store(on, Ordering::SeqCst);
    }

    /// Makes puts under `prefix` fail (`None`: they work again).
    pub fn fail_puts_under(&self, prefix: Option<&str>) {
        *self.fail_prefix.lock().expect("lock") = prefix.map(str::to_string);
    }

    /// Makes every put fail as on a full disk (ENOSPC) while `on`.
    pub fn fill_disk(&self, on: bool) {
        self.full.store(on, Ordering::SeqCst);
    }

    /// Makes the next `n` puts fail (then they work again).
    pub fn fail_next_puts(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Makes the next put land but report a failure, as when its answer is lost.
    pub fn lose_next_answer(&self) {
        self.lose_answer.store(true, Ordering::SeqCst);
    }

    /// Holds gets under `prefix` until called again with `None`.
    pub fn hold_gets_under(&self, prefix: Option<&str>) {
        self.hold(prefix, false);
    }

    /// Holds whole-object gets under `prefix` (ranged reads go through)
    /// until [`FailingStore::hold_gets_under`] is called with `None`.
    pub fn hold_whole_gets_under(&self, prefix: &str) {
        self.hold(Some(prefix), true);
    }

    fn hold(&self, prefix: Option<&str>, whole_only: bool) {
        self.hold_whole_only.store(whole_only, Ordering::SeqCst);
        *self.hold_prefix.lock().expect("lock") = prefix.map(str::to_string);
        self.released.notify_waiters();
    }

    /// Gets held by [`FailingStore::hold_gets_under`] now.
    pub fn held_gets(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Makes whole-object gets under `prefix` send the first half of their
    /// bytes and then never finish (`None`: they work again).
    pub fn stall_bodies_under(&self, prefix: Option<&str>) {
        *self.stall_prefix.lock().expect("lock") = prefix.map(str::to_string);
    }

    /// Makes the next put to `path` lose a race against a put of `bytes` to the same path.
    pub fn race_next_put(&self, path: Path, bytes: PutPayload) {
        *self.race.lock().expect("lock") = Some((path, bytes));
    }
}

impl std::fmt::Display for FailingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FailingStore")
    }
}

#[async_trait::async_trait]
impl ObjectStore for FailingStore {
    async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
        let failing_next = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if self.full.load(Ordering::SeqCst) {
            return Err(object_store::Error::Generic {
                store: "FailingStore",
                source: Box::new(std::io::Error::from_raw_os_error(28)),
            });
        }
        let under_prefix = self
            .fail_prefix
            .lock()
            .expect("lock")
            .as_deref()
            .is_some_and(|p| l.as_ref().starts_with(p));
        if self.fail.load(Ordering::SeqCst) || failing_next || under_prefix {
            return Err(object_store::Error::Generic {
                store: "FailingStore",
                source: "injected put failure".into(),
            });
        }
        let race = {
            let mut r = self.race.lock().expect("lock");
            match r.take() {
                Some((path, bytes)) if &path == l => Some(bytes),
                other => {
                    *r = other;
                    None
                }
            }
        };
        if let Some(bytes) = race {
            self.inner.put_opts(l, bytes, PutOptions::default()).await?;
        }
        let put = self.inner.put_opts(l, p, o).await?;
        if self.lose_answer.swap(false, Ordering::SeqCst) {
            return Err(object_store::Error::Generic {
                store: "FailingStore",
                source: "injected lost answer (the put landed)".into(),
            });
        }
        Ok(put)
    }
    async fn put_multipart_opts(
        &self,
        l: &Path,
        o: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(l, o).await
    }
    async fn get_opts(&self, l: &Path, o: GetOptions) -> Result<GetResult> {
        loop {
            // Registered before the check: a release in between still wakes it.
            let released = self.released.notified();
            let whole_only = self.hold_whole_only.load(Ordering::SeqCst);
            let held = (self.hold_prefix.lock().expect("lock").as_deref())
                .is_some_and(|p| l.as_ref().starts_with(p))
                && !(whole_only && o.range.is_some());
            if !held {
                break;
            }
            self.held.fetch_add(1, Ordering::SeqCst);
            released.await;
            self.held.fetch_sub(1, Ordering::SeqCst);
        }
        let stalled = o.range.is_none()
            && (self.stall_prefix.lock().expect("lock").as_deref())
                .is_some_and(|p| l.as_ref().starts_with(p));
        let mut got = self.inner.get_opts(l, o).await?;
        if stalled {
            let bytes = std::mem::replace(
                &mut got.payload,
                GetResultPayload::Stream(futures::stream::empty().boxed()),
            );
            let GetResultPayload::Stream(body) = bytes else {
                return Ok(got);
            };
            let all: Vec<bytes::Bytes> = body.try_collect().await?;
            let all: Vec<u8> = all.concat();
            let half = bytes::Bytes::copy_from_slice(&all[..all.len() / 2]);
            got.payload = GetResultPayload::Stream(
                futures::stream::once(async move { Ok(half) })
                    .chain(futures::stream::pending())
                    .boxed(),
            );
        }
        Ok(got)
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, o).await
    }
}
