use prost::Message;
use prost_types::{FileDescriptorSet, field_descriptor_proto::Label, field_descriptor_proto::Type};

use crate::{FILE_DESCRIPTOR_SET, MILVUS_SERVICE_NAME, common, milvus, schema};

/// RPCs Quiver serves, with their request and response types.
const RPCS: &[(&str, &str, &str)] = &[
    ("Connect", "milvus.ConnectRequest", "milvus.ConnectResponse"),
    (
        "GetVersion",
        "milvus.GetVersionRequest",
        "milvus.GetVersionResponse",
    ),
    (
        "CheckHealth",
        "milvus.CheckHealthRequest",
        "milvus.CheckHealthResponse",
    ),
    (
        "CreateCollection",
        "milvus.CreateCollectionRequest",
        "common.Status",
    ),
    (
        "DescribeCollection",
        "milvus.DescribeCollectionRequest",
        "milvus.DescribeCollectionResponse",
    ),
    (
        "HasCollection",
        "milvus.HasCollectionRequest",
        "milvus.BoolResponse",
    ),
    (
        "DropCollection",
        "milvus.DropCollectionRequest",
        "common.Status",
    ),
    (
        "ShowCollections",
        "milvus.ShowCollectionsRequest",
        "milvus.ShowCollectionsResponse",
    ),
    (
        "CreatePartition",
        "milvus.CreatePartitionRequest",
        "common.Status",
    ),
    (
        "DropPartition",
        "milvus.DropPartitionRequest",
        "common.Status",
    ),
    (
        "HasPartition",
        "milvus.HasPartitionRequest",
        "milvus.BoolResponse",
    ),
    (
        "LoadPartitions",
        "milvus.LoadPartitionsRequest",
        "common.Status",
    ),
    (
        "ReleasePartitions",
        "milvus.ReleasePartitionsRequest",
        "common.Status",
    ),
    (
        "GetPartitionStatistics",
        "milvus.GetPartitionStatisticsRequest",
        "milvus.GetPartitionStatisticsResponse",
    ),
    (
        "ShowPartitions",
        "milvus.ShowPartitionsRequest",
        "milvus.ShowPartitionsResponse",
    ),
    ("CreateIndex", "milvus.CreateIndexRequest", "common.Status"),
    (
        "DescribeIndex",
        "milvus.DescribeIndexRequest",
        "milvus.DescribeIndexResponse",
    ),
    ("DropIndex", "milvus.DropIndexRequest", "common.Status"),
    (
        "LoadCollection",
        "milvus.LoadCollectionRequest",
        "common.Status",
    ),
    (
        "GetLoadingProgress",
        "milvus.GetLoadingProgressRequest",
        "milvus.GetLoadingProgressResponse",
    ),
    (
        "GetLoadState",
        "milvus.GetLoadStateRequest",
        "milvus.GetLoadStateResponse",
    ),
    (
        "ReleaseCollection",
        "milvus.ReleaseCollectionRequest",
        "common.Status",
    ),
    ("Insert", "milvus.InsertRequest", "milvus.MutationResult"),
    ("Upsert", "milvus.UpsertRequest", "milvus.MutationResult"),
    ("Delete", "milvus.DeleteRequest", "milvus.MutationResult"),
    ("Search", "milvus.SearchRequest", "milvus.SearchResults"),
    (
        "HybridSearch",
        "milvus.HybridSearchRequest",
        "milvus.SearchResults",
    ),
    ("Query", "milvus.QueryRequest", "milvus.QueryResults"),
    ("CreateAlias", "milvus.CreateAliasRequest", "common.Status"),
    ("AlterAlias", "milvus.AlterAliasRequest", "common.Status"),
    ("DropAlias", "milvus.DropAliasRequest", "common.Status"),
    (
        "DescribeAlias",
        "milvus.DescribeAliasRequest",
        "milvus.DescribeAliasResponse",
    ),
    (
        "ListAliases",
        "milvus.ListAliasesRequest",
        "milvus.ListAliasesResponse",
    ),
    ("Flush", "milvus.FlushRequest", "milvus.FlushResponse"),
    (
        "GetFlushState",
        "milvus.GetFlushStateRequest",
        "milvus.GetFlushStateResponse",
    ),
    (
        "GetCollectionStatistics",
        "milvus.GetCollectionStatisticsRequest",
        "milvus.GetCollectionStatisticsResponse",
    ),
    (
        "AllocTimestamp",
        "milvus.AllocTimestampRequest",
        "milvus.AllocTimestampResponse",
    ),
    (
        "ManualCompaction",
        "milvus.ManualCompactionRequest",
        "milvus.ManualCompactionResponse",
    ),
    (
        "GetCompactionState",
        "milvus.GetCompactionStateRequest",
        "milvus.GetCompactionStateResponse",
    ),
    (
        "GetCompactionStateWithPlans",
        "milvus.GetCompactionPlansRequest",
        "milvus.GetCompactionPlansResponse",
    ),
    (
        "CreateCredential",
        "milvus.CreateCredentialRequest",
        "common.Status",
    ),
    (
        "UpdateCredential",
        "milvus.UpdateCredentialRequest",
        "common.Status",
    ),
    (
        "DeleteCredential",
        "milvus.DeleteCredentialRequest",
        "common.Status",
    ),
    (
        "ListCredUsers",
        "milvus.ListCredUsersRequest",
        "milvus.ListCredUsersResponse",
    ),
    ("CreateRole", "milvus.CreateRoleRequest", "common.Status"),
    ("DropRole", "milvus.DropRoleRequest", "common.Status"),
    (
        "OperateUserRole",
        "milvus.OperateUserRoleRequest",
        "common.Status",
    ),
    (
        "SelectRole",
        "milvus.SelectRoleRequest",
        "milvus.SelectRoleResponse",
    ),
    (
        "SelectUser",
        "milvus.SelectUserRequest",
        "milvus.SelectUserResponse",
    ),
    (
        "OperatePrivilege",
        "milvus.OperatePrivilegeRequest",
        "common.Status",
    ),
    (
        "OperatePrivilegeV2",
        "milvus.OperatePrivilegeV2Request",
        "common.Status",
    ),
    (
        "SelectGrant",
        "milvus.SelectGrantRequest",
        "milvus.SelectGrantResponse",
    ),
    (
        "ListPrivilegeGroups",
        "milvus.ListPrivilegeGroupsRequest",
        "milvus.ListPrivilegeGroupsResponse",
    ),
    (
        "AlterCollection",
        "milvus.AlterCollectionRequest",
        "common.Status",
    ),
    (
        "AlterCollectionField",
        "milvus.AlterCollectionFieldRequest",
        "common.Status",
    ),
    ("AlterIndex", "milvus.AlterIndexRequest", "common.Status"),
    (
        "GetReplicas",
        "milvus.GetReplicasRequest",
        "milvus.GetReplicasResponse",
    ),
    (
        "RenameCollection",
        "milvus.RenameCollectionRequest",
        "common.Status",
    ),
    (
        "CreateDatabase",
        "milvus.CreateDatabaseRequest",
        "common.Status",
    ),
    (
        "DropDatabase",
        "milvus.DropDatabaseRequest",
        "common.Status",
    ),
    (
        "ListDatabases",
        "milvus.ListDatabasesRequest",
        "milvus.ListDatabasesResponse",
    ),
    (
        "AlterDatabase",
        "milvus.AlterDatabaseRequest",
        "common.Status",
    ),
    (
        "DescribeDatabase",
        "milvus.DescribeDatabaseRequest",
        "milvus.DescribeDatabaseResponse",
    ),
    (
        "CreateResourceGroup",
        "milvus.CreateResourceGroupRequest",
        "common.Status",
    ),
    (
        "DropResourceGroup",
        "milvus.DropResourceGroupRequest",
        "common.Status",
    ),
    (
        "UpdateResourceGroups",
        "milvus.UpdateResourceGroupsRequest",
        "common.Status",
    ),
    (
        "TransferNode",
        "milvus.TransferNodeRequest",
        "common.Status",
    ),
    (
        "TransferReplica",
        "milvus.TransferReplicaRequest",
        "common.Status",
    ),
    (
        "ListResourceGroups",
        "milvus.ListResourceGroupsRequest",
        "milvus.ListResourceGroupsResponse",
    ),
    (
        "DescribeResourceGroup",
        "milvus.DescribeResourceGroupRequest",
        "milvus.DescribeResourceGroupResponse",
    ),
];

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("FILE_DESCRIPTOR_SET decodes")
}

#[test]
fn service_has_every_rpc_with_milvus_types() {
    let set = descriptor_set();
    let file = set
        .file
        .iter()
        .find(|f| f.package() == "milvus.proto.milvus")
        .expect("milvus.proto.milvus is in the descriptor set");
    let service = file
        .service
        .iter()
        .find(|s| s.name() == "MilvusService")
        .expect("MilvusService is defined");
    assert_eq!(
        format!("{}.{}", file.package(), service.name()),
        MILVUS_SERVICE_NAME
    );

    for (name, input, output) in RPCS {
        let method = service
            .method
            .iter()
            .find(|m| m.name() == *name)
            .unwrap_or_else(|| panic!("rpc {name} missing from MilvusService"));
        assert_eq!(
            method.input_type(),
            format!(".milvus.proto.{input}"),
            "input of {name}"
        );
        assert_eq!(
            method.output_type(),
            format!(".milvus.proto.{output}"),
            "output of {name}"
        );
        assert!(
            !method.client_streaming() && !method.server_streaming(),
            "{name} is unary"
        );
    }
    assert_eq!(
        service.method.len(),
        RPCS.len(),
        "no RPCs beyond the served set"
    );
}

#[test]
fn status_carries_both_error_code_and_code() {
    let set = descriptor_set();
    let status = set
        .file
        .iter()
        .filter(|f| f.package() == "milvus.proto.common")
        .flat_map(|f| f.message_type.iter())
        .find(|m| m.name() == "Status")
        .expect("common.Status is defined");
    let field = |n: &str| {
        status
            .field
            .iter()
            .find(|f| f.name() == n)
            .unwrap_or_else(|| panic!("Status.{n} missing"))
    };
    assert_eq!(field("error_code").number(), 1);
    assert_eq!(field("error_code").r#type(), Type::Enum);
    assert_eq!(
        field("error_code").type_name(),
        ".milvus.proto.common.ErrorCode"
    );
    assert_eq!(field("reason").number(), 2);
    assert_eq!(field("code").number(), 3);
    assert_eq!(field("code").r#type(), Type::Int32);
    assert_eq!(field("extra_info").label(), Label::Repeated);
}

#[test]
fn search_request_round_trips_with_placeholder_group() {
    // pymilvus sends query vectors as a serialized common.PlaceholderGroup in
    // SearchRequest.placeholder_group (one value per query vector, little-endian f32 bytes).
    let vectors = [[0.5_f32, -1.0], [2.0, 3.0]];
    let group = common::PlaceholderGroup {
        placeholders: vec![common::PlaceholderValue {
            tag: "$0".into(),
            r#type: common::PlaceholderType::FloatVector as i32,
            values: vectors
                .iter()
                .map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect())
                .collect(),
        }],
    };
    let request = milvus::SearchRequest {
        collection_name: "c".into(),
        placeholder_group: group.encode_to_vec(),
        dsl_type: common::DslType::BoolExprV1 as i32,
        nq: 2,
        search_params: vec![common::KeyValuePair {
            key: "anns_field".into(),
            value: "v".into(),
        }],
        ..Default::default()
    };
    let decoded =
        milvus::SearchRequest::decode(request.encode_to_vec().as_slice()).expect("decodes");
    assert_eq!(decoded, request);
    let group2 =
        common::PlaceholderGroup::decode(decoded.placeholder_group.as_slice()).expect("decodes");
    assert_eq!(group2.placeholders[0].values.len(), 2);
    assert_eq!(
        group2.placeholders[0].r#type(),
        common::PlaceholderType::FloatVector
    );
}

#[test]
fn create_collection_schema_is_nested_bytes() {
    let schema = schema::CollectionSchema {
        name: "c".into(),
        fields: vec![schema::FieldSchema {
            name: "id".into(),
            is_primary_key: true,
            data_type: schema::DataType::Int64 as i32,
            ..Default::default()
        }],
        ..Default::default()
    };
    let request = milvus::CreateCollectionRequest {
        collection_name: "c".into(),
        schema: schema.encode_to_vec(),
        ..Default::default()
    };
    let back = schema::CollectionSchema::decode(request.schema.as_slice()).expect("decodes");
    assert_eq!(back, schema);
}
