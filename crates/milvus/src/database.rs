//! Databases: Create / Drop / List / Describe / AlterDatabase, and the one
//! place a request's database is applied. Every request that names
//! collections or aliases is [`Scoped`]: [`MilvusFront::allow`] resolves its
//! database (the request's `db_name`, else the `dbname` header pymilvus's
//! `using_database` / `MilvusClient(db_name=...)` sends, else `default`)
//! and rewrites the names to the qualified `db.name` every layer behind the
//! front door uses (`quiver_common::qualify`). Answers that carry names give
//! them back plain ([`plain`]).

use std::collections::BTreeMap;

use quiver_api::DatabaseOp;
use quiver_common::{DEFAULT_DATABASE, Error, Result, qualify, split_qualified};
use quiver_proto::common::Status;
use quiver_proto::milvus::*;

use super::MilvusFront;
use super::schema::kv;
use super::status::{failure, status_of, success};

/// The header pymilvus sends the connection's database in.
const DB_HEADER: &str = "dbname";

/// A request that may name collections or aliases of one database.
pub(crate) trait Scoped {
    /// The request's `db_name` field, if it has one.
    fn db_field(&mut self) -> Option<&mut String> {
        None
    }
    /// The collection and alias names it carries.
    fn names(&mut self) -> Vec<&mut String> {
        Vec::new()
    }
}

macro_rules! scoped {
    ($($t:ty => [$($f:ident),*] $([$($rep:ident),*])?;)*) => {$(
        impl Scoped for $t {
            fn db_field(&mut self) -> Option<&mut String> {
                Some(&mut self.db_name)
            }
            #[allow(unused_mut)]
            fn names(&mut self) -> Vec<&mut String> {
                let mut v: Vec<&mut String> = vec![$(&mut self.$f),*];
                $($(v.extend(self.$rep.iter_mut());)*)?
                v
            }
        }
    )*};
}

macro_rules! unscoped {
    ($($t:ty),* $(,)?) => {$(impl Scoped for $t {})*};
}

scoped! {
    CreateCollectionRequest => [collection_name];
    AlterCollectionRequest => [collection_name];
    AlterCollectionFieldRequest => [collection_name];
    AlterIndexRequest => [collection_name];
    DropCollectionRequest => [collection_name];
    HasCollectionRequest => [collection_name];
    LoadCollectionRequest => [collection_name];
    ReleaseCollectionRequest => [collection_name];
    DescribeCollectionRequest => [collection_name];
    GetCollectionStatisticsRequest => [collection_name];
    ShowCollectionsRequest => [] [collection_names];
    CreatePartitionRequest => [collection_name];
    DropPartitionRequest => [collection_name];
    HasPartitionRequest => [collection_name];
    LoadPartitionsRequest => [collection_name];
    ReleasePartitionsRequest => [collection_name];
    GetPartitionStatisticsRequest => [collection_name];
    ShowPartitionsRequest => [collection_name];
    GetReplicasRequest => [collection_name];
    GetLoadingProgressRequest => [collection_name];
    GetLoadStateRequest => [collection_name];
    CreateAliasRequest => [collection_name, alias];
    DropAliasRequest => [alias];
    AlterAliasRequest => [collection_name, alias];
    DescribeAliasRequest => [alias];
    ListAliasesRequest => [collection_name];
    CreateIndexRequest => [collection_name];
    DescribeIndexRequest => [collection_name];
    DropIndexRequest => [collection_name];
    InsertRequest => [collection_name];
    DeleteRequest => [collection_name];
    UpsertRequest => [collection_name];
    SearchRequest => [collection_name];
    HybridSearchRequest => [collection_name];
    QueryRequest => [collection_name];
    FlushRequest => [] [collection_names];
    GetFlushStateRequest => [collection_name];
    ManualCompactionRequest => [collection_name];
    TransferReplicaRequest => [collection_name];
    RenameCollectionRequest => [old_name];
}

// Requests whose `db_name` (if any) is their subject, or that name no
// collection: they pass unchanged.
unscoped!(
    CreateDatabaseRequest,
    DropDatabaseRequest,
    ListDatabasesRequest,
    AlterDatabaseRequest,
    DescribeDatabaseRequest,
    GetCompactionStateRequest,
    GetCompactionPlansRequest,
    GetVersionRequest,
    CheckHealthRequest,
    ConnectRequest,
    AllocTimestampRequest,
    CreateCredentialRequest,
    UpdateCredentialRequest,
    DeleteCredentialRequest,
    ListCredUsersRequest,
    CreateRoleRequest,
    DropRoleRequest,
    OperateUserRoleRequest,
    SelectRoleRequest,
    SelectUserRequest,
    OperatePrivilegeRequest,
    OperatePrivilegeV2Request,
    SelectGrantRequest,
    ListPrivilegeGroupsRequest,
    CreateResourceGroupRequest,
    DropResourceGroupRequest,
    UpdateResourceGroupsRequest,
    TransferNodeRequest,
    ListResourceGroupsRequest,
    DescribeResourceGroupRequest,
);

/// Resolves the request's database and qualifies the names it carries; the
/// `db_name` field holds the database afterwards. A name holding a `.`
/// is refused (it would reach into another database).
pub(crate) fn scope<T: Scoped>(r: &mut T, header: Option<&str>) -> Result<()> {
    let db = match r.db_field() {
        Some(d) if !d.is_empty() => d.clone(),
        _ => header
            .filter(|h| !h.is_empty())
            .unwrap_or(DEFAULT_DATABASE)
            .to_string(),
    };
    if let Some(d) = r.db_field() {
        *d = db.clone();
    }
    for name in r.names() {
        if name.contains('.') {
            return Err(Error::invalid(
                "collection_name",
                format!(
                    "must start with a letter or '_' and hold only letters, digits and '_', got {name:?}"
                ),
            ));
        }
        if !name.is_empty() {
            *name = qualify(&db, name);
        }
    }
    Ok(())
}

/// The `dbname` header of a request, if it carries one.
pub(crate) fn header_db<T>(req: &tonic::Request<T>) -> Option<String> {
    req.metadata()
        .get(DB_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A qualified name as a client of its database knows it.
pub(crate) fn plain(qualified: &str) -> String {
    split_qualified(qualified).1.to_string()
}

/// Whether a qualified name is of database `db`.
pub(crate) fn in_database(qualified: &str, db: &str) -> bool {
    split_qualified(qualified).0 == db
}

fn properties(kvs: &[quiver_proto::common::KeyValuePair]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect()
}

impl MilvusFront {
    /// Fails with Milvus's DatabaseNotFound (800) unless `db` exists.
    pub(crate) fn check_database(&self, db: &str) -> Result<()> {
        if db == DEFAULT_DATABASE || self.catalog.databases().iter().any(|d| d.name == db) {
            Ok(())
        } else {
            Err(Error::DatabaseNotFound(format!(
                "database not found[database={db}]"
            )))
        }
    }

    pub(crate) async fn create_database(&self, r: CreateDatabaseRequest) -> Status {
        let op = DatabaseOp::Create {
            name: r.db_name,
            properties: properties(&r.properties),
        };
        status_of(self.catalog.change_database(op).await)
    }

    pub(crate) async fn drop_database(&self, r: DropDatabaseRequest) -> Status {
        let op = DatabaseOp::Drop { name: r.db_name };
        status_of(self.catalog.change_database(op).await)
    }

    pub(crate) async fn alter_database(&self, r: AlterDatabaseRequest) -> Status {
        if r.properties.is_empty() && r.delete_keys.is_empty() {
            return failure(&Error::invalid(
                "properties",
                "alter database requires either properties or deletekeys to modify or delete keys",
            ));
        }
        let op = DatabaseOp::Alter {
            name: r.db_name,
            set: properties(&r.properties),
            delete: r.delete_keys,
        };
        status_of(self.catalog.change_database(op).await)
    }

    pub(crate) fn list_databases(&self) -> ListDatabasesResponse {
        let mut dbs = self.catalog.databases();
        if dbs.is_empty() {
            return ListDatabasesResponse {
                status: Some(success()),
                db_names: vec![DEFAULT_DATABASE.to_string()],
                created_timestamp: vec![0],
                db_ids: vec![0],
            };
        }
        dbs.sort_by_key(|d| (d.name != DEFAULT_DATABASE, d.id));
        ListDatabasesResponse {
            status: Some(success()),
            db_names: dbs.iter().map(|d| d.name.clone()).collect(),
            created_timestamp: dbs.iter().map(|d| d.created_ts).collect(),
            db_ids: dbs.iter().map(|d| d.id as i64).collect(),
        }
    }

    pub(crate) fn describe_database(&self, r: DescribeDatabaseRequest) -> DescribeDatabaseResponse {
        let name = if r.db_name.is_empty() {
            DEFAULT_DATABASE.to_string()
        } else {
            r.db_name
        };
        let found = self
            .catalog
            .databases()
            .into_iter()
            .find(|d| d.name == name);
        match found {
            Some(d) => DescribeDatabaseResponse {
                status: Some(success()),
                db_name: d.name,
                db_id: d.id as i64,
                created_timestamp: d.created_ts,
                properties: d.properties.iter().map(|(k, v)| kv(k, v.clone())).collect(),
            },
            None if name == DEFAULT_DATABASE => DescribeDatabaseResponse {
                status: Some(success()),
                db_name: name,
                ..Default::default()
            },
            None => DescribeDatabaseResponse {
                status: Some(failure(&Error::DatabaseNotFound(format!(
                    "database not found[database={name}]"
                )))),
                ..Default::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_qualified_by_field_then_header() {
        let mut r = DescribeCollectionRequest {
            collection_name: "c".into(),
            ..Default::default()
        };
        scope(&mut r, Some("db1")).expect("scoped");
        assert_eq!(
            (r.collection_name.as_str(), r.db_name.as_str()),
            ("db1.c", "db1")
        );

        let mut r = CreateAliasRequest {
            db_name: "db2".into(),
            collection_name: "c".into(),
            alias: "a".into(),
            ..Default::default()
        };
        scope(&mut r, Some("db1")).expect("scoped");
        assert_eq!(
            (r.collection_name.as_str(), r.alias.as_str()),
            ("db2.c", "db2.a")
        );

        let mut r = FlushRequest {
            collection_names: vec!["x".into(), "y".into()],
            ..Default::default()
        };
        scope(&mut r, None).expect("scoped");
        assert_eq!(r.collection_names, ["x", "y"]);
        assert_eq!(r.db_name, "default");

        let mut r = HasCollectionRequest {
            collection_name: "db1.c".into(),
            ..Default::default()
        };
        let e = scope(&mut r, None).expect_err("a dotted name reaches into another database");
        assert!(e.to_string().contains("collection_name"), "{e}");
    }
}
