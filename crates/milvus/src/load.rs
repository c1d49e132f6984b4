//! Load / Release / GetLoadingProgress / GetLoadState, Flush /
//! GetFlushState, GetCollectionStatistics, and the session RPCs (Connect,
//! GetVersion, CheckHealth, AllocTimestamp).
//!
//! A collection is loaded from its creation (every shard served). Release
//! frees its querynode memory and refuses its reads until Load serves it
//! again; writes land meanwhile.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use quiver_common::{Result, wall_ts};
use quiver_proto::common::{LoadState, ServerInfo, Status};
use quiver_proto::milvus::{
    AllocTimestampResponse, CheckHealthResponse, ConnectResponse, FlushRequest, FlushResponse,
    GetCollectionStatisticsRequest, GetCollectionStatisticsResponse, GetFlushStateRequest,
    GetFlushStateResponse, GetLoadStateRequest, GetLoadStateResponse, GetLoadingProgressRequest,
    GetLoadingProgressResponse, GetReplicasRequest, GetReplicasResponse, GetVersionResponse,
    LoadCollectionRequest, ReleaseCollectionRequest, ReplicaInfo, ShardReplica,
};
use quiver_proto::schema::LongArray;

use super::schema::kv;
use super::status::{failure, status_of, success};
use super::{MILVUS_API_VERSION, MilvusFront};
use quiver_proxy::Consistency;
use quiver_proxy::not_loaded;

/// Milvus's name of the resource group every node is in (Quiver has one).
pub(crate) const DEFAULT_RESOURCE_GROUP: &str = "__default_resource_group";
/// The node id a standalone reports for its one querynode.
pub(crate) const STANDALONE_NODE: u64 = 1;

impl MilvusFront {
    fn exists(&self, name: &str) -> Status {
        match self.proxy.describe(name) {
            Ok(_) => success(),
            Err(e) => failure(&e),
        }
    }

    /// Serves the collection's reads (again, after a release) and sets how
    /// many querynodes serve each shard (`replica_number`, 0 = keep the
    /// current number) where the catalog places replicas (cluster mode).
    /// Loads the collection and serves every partition of it.
    pub(crate) async fn load_collection(&self, req: LoadCollectionRequest) -> Status {
        let name = req.collection_name.clone();
        let status = self.load_collection_only(req).await;
        if status.code != 0 {
            return status;
        }
        status_of(self.load_all_partitions(&name).await)
    }

    /// Loads the collection, leaving its partitions' released marks as
    /// they are (LoadPartitions).
    pub(crate) async fn load_collection_only(&self, req: LoadCollectionRequest) -> Status {
        let status = self.exists(&req.collection_name);
        if status.code != 0 {
            return status;
        }
        let replicas = match u32::try_from(req.replica_number) {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => {
                return failure(&quiver_common::Error::invalid(
                    "replica_number",
                    format!("must be >= 0 (got {})", req.replica_number),
                ));
            }
        };
        status_of(
            self.catalog
                .load_collection(&req.collection_name, replicas)
                .await,
        )
    }

    /// Frees the collection's querynode memory; its reads answer
    /// "collection not loaded" (101) until it is loaded again. Writes land.
    pub(crate) async fn release_collection(&self, req: ReleaseCollectionRequest) -> Status {
        let status = self.exists(&req.collection_name);
        if status.code != 0 {
            return status;
        }
        status_of(self.catalog.release_collection(&req.collection_name).await)
    }

    /// 100 once loaded (a load answers when its shards are served); a
    /// released collection answers "not loaded", as Milvus does.
    pub(crate) fn loading_progress(
        &self,
        req: GetLoadingProgressRequest,
    ) -> GetLoadingProgressResponse {
        let mut status = self.check_partition_names(
            &req.collection_name,
            "partition_names",
            &req.partition_names,
        );
        if status.code == 0 && !self.partitions_loaded(&req.collection_name, &req.partition_names) {
            status = failure(&not_loaded(&req.collection_name));
        }
        if status.code == 0
            && let Some(why) = self.catalog.load_problem(&req.collection_name)
        {
            status = failure(&quiver_common::Error::StateConflict(format!(
                "collection {} cannot be loaded in full: {why}",
                req.collection_name
            )));
        }
        let progress = if status.code == 0 { 100 } else { 0 };
        GetLoadingProgressResponse {
            status: Some(status),
            progress,
            refresh_progress: progress,
        }
    }

    pub(crate) fn load_state(&self, req: GetLoadStateRequest) -> GetLoadStateResponse {
        let status = self.check_partition_names(
            &req.collection_name,
            "partition_names",
            &req.partition_names,
        );
        let state = if status.code != 0 {
            LoadState::NotExist
        } else if self.catalog.load_problem(&req.collection_name).is_some() {
            LoadState::Loading
        } else if self.partitions_loaded(&req.collection_name, &req.partition_names) {
            LoadState::Loaded
        } else {
            LoadState::NotLoad
        };
        GetLoadStateResponse {
            status: Some(status),
            state: state as i32,
        }
    }

    /// The replicas of a loaded collection as Milvus describes them: replica
    /// `i` is the `i`-th querynode of each shard (one process serves every
    /// shard of a standalone), all in the one resource group Quiver has,
    /// with the loaded partitions. None while the collection is not loaded.
    pub(crate) fn get_replicas(&self, req: GetReplicasRequest) -> GetReplicasResponse {
        let info = match self.find(&req.collection_name, req.collection_id) {
            Ok(info) => info,
            Err(e) => {
                return GetReplicasResponse {
                    status: Some(failure(&e)),
                    replicas: vec![],
                };
            }
        };
        let name = &info.schema.name;
        if !self.catalog.is_loaded(name) {
            return GetReplicasResponse {
                status: Some(success()),
                replicas: vec![],
            };
        }
        let placed = self.catalog.replicas(name);
        // One process (standalone): its querynode serves every shard.
        let per_shard: Vec<Vec<u64>> = if placed.is_empty() {
            vec![vec![STANDALONE_NODE]; info.shards as usize]
        } else {
            placed
        };
        let copies = per_shard.iter().map(Vec::len).max().unwrap_or(0);
        let partition_ids: Vec<i64> = match self.partitions_of(&info) {
            Some(parts) => parts
                .list
                .iter()
                .filter(|p| !p.released)
                .map(|p| p.id as i64)
                .collect(),
            None => vec![info.id as i64],
        };
        let replicas = (0..copies)
            .map(|i| {
                let shard_replicas: Vec<ShardReplica> = per_shard
                    .iter()
                    .enumerate()
                    .filter_map(|(s, nodes)| {
                        let node = *nodes.get(i)? as i64;
                        Some(ShardReplica {
                            leader_id: node,
                            leader_addr: String::new(),
                            dm_channel_name: format!("quiver-dml_{}_{s}v0", info.id),
                            node_ids: vec![node],
                        })
                    })
                    .collect();
                let mut node_ids: Vec<i64> = shard_replicas.iter().map(|s| s.leader_id).collect();
                node_ids.sort_unstable();
                node_ids.dedup();
                ReplicaInfo {
                    replica_id: (info.id as i64) * 1000 + i as i64,
                    collection_id: info.id as i64,
                    partition_ids: partition_ids.clone(),
                    shard_replicas,
                    node_ids,
                    resource_group_name: DEFAULT_RESOURCE_GROUP.to_string(),
                    num_outbound_node: Default::default(),
                }
            })
            .collect();
        GetReplicasResponse {
            status: Some(success()),
            replicas,
        }
    }

    pub(crate) async fn flush(&self, req: FlushRequest) -> FlushResponse {
        match self.flush_inner(&req.collection_names).await {
            Ok(ts) => FlushResponse {
                status: Some(success()),
                coll_seg_i_ds: names(&req.collection_names, LongArray::default()),
                flush_coll_seg_i_ds: names(&req.collection_names, LongArray::default()),
                coll_seal_times: names(&req.collection_names, (ts >> 18) as i64 / 1000),
                coll_flush_ts: names(&req.collection_names, ts),
                db_name: req.db_name,
                ..Default::default()
            },
            Err(e) => FlushResponse {
                status: Some(failure(&e)),
                ..Default::default()
            },
        }
    }

    /// Seals every named collection; returns a timestamp after the flush.
    async fn flush_inner(&self, collections: &[String]) -> Result<u64> {
        for c in collections {
            self.proxy.describe(c)?;
        }
        for c in collections {
            self.proxy.flush(c).await?;
        }
        Ok(wall_ts())
    }

    /// Flush is synchronous in Quiver: once it answered, data is flushed.
    pub(crate) fn flush_state(&self, req: GetFlushStateRequest) -> GetFlushStateResponse {
        if !req.collection_name.is_empty()
            && let Err(e) = self.proxy.describe(&req.collection_name)
        {
            return GetFlushStateResponse {
                status: Some(failure(&e)),
                flushed: false,
            };
        }
        GetFlushStateResponse {
            status: Some(success()),
            flushed: true,
        }
    }

    /// The live rows of a loaded collection (exact, Strong); of one that
    /// is not loaded, the rows of its sealed segments, as Milvus counts
    /// flushed rows from its catalog (deletes not subtracted).
    pub(crate) async fn statistics(
        &self,
        req: GetCollectionStatisticsRequest,
    ) -> GetCollectionStatisticsResponse {
        let rows = match self.proxy.describe(&req.collection_name) {
            Ok(_) if !self.catalog.is_loaded(&req.collection_name) => Ok(self
                .catalog
                .index_progress(&req.collection_name)
                .map_or(0, |p| p.total_rows)),
            Ok(_) => {
                self.proxy
                    .count(&req.collection_name, Consistency::Strong)
                    .await
            }
            Err(e) => Err(e),
        };
        match rows {
            Ok(n) => GetCollectionStatisticsResponse {
                status: Some(success()),
                stats: vec![kv("row_count", n.to_string())],
            },
            Err(e) => GetCollectionStatisticsResponse {
                status: Some(failure(&e)),
                stats: vec![],
            },
        }
    }

    pub(crate) fn connect(&self) -> ConnectResponse {
        let mut reserved = HashMap::new();
        reserved.insert(
            "quiver_version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        );
        ConnectResponse {
            status: Some(success()),
            server_info: Some(ServerInfo {
                build_tags: MILVUS_API_VERSION.to_string(),
                build_time: String::new(),
                git_commit: String::new(),
                go_version: "quiver (rust)".to_string(),
                deploy_mode: "STANDALONE".to_string(),
                reserved,
            }),
            identifier: self.next_client.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// A timestamp for "now", unique and increasing (pymilvus asks for one
    /// before it polls an index build).
    pub(crate) fn alloc_timestamp(&self) -> AllocTimestampResponse {
        AllocTimestampResponse {
            status: Some(success()),
            timestamp: self.clock.now(),
        }
    }

    pub(crate) fn version(&self) -> GetVersionResponse {
        GetVersionResponse {
            status: Some(success()),
            version: MILVUS_API_VERSION.to_string(),
        }
    }

    pub(crate) fn health(&self) -> CheckHealthResponse {
        CheckHealthResponse {
            status: Some(success()),
            is_healthy: true,
            ..Default::default()
        }
    }
}

fn names<T: Clone>(collections: &[String], v: T) -> HashMap<String, T> {
    (collections.iter())
        .map(|c| (super::database::plain(c), v.clone()))
        .collect()
}
