//! Vector index of Quiver: distance kernels (simsimd), exact search, an HNSW
//! graph (parallel build, compact frozen layout, filtered search, byte
//! format; over f32 rows or over 8-bit scalar-quantized codes with exact
//! re-ranking), the cross-segment top-k merge and helpers for `quiver bench
//! index`.
//!
//! Scores follow Milvus: L2 is the squared Euclidean distance (ascending is
//! closer); IP is the inner product and COSINE the cosine similarity
//! (descending is closer). Synchronous code only.

pub mod bench;
mod dense;
mod distance;
mod error;
mod filter;
mod flat;
mod hnsw;
mod huge;
mod sq;
mod topk;

pub use distance::score;
pub use error::{IndexError, Result};
pub use filter::{AndFilter, Bitset, FnFilter, RowFilter};
pub use flat::{flat_search, flat_search_rows};
pub use hnsw::{CODES_MAX_BLUR, CODES_MIN_ROWS, Construction, HnswIndex, HnswParams, prefetch};
pub use quiver_common::Metric;
pub use sq::{QuantizedRows, kernel_isa, refine_k_rows};
pub use topk::{Neighbor, merge_topk};

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn shared_types_are_send_and_sync() {
        assert_send_sync::<crate::HnswIndex>();
        assert_send_sync::<crate::Bitset>();
        assert_send_sync::<crate::IndexError>();
    }
}
