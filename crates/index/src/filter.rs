//! Row filters applied during search (attribute filters, tombstones).

/// Filter applied during traversal: only allowed ids are returned.
///
/// `estimated_allowed` lets the index switch to exact search when the filter is
/// very selective; return `None` when unknown.
pub trait RowFilter: Sync {
    fn allows(&self, id: u32) -> bool;
    fn estimated_allowed(&self) -> Option<usize> {
        None
    }
    /// The allowed ids as a set, when the filter is one: an exact scan
    /// then visits those rows only instead of asking about every row.
    fn as_bitset(&self) -> Option<&Bitset> {
        None
    }
    /// Hints the CPU to load what [`RowFilter::allows`] will read for
    /// `id`: a graph search calls it for a node's neighbours before it
    /// computes their distances, so that testing them later does not wait
    /// on memory.
    #[inline]
    fn prefetch(&self, _id: u32) {}
}

/// Adapts a closure `|id| -> bool` into a [`RowFilter`].
pub struct FnFilter<F>(pub F);

impl<F: Fn(u32) -> bool + Sync> RowFilter for FnFilter<F> {
    #[inline]
    fn allows(&self, id: u32) -> bool {
        (self.0)(id)
    }
}

/// Both filters must allow the id (e.g. a user predicate and tombstones).
pub struct AndFilter<'a>(pub &'a dyn RowFilter, pub &'a dyn RowFilter);

impl RowFilter for AndFilter<'_> {
    #[inline]
    fn allows(&self, id: u32) -> bool {
        self.0.allows(id) && self.1.allows(id)
    }
    fn estimated_allowed(&self) -> Option<usize> {
        match (self.0.estimated_allowed(), self.1.estimated_allowed()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A fixed-size bitset over row ids; a set bit means "allowed".
/// Ids at or beyond `len()` are not allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitset {
    words: Vec<u64>,
    len: usize,
    ones: usize,
}

impl Bitset {
    /// `len` ids, none allowed.
    pub fn new_empty(len: usize) -> Self {
        Bitset {
            words: vec![0; len.div_ceil(64)],
            len,
            ones: 0,
        }
    }

    /// `len` ids, all allowed (e.g. the live set before applying tombstones).
    pub fn new_full(len: usize) -> Self {
        let mut words = vec![u64::MAX; len.div_ceil(64)];
        if !len.is_multiple_of(64)
            && let Some(last) = words.last_mut()
        {
            *last = (1u64 << (len % 64)) - 1;
        }
        Bitset {
            words,
            len,
            ones: len,
        }
    }

    /// Bitset allowing exactly `ids` (ids >= `len` are ignored).
    pub fn from_ids(len: usize, ids: impl IntoIterator<Item = u32>) -> Self {
        let mut b = Self::new_empty(len);
        for id in ids {
            b.insert(id);
        }
        b
    }

    /// A bitset of `len` ids from its words (id `i` is bit `i % 64` of
    /// word `i / 64`); missing words are zero, bits at or past `len` are
    /// cleared.
    pub fn from_words(mut words: Vec<u64>, len: usize) -> Self {
        words.resize(len.div_ceil(64), 0);
        if !len.is_multiple_of(64)
            && let Some(last) = words.last_mut()
        {
            *last &= (1u64 << (len % 64)) - 1;
        }
        let ones = words.iter().map(|w| w.count_ones() as usize).sum();
        Bitset { words, len, ones }
    }

    /// The words, as [`Bitset::from_words`] takes them.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Keeps only the ids `other` allows too.
    pub fn intersect(&mut self, other: &Bitset) {
        let mut ones = 0;
        for (i, w) in self.words.iter_mut().enumerate() {
            *w &= other.words.get(i).copied().unwrap_or(0);
            ones += w.count_ones() as usize;
        }
        self.ones = ones;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of allowed ids.
    pub fn count_ones(&self) -> usize {
        self.ones
    }

    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        let i = id as usize;
        i < self.len && self.words[i / 64] & (1u64 << (i % 64)) != 0
    }

    /// Allows `id`; returns false if it was already allowed or out of range.
    pub fn insert(&mut self, id: u32) -> bool {
        let i = id as usize;
        if i >= self.len || self.contains(id) {
            return false;
        }
        self.words[i / 64] |= 1u64 << (i % 64);
        self.ones += 1;
        true
    }

    /// Disallows `id` (e.g. a tombstone); returns false if it was not allowed.
    pub fn remove(&mut self, id: u32) -> bool {
        if !self.contains(id) {
            return false;
        }
        let i = id as usize;
        self.words[i / 64] &= !(1u64 << (i % 64));
        self.ones -= 1;
        true
    }

    /// Keeps only the allowed ids `keep` says yes to (each asked once, in
    /// ascending order).
    pub fn retain(&mut self, mut keep: impl FnMut(u32) -> bool) {
        let mut ones = 0;
        for (w, word) in self.words.iter_mut().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let t = bits.trailing_zeros();
                bits &= bits - 1;
                if !keep((w * 64) as u32 + t) {
                    *word &= !(1u64 << t);
                }
            }
            ones += word.count_ones() as usize;
        }
        self.ones = ones;
    }

    /// Iterates allowed ids in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &bits)| {
            let mut bits = bits;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let t = bits.trailing_zeros();
                bits &= bits - 1;
                Some((w * 64) as u32 + t)
            })
        })
    }
}

impl RowFilter for Bitset {
    #[inline]
    fn allows(&self, id: u32) -> bool {
        self.contains(id)
    }
    fn estimated_allowed(&self) -> Option<usize> {
        Some(self.ones)
    }
    fn as_bitset(&self) -> Option<&Bitset> {
        Some(self)
    }
}
