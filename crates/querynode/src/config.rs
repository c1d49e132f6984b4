use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Querynode settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryNodeConfig {
    pub node_id: u64,
    /// Local directory for downloaded segment files.
    pub cache_dir: PathBuf,
    /// Requests run at once, and threads of the pool that scans large
    /// growing sets in parallel.
    pub search_threads: usize,
    /// Longest a search waits for its guarantee timestamp (milliseconds).
    pub max_wait_ms: u64,
    /// Cluster placement gives this querynode no replica that would take
    /// its memory past this (MiB: resident memory plus the estimate of the
    /// replicas it is loading); 0: no limit.
    pub max_memory_mib: u64,
    /// The values of JSON paths that filters tested, extracted from each
    /// sealed segment, and the indexes built from them take at most this
    /// much memory (MiB; the least recently used are dropped past it, and
    /// extracted again when a filter needs them); declared JSON path
    /// indexes are not counted. 0: no limit.
    pub json_path_cache_mib: u64,
}

impl Default for QueryNodeConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            cache_dir: PathBuf::from("cache"),
            search_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            max_wait_ms: 10_000,
            max_memory_mib: 0,
            json_path_cache_mib: crate::path_cache::DEFAULT_MIB,
        }
    }
}

impl QueryNodeConfig {
    pub fn validate(&self) -> quiver_common::Result<()> {
        if self.search_threads == 0 {
            return Err(quiver_common::Error::invalid(
                "querynode.search_threads",
                "must be > 0",
            ));
        }
        Ok(())
    }
}
