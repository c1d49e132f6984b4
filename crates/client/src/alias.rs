//! Aliases: a name that points at a collection and can be re-pointed atomically.

use quiver_proto::milvus::{
    AlterAliasRequest, CreateAliasRequest, DescribeAliasRequest, DropAliasRequest,
    ListAliasesRequest,
};

use crate::Client;
use crate::error::{Result, check, grpc};

impl Client {
    /// Points a new alias at `collection`.
    pub async fn create_alias(&self, alias: &str, collection: &str) -> Result<()> {
        let status = grpc(
            "CreateAlias",
            self.stub()
                .create_alias(CreateAliasRequest {
                    alias: alias.to_string(),
                    collection_name: collection.to_string(),
                    ..Default::default()
                })
                .await,
        )?;
        check("CreateAlias", Some(status))
    }

    /// Re-points an existing alias at `collection`.
    pub async fn alter_alias(&self, alias: &str, collection: &str) -> Result<()> {
        let status = grpc(
            "AlterAlias",
            self.stub()
                .alter_alias(AlterAliasRequest {
                    alias: alias.to_string(),
                    collection_name: collection.to_string(),
                    ..Default::default()
                })
                .await,
        )?;
        check("AlterAlias", Some(status))
    }

    /// Drops an alias. Like Milvus, dropping one that does not exist succeeds.
    pub async fn drop_alias(&self, alias: &str) -> Result<()> {
        let status = grpc(
            "DropAlias",
            self.stub()
                .drop_alias(DropAliasRequest {
                    alias: alias.to_string(),
                    ..Default::default()
                })
                .await,
        )?;
        check("DropAlias", Some(status))
    }

    /// The collection an alias points at (Milvus code 1600 if there is no such alias).
    pub async fn describe_alias(&self, alias: &str) -> Result<String> {
        let r = grpc(
            "DescribeAlias",
            self.stub()
                .describe_alias(DescribeAliasRequest {
                    alias: alias.to_string(),
                    ..Default::default()
                })
                .await,
        )?;
        check("DescribeAlias", r.status)?;
        Ok(r.collection)
    }

    /// All aliases, or those of one collection, sorted.
    pub async fn list_aliases(&self, collection: Option<&str>) -> Result<Vec<String>> {
        let r = grpc(
            "ListAliases",
            self.stub()
                .list_aliases(ListAliasesRequest {
                    collection_name: collection.unwrap_or_default().to_string(),
                    ..Default::default()
                })
                .await,
        )?;
        check("ListAliases", r.status)?;
        Ok(r.aliases)
    }
}
