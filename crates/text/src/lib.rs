//! Text analysis for full-text search: analyzers ([`Analyzer`]), the term id
//! of a token ([`term_id`]), a document's or a query's term counts as a
//! sparse vector ([`term_counts`]), and the BM25 formula ([`Bm25`]).
//!
//! Term ids are stored (a BM25 function's output column holds them), so
//! [`term_id`] must never change: it is MurmurHash3 (x86, 32 bits, seed 0)
//! of the token's UTF-8 bytes.

mod analyzer;

pub use analyzer::{Analyzer, ENGLISH_STOP_WORDS, Token};

/// The term id of a token (MurmurHash3 x86_32, seed 0; stable forever).
pub fn term_id(token: &str) -> u32 {
    murmur3_32(token.as_bytes(), 0)
}

fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k |= (*b as u32) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// How often each term occurs, as a sparse vector: (term id, count) sorted
/// by id. A document's BM25 vector, and a query's.
pub fn term_counts(tokens: &[Token]) -> Vec<(u32, f32)> {
    let mut ids: Vec<u32> = tokens.iter().map(|t| term_id(&t.text)).collect();
    ids.sort_unstable();
    let mut out: Vec<(u32, f32)> = Vec::new();
    for id in ids {
        match out.last_mut() {
            Some((last, n)) if *last == id => *n += 1.0,
            _ => out.push((id, 1.0)),
        }
    }
    out
}

/// Milvus's bounds of `bm25_k1` and `bm25_b`.
pub const BM25_K1: std::ops::RangeInclusive<f32> = 1.2..=2.0;
pub const BM25_B: std::ops::RangeInclusive<f32> = 0.0..=1.0;

/// BM25 with Lucene's (and Milvus's) idf: a document `d` scores
/// `Σ_t q_t · idf(t) · tf(t,d)·(k1+1) / (tf(t,d) + k1·(1 − b + b·|d|/avgdl))`
/// for the query's terms `t` (`q_t`: how often the query names `t`), with
/// `idf(t) = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25 {
    pub k1: f32,
    pub b: f32,
}

impl Default for Bm25 {
    fn default() -> Self {
        Bm25 { k1: 1.2, b: 0.75 }
    }
}

impl Bm25 {
    /// The inverse document frequency of a term in `df` of `n` documents.
    pub fn idf(n: u64, df: u64) -> f32 {
        let (n, df) = (n as f64, df.min(n) as f64);
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln() as f32
    }

    /// A term's weight in a document where it occurs `tf` times, of length
    /// `dl` (its token count), `avgdl` the corpus's average length.
    pub fn tf_weight(&self, tf: f32, dl: f32, avgdl: f32) -> f32 {
        let norm = if avgdl > 0.0 { dl / avgdl } else { 1.0 };
        tf * (self.k1 + 1.0) / (tf + self.k1 * (1.0 - self.b + self.b * norm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_ids_are_murmur3() {
        // Reference values of MurmurHash3_x86_32 with seed 0.
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
        assert_eq!(term_id("hello"), 0x248b_fa47);
    }

    #[test]
    fn counts_and_bm25() {
        let a = Analyzer::standard();
        let v = term_counts(&a.tokens("b a b c b"));
        assert_eq!(v.len(), 3);
        assert!(v.windows(2).all(|w| w[0].0 < w[1].0));
        let b = v.iter().find(|(id, _)| *id == term_id("b")).expect("b");
        assert_eq!(b.1, 3.0);
        // idf falls as a term gets common; tf weight saturates towards k1+1.
        assert!(Bm25::idf(100, 1) > Bm25::idf(100, 50));
        let p = Bm25::default();
        assert!((p.tf_weight(1.0, 10.0, 10.0) - 1.0).abs() < 1e-6);
        assert!(p.tf_weight(1000.0, 10.0, 10.0) < p.k1 + 1.0);
    }
}
