//! Aliases: Create / Alter / Drop / Describe / ListAliases, through coord.

use quiver_common::Result;
use quiver_proto::common::Status;
use quiver_proto::milvus::{
    AlterAliasRequest, CreateAliasRequest, DescribeAliasRequest, DescribeAliasResponse,
    DropAliasRequest, ListAliasesRequest, ListAliasesResponse,
};

use super::MilvusFront;
use super::database::{in_database, plain};
use super::status::{alias_not_found, failure, status_of, success};

impl MilvusFront {
    /// The aliases pointing at `collection`, sorted.
    pub(crate) fn aliases_of(&self, collection: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .catalog
            .aliases()
            .into_iter()
            .filter(|(_, c)| c == collection)
            .map(|(a, _)| a)
            .collect();
        v.sort();
        v
    }

    pub(crate) async fn create_alias(&self, req: CreateAliasRequest) -> Status {
        status_of(
            self.catalog
                .create_alias(&req.alias, &req.collection_name)
                .await,
        )
    }

    pub(crate) async fn alter_alias(&self, req: AlterAliasRequest) -> Status {
        if !self.catalog.aliases().iter().any(|(a, _)| *a == req.alias) {
            return alias_not_found(&req.alias);
        }
        status_of(
            self.catalog
                .alter_alias(&req.alias, &req.collection_name)
                .await,
        )
    }

    pub(crate) async fn drop_alias(&self, req: DropAliasRequest) -> Status {
        // Milvus answers success for an alias that does not exist.
        if !self.catalog.aliases().iter().any(|(a, _)| *a == req.alias) {
            return success();
        }
        status_of(self.catalog.drop_alias(&req.alias).await)
    }

    pub(crate) fn describe_alias(&self, req: DescribeAliasRequest) -> DescribeAliasResponse {
        match self
            .catalog
            .aliases()
            .into_iter()
            .find(|(a, _)| *a == req.alias)
        {
            Some((alias, collection)) => DescribeAliasResponse {
                status: Some(success()),
                db_name: req.db_name,
                alias: plain(&alias),
                collection: plain(&collection),
            },
            None => DescribeAliasResponse {
                status: Some(alias_not_found(&req.alias)),
                ..Default::default()
            },
        }
    }

    pub(crate) fn list_aliases(&self, req: ListAliasesRequest) -> ListAliasesResponse {
        let aliases: Result<Vec<String>> = if req.collection_name.is_empty() {
            self.check_database(&req.db_name).map(|()| {
                let mut all: Vec<String> = (self.catalog.aliases().into_iter())
                    .map(|(a, _)| a)
                    .filter(|a| in_database(a, &req.db_name))
                    .map(|a| plain(&a))
                    .collect();
                all.sort();
                all
            })
        } else {
            self.proxy
                .describe(&req.collection_name)
                .map(|info| self.aliases_of(&info.schema.name))
                .map(|list| list.iter().map(|a| plain(a)).collect())
        };
        match aliases {
            Ok(aliases) => ListAliasesResponse {
                status: Some(success()),
                collection_name: plain(&req.collection_name),
                db_name: req.db_name,
                aliases,
            },
            Err(e) => ListAliasesResponse {
                status: Some(failure(&e)),
                ..Default::default()
            },
        }
    }
}
