//! Distance metrics of vector fields.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::vectors::ElementType;

/// Distance metric of a vector field, with Milvus's conventions: L2 is the
/// squared Euclidean distance (smaller is closer); IP and COSINE are
/// similarities (larger is closer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Metric {
    L2,
    Ip,
    Cosine,
    /// Bits that differ (binary vectors; smaller is closer).
    Hamming,
    /// 1 - |a and b| / |a or b| over the set bits (binary vectors; smaller is closer).
    Jaccard,
    /// BM25 relevance of a text query to a BM25 function's output (sparse
    /// term counts; larger is closer).
    Bm25,
}

impl Metric {
    /// Parses Milvus's metric names (case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "L2" => Ok(Metric::L2),
            "IP" => Ok(Metric::Ip),
            "COSINE" => Ok(Metric::Cosine),
            "HAMMING" => Ok(Metric::Hamming),
            "JACCARD" => Ok(Metric::Jaccard),
            "BM25" => Ok(Metric::Bm25),
            other => Err(Error::invalid(
                "metric_type",
                format!("must be one of L2, IP, COSINE, HAMMING, JACCARD, BM25 (got {other:?})"),
            )),
        }
    }

    /// Milvus's name of the metric.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::L2 => "L2",
            Metric::Ip => "IP",
            Metric::Cosine => "COSINE",
            Metric::Hamming => "HAMMING",
            Metric::Jaccard => "JACCARD",
            Metric::Bm25 => "BM25",
        }
    }

    /// Whether vectors of `element` are compared with this metric (bits by
    /// HAMMING / JACCARD, numbers by L2 / IP / COSINE, as Milvus).
    pub fn fits(self, element: ElementType) -> bool {
        let binary_metric = matches!(self, Metric::Hamming | Metric::Jaccard);
        self != Metric::Bm25 && binary_metric == (element == ElementType::Binary)
    }

    /// True when a larger score is closer (IP, COSINE); false when a smaller
    /// one is (L2). Every decision about the order of scores goes through this.
    pub fn higher_is_closer(self) -> bool {
        match self {
            Metric::L2 | Metric::Hamming | Metric::Jaccard => false,
            Metric::Ip | Metric::Cosine | Metric::Bm25 => true,
        }
    }
}
