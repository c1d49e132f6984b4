"""The schema + index-params path: create_schema / add_field / prepare_index_params, every
metric and index type, what describe_collection / describe_index / list_indexes report, and
search results checked against numpy brute force."""

import subprocess
import sys
import time

import numpy as np
import pytest
from pymilvus import DataType

from conftest import expect_error

DIM = 16
N = 300


def physical_ms(ts):
    """The wall-clock part of a Milvus hybrid timestamp (`ms << 18 | logical`)."""
    return ts >> 18


def brute_force(metric, base, q, k):
    if metric == "L2":
        d = ((base - q) ** 2).sum(axis=1)
        order = np.argsort(d, kind="stable")
        return order[:k], d[order[:k]]
    if metric == "IP":
        s = base @ q
    else:  # COSINE
        s = (base @ q) / (np.linalg.norm(base, axis=1) * np.linalg.norm(q))
    order = np.argsort(-s, kind="stable")
    return order[:k], s[order[:k]]


@pytest.mark.parametrize(
    "index_type,metric,params",
    [
        ("HNSW", "L2", {"M": 16, "efConstruction": 200}),
        ("HNSW", "IP", {"M": 8, "efConstruction": 64}),
        ("HNSW", "COSINE", {"M": 32, "efConstruction": 100}),
        ("FLAT", "L2", {}),
        ("AUTOINDEX", "COSINE", {}),
    ],
)
def test_schema_index_and_search(client, name, index_type, metric, params):
    before_ms = int(time.time() * 1000)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False, description="docs")
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=32)
    schema.add_field("emb", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("emb", index_type=index_type, metric_type=metric, params=params)
    client.create_collection(name, schema=schema, index_params=index)

    desc = client.describe_collection(name)
    assert desc["collection_name"] == name
    assert desc["auto_id"] is False and desc["enable_dynamic_field"] is False
    fields = {f["name"]: f for f in desc["fields"]}
    assert list(fields) == ["pk", "title", "emb"]
    assert fields["pk"]["type"] == DataType.INT64 and fields["pk"]["is_primary"]
    assert fields["title"]["type"] == DataType.VARCHAR and fields["title"]["params"]["max_length"] == 32
    assert fields["emb"]["type"] == DataType.FLOAT_VECTOR and fields["emb"]["params"]["dim"] == DIM
    # Milvus hybrid timestamps: physical milliseconds in the high bits.
    created, updated = desc["created_timestamp"], desc["update_timestamp"]
    assert before_ms - 5_000 <= physical_ms(created) <= int(time.time() * 1000) + 5_000
    assert updated >= created

    idx = client.describe_index(name, index_name="emb")
    want_type = "HNSW" if index_type == "AUTOINDEX" else index_type
    assert idx["index_type"] == want_type and idx["metric_type"] == metric
    assert idx["field_name"] == "emb" and idx["state"] == "Finished"
    for k, v in params.items():
        assert int(idx[k]) == v
    assert client.list_indexes(name) == ["emb"]
    assert client.get_load_state(name)["state"].name == "Loaded"

    rng = np.random.default_rng(7)
    base = rng.standard_normal((N, DIM)).astype(np.float32)
    res = client.insert(name, [{"pk": i, "title": f"t{i}", "emb": base[i]} for i in range(N)])
    assert res["insert_count"] == N
    queries = rng.standard_normal((5, DIM)).astype(np.float32)
    hits = client.search(
        name,
        data=queries,
        limit=10,
        output_fields=["title"],
        search_params={"metric_type": metric, "params": {"ef": 300}},
    )
    assert len(hits) == 5
    for q, h in zip(queries, hits):
        want_ids, want_d = brute_force(metric, base.astype(np.float64), q.astype(np.float64), 10)
        # Hits are keyed by the primary field's name.
        assert [x["pk"] for x in h] == list(want_ids)
        assert [x["distance"] for x in h] == pytest.approx(list(want_d), rel=1e-4, abs=1e-4)
        assert all(x["entity"]["title"] == f"t{x['pk']}" for x in h)

    # A search that names another metric is refused, naming metric_type.
    other = "IP" if metric != "IP" else "L2"
    expect_error(
        lambda: client.search(name, data=queries[:1], limit=3, search_params={"metric_type": other}),
        1100,
        "metric_type",
    )
    # Load / release are accepted (collections are always served).
    client.release_collection(name)
    client.load_collection(name)
    assert client.get_load_state(name)["state"].name == "Loaded"
    client.drop_collection(name)


def test_describe_reports_auto_id_varchar_and_dynamic(client, name):
    schema = client.create_schema(auto_id=True, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True, auto_id=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=3)
    schema.add_field("s", DataType.VARCHAR, max_length=200)
    schema.add_field("j", DataType.JSON)
    schema.add_field("b", DataType.BOOL)
    index = client.prepare_index_params()
    index.add_index("v", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    desc = client.describe_collection(name)
    assert desc["auto_id"] is True and desc["enable_dynamic_field"] is True
    fields = {f["name"]: f for f in desc["fields"]}
    assert fields["id"].get("auto_id") is True
    assert fields["s"]["params"]["max_length"] == 200
    assert fields["j"]["type"] == DataType.JSON and fields["b"]["type"] == DataType.BOOL
    assert name in client.list_collections()
    res = client.insert(name, [{"v": [0.0, 0.0, float(i)], "s": "x", "j": {"a": i}, "b": True, "extra": i} for i in range(4)])
    ids = list(res["ids"])
    assert len(set(ids)) == 4
    got = client.get(name, ids=ids[:2], output_fields=["extra", "j"])
    assert sorted(r["extra"] for r in got) == [0, 1]
    client.drop_collection(name)


def test_varchar_primary_key_quick_setup(client, name):
    client.create_collection(name, dimension=4, id_type="string", max_length=64, metric_type="IP")
    desc = client.describe_collection(name)
    pk = desc["fields"][0]
    assert pk["type"] == DataType.VARCHAR and pk["params"]["max_length"] == 64
    assert client.describe_index(name, index_name="vector")["metric_type"] == "IP"
    client.insert(name, [{"id": f"doc-{i}", "vector": [1.0, float(i), 0, 0]} for i in range(5)])
    hits = client.search(name, data=[[0.0, 1.0, 0, 0]], limit=2)
    assert [h["id"] for h in hits[0]] == ["doc-4", "doc-3"]
    assert client.get(name, ids=["doc-2"])[0]["id"] == "doc-2"
    client.drop_collection(name)


def test_stale_schema_is_refreshed(uri, client, name):
    """Another process drops the collection and creates one with the same name and a
    different schema: this client's cached schema is stale. The server refuses rows built
    for the old schema with SchemaMismatch (DescribeCollection's update_timestamp != the
    request's schema_timestamp); pymilvus then describes the collection again and retries,
    so the insert lands with the new layout."""
    client.create_collection(name, dimension=4)
    client.insert(name, [{"id": 1, "vector": [1.0, 0, 0, 0]}])  # caches the schema
    script = f"""
from pymilvus import DataType, MilvusClient
c = MilvusClient(uri={uri!r})
c.drop_collection({name!r})
s = c.create_schema(auto_id=False, enable_dynamic_field=False)
s.add_field("id", DataType.INT64, is_primary=True)
s.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
s.add_field("tag", DataType.VARCHAR, max_length=8, nullable=True)
i = c.prepare_index_params()
i.add_index("vector", metric_type="L2")
c.create_collection({name!r}, schema=s, index_params=i)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)

    res = client.insert(name, [{"id": 2, "vector": [0.0, 1, 0, 0], "tag": "new"}])
    assert res["insert_count"] == 1
    got = client.query(name, filter="id >= 0", output_fields=["tag"])
    assert [(r["id"], r["tag"]) for r in got] == [(2, "new")]
    client.drop_collection(name)


def test_stale_schema_timestamp_raw(client, name, stub):
    """The raw answer to rows sent with an old schema_timestamp: SchemaMismatch (109)."""
    from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

    client.create_collection(name, dimension=2)
    ts = client.describe_collection(name)["update_timestamp"]
    fields = [
        schema_pb2.FieldData(
            field_name="id", type=DataType.INT64, scalars=schema_pb2.ScalarField(long_data=schema_pb2.LongArray(data=[1]))
        ),
        schema_pb2.FieldData(
            field_name="vector",
            type=DataType.FLOAT_VECTOR,
            vectors=schema_pb2.VectorField(dim=2, float_vector=schema_pb2.FloatArray(data=[1.0, 2.0])),
        ),
    ]
    req = milvus_pb2.InsertRequest(collection_name=name, fields_data=fields, num_rows=1, schema_timestamp=ts - 1)
    r = stub.Insert(req)
    assert r.status.code == 109 and r.status.error_code == common_pb2.SchemaMismatch, r.status
    req.schema_timestamp = ts
    assert stub.Insert(req).status.code == 0
    req.schema_timestamp = 0  # unknown: accepted
    assert stub.Insert(req).status.code == 0
    client.drop_collection(name)


def test_alloc_timestamp_and_version(client, stub):
    from pymilvus.grpc_gen import milvus_pb2

    a = stub.AllocTimestamp(milvus_pb2.AllocTimestampRequest())
    b = stub.AllocTimestamp(milvus_pb2.AllocTimestampRequest())
    assert a.status.code == 0 and b.timestamp > a.timestamp
    assert abs(physical_ms(a.timestamp) - time.time() * 1000) < 60_000
    assert client.get_server_version().startswith("v2.")
