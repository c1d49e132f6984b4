//! Giving freed heap memory back to the operating system.

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
