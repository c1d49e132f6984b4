//! An in-memory object store whose puts can be made to fail (fault injection for tests).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

#[derive(Debug, Default)]
pub struct FailingStore {
    inner: InMemory,
    fail: AtomicBool,
    /// `(path, bytes)`: written just before the next put to `path` (a concurrent writer).
    race: Mutex<Option<(Path, PutPayload)>>,
}

impl FailingStore {
    pub fn fail_puts(&self, on: bool) {
        self.fail.store(on, Ordering::SeqCst);
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
        if self.fail.load(Ordering::SeqCst) {
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
        self.inner.put_opts(l, p, o).await
    }
    async fn put_multipart_opts(
        &self,
        l: &Path,
        o: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(l, o).await
    }
    async fn get_opts(&self, l: &Path, o: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(l, o).await
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
