//! The process's memory: how much is resident (for memory limits), and
//! giving freed heap memory back to the operating system.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The process's resident memory, read from `/proc/self/status` at most
/// every [`RSS_EVERY_MS`] (0 where it cannot be read: no limit applies).
#[derive(Debug)]
pub struct ResidentMemory {
    start: Instant,
    read_at_ms: AtomicU64,
    bytes: AtomicU64,
}

const RSS_EVERY_MS: u64 = 50;

impl Default for ResidentMemory {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            read_at_ms: AtomicU64::new(u64::MAX),
            bytes: AtomicU64::new(0),
        }
    }
}

impl ResidentMemory {
    /// Resident bytes, at most [`RSS_EVERY_MS`] old.
    pub fn bytes(&self) -> u64 {
        let now = self.start.elapsed().as_millis() as u64;
        let at = self.read_at_ms.load(Ordering::Relaxed);
        if at == u64::MAX || now.saturating_sub(at) >= RSS_EVERY_MS {
            self.read_at_ms.store(now, Ordering::Relaxed);
            self.bytes.store(read_rss().unwrap_or(0), Ordering::Relaxed);
        }
        self.bytes.load(Ordering::Relaxed)
    }

    /// `Overloaded` while resident memory is at or over `limit` bytes (0: no
    /// limit); `setting` names the limit in the message.
    pub fn admit_write(&self, limit: u64, setting: &str) -> crate::Result<()> {
        if limit == 0 {
            return Ok(());
        }
        let rss = self.bytes();
        if rss < limit {
            return Ok(());
        }
        Err(crate::Error::Overloaded(format!(
            "the server's memory ({} MiB resident) is at {setting} ({} MiB): writes wait until sealing and compaction free memory; retry with backoff",
            rss >> 20,
            limit >> 20
        )))
    }
}

fn read_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Returns free heap pages to the OS (glibc keeps freed memory in its arenas,
/// so RSS stays at the high-water mark of a seal or a load otherwise). Call
/// after a large batch of memory was freed, off the async runtime (it walks
/// every arena: a few milliseconds). A no-op where the allocator is not glibc.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only inspects and trims the allocator's own free
    // lists; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Largest allocation served from the heap; larger ones are their own memory
/// mappings, returned to the OS when freed.
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Process-wide allocator settings; call once at the start of `main`.
///
/// glibc raises its mmap threshold each time a large mapped block is freed
/// (up to 32 MiB), so later large buffers (segment files, index bytes, WAL
/// batches) come from the heap arenas and stay resident after they are
/// freed. Serving glove50-100k, that kept ~20 MB of dead buffers resident
/// (RSS 73 MiB instead of 55 MiB). A fixed threshold keeps large buffers
/// mapped, so freeing them shrinks RSS.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before the
    // process allocates much, from one thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
