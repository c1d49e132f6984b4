//! The datanode owns shards. For each shard it stamps every mutation with a
//! hybrid timestamp, appends it to the shard's WAL (group commit), and only
//! once the WAL batch is durable applies it to the growing data, streams it to
//! subscribed querynodes and acknowledges it. It emits time ticks while idle,
//! and seals growing data into segment files that it registers with coord
//! (their HNSW follows, built by the compactor). It keeps nothing the object store does not have: a
//! restart (or a new owner) replays the WAL from the last sealed segment.
//! In the background it compacts the sealed segments of its shards and
//! deletes the objects nothing references any more (`compact/`).

mod compact;
mod config;
mod metrics;
mod mirror;
mod node;
mod seal;
mod shard;

pub use compact::CompactionConfig;
pub use config::DataNodeConfig;
pub use mirror::MirrorRoutes;
pub use node::DataNode;
