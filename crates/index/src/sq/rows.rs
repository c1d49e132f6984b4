//! Code rows in one cache-line-aligned buffer.

/// One cache line.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u8; 64]);

/// `n` rows of `pitch` bytes each, the first starting on a cache line: a
/// row of 64 bytes (a 50-d code and its norm) is one line, never two.
pub(crate) struct CodeRows {
    lines: Vec<Line>,
    pitch: usize,
    n: usize,
}

impl CodeRows {
    /// `n` rows of zeros.
    pub fn zeroed(n: usize, pitch: usize) -> CodeRows {
        let count = (n * pitch).div_ceil(64);
        let mut lines = crate::huge::with_capacity(count);
        lines.resize(count, Line([0; 64]));
        CodeRows { lines, pitch, n }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn pitch(&self) -> usize {
        self.pitch
    }

    /// Every row, `n * pitch` bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `Line` is 64 plain bytes with no padding (repr(C), its
        // alignment equals its size), so the lines are `64 * len`
        // initialised bytes; `n * pitch` of them fit by construction.
        let all = unsafe {
            std::slice::from_raw_parts(self.lines.as_ptr().cast::<u8>(), self.lines.len() * 64)
        };
        &all[..self.n * self.pitch]
    }

    #[inline]
    fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.n * self.pitch;
        // SAFETY: as in `bytes`, and the borrow is unique.
        let all = unsafe {
            std::slice::from_raw_parts_mut(
                self.lines.as_mut_ptr().cast::<u8>(),
                self.lines.len() * 64,
            )
        };
        &mut all[..len]
    }

    /// Row `id` (`pitch` bytes; empty past the end).
    #[inline]
    pub fn row(&self, id: usize) -> &[u8] {
        let s = id * self.pitch;
        self.bytes().get(s..s + self.pitch).unwrap_or(&[])
    }

    /// The rows, mutably, in order.
    pub fn rows_mut(&mut self) -> std::slice::ChunksExactMut<'_, u8> {
        let pitch = self.pitch;
        self.bytes_mut().chunks_exact_mut(pitch)
    }

    pub fn memory_bytes(&self) -> usize {
        self.lines.len() * 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_start_on_a_cache_line_and_keep_what_is_written() {
        let mut r = CodeRows::zeroed(5, 64);
        for (i, row) in r.rows_mut().enumerate() {
            row[0] = i as u8;
            row[63] = 200 + i as u8;
        }
        assert_eq!(r.len(), 5);
        assert_eq!(r.row(3)[0], 3);
        assert_eq!(r.row(4)[63], 204);
        assert!(r.row(5).is_empty());
        assert_eq!((r.row(2).as_ptr() as usize) % 64, 0);
        let odd = CodeRows::zeroed(3, 80);
        assert_eq!(odd.bytes().len(), 240);
        assert_eq!(odd.memory_bytes(), 256);
    }
}
