//! Partitions: ShowPartitions / HasPartition / GetPartitionStatistics /
//! LoadPartitions / ReleasePartitions / CreatePartition / DropPartition.
//!
//! A partition is coord metadata (its id, name, creation time and whether it
//! is released while its collection stays loaded); rows carry its id
//! ([`super::partitioning`]). A collection created before partitions has the
//! one partition `_default` (whose id is the collection's); no other can be
//! created in it. Naming a partition that does not exist is answered
//! PartitionNotFound (merr 200).

use std::sync::Arc;

use quiver_api::{CollectionInfo, PartitionOp, RowPredicate};
use quiver_common::{Error, Result, ts_physical_ms};
use quiver_proto::common::Status;
use quiver_proto::milvus::{
    BoolResponse, CreatePartitionRequest, DropPartitionRequest, GetCollectionStatisticsRequest,
    GetPartitionStatisticsRequest, GetPartitionStatisticsResponse, HasPartitionRequest,
    LoadCollectionRequest, LoadPartitionsRequest, ReleaseCollectionRequest,
    ReleasePartitionsRequest, ShowPartitionsRequest, ShowPartitionsResponse,
};
use quiver_proxy::Consistency;

use super::MilvusFront;
use super::filter;
use super::partitioning::{DEFAULT_PARTITION, not_found};
use super::schema::kv;
use super::status::{failure, status_of, success};

impl MilvusFront {
    /// The collection's partitions by name with their ids, created times
    /// and whether each is released.
    fn partition_list(&self, info: &CollectionInfo) -> Vec<(String, u64, u64, bool)> {
        let released = !self.catalog.is_loaded(&info.schema.name);
        match self.partitions_of(info) {
            Some(parts) => parts
                .list
                .into_iter()
                .map(|p| (p.name, p.id, p.created_ts, released || p.released))
                .collect(),
            None => vec![(
                DEFAULT_PARTITION.to_string(),
                info.id,
                self.times(info).created,
                released,
            )],
        }
    }

    /// Success when `collection` (a name or an alias) exists and has every
    /// one of `names`; else CollectionNotFound (merr 100), or
    /// PartitionNotFound (merr 200) naming the first missing one (`field` is
    /// the request field that carried it).
    pub(crate) fn check_partition_names<'a>(
        &self,
        collection: &str,
        field: &str,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Status {
        let info = match self.proxy.describe(collection) {
            Ok(info) => info,
            Err(e) => return failure(&e),
        };
        let list = self.partition_list(&info);
        match names
            .into_iter()
            .find(|n| !list.iter().any(|(name, ..)| name == *n))
        {
            Some(p) => failure(&not_found(field, &info.schema.name, p)),
            None => success(),
        }
    }

    /// Whether every one of `names` (all partitions when empty) is loaded.
    pub(crate) fn partitions_loaded(&self, collection: &str, names: &[String]) -> bool {
        let Ok(info) = self.proxy.describe(collection) else {
            return false;
        };
        self.partition_list(&info)
            .iter()
            .filter(|(n, ..)| names.is_empty() || names.contains(n))
            .all(|(.., released)| !released)
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
        let mut list = self.partition_list(&info);
        // `partition_names` (with `type` InMemory) asks about those partitions only.
        if !req.partition_names.is_empty() {
            if let Some(p) = req
                .partition_names
                .iter()
                .find(|n| !list.iter().any(|(name, ..)| name == *n))
            {
                return ShowPartitionsResponse {
                    status: Some(failure(&not_found("partition_names", &info.schema.name, p))),
                    ..Default::default()
                };
            }
            list.retain(|(n, ..)| req.partition_names.contains(n));
        }
        ShowPartitionsResponse {
            status: Some(success()),
            partition_names: list.iter().map(|p| p.0.clone()).collect(),
            partition_i_ds: list.iter().map(|p| p.1 as i64).collect(),
            created_timestamps: list.iter().map(|p| p.2).collect(),
            created_utc_timestamps: list.iter().map(|p| ts_physical_ms(p.2)).collect(),
            in_memory_percentages: list.iter().map(|p| if p.3 { 0 } else { 100 }).collect(),
        }
    }

    pub(crate) fn has_partition(&self, req: HasPartitionRequest) -> BoolResponse {
        match self.proxy.describe(&req.collection_name) {
            Ok(info) => BoolResponse {
                status: Some(success()),
                value: self
                    .partition_list(&info)
                    .iter()
                    .any(|(n, ..)| *n == req.partition_name),
            },
            Err(e) => BoolResponse {
                status: Some(failure(&e)),
                value: false,
            },
        }
    }

    /// A partition's live rows (a loaded one); the collection's statistics
    /// when it is its only partition.
    pub(crate) async fn partition_statistics(
        &self,
        req: GetPartitionStatisticsRequest,
    ) -> GetPartitionStatisticsResponse {
        let run = async {
            let info = self.proxy.describe(&req.collection_name)?;
            let list = self.partition_list(&info);
            let Some((_, id, _, released)) = list.iter().find(|(n, ..)| *n == req.partition_name)
            else {
                return Err(not_found(
                    "partition_name",
                    &info.schema.name,
                    &req.partition_name,
                ));
            };
            if list.len() == 1 && self.partitions_of(&info).is_none_or(|p| !p.dropped) {
                return Ok(None);
            }
            if *released {
                return Err(Error::NotLoaded(format!(
                    "partition not loaded: partition {:?} of collection {:?}",
                    req.partition_name, info.schema.name
                )));
            }
            let expr = format!("{} == {id}", super::schema::PARTITION_COLUMN);
            let f = filter::compile(&self.proxy, &info.schema.name, &expr, &Default::default())?
                .ok_or_else(|| Error::Internal("partition filter is empty".into()))?;
            let f: Arc<dyn RowPredicate> = f;
            let rows = self
                .proxy
                .query(
                    &info.schema.name,
                    None,
                    Some(f),
                    usize::MAX,
                    vec![],
                    false,
                    Consistency::Strong,
                )
                .await?;
            Ok(Some(rows.len()))
        };
        match run.await {
            Ok(Some(n)) => GetPartitionStatisticsResponse {
                status: Some(success()),
                stats: vec![kv("row_count", n.to_string())],
            },
            Ok(None) => {
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
            Err(e) => GetPartitionStatisticsResponse {
                status: Some(failure(&e)),
                stats: vec![],
            },
        }
    }

    /// Loads the named partitions: the collection is loaded (if it was not,
    /// only these partitions are), and they are served again.
    pub(crate) async fn load_partitions(&self, req: LoadPartitionsRequest) -> Status {
        let status = self.check_partition_names(
            &req.collection_name,
            "partition_names",
            &req.partition_names,
        );
        if status.code != 0 {
            return status;
        }
        if req.partition_names.is_empty() {
            // No partition named: the whole collection.
            return self
                .load_collection(LoadCollectionRequest {
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
                .await;
        }
        let run = async {
            let info = self.proxy.describe(&req.collection_name)?;
            if self.partitions_of(&info).is_some() {
                if !self.catalog.is_loaded(&req.collection_name) {
                    let others: Vec<String> = self
                        .partition_list(&info)
                        .into_iter()
                        .map(|p| p.0)
                        .filter(|n| !req.partition_names.contains(n))
                        .collect();
                    self.set_released(&req.collection_name, others, true)
                        .await?;
                }
                self.set_released(&req.collection_name, req.partition_names.clone(), false)
                    .await?;
            }
            let s = self
                .load_collection_only(LoadCollectionRequest {
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
                .await;
            Ok(s)
        };
        match run.await {
            Ok(s) => s,
            Err(e) => failure(&e),
        }
    }

    /// Releases the named partitions; releasing every one (or `_default`
    /// of a collection without others) releases the collection.
    pub(crate) async fn release_partitions(&self, req: ReleasePartitionsRequest) -> Status {
        let status = self.check_partition_names(
            &req.collection_name,
            "partition_names",
            &req.partition_names,
        );
        if status.code != 0 {
            return status;
        }
        let run = async {
            let info = self.proxy.describe(&req.collection_name)?;
            if self.partitions_of(&info).is_some() && !req.partition_names.is_empty() {
                self.set_released(&req.collection_name, req.partition_names.clone(), true)
                    .await?;
                let info = self.proxy.describe(&req.collection_name)?;
                if !self.partition_list(&info).iter().all(|p| p.3) {
                    return Ok(success());
                }
            }
            Ok(self
                .release_collection(ReleaseCollectionRequest {
                    base: req.base,
                    db_name: req.db_name,
                    collection_name: req.collection_name,
                })
                .await)
        };
        match run.await {
            Ok(s) => s,
            Err(e) => failure(&e),
        }
    }

    async fn set_released(
        &self,
        collection: &str,
        names: Vec<String>,
        released: bool,
    ) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        self.catalog
            .change_partitions(collection, PartitionOp::SetReleased { names, released })
            .await
    }

    /// Marks every partition loaded (LoadCollection serves them all).
    pub(crate) async fn load_all_partitions(&self, collection: &str) -> Result<()> {
        let info = self.proxy.describe(collection)?;
        let Some(parts) = self.partitions_of(&info) else {
            return Ok(());
        };
        let released: Vec<String> = parts
            .list
            .into_iter()
            .filter(|p| p.released)
            .map(|p| p.name)
            .collect();
        self.set_released(collection, released, false).await
    }

    /// A new partition (one that exists: success, as Milvus). Refused in a
    /// collection with a partition key, and in one created before partitions.
    pub(crate) async fn create_partition(&self, req: CreatePartitionRequest) -> Status {
        let run = async {
            let info = self.proxy.describe(&req.collection_name)?;
            let Some(parts) = self.partitions_of(&info) else {
                if req.partition_name == DEFAULT_PARTITION {
                    return Ok(());
                }
                return Err(Error::invalid(
                    "partition_name",
                    format!(
                        "collection {:?} was created by a Quiver release without partitions: it has the one partition \"{DEFAULT_PARTITION}\" (create a new collection to use partitions)",
                        info.schema.name
                    ),
                ));
            };
            if parts.key.is_some() {
                return Err(Error::invalid(
                    "partition_name",
                    "disable create partition if partition key mode is used",
                ));
            }
            let op = PartitionOp::Create {
                name: req.partition_name.clone(),
            };
            self.catalog
                .change_partitions(&req.collection_name, op)
                .await
        };
        status_of(run.await)
    }

    /// Drops a released partition (refused while it is loaded, and for
    /// `_default`); its rows are no longer read.
    pub(crate) async fn drop_partition(&self, req: DropPartitionRequest) -> Status {
        let run = async {
            let info = self.proxy.describe(&req.collection_name)?;
            let Some(parts) = self.partitions_of(&info) else {
                return Err(Error::invalid(
                    "partition_name",
                    format!(
                        "collection {:?} has the one partition \"{DEFAULT_PARTITION}\", which cannot be dropped (got {:?})",
                        info.schema.name, req.partition_name
                    ),
                ));
            };
            if parts.key.is_some() {
                return Err(Error::invalid(
                    "partition_name",
                    "disable drop partition if partition key mode is used",
                ));
            }
            let op = PartitionOp::Drop {
                name: req.partition_name.clone(),
            };
            self.catalog
                .change_partitions(&req.collection_name, op)
                .await
        };
        status_of(run.await)
    }
}
