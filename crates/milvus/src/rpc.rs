//! `impl MilvusService`: each RPC delegates to its group module. Every
//! answer is gRPC OK; failures travel in the response's `common.Status`.

use quiver_proto::common;
use quiver_proto::milvus::milvus_service_server::MilvusService;
use quiver_proto::milvus::*;
use tonic::{Request, Response, Status};

use quiver_auth::Need;

use super::MilvusFront;

#[tonic::async_trait]
impl MilvusService for MilvusFront {
    async fn create_collection(
        &self,
        req: Request<CreateCollectionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("CreateCollection")])?;
        Ok(Response::new(self.create_collection(r).await))
    }

    async fn alter_collection(
        &self,
        req: Request<AlterCollectionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("CreateCollection")])?;
        Ok(Response::new(self.alter_collection(r).await))
    }

    async fn alter_collection_field(
        &self,
        req: Request<AlterCollectionFieldRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("CreateCollection")])?;
        Ok(Response::new(self.alter_collection_field(r).await))
    }

    async fn alter_index(
        &self,
        req: Request<AlterIndexRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |r| self.on("CreateIndex", &r.collection_name))?;
        Ok(Response::new(MilvusFront::alter_index(self, r).await))
    }

    async fn drop_collection(
        &self,
        req: Request<DropCollectionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("DropCollection")])?;
        Ok(Response::new(self.drop_collection(r).await))
    }

    async fn has_collection(
        &self,
        req: Request<HasCollectionRequest>,
    ) -> Result<Response<BoolResponse>, Status> {
        let r = self.allow(req, |r| self.on("DescribeCollection", &r.collection_name))?;
        Ok(Response::new(self.has_collection(r)))
    }

    async fn load_collection(
        &self,
        req: Request<LoadCollectionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |r| self.on("Load", &r.collection_name))?;
        Ok(Response::new(self.load_collection(r).await))
    }

    async fn release_collection(
        &self,
        req: Request<ReleaseCollectionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |r| self.on("Release", &r.collection_name))?;
        Ok(Response::new(self.release_collection(r).await))
    }

    async fn describe_collection(
        &self,
        req: Request<DescribeCollectionRequest>,
    ) -> Result<Response<DescribeCollectionResponse>, Status> {
        let r = self.allow(req, |r| self.on("DescribeCollection", &r.collection_name))?;
        Ok(Response::new(self.describe_collection(r)))
    }

    async fn get_collection_statistics(
        &self,
        req: Request<GetCollectionStatisticsRequest>,
    ) -> Result<Response<GetCollectionStatisticsResponse>, Status> {
        let r = self.allow(req, |r| self.on("GetStatistics", &r.collection_name))?;
        Ok(Response::new(self.statistics(r).await))
    }

    async fn show_collections(
        &self,
        req: Request<ShowCollectionsRequest>,
    ) -> Result<Response<ShowCollectionsResponse>, Status> {
        let r = self.allow(req, |_| vec![Need::global("ShowCollections")])?;
        Ok(Response::new(self.show_collections(r)))
    }

    async fn create_partition(
        &self,
        req: Request<CreatePartitionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |r| self.on("CreatePartition", &r.collection_name))?;
        Ok(Response::new(MilvusFront::create_partition(self, r).await))
    }

    async fn drop_partition(
        &self,
        req: Request<DropPartitionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |r| self.on("DropPartition", &r.collection_name))?;
        Ok(Response::new(MilvusFront::drop_partition(self, r).await))
    }

    async fn has_partition(
        &self,
        req: Request<HasPartitionRequest>,
    ) -> Result<Response<BoolResponse>, Status> {
        let r = self.allow(req, |r| self.on("HasPartition", &r.collection_name))?;
        Ok(Response::new(MilvusFront::has_partition(self, r)))
    }

    async fn load_partitions(
        &self,
        req: Request<LoadPartitionsRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |r| self.on("Load", &r.collection_name))?;
        Ok(Response::new(MilvusFront::load_partitions(self, r).await))
    }

    async fn release_partitions(
        &self,
        req: Request<ReleasePartitionsRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |r| self.on("Release", &r.collection_name))?;
        Ok(Response::new(
            MilvusFront::release_partitions(self, r).await,
        ))
    }

    async fn get_partition_statistics(
        &self,
        req: Request<GetPartitionStatisticsRequest>,
    ) -> Result<Response<GetPartitionStatisticsResponse>, Status> {
        let r = self.allow(req, |r| self.on("GetStatistics", &r.collection_name))?;
        Ok(Response::new(self.partition_statistics(r).await))
    }

    async fn get_replicas(
        &self,
        req: Request<GetReplicasRequest>,
    ) -> Result<Response<GetReplicasResponse>, Status> {
        let r = self.allow(req, |r| self.on("GetLoadState", &r.collection_name))?;
        Ok(Response::new(MilvusFront::get_replicas(self, r)))
    }

    async fn show_partitions(
        &self,
        req: Request<ShowPartitionsRequest>,
    ) -> Result<Response<ShowPartitionsResponse>, Status> {
        let r = self.allow(req, |r| self.on("ShowPartitions", &r.collection_name))?;
        Ok(Response::new(MilvusFront::show_partitions(self, r)))
    }

    async fn get_loading_progress(
        &self,
        req: Request<GetLoadingProgressRequest>,
    ) -> Result<Response<GetLoadingProgressResponse>, Status> {
        let r = self.allow(req, |r| self.on("GetLoadingProgress", &r.collection_name))?;
        Ok(Response::new(self.loading_progress(r)))
    }

    async fn get_load_state(
        &self,
        req: Request<GetLoadStateRequest>,
    ) -> Result<Response<GetLoadStateResponse>, Status> {
        let r = self.allow(req, |r| self.on("GetLoadState", &r.collection_name))?;
        Ok(Response::new(self.load_state(r)))
    }

    async fn create_alias(
        &self,
        req: Request<CreateAliasRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |r| self.on("CreateAlias", &r.collection_name))?;
        Ok(Response::new(MilvusFront::create_alias(self, r).await))
    }

    async fn drop_alias(
        &self,
        req: Request<DropAliasRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |r| self.on("DropAlias", &r.alias))?;
        Ok(Response::new(MilvusFront::drop_alias(self, r).await))
    }

    async fn alter_alias(
        &self,
        req: Request<AlterAliasRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |r| self.on("CreateAlias", &r.collection_name))?;
        Ok(Response::new(MilvusFront::alter_alias(self, r).await))
    }

    async fn describe_alias(
        &self,
        req: Request<DescribeAliasRequest>,
    ) -> Result<Response<DescribeAliasResponse>, Status> {
        let r = self.allow(req, |r| self.on("DescribeAlias", &r.alias))?;
        Ok(Response::new(MilvusFront::describe_alias(self, r)))
    }

    async fn list_aliases(
        &self,
        req: Request<ListAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        let r = self.allow(req, |r| self.on("ListAliases", &r.collection_name))?;
        Ok(Response::new(MilvusFront::list_aliases(self, r)))
    }

    async fn create_index(
        &self,
        req: Request<CreateIndexRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |r| self.on("CreateIndex", &r.collection_name))?;
        Ok(Response::new(MilvusFront::create_index(self, r).await))
    }

    async fn describe_index(
        &self,
        req: Request<DescribeIndexRequest>,
    ) -> Result<Response<DescribeIndexResponse>, Status> {
        let r = self.allow(req, |r| self.on("IndexDetail", &r.collection_name))?;
        Ok(Response::new(MilvusFront::describe_index(self, r).await))
    }

    async fn drop_index(
        &self,
        req: Request<DropIndexRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |r| self.on("DropIndex", &r.collection_name))?;
        Ok(Response::new(MilvusFront::drop_index(self, r).await))
    }

    async fn insert(
        &self,
        req: Request<InsertRequest>,
    ) -> Result<Response<MutationResult>, Status> {
        let r = self.allow(req, |r| self.on("Insert", &r.collection_name))?;
        Ok(Response::new(MilvusFront::insert(self, r).await))
    }

    async fn delete(
        &self,
        req: Request<DeleteRequest>,
    ) -> Result<Response<MutationResult>, Status> {
        let r = self.allow(req, |r| self.on("Delete", &r.collection_name))?;
        Ok(Response::new(MilvusFront::delete(self, r).await))
    }

    async fn upsert(
        &self,
        req: Request<UpsertRequest>,
    ) -> Result<Response<MutationResult>, Status> {
        let r = self.allow(req, |r| self.on("Upsert", &r.collection_name))?;
        Ok(Response::new(MilvusFront::upsert(self, r).await))
    }

    async fn search(&self, req: Request<SearchRequest>) -> Result<Response<SearchResults>, Status> {
        let r = self.allow(req, |r| self.on("Search", &r.collection_name))?;
        Ok(Response::new(MilvusFront::search(self, r).await))
    }

    async fn hybrid_search(
        &self,
        req: Request<HybridSearchRequest>,
    ) -> Result<Response<SearchResults>, Status> {
        let r = self.allow(req, |r| self.on("Search", &r.collection_name))?;
        Ok(Response::new(MilvusFront::hybrid_search(self, r).await))
    }

    async fn manual_compaction(
        &self,
        req: Request<ManualCompactionRequest>,
    ) -> Result<Response<ManualCompactionResponse>, Status> {
        let r = self.allow(req, |r| {
            self.on_id("Compaction", r.collection_id, &r.collection_name)
        })?;
        Ok(Response::new(self.manual_compaction(r).await))
    }

    async fn get_compaction_state(
        &self,
        req: Request<GetCompactionStateRequest>,
    ) -> Result<Response<GetCompactionStateResponse>, Status> {
        self.caller(&req)?;
        let r = req.into_inner();
        Ok(Response::new(self.compaction_state(r).await))
    }

    async fn get_compaction_state_with_plans(
        &self,
        req: Request<GetCompactionPlansRequest>,
    ) -> Result<Response<GetCompactionPlansResponse>, Status> {
        self.caller(&req)?;
        let r = req.into_inner();
        Ok(Response::new(self.compaction_plans(r).await))
    }

    async fn flush(&self, req: Request<FlushRequest>) -> Result<Response<FlushResponse>, Status> {
        let r = self.allow(req, |r| self.on_all("Flush", &r.collection_names))?;
        Ok(Response::new(MilvusFront::flush(self, r).await))
    }

    async fn query(&self, req: Request<QueryRequest>) -> Result<Response<QueryResults>, Status> {
        let r = self.allow(req, |r| self.on("Query", &r.collection_name))?;
        Ok(Response::new(MilvusFront::query(self, r).await))
    }

    async fn get_flush_state(
        &self,
        req: Request<GetFlushStateRequest>,
    ) -> Result<Response<GetFlushStateResponse>, Status> {
        let r = self.allow(req, |r| self.on("GetFlushState", &r.collection_name))?;
        Ok(Response::new(self.flush_state(r)))
    }

    async fn get_version(
        &self,
        req: Request<GetVersionRequest>,
    ) -> Result<Response<GetVersionResponse>, Status> {
        self.caller(&req)?;
        let _r = req.into_inner();
        Ok(Response::new(self.version()))
    }

    async fn check_health(
        &self,
        req: Request<CheckHealthRequest>,
    ) -> Result<Response<CheckHealthResponse>, Status> {
        self.caller(&req)?;
        let _r = req.into_inner();
        Ok(Response::new(self.health()))
    }

    async fn connect(
        &self,
        req: Request<ConnectRequest>,
    ) -> Result<Response<ConnectResponse>, Status> {
        self.caller(&req)?;
        let _r = req.into_inner();
        Ok(Response::new(MilvusFront::connect(self)))
    }

    async fn alloc_timestamp(
        &self,
        req: Request<AllocTimestampRequest>,
    ) -> Result<Response<AllocTimestampResponse>, Status> {
        self.caller(&req)?;
        let _r = req.into_inner();
        Ok(Response::new(self.alloc_timestamp()))
    }

    async fn create_credential(
        &self,
        req: Request<CreateCredentialRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("CreateOwnership")])?;
        Ok(Response::new(MilvusFront::create_credential(self, r).await))
    }

    /// A user may change its own password; changing another's needs
    /// `UpdateUser` on it.
    async fn update_credential(
        &self,
        req: Request<UpdateCredentialRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let caller = self.caller(&req)?;
        let own = caller.user() == Some(req.get_ref().username.as_str());
        let r = self.allow(req, |r| {
            if own {
                Vec::new()
            } else {
                vec![Need::on("UpdateUser", [r.username.as_str()])]
            }
        })?;
        Ok(Response::new(
            MilvusFront::update_credential(self, &caller, r).await,
        ))
    }

    async fn delete_credential(
        &self,
        req: Request<DeleteCredentialRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("DropOwnership")])?;
        Ok(Response::new(MilvusFront::delete_credential(self, r).await))
    }

    async fn list_cred_users(
        &self,
        req: Request<ListCredUsersRequest>,
    ) -> Result<Response<ListCredUsersResponse>, Status> {
        self.allow(req, |_| vec![Need::global("SelectOwnership")])?;
        Ok(Response::new(MilvusFront::list_cred_users(self)))
    }

    async fn create_role(
        &self,
        req: Request<CreateRoleRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("CreateOwnership")])?;
        Ok(Response::new(MilvusFront::create_role(self, r).await))
    }

    async fn drop_role(
        &self,
        req: Request<DropRoleRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("DropOwnership")])?;
        Ok(Response::new(MilvusFront::drop_role(self, r).await))
    }

    async fn operate_user_role(
        &self,
        req: Request<OperateUserRoleRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("ManageOwnership")])?;
        Ok(Response::new(MilvusFront::operate_user_role(self, r).await))
    }

    async fn select_role(
        &self,
        req: Request<SelectRoleRequest>,
    ) -> Result<Response<SelectRoleResponse>, Status> {
        let r = self.allow(req, |_| vec![Need::global("SelectOwnership")])?;
        Ok(Response::new(MilvusFront::select_role(self, r)))
    }

    /// A user may see its own roles.
    async fn select_user(
        &self,
        req: Request<SelectUserRequest>,
    ) -> Result<Response<SelectUserResponse>, Status> {
        let caller = self.caller(&req)?;
        let named = req.get_ref().user.as_ref().map(|u| u.name.clone());
        let own = named.is_some() && caller.user() == named.as_deref();
        let r = self.allow(req, |_| {
            if own {
                Vec::new()
            } else {
                vec![Need::on("SelectUser", named.clone())]
            }
        })?;
        Ok(Response::new(MilvusFront::select_user(self, r)))
    }

    async fn operate_privilege(
        &self,
        req: Request<OperatePrivilegeRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let caller = self.caller(&req)?;
        let r = self.allow(req, |_| vec![Need::global("ManageOwnership")])?;
        Ok(Response::new(
            MilvusFront::operate_privilege(self, &caller, r).await,
        ))
    }

    async fn operate_privilege_v2(
        &self,
        req: Request<OperatePrivilegeV2Request>,
    ) -> Result<Response<common::Status>, Status> {
        let caller = self.caller(&req)?;
        let r = self.allow(req, |_| vec![Need::global("ManageOwnership")])?;
        Ok(Response::new(
            MilvusFront::operate_privilege_v2(self, &caller, r).await,
        ))
    }

    /// A user may see the grants of its own roles.
    async fn select_grant(
        &self,
        req: Request<SelectGrantRequest>,
    ) -> Result<Response<SelectGrantResponse>, Status> {
        let caller = self.caller(&req)?;
        let role = req
            .get_ref()
            .entity
            .as_ref()
            .and_then(|e| e.role.as_ref())
            .map(|r| r.name.clone())
            .unwrap_or_default();
        let own = caller
            .user()
            .is_some_and(|u| self.catalog.security().roles_of(u).any(|r| r == role));
        let r = self.allow(req, |_| {
            if own {
                Vec::new()
            } else {
                vec![Need::global("SelectOwnership")]
            }
        })?;
        Ok(Response::new(MilvusFront::select_grant(self, r)))
    }

    async fn list_privilege_groups(
        &self,
        req: Request<ListPrivilegeGroupsRequest>,
    ) -> Result<Response<ListPrivilegeGroupsResponse>, Status> {
        self.allow(req, |_| vec![Need::global("ListPrivilegeGroups")])?;
        Ok(Response::new(MilvusFront::list_privilege_groups(self)))
    }

    async fn create_database(
        &self,
        req: Request<CreateDatabaseRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("CreateDatabase")])?;
        Ok(Response::new(MilvusFront::create_database(self, r).await))
    }

    async fn drop_database(
        &self,
        req: Request<DropDatabaseRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("DropDatabase")])?;
        Ok(Response::new(MilvusFront::drop_database(self, r).await))
    }

    async fn list_databases(
        &self,
        req: Request<ListDatabasesRequest>,
    ) -> Result<Response<ListDatabasesResponse>, Status> {
        // Everyone may list databases (Milvus lists them to every user).
        self.allow(req, |_| Vec::new())?;
        Ok(Response::new(MilvusFront::list_databases(self)))
    }

    async fn alter_database(
        &self,
        req: Request<AlterDatabaseRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("AlterDatabase")])?;
        Ok(Response::new(MilvusFront::alter_database(self, r).await))
    }

    async fn describe_database(
        &self,
        req: Request<DescribeDatabaseRequest>,
    ) -> Result<Response<DescribeDatabaseResponse>, Status> {
        let r = self.allow(req, |_| vec![Need::global("DescribeDatabase")])?;
        Ok(Response::new(MilvusFront::describe_database(self, r)))
    }

    async fn create_resource_group(
        &self,
        req: Request<CreateResourceGroupRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("CreateResourceGroup")])?;
        Ok(Response::new(MilvusFront::create_resource_group(self, r)))
    }

    async fn drop_resource_group(
        &self,
        req: Request<DropResourceGroupRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("DropResourceGroup")])?;
        Ok(Response::new(MilvusFront::drop_resource_group(self, r)))
    }

    async fn update_resource_groups(
        &self,
        req: Request<UpdateResourceGroupsRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("UpdateResourceGroups")])?;
        Ok(Response::new(MilvusFront::update_resource_groups(self, r)))
    }

    async fn transfer_node(
        &self,
        req: Request<TransferNodeRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("TransferNode")])?;
        Ok(Response::new(MilvusFront::transfer_node(self, r)))
    }

    async fn transfer_replica(
        &self,
        req: Request<TransferReplicaRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("TransferReplica")])?;
        Ok(Response::new(MilvusFront::transfer_replica(self, r)))
    }

    async fn list_resource_groups(
        &self,
        req: Request<ListResourceGroupsRequest>,
    ) -> Result<Response<ListResourceGroupsResponse>, Status> {
        self.allow(req, |_| vec![Need::global("ListResourceGroups")])?;
        Ok(Response::new(MilvusFront::list_resource_groups(self)))
    }

    async fn describe_resource_group(
        &self,
        req: Request<DescribeResourceGroupRequest>,
    ) -> Result<Response<DescribeResourceGroupResponse>, Status> {
        let r = self.allow(req, |_| vec![Need::global("DescribeResourceGroup")])?;
        Ok(Response::new(MilvusFront::describe_resource_group(self, r)))
    }

    async fn rename_collection(
        &self,
        req: Request<RenameCollectionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = self.allow(req, |_| vec![Need::global("RenameCollection")])?;
        Ok(Response::new(MilvusFront::rename_collection(self, r).await))
    }
}
