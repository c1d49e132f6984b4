//! Collection DDL: Create / Drop / Has / Describe / ShowCollections.
//!
//! As in Milvus, a collection is created without an index (not loaded, its
//! writes land) and indexed later with any metric (see [`super::index`]).

use quiver_api::{AlterTarget, CollectionInfo, CollectionTimes, CreateCollection, IndexKind};
use quiver_common::TTL_PROPERTY;
use quiver_common::{Error, Metric, Result, split_qualified, ts_physical_ms};
use quiver_proto::common::Status;
use quiver_proto::milvus::{
    AlterCollectionFieldRequest, AlterCollectionRequest, BoolResponse, CreateCollectionRequest,
    DescribeCollectionRequest, DescribeCollectionResponse, DropCollectionRequest,
    HasCollectionRequest, RenameCollectionRequest, ShowCollectionsRequest, ShowCollectionsResponse,
};

use super::MilvusFront;
use super::database::{in_database, plain};
use super::partitioning::DEFAULT_PARTITION;
use super::schema::{WRITTEN_COLUMN, kv, schema_from_bytes, schema_to_proto};
use super::search::{level_from_proto, level_to_proto};
use super::status::{failure, status_of, success};

/// Partitions of a collection with a partition key when it names no number
/// (Milvus's default).
const DEFAULT_KEY_PARTITIONS: i64 = 16;
/// The most partitions a partition key spreads rows over (Milvus's limit).
const MAX_KEY_PARTITIONS: i64 = 1024;

/// The metric a collection records until CreateIndex sets its own (HAMMING
/// for binary vectors).
pub const DEFAULT_METRIC: Metric = Metric::L2;
/// What AUTOINDEX (and index types Quiver serves with its graph) builds.
pub const DEFAULT_INDEX: IndexKind = IndexKind::Hnsw {
    m: 16,
    ef_construction: 200,
};

/// The metric a collection records until CreateIndex sets one: HAMMING for
/// binary vectors, IP for sparse ones, BM25 for a BM25 function's output.
fn default_metric(schema: &quiver_common::CollectionSchema) -> Metric {
    let main = schema.vector_field();
    if main.data_type == quiver_common::DataType::SparseFloatVector {
        if schema.function_output(&main.name).is_some() {
            Metric::Bm25
        } else {
            Metric::Ip
        }
    } else if schema.declared_element_type() == quiver_common::ElementType::Binary {
        Metric::Hamming
    } else {
        DEFAULT_METRIC
    }
}

impl MilvusFront {
    pub(crate) async fn create_collection(
        &self,
        req: CreateCollectionRequest,
    ) -> quiver_proto::common::Status {
        status_of(self.create_collection_inner(req).await.map(|_| ()))
    }

    async fn create_collection_inner(&self, req: CreateCollectionRequest) -> Result<()> {
        let mut schema = schema_from_bytes(&req.collection_name, &req.schema)?;
        schema.consistency = level_from_proto(req.consistency_level)?;
        schema.properties = req
            .properties
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect();
        let keyed = schema.fields.iter().any(|f| f.is_partition_key);
        let partitions = match (keyed, req.num_partitions) {
            (false, 0 | 1) => vec![DEFAULT_PARTITION.to_string()],
            (false, _) => {
                return Err(Error::invalid(
                    "num_partitions",
                    "num_partitions should only be specified with partition key field enabled",
                ));
            }
            (true, n) if !(0..=MAX_KEY_PARTITIONS).contains(&n) => {
                return Err(Error::invalid(
                    "num_partitions",
                    format!(
                        "the specified partitions should be greater than 0 and at most {MAX_KEY_PARTITIONS} if partition key is used (got {n})"
                    ),
                ));
            }
            (true, n) => {
                let n = if n == 0 { DEFAULT_KEY_PARTITIONS } else { n };
                (0..n).map(|i| format!("{DEFAULT_PARTITION}_{i}")).collect()
            }
        };
        let shards = if req.shards_num == 0 {
            1
        } else {
            u32::try_from(req.shards_num).map_err(|_| {
                Error::invalid(
                    "shards_num",
                    format!("must be between 1 and 64 (got {})", req.shards_num),
                )
            })?
        };
        let result = self
            .proxy
            .create_collection(CreateCollection {
                schema: schema.clone(),
                shards,
                metric: default_metric(&schema),
                index: IndexKind::None,
                partitions: Some(partitions),
            })
            .await;
        match result {
            // As Milvus: creating a collection that exists with the same
            // schema and shards succeeds; anything else is a duplicate.
            Err(Error::AlreadyExists(what)) => match self.proxy.describe(&schema.name) {
                Ok(info) if info.schema == schema && info.shards == shards => Ok(()),
                _ => Err(Error::AlreadyExists(format!(
                    "{what} (with other parameters; drop it first or pick another name)"
                ))),
            },
            other => other.map(|_| ()),
        }
    }

    /// Sets (`properties`) and deletes (`delete_keys`) collection
    /// properties: a TTL (`collection.ttl.seconds`) hides rows older than it
    /// from reads at once, and compaction removes them; `mmap.enabled` and
    /// other keys are kept and reported.
    pub(crate) async fn alter_collection(
        &self,
        req: AlterCollectionRequest,
    ) -> quiver_proto::common::Status {
        let run = async {
            let info = self.find(&req.collection_name, req.collection_id)?;
            let set: std::collections::BTreeMap<String, String> = req
                .properties
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect();
            if set.contains_key(TTL_PROPERTY) && info.schema.field(WRITTEN_COLUMN).is_none() {
                return Err(Error::invalid(
                    format!("properties.{TTL_PROPERTY}"),
                    format!(
                        "collection {:?} was created by a Quiver release that does not record when rows were written; a TTL needs a collection created since",
                        info.schema.name
                    ),
                ));
            }
            self.catalog
                .alter(
                    &info.schema.name,
                    AlterTarget::Collection,
                    set,
                    req.delete_keys,
                )
                .await
        };
        status_of(run.await)
    }

    /// Alters one field: `max_length` of a VarChar field (up only) and
    /// `mmap.enabled`, reported by DescribeCollection.
    pub(crate) async fn alter_collection_field(
        &self,
        req: AlterCollectionFieldRequest,
    ) -> quiver_proto::common::Status {
        let run = async {
            let info = self.proxy.describe(&req.collection_name)?;
            if super::schema::is_hidden(&req.field_name) {
                return Err(Error::invalid(
                    "field_name",
                    format!("no field {:?} in the collection", req.field_name),
                ));
            }
            let set = req
                .properties
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect();
            self.catalog
                .alter(
                    &info.schema.name,
                    AlterTarget::Field(req.field_name.clone()),
                    set,
                    req.delete_keys,
                )
                .await
        };
        status_of(run.await)
    }

    pub(crate) async fn drop_collection(
        &self,
        req: DropCollectionRequest,
    ) -> quiver_proto::common::Status {
        // Milvus answers success when the collection does not exist.
        match self.proxy.describe(&req.collection_name) {
            Err(_) => success(),
            Ok(_) => status_of(self.proxy.drop_collection(&req.collection_name).await),
        }
    }

    pub(crate) fn has_collection(&self, req: HasCollectionRequest) -> BoolResponse {
        let (db, _) = split_qualified(&req.collection_name);
        if let Err(e) = self.check_database(db) {
            return BoolResponse {
                status: Some(failure(&e)),
                value: false,
            };
        }
        BoolResponse {
            status: Some(success()),
            value: self.proxy.describe(&req.collection_name).is_ok(),
        }
    }

    /// By name or alias, else by id.
    pub(crate) fn find(&self, name: &str, id: i64) -> Result<CollectionInfo> {
        if name.is_empty() && id != 0 {
            return self
                .proxy
                .list()
                .into_iter()
                .find(|c| c.id as i64 == id)
                .ok_or_else(|| Error::CollectionNotFound(format!("id {id}")));
        }
        self.proxy.describe(name)
    }

    /// When `info`'s collection was created and last changed (hybrid
    /// timestamps); zero when the catalog does not record it (or the name now
    /// belongs to another collection).
    pub(crate) fn times(&self, info: &CollectionInfo) -> CollectionTimes {
        self.catalog
            .collection_times(&info.schema.name)
            .filter(|t| t.id == info.id)
            .unwrap_or(CollectionTimes {
                id: info.id,
                created: 0,
                updated: 0,
            })
    }

    pub(crate) fn describe_collection(
        &self,
        req: DescribeCollectionRequest,
    ) -> DescribeCollectionResponse {
        let info = match self.find(&req.collection_name, req.collection_id) {
            Ok(info) => info,
            Err(e) => {
                return DescribeCollectionResponse {
                    status: Some(failure(&e)),
                    ..Default::default()
                };
            }
        };
        let times = self.times(&info);
        let channels: Vec<String> = (0..info.shards)
            .map(|s| format!("quiver-dml_{}_{s}v0", info.id))
            .collect();
        DescribeCollectionResponse {
            status: Some(success()),
            schema: Some(schema_to_proto(&info.schema)),
            collection_id: info.id as i64,
            created_timestamp: times.created,
            created_utc_timestamp: ts_physical_ms(times.created),
            update_timestamp: times.updated,
            update_timestamp_str: times.updated.to_string(),
            physical_channel_names: channels.clone(),
            virtual_channel_names: channels,
            shards_num: info.shards as i32,
            aliases: (self.aliases_of(&info.schema.name).iter())
                .map(|a| plain(a))
                .collect(),
            consistency_level: level_to_proto(info.schema.consistency) as i32,
            properties: info
                .schema
                .properties
                .iter()
                .map(|(k, v)| kv(k, v.clone()))
                .collect(),
            collection_name: plain(&info.schema.name),
            db_name: split_qualified(&info.schema.name).0.to_string(),
            num_partitions: self.partitions_of(&info).map_or(1, |p| p.list.len() as i64),
            ..Default::default()
        }
    }

    /// RenameCollection: `old_name` arrives qualified (`database::scope`);
    /// the new name is of `new_db_name`, else of the request's database.
    pub(crate) async fn rename_collection(&self, r: RenameCollectionRequest) -> Status {
        let run = async {
            if r.new_name.contains('.') || r.new_db_name.contains('.') {
                return Err(Error::invalid(
                    "newName",
                    format!(
                        "must hold only letters, digits and '_' (got {:?})",
                        r.new_name
                    ),
                ));
            }
            let db = if r.new_db_name.is_empty() {
                &r.db_name
            } else {
                &r.new_db_name
            };
            self.check_database(db)?;
            let new = quiver_common::qualify(db, &r.new_name);
            self.catalog.rename_collection(&r.old_name, &new).await
        };
        status_of(run.await)
    }

    pub(crate) fn show_collections(&self, req: ShowCollectionsRequest) -> ShowCollectionsResponse {
        if let Err(e) = self.check_database(&req.db_name) {
            return ShowCollectionsResponse {
                status: Some(failure(&e)),
                ..Default::default()
            };
        }
        let mut list = self.proxy.list();
        list.retain(|c| in_database(&c.schema.name, &req.db_name));
        list.sort_by(|a, b| a.schema.name.cmp(&b.schema.name));
        let loaded: Vec<bool> = list
            .iter()
            .map(|c| self.catalog.is_loaded(&c.schema.name))
            .collect();
        let created: Vec<u64> = list.iter().map(|c| self.times(c).created).collect();
        ShowCollectionsResponse {
            status: Some(success()),
            collection_names: list.iter().map(|c| plain(&c.schema.name)).collect(),
            collection_ids: list.iter().map(|c| c.id as i64).collect(),
            created_utc_timestamps: created.iter().map(|&t| ts_physical_ms(t)).collect(),
            created_timestamps: created,
            in_memory_percentages: loaded.iter().map(|&l| if l { 100 } else { 0 }).collect(),
            query_service_available: loaded,
        }
    }
}
