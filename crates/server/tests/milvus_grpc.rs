//! The Milvus gRPC front door end to end: a standalone server on
//! 127.0.0.1:0, driven by the generated tonic client the way pymilvus drives
//! it (schema bytes, FieldData columns, placeholder groups, expressions).

use prost::Message;
use quiver_proto::common::{
    ErrorCode, KeyValuePair, PlaceholderGroup, PlaceholderType, PlaceholderValue, Status,
};
use quiver_proto::milvus::milvus_service_client::MilvusServiceClient;
use quiver_proto::milvus::*;
use quiver_proto::schema::{
    self as pb, FieldData, FieldSchema, FloatArray, IntArray, JsonArray, LongArray, ScalarField,
    StringArray, VectorField, field_data, i_ds, scalar_field, vector_field,
};
use quiver_server::{Standalone, StandaloneConfig};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

type Client = MilvusServiceClient<Channel>;

const DIM: usize = 4;
const C: &str = "books";

async fn start(dir: &std::path::Path) -> (Standalone, Client) {
    let mut config = StandaloneConfig::new(dir);
    config.querynode.search_threads = 2;
    let server = Standalone::open(config, CancellationToken::new())
        .await
        .expect("open standalone");
    let (addr, _task) = server
        .serve_milvus(
            "127.0.0.1:0".parse().expect("addr"),
            CancellationToken::new(),
        )
        .await
        .expect("serve");
    // (`MilvusServiceClient::connect` is the Connect RPC: build the channel.)
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    (server, MilvusServiceClient::new(channel))
}

fn kv(key: &str, value: &str) -> KeyValuePair {
    KeyValuePair {
        key: key.into(),
        value: value.into(),
    }
}

fn field(name: &str, t: pb::DataType, params: &[(&str, &str)]) -> FieldSchema {
    FieldSchema {
        name: name.into(),
        data_type: t as i32,
        type_params: params.iter().map(|(k, v)| kv(k, v)).collect(),
        ..Default::default()
    }
}

fn schema_bytes(dim: usize) -> Vec<u8> {
    let mut id = field("id", pb::DataType::Int64, &[]);
    id.is_primary_key = true;
    pb::CollectionSchema {
        name: C.into(),
        fields: vec![
            id,
            field(
                "vec",
                pb::DataType::FloatVector,
                &[("dim", &dim.to_string())],
            ),
            field("age", pb::DataType::Int32, &[]),
            field("title", pb::DataType::VarChar, &[("max_length", "32")]),
        ],
        enable_dynamic_field: true,
        ..Default::default()
    }
    .encode_to_vec()
}

fn scalars(name: &str, t: pb::DataType, data: scalar_field::Data) -> FieldData {
    FieldData {
        r#type: t as i32,
        field_name: name.into(),
        field: Some(field_data::Field::Scalars(ScalarField { data: Some(data) })),
        ..Default::default()
    }
}

fn vectors(data: Vec<f32>) -> FieldData {
    FieldData {
        r#type: pb::DataType::FloatVector as i32,
        field_name: "vec".into(),
        field: Some(field_data::Field::Vectors(VectorField {
            dim: DIM as i64,
            data: Some(vector_field::Data::FloatVector(FloatArray { data })),
        })),
        ..Default::default()
    }
}

/// Row i: vector (i, 0, 0, 0), age 10 * i, title "t{i}", dynamic {"city": ...}.
fn rows(ids: &[i64], ages: &[i32]) -> Vec<FieldData> {
    let mut meta = FieldData {
        is_dynamic: true,
        ..scalars(
            "$meta",
            pb::DataType::Json,
            scalar_field::Data::JsonData(JsonArray {
                data: ids
                    .iter()
                    .map(|i| format!("{{\"city\": \"c{i}\"}}").into_bytes())
                    .collect(),
            }),
        )
    };
    meta.field_name = "$meta".into();
    vec![
        scalars(
            "id",
            pb::DataType::Int64,
            scalar_field::Data::LongData(LongArray { data: ids.to_vec() }),
        ),
        vectors(
            ids.iter()
                .flat_map(|i| [*i as f32, 0.0, 0.0, 0.0])
                .collect(),
        ),
        scalars(
            "age",
            pb::DataType::Int32,
            scalar_field::Data::IntData(IntArray {
                data: ages.to_vec(),
            }),
        ),
        scalars(
            "title",
            pb::DataType::VarChar,
            scalar_field::Data::StringData(StringArray {
                data: ids.iter().map(|i| format!("t{i}")).collect(),
            }),
        ),
        meta,
    ]
}

fn ok(s: &Option<Status>) {
    let s = s.as_ref().expect("status");
    assert_eq!((s.code, s.error_code), (0, 0), "{}", s.reason);
}

fn bad(s: &Option<Status>, field: &str) -> String {
    let s = s.as_ref().expect("status");
    assert_eq!(s.code, 1100, "{}", s.reason);
    assert_eq!(
        s.error_code,
        ErrorCode::IllegalArgument as i32,
        "{}",
        s.reason
    );
    assert!(
        s.reason.contains(field),
        "reason {:?} should name {field}",
        s.reason
    );
    s.reason.clone()
}

fn search_req(query: &[f32], limit: usize, expr: &str, out: &[&str]) -> SearchRequest {
    let group = PlaceholderGroup {
        placeholders: vec![PlaceholderValue {
            tag: "$0".into(),
            r#type: PlaceholderType::FloatVector as i32,
            values: query
                .chunks(DIM)
                .map(|q| q.iter().flat_map(|f| f.to_le_bytes()).collect())
                .collect(),
        }],
    };
    SearchRequest {
        collection_name: C.into(),
        dsl: expr.into(),
        dsl_type: 1,
        placeholder_group: group.encode_to_vec(),
        output_fields: out.iter().map(|s| s.to_string()).collect(),
        search_params: vec![
            kv("topk", &limit.to_string()),
            kv("anns_field", "vec"),
            kv("params", "{\"ef\": 32}"),
        ],
        nq: (query.len() / DIM) as i64,
        consistency_level: 0,
        ..Default::default()
    }
}

/// Creates collection `C` with the schema of [`schema_bytes`] (no index:
/// not loaded, writes land).
async fn create_unindexed_books(c: &mut Client) {
    let s = c
        .create_collection(CreateCollectionRequest {
            collection_name: C.into(),
            schema: schema_bytes(DIM),
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    ok(&Some(s));
}

async fn index_books(c: &mut Client, metric: &str) -> Status {
    c.create_index(CreateIndexRequest {
        collection_name: C.into(),
        field_name: "vec".into(),
        extra_params: vec![kv("index_type", "HNSW"), kv("metric_type", metric)],
        ..Default::default()
    })
    .await
    .expect("rpc")
    .into_inner()
}

async fn load_books(c: &mut Client) {
    let s = c
        .load_collection(LoadCollectionRequest {
            collection_name: C.into(),
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    ok(&Some(s));
}

/// Creates collection `C`, indexed (L2) and loaded.
async fn create_books(c: &mut Client) {
    create_unindexed_books(c).await;
    ok(&Some(index_books(c, "L2").await));
    load_books(c).await;
}

fn int_ids(ids: &Option<pb::IDs>) -> Vec<i64> {
    match ids.as_ref().and_then(|i| i.id_field.as_ref()) {
        Some(i_ds::IdField::IntId(l)) => l.data.clone(),
        other => panic!("expected int ids, got {other:?}"),
    }
}

async fn count(c: &mut Client) -> i64 {
    let r = c
        .query(QueryRequest {
            collection_name: C.into(),
            output_fields: vec!["count(*)".into()],
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    ok(&r.status);
    match &r.fields_data[0].field {
        Some(field_data::Field::Scalars(ScalarField {
            data: Some(scalar_field::Data::LongData(l)),
        })) => l.data[0],
        other => panic!("count: {other:?}"),
    }
}

async fn query_ids(c: &mut Client, expr: &str) -> Vec<i64> {
    let r = c
        .query(QueryRequest {
            collection_name: C.into(),
            expr: expr.into(),
            output_fields: vec!["*".into()],
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    ok(&r.status);
    let id = r
        .fields_data
        .iter()
        .find(|f| f.field_name == "id")
        .expect("id column");
    match &id.field {
        Some(field_data::Field::Scalars(ScalarField {
            data: Some(scalar_field::Data::LongData(l)),
        })) => l.data.clone(),
        other => panic!("ids: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn milvus_api_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, mut c) = start(dir.path()).await;

    let r = c
        .connect(ConnectRequest::default())
        .await
        .expect("rpc")
        .into_inner();
    ok(&r.status);
    assert!(r.identifier > 0);
    let r = c
        .check_health(CheckHealthRequest {})
        .await
        .expect("rpc")
        .into_inner();
    assert!(r.is_healthy);

    create_books(&mut c).await;
    let d = c
        .describe_collection(DescribeCollectionRequest {
            collection_name: C.into(),
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    ok(&d.status);
    let schema = d.schema.expect("schema");
    assert!(schema.enable_dynamic_field);
    assert_eq!(schema.fields.len(), 4);
    assert_eq!(schema.fields[1].type_params, vec![kv("dim", "4")]);
    assert_eq!(schema.fields[3].type_params, vec![kv("max_length", "32")]);
    assert_eq!(d.shards_num, 1);

    // The same index again: accepted, nothing changes.
    let s = c
        .create_index(CreateIndexRequest {
            collection_name: C.into(),
            field_name: "vec".into(),
            extra_params: vec![kv("index_type", "HNSW"), kv("metric_type", "L2")],
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    ok(&Some(s));

    let r = c
        .insert(InsertRequest {
            collection_name: C.into(),
            fields_data: rows(&[1, 2, 3], &[10, 20, 30]),
            num_rows: 3,
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    ok(&r.status);
    assert_eq!(r.insert_cnt, 3);
    assert_eq!(int_ids(&r.i_ds), [1, 2, 3]);
    assert!(r.timestamp > 0);

    // Search: nearest to (2, 0, 0, 0) is row 2 at squared distance 0.
    let r = c
        .search(search_req(
            &[2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0],
            2,
            "",
            &["title", "city"],
        ))
        .await
        .expect("rpc")
        .into_inner();
    ok(&r.status);
    let res = r.results.expect("results");
    assert_eq!(res.num_queries, 2);
    assert_eq!(res.topks, [2, 2]);
    assert_eq!(int_ids(&res.ids)[0], 2);
    // Rows 1 and 3 tie at distance 1 from the first query.
    let ids = int_ids(&res.ids);
    assert_eq!((ids[2], ids[3]), (3, 2));
    assert_eq!(res.scores[0], 0.0);
    assert_eq!(res.scores[1], 1.0);
    assert!(
        res.fields_data
            .iter()
            .any(|f| f.field_name == "$meta" && f.is_dynamic)
    );
    assert!(res.output_fields.contains(&"city".to_string()));

    // A filter on a schema field and on a dynamic key, with a template value.
    let mut req = search_req(&[0.0; DIM], 3, "age >= {min} and city != \"c3\"", &[]);
    req.expr_template_values.insert(
        "min".into(),
        pb::TemplateValue {
            val: Some(pb::template_value::Val::Int64Val(20)),
        },
    );
    let r = c.search(req).await.expect("rpc").into_inner();
    ok(&r.status);
    assert_eq!(int_ids(&r.results.expect("results").ids), [2]);

    // Query / get.
    assert_eq!(query_ids(&mut c, "id in [1, 3]").await, [1, 3]);
    assert_eq!(count(&mut c).await, 3);

    // Bad input: a status naming the field, nothing written.
    let mut wrong_dim = rows(&[9], &[1]);
    wrong_dim[1] = FieldData {
        field: Some(field_data::Field::Vectors(VectorField {
            dim: 3,
            data: Some(vector_field::Data::FloatVector(FloatArray {
                data: vec![1.0; 3],
            })),
        })),
        ..wrong_dim[1].clone()
    };
    let r = c
        .insert(InsertRequest {
            collection_name: C.into(),
            fields_data: wrong_dim,
            num_rows: 1,
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    bad(&r.status, "vec");
    let mut nan = rows(&[9], &[1]);
    nan[1] = vectors(vec![1.0, f32::NAN, 0.0, 0.0]);
    let r = c
        .insert(InsertRequest {
            collection_name: C.into(),
            fields_data: nan,
            num_rows: 1,
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    assert!(bad(&r.status, "vec").contains("finite"));
    let r = c
        .insert(InsertRequest {
            collection_name: "nope".into(),
            fields_data: rows(&[9], &[1]),
            num_rows: 1,
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    let st = r.status.expect("status");
    assert_eq!(
        (st.code, st.error_code),
        (100, ErrorCode::CollectionNotExists as i32)
    );
    let r = c
        .search(search_req(&[0.0; DIM], 16_385, "", &[]))
        .await
        .expect("rpc")
        .into_inner();
    bad(&r.status, "limit");
    let r = c
        .search(search_req(&[0.0; DIM], 3, "age >", &[]))
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(r.status.expect("status").code, 1100);
    let r = c
        .search(search_req(&[0.0; 3], 3, "", &[]))
        .await
        .expect("rpc")
        .into_inner();
    bad(&r.status, "vec");
    let r = c
        .delete(DeleteRequest {
            collection_name: C.into(),
            expr: "age >".into(),
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(r.status.expect("status").code, 1100);
    assert_eq!(count(&mut c).await, 3);

    // Another index on the field is refused while one exists (as Milvus).
    let s = c
        .create_index(CreateIndexRequest {
            collection_name: C.into(),
            field_name: "vec".into(),
            extra_params: vec![kv("index_type", "HNSW"), kv("metric_type", "COSINE")],
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(s.code, 65_535, "{s:?}");
    assert!(s.reason.contains("at most one distinct index"), "{s:?}");

    // Delete by expression, upsert.
    let r = c
        .delete(DeleteRequest {
            collection_name: C.into(),
            expr: "age < 15".into(),
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    ok(&r.status);
    assert_eq!(r.delete_cnt, 1);
    assert_eq!(query_ids(&mut c, "id > 0").await, [2, 3]);
    let r = c
        .upsert(UpsertRequest {
            collection_name: C.into(),
            fields_data: rows(&[3, 4], &[33, 40]),
            num_rows: 2,
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    ok(&r.status);
    assert_eq!(r.upsert_cnt, 2);
    assert_eq!(query_ids(&mut c, "age > 30").await, [3, 4]);

    // Aliases.
    let s = c
        .create_alias(CreateAliasRequest {
            collection_name: C.into(),
            alias: "shelf".into(),
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    ok(&Some(s));
    let d = c
        .describe_alias(DescribeAliasRequest {
            alias: "shelf".into(),
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(d.collection, C);
    let d = c
        .describe_collection(DescribeCollectionRequest {
            collection_name: "shelf".into(),
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(d.aliases, ["shelf"]);

    // Flush, statistics, drop.
    let f = c
        .flush(FlushRequest {
            collection_names: vec![C.into()],
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    ok(&f.status);
    let st = c
        .get_collection_statistics(GetCollectionStatisticsRequest {
            collection_name: C.into(),
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(st.stats, vec![kv("row_count", "3")]);
    // Like Milvus, a collection with aliases cannot be dropped.
    let drop = DropCollectionRequest {
        collection_name: C.into(),
        ..Default::default()
    };
    let s = c
        .drop_collection(drop.clone())
        .await
        .expect("rpc")
        .into_inner();
    bad(&Some(s), "aliases");
    let s = c
        .drop_alias(DropAliasRequest {
            alias: "shelf".into(),
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    ok(&Some(s));
    let s = c
        .drop_collection(DropCollectionRequest {
            collection_name: C.into(),
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    ok(&Some(s));
    let h = c
        .has_collection(HasCollectionRequest {
            collection_name: C.into(),
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    assert!(!h.value);
    server.close().await;
}

/// CreateIndex with any metric while writes land: every write is kept, and
/// the loaded collection serves all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_index_racing_writes_loses_no_acknowledged_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, mut c) = start(dir.path()).await;
    for round in 0..8 {
        create_unindexed_books(&mut c).await;
        let writers: Vec<_> = (0..4i64)
            .map(|w| {
                let mut c = c.clone();
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    for i in 0..10 {
                        let id = w * 100 + i;
                        let r = c
                            .insert(InsertRequest {
                                collection_name: C.into(),
                                fields_data: rows(&[id], &[1]),
                                num_rows: 1,
                                ..Default::default()
                            })
                            .await
                            .expect("rpc")
                            .into_inner();
                        if r.status.as_ref().is_some_and(|s| s.code == 0) {
                            acked.push(id);
                        }
                    }
                    acked
                })
            })
            .collect();
        let metric = if round % 2 == 0 { "IP" } else { "COSINE" };
        // Any metric, whether rows landed already or not.
        ok(&Some(index_books(&mut c, metric).await));
        let mut acked = Vec::new();
        for w in writers {
            acked.extend(w.await.expect("writer"));
        }
        acked.sort_unstable();
        assert_eq!(
            acked.len(),
            40,
            "every insert is acknowledged (round {round})"
        );
        load_books(&mut c).await;
        let mut found = query_ids(&mut c, "id >= 0").await;
        found.sort_unstable();
        assert_eq!(found, acked, "round {round}: acknowledged rows lost");
        let s = c
            .drop_collection(DropCollectionRequest {
                collection_name: C.into(),
                ..Default::default()
            })
            .await
            .expect("rpc")
            .into_inner();
        ok(&Some(s));
    }
    server.close().await;
}
