//! Partitions: ShowPartitions / HasPartition / GetPartitionStatistics /
//! LoadPartitions / ReleasePartitions / CreatePartition / DropPartition.
//!
//! Quiver has no partitions of its own: every collection has exactly one,
//! Milvus's `_default`, which holds all its rows. It is loaded and released
//! with the collection, its id is the collection's id and it was created with
//! the collection; naming any other partition is answered
//! PartitionNotFound (merr 200), and creating or dropping one is refused with a
//! status (never UNIMPLEMENTED, which would read as an unknown call).

use quiver_common::{Error, ts_physical_ms};
use quiver_proto::common::Status;
use quiver_proto::milvus::{
    BoolResponse, CreatePartitionRequest, DropPartitionRequest, GetCollectionStatisticsRequest,
    GetPartitionStatisticsRequest, GetPartitionStatisticsResponse, HasPartitionRequest,
    LoadCollectionRequest, LoadPartitionsRequest, ReleaseCollectionRequest,
    ReleasePartitionsRequest, ShowPartitionsRequest, ShowPartitionsResponse,
};

use super::MilvusFront;
use super::status::{failure, partition_not_found, success};

/// The name of the one partition of every collection.
pub(crate) const DEFAULT_PARTITION: &str = "_default";

impl MilvusFront {
    /// Success when `collection` (a name or an alias) exists and every one of
    /// `names` is `_default`; else CollectionNotFound (merr 100), or
    /// PartitionNotFound (merr 200) naming the first other name (`field` is
    /// the request field that carried it).
    pub(crate) fn check_partition_names<'a>(
        &self,
        collection: &str,
        field: &str,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Status {
        if let Err(e) = self.proxy.describe(collection) {
            return failure(&e);
        }
        match names.into_iter().find(|p| p.as_str() != DEFAULT_PARTITION) {
            Some(p) => partition_not_found(field, collection, p),
            None => success(),
        }
    }

    pub(crate) fn show_partitions(&self, req: ShowPartitionsRequest) -> ShowPartitionsResponse {
        let info = match self.find(&req.collection_name, req.collection_id) {
            Ok(info) => info,
            Err(e) => {
                return ShowPartitionsResponse {
                    status: Some(failure(&e)),
                    ..Default::default()
                };
            }
        };
        // `partition_names` (with `type` InMemory) asks about those partitions only.
        if let Some(p) = req
            .partition_names
            .iter()
            .find(|p| p.as_str() != DEFAULT_PARTITION)
        {
            return ShowPartitionsResponse {
                status: Some(partition_not_found("partition_names", &info.schema.name, p)),
                ..Default::default()
            };
        }
        let created = self.times(&info).created;
        ShowPartitionsResponse {
            status: Some(success()),
            partition_names: vec![DEFAULT_PARTITION.to_string()],
            // One partition per collection: the collection id names it uniquely.
            partition_i_ds: vec![info.id as i64],
            created_timestamps: vec![created],
            created_utc_timestamps: vec![ts_physical_ms(created)],
            // Loaded with the collection (see `load`): 100, or 0 once released.
            in_memory_percentages: vec![if self.catalog.is_loaded(&info.schema.name) {
                100
            } else {
                0
            }],
        }
    }

    pub(crate) fn has_partition(&self, req: HasPartitionRequest) -> BoolResponse {
        match self.proxy.describe(&req.collection_name) {
            Ok(_) => BoolResponse {
                status: Some(success()),
                value: req.partition_name == DEFAULT_PARTITION,
            },
            Err(e) => BoolResponse {
                status: Some(failure(&e)),
                value: false,
            },
        }
    }

    /// `_default` holds every row: its statistics are the collection's.
    pub(crate) async fn partition_statistics(
        &self,
        req: GetPartitionStatisticsRequest,
    ) -> GetPartitionStatisticsResponse {
        let status = self.check_partition_names(
            &req.collection_name,
            "partition_name",
            [&req.partition_name],
        );
        if status.code != 0 {
            return GetPartitionStatisticsResponse {
                status: Some(status),
                stats: vec![],
            };
        }
        let r = self
            .statistics(GetCollectionStatisticsRequest {
                base: req.base,
                db_name: req.db_name,
                collection_name: req.collection_name,
            })
            .await;
        GetPartitionStatisticsResponse {
            status: r.status,
            stats: r.stats,
        }
    }

    /// Loading `_default` (or no partition named) is loading the collection.
    pub(crate) async fn load_partitions(&self, req: LoadPartitionsRequest) -> Status {
        if req.partition_names.iter().any(|p| p != DEFAULT_PARTITION) {
            return self.check_partition_names(
                &req.collection_name,
                "partition_names",
                &req.partition_names,
            );
        }
        self.load_collection(LoadCollectionRequest {
            base: req.base,
            db_name: req.db_name,
            collection_name: req.collection_name,
            replica_number: req.replica_number,
            resource_groups: req.resource_groups,
            refresh: req.refresh,
            load_fields: req.load_fields,
            skip_load_dynamic_field: req.skip_load_dynamic_field,
            load_params: req.load_params,
        })
        .await
    }

    /// Releasing `_default` (or no partition named) is releasing the collection.
    pub(crate) async fn release_partitions(&self, req: ReleasePartitionsRequest) -> Status {
        if req.partition_names.iter().any(|p| p != DEFAULT_PARTITION) {
            return self.check_partition_names(
                &req.collection_name,
                "partition_names",
                &req.partition_names,
            );
        }
        self.release_collection(ReleaseCollectionRequest {
            base: req.base,
            db_name: req.db_name,
            collection_name: req.collection_name,
        })
        .await
    }

    /// `_default` exists already: creating it again succeeds, as in Milvus
    /// (a duplicate partition is not an error there); any other is refused.
    pub(crate) fn create_partition(&self, req: CreatePartitionRequest) -> Status {
        if let Err(e) = self.proxy.describe(&req.collection_name) {
            return failure(&e);
        }
        if req.partition_name == DEFAULT_PARTITION {
            return success();
        }
        failure(&Error::invalid(
            "partition_name",
            format!(
                "partitions are not supported: every collection has the one partition \
                 \"{DEFAULT_PARTITION}\" (cannot create {:?})",
                req.partition_name
            ),
        ))
    }

    pub(crate) fn drop_partition(&self, req: DropPartitionRequest) -> Status {
        if let Err(e) = self.proxy.describe(&req.collection_name) {
            return failure(&e);
        }
        let what = if req.partition_name == DEFAULT_PARTITION {
            "it cannot be dropped"
        } else {
            "there is no other to drop"
        };
        failure(&Error::invalid(
            "partition_name",
            format!(
                "partitions are not supported: every collection has the one partition \
                 \"{DEFAULT_PARTITION}\" and {what} (got {:?})",
                req.partition_name
            ),
        ))
    }
}
