//! Large arrays that a search reads at random (the level-0 links, the
//! 8-bit codes), placed on transparent huge pages where the OS offers them.
//!
//! A search touches a few thousand rows spread over tens of megabytes: with
//! 4 KiB pages nearly every row is a TLB miss and a page walk, which costs
//! about as much as the cache miss itself. With 2 MiB pages the whole array
//! is a few hundred TLB entries. Linux maps anonymous memory on huge pages
//! in `madvise` mode only where asked (`MADV_HUGEPAGE`), before the pages
//! are first touched; elsewhere this is a no-op.

/// Below this, an array is not worth a huge page (one would be mostly empty).
const MIN_BYTES: usize = 4 << 20;
const HUGE: usize = 2 << 20;

/// An empty vector with room for `cap` elements whose untouched pages are
/// advised to be huge.
pub(crate) fn with_capacity<T>(cap: usize) -> Vec<T> {
    let v = Vec::with_capacity(cap);
    advise(&v);
    v
}

fn advise<T>(v: &Vec<T>) {
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes < MIN_BYTES {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let start = v.as_ptr() as usize;
        let (from, to) = (start.next_multiple_of(HUGE), (start + bytes) / HUGE * HUGE);
        if to > from {
            // SAFETY: [from, to) lies inside `v`'s allocation; MADV_HUGEPAGE
            // only changes how its pages are backed, never their contents.
            // A failure (no THP on this kernel) leaves ordinary pages.
            unsafe {
                libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = HUGE;
}
