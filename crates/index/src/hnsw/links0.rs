//! Level-0 links in the layout a search reads.
//!
//! The file (and the builder) keep a node's level-0 links as a row of
//! `2m + 1` words: the count, then the ids. At M=16 that is 132 bytes, so
//! every row spans three cache lines, and a search reads one row per node it
//! expands, before it can do anything else. Here a row is `2m` words, the ids
//! then [`NO_LINK`] to its end, and rows start on a 64-byte boundary: at
//! M=16 a row is exactly two cache lines (one 128-byte pair, which the
//! adjacent-line prefetcher fetches together), and 4 bytes a node smaller.
//! The layouts are converted when a graph is frozen or loaded and when it is
//! written, so files are unchanged.

/// Fills a row after its last link.
pub(crate) const NO_LINK: u32 = u32::MAX;

const LINE_WORDS: usize = 64 / 4;

#[derive(Default)]
pub(crate) struct Links0 {
    /// `at` words of padding (for alignment), then `n` rows of `stride`.
    words: Vec<u32>,
    at: usize,
    stride: usize,
}

impl Links0 {
    /// From rows of `2m + 1` words (count, then ids); a count above `2m`
    /// is read as `2m` (callers validate the rows first where they come
    /// from outside).
    pub fn from_counted(counted: &[u32], m: usize) -> Self {
        let stride = 2 * m;
        let n = counted.len() / (stride + 1);
        let mut words = crate::huge::with_capacity(n * stride + LINE_WORDS);
        let misaligned = (words.as_ptr() as usize / 4) % LINE_WORDS;
        let at = (LINE_WORDS - misaligned) % LINE_WORDS;
        words.resize(at, NO_LINK);
        for row in counted.chunks_exact(stride + 1) {
            let cnt = (row[0] as usize).min(stride);
            words.extend_from_slice(&row[1..=cnt]);
            words.resize(words.len() + stride - cnt, NO_LINK);
        }
        Links0 { words, at, stride }
    }

    /// Rows of `2m + 1` words: count, then ids (the file's layout).
    pub fn to_counted(&self) -> Vec<u32> {
        let rows = self.words[self.at..].chunks_exact(self.stride.max(1));
        let mut out = Vec::with_capacity(rows.len() * (self.stride + 1));
        for row in rows {
            let cnt = row.iter().position(|&x| x == NO_LINK).unwrap_or(row.len());
            out.push(cnt as u32);
            out.extend_from_slice(row);
            let end = out.len();
            out[end - (row.len() - cnt)..].fill(0);
        }
        out
    }

    /// Node `i`'s row: its links, then [`NO_LINK`]s. Empty past the end.
    #[inline(always)]
    pub fn row(&self, i: usize) -> &[u32] {
        let start = self.at + i * self.stride;
        self.words.get(start..start + self.stride).unwrap_or(&[])
    }

    /// Hints the CPU to load node `i`'s row.
    #[inline(always)]
    pub fn prefetch(&self, i: usize) {
        super::prefetch(&self.words, self.at + i * self.stride, self.stride);
    }

    /// Bytes held by the rows (the alignment padding, under 64 bytes, is
    /// not counted: it depends on where the allocator put them).
    pub fn memory_bytes(&self) -> usize {
        4 * (self.words.len() - self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_aligned_and_convert_back_to_the_counted_layout() {
        let m = 3;
        // Rows of 7 words: full, empty, partial (stale words after the
        // count are not links).
        let counted = vec![
            6, 1, 2, 3, 4, 5, 0, //
            0, 0, 0, 0, 0, 0, 0, //
            2, 9, 8, 0, 0, 0, 0, //
        ];
        let l = Links0::from_counted(&counted, m);
        assert_eq!(l.row(0), &[1, 2, 3, 4, 5, 0]);
        assert_eq!(l.row(1), &[NO_LINK; 6]);
        assert_eq!(l.row(2), &[9, 8, NO_LINK, NO_LINK, NO_LINK, NO_LINK]);
        assert!(l.row(3).is_empty());
        assert_eq!(l.to_counted(), counted);
        assert!(
            (l.row(0).as_ptr() as usize).is_multiple_of(64),
            "rows start on a line"
        );
        // At M=16 every row is two whole lines.
        let counted16: Vec<u32> = (0..100u32)
            .flat_map(|i| {
                let cnt = i % 33;
                std::iter::once(cnt).chain((0..32).map(move |j| if j < cnt { j } else { 0 }))
            })
            .collect();
        let l = Links0::from_counted(&counted16, 16);
        assert!((0..100).all(|i| (l.row(i).as_ptr() as usize).is_multiple_of(64)));
        assert_eq!(l.to_counted(), counted16);
        // A count past 2m reads as 2m.
        let l = Links0::from_counted(&[9, 1, 2, 3, 4, 5, 6], 3);
        assert_eq!(l.row(0), &[1, 2, 3, 4, 5, 6]);
    }
}
