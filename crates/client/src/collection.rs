//! Collections: create (schema + index + load in one call), list, describe,
//! drop, count, flush.

use std::fmt;
use std::str::FromStr;

use prost::Message;
use quiver_proto::common::KeyValuePair;
use quiver_proto::milvus::{
    CreateCollectionRequest, CreateIndexRequest, DescribeCollectionRequest, DescribeIndexRequest,
    DropCollectionRequest, FlushRequest, GetLoadStateRequest, GetLoadingProgressRequest,
    HasCollectionRequest, LoadCollectionRequest, ReleaseCollectionRequest, ShowCollectionsRequest,
};
use quiver_proto::schema::{self as pb, DataType};

use crate::Client;
use crate::error::{Error, Result, check, grpc};

/// Field names used by [`CollectionSpec::new`].
pub const DEFAULT_PK_FIELD: &str = "id";
pub const DEFAULT_VECTOR_FIELD: &str = "vector";

/// Distance metric of a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    L2,
    Ip,
    Cosine,
}

impl Metric {
    /// The Milvus name (`L2`, `IP`, `COSINE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::L2 => "L2",
            Metric::Ip => "IP",
            Metric::Cosine => "COSINE",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "L2" => Ok(Metric::L2),
            "IP" => Ok(Metric::Ip),
            "COSINE" => Ok(Metric::Cosine),
            _ => Err(Error::invalid(
                "metric",
                format!("{s:?} is not one of l2, ip, cosine"),
            )),
        }
    }
}

/// The vector index of a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    Flat,
    Hnsw { m: usize, ef_construction: usize },
}

impl Default for Index {
    fn default() -> Self {
        Index::Hnsw {
            m: 16,
            ef_construction: 200,
        }
    }
}

/// A collection to create: an Int64 primary key and one FloatVector field.
#[derive(Clone, Debug)]
pub struct CollectionSpec {
    pub name: String,
    pub dim: usize,
    pub metric: Metric,
    pub index: Index,
    /// `None`: the server's default (1).
    pub shards: Option<u32>,
    /// The server assigns the primary keys.
    pub auto_id: bool,
    pub pk_field: String,
    pub vector_field: String,
    /// The collection's default read level (what a read that does not name
    /// one gets): `Strong` here; Milvus clients default to `Bounded`.
    /// `CollectionDefault` means `Bounded`.
    pub consistency: crate::ReadLevel,
}

impl CollectionSpec {
    /// `id` (Int64 key) + `vector` (FloatVector of `dim`), L2, HNSW M=16 efConstruction=200.
    pub fn new(name: impl Into<String>, dim: usize) -> Self {
        Self {
            name: name.into(),
            dim,
            metric: Metric::L2,
            index: Index::default(),
            shards: None,
            auto_id: false,
            pk_field: DEFAULT_PK_FIELD.to_string(),
            vector_field: DEFAULT_VECTOR_FIELD.to_string(),
            consistency: crate::ReadLevel::Strong,
        }
    }

    pub fn with_consistency(mut self, level: crate::ReadLevel) -> Self {
        self.consistency = level;
        self
    }

    fn schema(&self) -> pb::CollectionSchema {
        let pk = pb::FieldSchema {
            name: self.pk_field.clone(),
            data_type: DataType::Int64 as i32,
            is_primary_key: true,
            auto_id: self.auto_id,
            ..Default::default()
        };
        let vector = pb::FieldSchema {
            name: self.vector_field.clone(),
            data_type: DataType::FloatVector as i32,
            type_params: vec![kv("dim", self.dim.to_string())],
            ..Default::default()
        };
        pb::CollectionSchema {
            name: self.name.clone(),
            auto_id: self.auto_id,
            fields: vec![pk, vector],
            ..Default::default()
        }
    }

    fn index_params(&self) -> Vec<KeyValuePair> {
        let (kind, params) = match self.index {
            Index::Flat => ("FLAT", "{}".to_string()),
            Index::Hnsw { m, ef_construction } => (
                "HNSW",
                format!("{{\"M\": {m}, \"efConstruction\": {ef_construction}}}"),
            ),
        };
        vec![
            kv("index_type", kind),
            kv("metric_type", self.metric.as_str()),
            kv("params", params),
        ]
    }
}

/// One field of a described collection.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldInfo {
    pub name: String,
    pub data_type: DataType,
    pub is_primary_key: bool,
    pub auto_id: bool,
    pub nullable: bool,
    /// Vector fields: the dimension.
    pub dim: Option<usize>,
    /// VarChar fields: the maximum length.
    pub max_length: Option<usize>,
}

/// A described collection.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectionInfo {
    /// The collection's own name (also when described through an alias).
    pub name: String,
    pub id: i64,
    pub shards: u32,
    pub fields: Vec<FieldInfo>,
    pub enable_dynamic_field: bool,
    /// The aliases that point at the collection.
    pub aliases: Vec<String>,
}

impl CollectionInfo {
    pub fn primary_field(&self) -> Option<&FieldInfo> {
        self.fields.iter().find(|f| f.is_primary_key)
    }

    /// The (first) FloatVector field.
    pub fn vector_field(&self) -> Option<&FieldInfo> {
        self.fields
            .iter()
            .find(|f| f.data_type == DataType::FloatVector)
    }

    /// The dimension of the vector field.
    pub fn dim(&self) -> Option<usize> {
        self.vector_field().and_then(|f| f.dim)
    }

    /// Whether the server assigns the primary keys.
    pub fn auto_id(&self) -> bool {
        self.primary_field().is_some_and(|f| f.auto_id)
    }
}

/// The vector index of a described collection.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexInfo {
    pub field_name: String,
    /// `HNSW`, `FLAT`, ...
    pub index_type: String,
    /// `L2`, `IP`, `COSINE`.
    pub metric: String,
    /// The index parameters as the JSON object the server reports (`{"M":16,...}`).
    pub params: String,
    pub indexed_rows: i64,
}

pub(crate) fn kv(key: &str, value: impl Into<String>) -> KeyValuePair {
    KeyValuePair {
        key: key.to_string(),
        value: value.into(),
    }
}

fn param<'a>(params: &'a [KeyValuePair], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|p| p.key.eq_ignore_ascii_case(key))
        .map(|p| p.value.as_str())
}

fn field_info(f: &pb::FieldSchema) -> FieldInfo {
    let number = |key| param(&f.type_params, key).and_then(|v| v.trim().parse().ok());
    FieldInfo {
        name: f.name.clone(),
        data_type: DataType::try_from(f.data_type).unwrap_or(DataType::None),
        is_primary_key: f.is_primary_key,
        auto_id: f.auto_id,
        nullable: f.nullable,
        dim: number("dim"),
        max_length: number("max_length"),
    }
}

impl Client {
    /// Creates the collection, indexes its vector field and loads it. If the
    /// index or the load is refused, the new collection is dropped again.
    pub async fn create_collection(&self, spec: &CollectionSpec) -> Result<()> {
        let shards_num = match spec.shards {
            None => 0,
            Some(n) => i32::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::invalid("shards", format!("must be >= 1 (got {n})")))?,
        };
        let status = grpc(
            "CreateCollection",
            self.stub()
                .create_collection(CreateCollectionRequest {
                    collection_name: spec.name.clone(),
                    schema: spec.schema().encode_to_vec(),
                    shards_num,
                    consistency_level: crate::search::level_to_proto(spec.consistency) as i32,
                    ..Default::default()
                })
                .await,
        )?;
        check("CreateCollection", Some(status))?;
        if let Err(e) = self.index_and_load(spec).await {
            // Best effort: the caller sees the first error either way.
            let _ = self.drop_collection(&spec.name).await;
            return Err(e);
        }
        Ok(())
    }

    async fn index_and_load(&self, spec: &CollectionSpec) -> Result<()> {
        let status = grpc(
            "CreateIndex",
            self.stub()
                .create_index(CreateIndexRequest {
                    collection_name: spec.name.clone(),
                    field_name: spec.vector_field.clone(),
                    extra_params: spec.index_params(),
                    ..Default::default()
                })
                .await,
        )?;
        check("CreateIndex", Some(status))?;
        let status = grpc(
            "LoadCollection",
            self.stub()
                .load_collection(LoadCollectionRequest {
                    collection_name: spec.name.clone(),
                    ..Default::default()
                })
                .await,
        )?;
        check("LoadCollection", Some(status))
    }

    /// The names of all collections.
    pub async fn list_collections(&self) -> Result<Vec<String>> {
        let r = grpc(
            "ShowCollections",
            self.stub()
                .show_collections(ShowCollectionsRequest::default())
                .await,
        )?;
        check("ShowCollections", r.status)?;
        Ok(r.collection_names)
    }

    pub async fn has_collection(&self, name: &str) -> Result<bool> {
        let r = grpc(
            "HasCollection",
            self.stub()
                .has_collection(HasCollectionRequest {
                    collection_name: name.to_string(),
                    ..Default::default()
                })
                .await,
        )?;
        check("HasCollection", r.status)?;
        Ok(r.value)
    }

    /// A collection by name or alias.
    pub async fn describe_collection(&self, name: &str) -> Result<CollectionInfo> {
        let r = grpc(
            "DescribeCollection",
            self.stub()
                .describe_collection(DescribeCollectionRequest {
                    collection_name: name.to_string(),
                    ..Default::default()
                })
                .await,
        )?;
        check("DescribeCollection", r.status)?;
        let schema = r
            .schema
            .ok_or_else(|| Error::protocol("DescribeCollection", "no schema"))?;
        Ok(CollectionInfo {
            name: if r.collection_name.is_empty() {
                schema.name.clone()
            } else {
                r.collection_name
            },
            id: r.collection_id,
            shards: u32::try_from(r.shards_num).unwrap_or(0),
            fields: schema.fields.iter().map(field_info).collect(),
            enable_dynamic_field: schema.enable_dynamic_field,
            aliases: r.aliases,
        })
    }

    /// The index of the collection's vector field.
    pub async fn describe_index(&self, collection: &str) -> Result<IndexInfo> {
        let r = grpc(
            "DescribeIndex",
            self.stub()
                .describe_index(DescribeIndexRequest {
                    collection_name: collection.to_string(),
                    ..Default::default()
                })
                .await,
        )?;
        check("DescribeIndex", r.status)?;
        let d = r
            .index_descriptions
            .into_iter()
            .next()
            .ok_or_else(|| Error::protocol("DescribeIndex", "no index description"))?;
        let get = |k| param(&d.params, k).unwrap_or_default().to_string();
        Ok(IndexInfo {
            index_type: get("index_type"),
            metric: get("metric_type"),
            params: get("params"),
            field_name: d.field_name,
            indexed_rows: d.indexed_rows,
        })
    }

    /// Drops a collection. Like Milvus, dropping a collection that does not
    /// exist succeeds; one that still has aliases is refused.
    pub async fn drop_collection(&self, name: &str) -> Result<()> {
        let status = grpc(
            "DropCollection",
            self.stub()
                .drop_collection(DropCollectionRequest {
                    collection_name: name.to_string(),
                    ..Default::default()
                })
                .await,
        )?;
        check("DropCollection", Some(status))
    }

    /// Loads a collection (collections are loaded from their creation; this
    /// serves a released one again) with `replica_number` querynodes per
    /// shard in a cluster (0 keeps the current number).
    pub async fn load_collection(&self, name: &str, replica_number: u32) -> Result<()> {
        let replica_number = i32::try_from(replica_number)
            .map_err(|_| Error::protocol("LoadCollection", "replica_number too large"))?;
        let status = grpc(
            "LoadCollection",
            self.stub()
                .load_collection(LoadCollectionRequest {
                    collection_name: name.to_string(),
                    replica_number,
                    ..Default::default()
                })
                .await,
        )?;
        check("LoadCollection", Some(status))
    }

    /// Releases a collection: the querynodes free it and its searches and
    /// queries fail with [`Error::is_not_loaded`] until it is loaded again.
    /// Writes still land.
    pub async fn release_collection(&self, name: &str) -> Result<()> {
        let status = grpc(
            "ReleaseCollection",
            self.stub()
                .release_collection(ReleaseCollectionRequest {
                    collection_name: name.to_string(),
                    ..Default::default()
                })
                .await,
        )?;
        check("ReleaseCollection", Some(status))
    }

    /// Whether the collection is loaded (its reads are served).
    pub async fn is_loaded(&self, name: &str) -> Result<bool> {
        let r = grpc(
            "GetLoadState",
            self.stub()
                .get_load_state(GetLoadStateRequest {
                    collection_name: name.to_string(),
                    ..Default::default()
                })
                .await,
        )?;
        check("GetLoadState", r.status)?;
        Ok(r.state == quiver_proto::common::LoadState::Loaded as i32)
    }

    /// The collection's loading progress (0-100); an error says why it
    /// cannot load (as pymilvus's `load()` sees it).
    pub async fn loading_progress(&self, name: &str) -> Result<i64> {
        let r = grpc(
            "GetLoadingProgress",
            self.stub()
                .get_loading_progress(GetLoadingProgressRequest {
                    collection_name: name.to_string(),
                    ..Default::default()
                })
                .await,
        )?;
        check("GetLoadingProgress", r.status)?;
        Ok(r.progress)
    }

    /// Seals the collections' fresh data into indexed segments; returns when done.
    pub async fn flush(&self, collections: &[&str]) -> Result<()> {
        let r = grpc(
            "Flush",
            self.stub()
                .flush(FlushRequest {
                    collection_names: collections.iter().map(|c| c.to_string()).collect(),
                    ..Default::default()
                })
                .await,
        )?;
        check("Flush", r.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_parse_case_insensitively() {
        assert_eq!("cosine".parse::<Metric>().expect("cosine"), Metric::Cosine);
        assert_eq!("IP".parse::<Metric>().expect("ip"), Metric::Ip);
        assert!("hamming".parse::<Metric>().is_err());
        assert_eq!(Metric::L2.to_string(), "L2");
    }

    #[test]
    fn the_spec_is_a_milvus_schema_and_index() {
        let mut spec = CollectionSpec::new("c", 8);
        spec.auto_id = true;
        spec.metric = Metric::Cosine;
        let schema = spec.schema();
        assert_eq!(schema.fields.len(), 2);
        assert!(schema.fields[0].is_primary_key && schema.fields[0].auto_id);
        assert_eq!(schema.fields[1].type_params, vec![kv("dim", "8")]);
        let info = field_info(&schema.fields[1]);
        assert_eq!((info.data_type, info.dim), (DataType::FloatVector, Some(8)));
        let p = spec.index_params();
        assert_eq!(param(&p, "metric_type"), Some("COSINE"));
        assert_eq!(
            param(&p, "params"),
            Some("{\"M\": 16, \"efConstruction\": 200}")
        );
    }
}
