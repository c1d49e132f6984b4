//! `impl MilvusService`: each RPC delegates to its group module. Every
//! answer is gRPC OK; failures travel in the response's `common.Status`.

use quiver_proto::common;
use quiver_proto::milvus::milvus_service_server::MilvusService;
use quiver_proto::milvus::*;
use tonic::{Request, Response, Status};

use super::MilvusFront;

#[tonic::async_trait]
impl MilvusService for MilvusFront {
    async fn create_collection(
        &self,
        req: Request<CreateCollectionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.create_collection(r).await))
    }

    async fn drop_collection(
        &self,
        req: Request<DropCollectionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.drop_collection(r).await))
    }

    async fn has_collection(
        &self,
        req: Request<HasCollectionRequest>,
    ) -> Result<Response<BoolResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.has_collection(r)))
    }

    async fn load_collection(
        &self,
        req: Request<LoadCollectionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.load_collection(r).await))
    }

    async fn release_collection(
        &self,
        req: Request<ReleaseCollectionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.release_collection(r).await))
    }

    async fn describe_collection(
        &self,
        req: Request<DescribeCollectionRequest>,
    ) -> Result<Response<DescribeCollectionResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.describe_collection(r)))
    }

    async fn get_collection_statistics(
        &self,
        req: Request<GetCollectionStatisticsRequest>,
    ) -> Result<Response<GetCollectionStatisticsResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.statistics(r).await))
    }

    async fn show_collections(
        &self,
        req: Request<ShowCollectionsRequest>,
    ) -> Result<Response<ShowCollectionsResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.show_collections(r)))
    }

    async fn create_partition(
        &self,
        req: Request<CreatePartitionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::create_partition(self, r)))
    }

    async fn drop_partition(
        &self,
        req: Request<DropPartitionRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::drop_partition(self, r)))
    }

    async fn has_partition(
        &self,
        req: Request<HasPartitionRequest>,
    ) -> Result<Response<BoolResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::has_partition(self, r)))
    }

    async fn load_partitions(
        &self,
        req: Request<LoadPartitionsRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::load_partitions(self, r).await))
    }

    async fn release_partitions(
        &self,
        req: Request<ReleasePartitionsRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = req.into_inner();
        Ok(Response::new(
            MilvusFront::release_partitions(self, r).await,
        ))
    }

    async fn get_partition_statistics(
        &self,
        req: Request<GetPartitionStatisticsRequest>,
    ) -> Result<Response<GetPartitionStatisticsResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.partition_statistics(r).await))
    }

    async fn show_partitions(
        &self,
        req: Request<ShowPartitionsRequest>,
    ) -> Result<Response<ShowPartitionsResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::show_partitions(self, r)))
    }

    async fn get_loading_progress(
        &self,
        req: Request<GetLoadingProgressRequest>,
    ) -> Result<Response<GetLoadingProgressResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.loading_progress(r)))
    }

    async fn get_load_state(
        &self,
        req: Request<GetLoadStateRequest>,
    ) -> Result<Response<GetLoadStateResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.load_state(r)))
    }

    async fn create_alias(
        &self,
        req: Request<CreateAliasRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::create_alias(self, r).await))
    }

    async fn drop_alias(
        &self,
        req: Request<DropAliasRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::drop_alias(self, r).await))
    }

    async fn alter_alias(
        &self,
        req: Request<AlterAliasRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::alter_alias(self, r).await))
    }

    async fn describe_alias(
        &self,
        req: Request<DescribeAliasRequest>,
    ) -> Result<Response<DescribeAliasResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::describe_alias(self, r)))
    }

    async fn list_aliases(
        &self,
        req: Request<ListAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::list_aliases(self, r)))
    }

    async fn create_index(
        &self,
        req: Request<CreateIndexRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::create_index(self, r).await))
    }

    async fn describe_index(
        &self,
        req: Request<DescribeIndexRequest>,
    ) -> Result<Response<DescribeIndexResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::describe_index(self, r).await))
    }

    async fn drop_index(
        &self,
        req: Request<DropIndexRequest>,
    ) -> Result<Response<common::Status>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::drop_index(self, r)))
    }

    async fn insert(
        &self,
        req: Request<InsertRequest>,
    ) -> Result<Response<MutationResult>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::insert(self, r).await))
    }

    async fn delete(
        &self,
        req: Request<DeleteRequest>,
    ) -> Result<Response<MutationResult>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::delete(self, r).await))
    }

    async fn upsert(
        &self,
        req: Request<UpsertRequest>,
    ) -> Result<Response<MutationResult>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::upsert(self, r).await))
    }

    async fn search(&self, req: Request<SearchRequest>) -> Result<Response<SearchResults>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::search(self, r).await))
    }

    async fn manual_compaction(
        &self,
        req: Request<ManualCompactionRequest>,
    ) -> Result<Response<ManualCompactionResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.manual_compaction(r).await))
    }

    async fn get_compaction_state(
        &self,
        req: Request<GetCompactionStateRequest>,
    ) -> Result<Response<GetCompactionStateResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.compaction_state(r).await))
    }

    async fn get_compaction_state_with_plans(
        &self,
        req: Request<GetCompactionPlansRequest>,
    ) -> Result<Response<GetCompactionPlansResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.compaction_plans(r).await))
    }

    async fn flush(&self, req: Request<FlushRequest>) -> Result<Response<FlushResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::flush(self, r).await))
    }

    async fn query(&self, req: Request<QueryRequest>) -> Result<Response<QueryResults>, Status> {
        let r = req.into_inner();
        Ok(Response::new(MilvusFront::query(self, r).await))
    }

    async fn get_flush_state(
        &self,
        req: Request<GetFlushStateRequest>,
    ) -> Result<Response<GetFlushStateResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.flush_state(r)))
    }

    async fn get_version(
        &self,
        req: Request<GetVersionRequest>,
    ) -> Result<Response<GetVersionResponse>, Status> {
        let _r = req.into_inner();
        Ok(Response::new(self.version()))
    }

    async fn check_health(
        &self,
        req: Request<CheckHealthRequest>,
    ) -> Result<Response<CheckHealthResponse>, Status> {
        let _r = req.into_inner();
        Ok(Response::new(self.health()))
    }

    async fn connect(
        &self,
        req: Request<ConnectRequest>,
    ) -> Result<Response<ConnectResponse>, Status> {
        let _r = req.into_inner();
        Ok(Response::new(MilvusFront::connect(self)))
    }

    async fn alloc_timestamp(
        &self,
        req: Request<AllocTimestampRequest>,
    ) -> Result<Response<AllocTimestampResponse>, Status> {
        let _r = req.into_inner();
        Ok(Response::new(self.alloc_timestamp()))
    }
}
