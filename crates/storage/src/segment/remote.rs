//! Segments in the object store: upload, and download into a local cache that is mapped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::AsyncWriteExt;

use super::format::{HEADER_LEN, Header, SegmentKeys, decode_header, decode_keys};
use super::{MappedSegment, SegmentData, encode_segment};
use crate::error::{Result, StorageError};
use crate::layout;

/// Uploads a segment: the index first (if any), then the segment file, so a visible segment
/// file implies its index is there. Overwrites are harmless: segment ids are never reused.
pub async fn put_segment(
    store: &Arc<dyn ObjectStore>,
    collection_id: u64,
    shard: u32,
    data: &SegmentData,
    index_bytes: Option<Vec<u8>>,
) -> Result<()> {
    data.check()?;
    if let Some(idx) = index_bytes {
        let p = layout::index_path(collection_id, shard, data.segment_id);
        store
            .put(&p, PutPayload::from(idx))
            .await
            .map_err(|e| StorageError::store(p.to_string(), e))?;
    }
    let p = layout::segment_path(collection_id, shard, data.segment_id);
    store
        .put(&p, PutPayload::from(encode_segment(data)))
        .await
        .map_err(|e| StorageError::store(p.to_string(), e))?;
    Ok(())
}

/// Returns a segment mapped from `cache_dir/<collection>/<shard>/<id>.seg` and its index bytes
/// (`None` when it has no index), fetching what the cache lacks. Fetches go to a temp file
/// that is renamed into place; a cached segment that fails validation is fetched again.
///
/// `store_dir`: the directory the store keeps its objects in, when it is one on this machine
/// ([`crate::StoreConfig::local_dir`]). The cache then hard-links the object's file instead of
/// copying it (nothing written, one copy on disk and in the page cache); objects are never
/// changed in place, and a link keeps the file when the object is deleted. Where a link
/// cannot be made (another file system), the object is downloaded.
pub async fn fetch_segment(
    store: &Arc<dyn ObjectStore>,
    store_dir: Option<&Path>,
    collection_id: u64,
    shard: u32,
    segment_id: u64,
    cache_dir: &Path,
) -> Result<(MappedSegment, Option<Vec<u8>>)> {
    let dir = cache_dir
        .join(collection_id.to_string())
        .join(shard.to_string());
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| StorageError::io(dir.display().to_string(), e))?;
    let seg_file = dir.join(format!("{segment_id:020}.seg"));
    let idx_file = dir.join(format!("{segment_id:020}.idx"));

    let index = match tokio::fs::read(&idx_file).await {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let p = layout::index_path(collection_id, shard, segment_id);
            match cache_object(store, store_dir, &p, &idx_file).await {
                Ok(()) => Some(read(&idx_file).await?),
                Err(StorageError::NotFound(_)) => None,
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(StorageError::io(idx_file.display().to_string(), e)),
    };

    if tokio::fs::try_exists(&seg_file).await.unwrap_or(false) {
        match open_blocking(seg_file.clone(), segment_id).await {
            Ok(seg) => return Ok((seg, index)),
            Err(e) => {
                tracing::warn!(file = %seg_file.display(), error = %e, "cached segment invalid; fetching again");
                let _ = tokio::fs::remove_file(&seg_file).await;
            }
        }
    }
    let p = layout::segment_path(collection_id, shard, segment_id);
    cache_object(store, store_dir, &p, &seg_file).await?;
    let seg = open_blocking(seg_file, segment_id).await?;
    Ok((seg, index))
}

/// The keys of a stored segment (row keys, their timestamps, tombstones),
/// read with range requests for the header and those sections only: not
/// the vectors, which are most of its bytes.
pub async fn read_segment_keys(
    store: &Arc<dyn ObjectStore>,
    collection_id: u64,
    shard: u32,
    segment_id: u64,
) -> Result<SegmentKeys> {
    let p = layout::segment_path(collection_id, shard, segment_id);
    let what = p.to_string();
    let range = |r: std::ops::Range<u64>| {
        let p = p.clone();
        async move {
            store
                .get_range(&p, r)
                .await
                .map_err(|e| StorageError::store(p.to_string(), e))
        }
    };
    let header = decode_header(&range(0..HEADER_LEN as u64).await?, &what)?;
    let f = &header.0;
    let keys = range(f[Header::PKS]..f[Header::COLUMNS]).await?;
    let tombs = range(f[Header::TOMBSTONES]..f[Header::END]).await?;
    decode_keys(&header, &keys, &tombs, &what)
}

/// Deletes the cached files (segment and index) of a shard's segments for
/// which `keep` says no, and the temp files of fetches a crashed process
/// left; returns how many files went. Readers that mapped a
/// file keep their mapping (Linux frees it when the last one is gone).
pub async fn prune_segment_cache(
    cache_dir: &Path,
    collection_id: u64,
    shard: u32,
    keep: impl Fn(u64) -> bool,
) -> usize {
    let dir = cache_dir
        .join(collection_id.to_string())
        .join(shard.to_string());
    let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
        return 0;
    };
    let mut removed = 0;
    while let Ok(Some(e)) = entries.next_entry().await {
        let name = e.file_name().to_string_lossy().into_owned();
        let id = name
            .strip_suffix(".seg")
            .or_else(|| name.strip_suffix(".idx"))
            .filter(|d| d.len() == 20)
            .and_then(|d| d.parse::<u64>().ok());
        let stale = id.is_some_and(|id| !keep(id)) || is_leftover_temp(&name);
        if stale && tokio::fs::remove_file(e.path()).await.is_ok() {
            removed += 1;
        }
    }
    removed
}

async fn read(path: &Path) -> Result<Vec<u8>> {
    tokio::fs::read(path)
        .await
        .map_err(|e| StorageError::io(path.display().to_string(), e))
}

async fn open_blocking(path: PathBuf, segment_id: u64) -> Result<MappedSegment> {
    let what = path.display().to_string();
    let seg = tokio::task::spawn_blocking(move || MappedSegment::open(&path))
        .await
        .map_err(|e| StorageError::io(&what, e))??;
    if seg.segment_id() != segment_id {
        return Err(StorageError::corrupt(
            what,
            format!("holds segment {} instead of {segment_id}", seg.segment_id()),
        ));
    }
    Ok(seg)
}

/// Puts object `p` at `dest`: a hard link to its file under `store_dir` (see
/// [`fetch_segment`]) when one can be made, else a download. Any failure to link — no such
/// file included — falls back to the download, which has the store's own answer.
async fn cache_object(
    store: &Arc<dyn ObjectStore>,
    store_dir: Option<&Path>,
    p: &object_store::path::Path,
    dest: &Path,
) -> Result<()> {
    if let Some(dir) = store_dir {
        let tmp = TempFile::next_to(dest);
        match tokio::fs::hard_link(dir.join(p.as_ref()), tmp.path()).await {
            Ok(()) => {
                if tokio::fs::rename(tmp.path(), dest).await.is_ok() {
                    tmp.keep();
                    return Ok(());
                }
            }
            Err(e) => {
                tracing::debug!(object = %p, error = %e, "cannot link the object into the cache; downloading it")
            }
        }
    }
    download(store, p, dest).await
}

/// A unique temp file next to a cache file, deleted when dropped unless it
/// was renamed into place ([`TempFile::keep`]): a fetch that fails, or is
/// cancelled mid-way (its replica released, its stream ended), leaves
/// nothing behind. What a crash leaves, [`prune_segment_cache`] deletes: the
/// name carries a token of the process that wrote it.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn next_to(dest: &Path) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        TempFile(Some(dest.with_file_name(format!(
            ".{name}.{:016x}.{}{TEMP_SUFFIX}",
            process_token(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ))))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// The file was renamed into place: nothing to delete.
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

const TEMP_SUFFIX: &str = ".tmp";

/// This process's mark on its temp files. Not the pid alone: in a container
/// every start may get the same one.
fn process_token() -> u64 {
    static TOKEN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TOKEN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // splitmix64 of the start time and the pid.
        let mut z = nanos ^ (u64::from(std::process::id()) << 32);
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// A temp file another process (one that crashed or was killed) left in the cache.
fn is_leftover_temp(name: &str) -> bool {
    name.starts_with('.')
        && name.strip_suffix(TEMP_SUFFIX).is_some_and(|rest| {
            let mut parts = rest.rsplitn(3, '.');
            let (_counter, token) = (parts.next(), parts.next());
            token != Some(format!("{:016x}", process_token()).as_str())
        })
}

/// Streams object `p` into `dest` through a unique temp file in the same directory.
async fn download(
    store: &Arc<dyn ObjectStore>,
    p: &object_store::path::Path,
    dest: &Path,
) -> Result<()> {
    let got = store
        .get(p)
        .await
        .map_err(|e| StorageError::store(p.to_string(), e))?;
    let tmp = TempFile::next_to(dest);
    let io = |e: std::io::Error| StorageError::io(tmp.path().display().to_string(), e);
    let mut f = tokio::fs::File::create(tmp.path()).await.map_err(io)?;
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| StorageError::io(p.to_string(), e))?;
        f.write_all(&chunk).await.map_err(io)?;
    }
    f.sync_all().await.map_err(io)?;
    drop(f);
    tokio::fs::rename(tmp.path(), dest).await.map_err(io)?;
    tmp.keep();
    Ok(())
}
