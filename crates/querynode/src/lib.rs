//! The querynode serves the shards placed on it: sealed segments (loaded from
//! the object store into a local cache, memory-mapped, searched with HNSW)
//! plus the growing data it follows live from the shard's datanode. A search
//! waits until the shard has applied its guarantee timestamp, then covers
//! sealed + growing minus deleted and superseded rows. Searches run on
//! blocking threads (large scans fan out over a scan pool); the stream waits
//! for searches that hold the view on a blocking thread too, never blocking
//! the network (node.rs, replica.rs).

mod anns;
mod built;
mod columnwise;
mod config;
mod growing;
mod metrics;
mod node;
mod path_cache;
mod paths;
mod replica;
mod search;
mod select;
mod sorted;
mod sparse;
mod terms;
mod view;
mod warm;

pub use config::QueryNodeConfig;
pub use node::QueryNode;
pub use path_cache::DEFAULT_MIB as JSON_PATH_CACHE_MIB;
#[cfg(test)]
mod growing_tests;
#[cfg(test)]
mod scan_tests;
#[cfg(test)]
mod select_tests;
#[cfg(test)]
mod warm_tests;
