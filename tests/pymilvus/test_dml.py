"""get / query / delete / upsert semantics, consistency levels, flush and statistics."""

import numpy as np
import pytest
from pymilvus import DataType

from conftest import count, expect_error


def vec(i, dim=4):
    return [float(i), 1.0, 0.0, float(i % 3)][:dim]


def test_get_query_delete_upsert(client, name):
    client.create_collection(name, dimension=4, metric_type="L2")
    res = client.insert(name, [{"id": i, "vector": vec(i), "kind": "a" if i % 2 else "b"} for i in range(20)])
    assert res["insert_count"] == 20 and list(res["ids"]) == list(range(20))

    # get: present keys only, in any order; a missing key is simply absent.
    got = client.get(name, ids=[3, 1, 999], output_fields=["kind", "vector"])
    assert sorted(r["id"] for r in got) == [1, 3]
    assert {r["id"]: r["kind"] for r in got} == {1: "a", 3: "a"}
    assert {r["id"]: r["vector"] for r in got}[3] == pytest.approx(vec(3))
    assert client.get(name, ids=[12345]) == []
    # get of one key (not a list).
    assert [r["id"] for r in client.get(name, ids=5)] == [5]

    # upsert replaces the whole row (vector, fields, dynamic keys); inserts a new key.
    res = client.upsert(name, [{"id": 3, "vector": [9.0, 9, 9, 9], "kind": "c"}, {"id": 50, "vector": vec(50), "kind": "new"}])
    assert res["upsert_count"] == 2
    assert count(client, name) == 21
    got = client.get(name, ids=[3], output_fields=["kind", "vector"])[0]
    assert got["kind"] == "c" and got["vector"] == pytest.approx([9.0, 9, 9, 9])
    hits = client.search(name, data=[[9.0, 9, 9, 9]], limit=1, output_fields=["kind"])
    assert hits[0][0]["id"] == 3 and hits[0][0]["distance"] == pytest.approx(0.0)
    # The old version of key 3 is gone from search too.
    hits = client.search(name, data=[vec(3)], limit=21)
    assert [h["id"] for h in hits[0]].count(3) == 1

    # Inserting an existing key replaces it as well (last write wins, one live row per key).
    client.insert(name, [{"id": 4, "vector": vec(4), "kind": "again"}])
    assert count(client, name) == 21
    assert client.get(name, ids=[4], output_fields=["kind"])[0]["kind"] == "again"
    # Within one batch the last occurrence of a key wins.
    client.insert(name, [{"id": 60, "vector": vec(1), "kind": "first"}, {"id": 60, "vector": vec(2), "kind": "last"}])
    assert client.get(name, ids=[60], output_fields=["kind"])[0]["kind"] == "last"
    assert count(client, name) == 22

    # delete by ids (missing keys are fine) and by filter.
    assert client.delete(name, ids=[0, 1, 777])["delete_count"] >= 2
    assert client.get(name, ids=[0, 1]) == []
    res = client.delete(name, filter='kind == "b"')
    assert res["delete_count"] == 8  # 2, 4(replaced: "again"), 6, ..., 18 minus 4 and 0
    assert client.query(name, filter='kind == "b"') == []
    left = {r["id"] for r in client.query(name, filter="id >= 0", output_fields=["id"])}
    assert left == {3, 4, 5, 7, 9, 11, 13, 15, 17, 19, 50, 60}
    # A deleted key can be inserted again.
    client.insert(name, [{"id": 0, "vector": vec(0), "kind": "back"}])
    assert client.get(name, ids=[0], output_fields=["kind"])[0]["kind"] == "back"
    client.drop_collection(name)


def test_consistency_levels_read_your_writes(client, name):
    client.create_collection(name, dimension=4, consistency_level="Session")
    for level in ["Strong", "Session", "Bounded", "Eventually"]:
        client.insert(name, [{"id": 1000 + len(level), "vector": vec(1)}])
        # Strong and Session (pymilvus sends the client's last write timestamp) see the write.
        if level in ("Strong", "Session"):
            got = client.query(name, filter=f"id == {1000 + len(level)}", consistency_level=level)
            assert len(got) == 1, level
            hits = client.search(name, data=[vec(1)], limit=5, consistency_level=level)
            assert 1000 + len(level) in [h["id"] for h in hits[0]], level
        else:
            client.query(name, filter="id > 0", consistency_level=level)
            client.search(name, data=[vec(1)], limit=5, consistency_level=level)
    client.drop_collection(name)


def test_mutation_timestamp_is_a_guarantee(client, name, stub):
    """MutationResult.timestamp is a hybrid timestamp (`ms << 18 | logical`) close to now;
    a Session read guaranteed at it sees the write (pymilvus does this for Session)."""
    import time

    from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

    client.create_collection(name, dimension=2)
    fields = [
        schema_pb2.FieldData(field_name="id", type=DataType.INT64, scalars=schema_pb2.ScalarField(long_data=schema_pb2.LongArray(data=[7]))),
        schema_pb2.FieldData(
            field_name="vector",
            type=DataType.FLOAT_VECTOR,
            vectors=schema_pb2.VectorField(dim=2, float_vector=schema_pb2.FloatArray(data=[1.0, 2.0])),
        ),
    ]
    w = stub.Insert(milvus_pb2.InsertRequest(collection_name=name, fields_data=fields, num_rows=1))
    assert w.status.code == 0 and w.insert_cnt == 1
    assert abs((w.timestamp >> 18) - time.time() * 1000) < 60_000
    r = stub.Query(
        milvus_pb2.QueryRequest(
            collection_name=name,
            expr="id == 7",
            output_fields=["id"],
            guarantee_timestamp=w.timestamp,
            consistency_level=common_pb2.Session,
        )
    )
    assert r.status.code == 0
    assert list(r.fields_data[0].scalars.long_data.data) == [7]
    client.drop_collection(name)


def test_flush_and_collection_stats(client, name):
    schema = client.create_schema(auto_id=True, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=8)
    index = client.prepare_index_params()
    index.add_index("v", index_type="HNSW", metric_type="COSINE")
    client.create_collection(name, schema=schema, index_params=index)
    assert client.get_collection_stats(name)["row_count"] == 0
    rng = np.random.default_rng(1)
    data = rng.random((500, 8), dtype=np.float32)
    ids = []
    for start in range(0, 500, 100):
        ids += list(client.insert(name, [{"v": v} for v in data[start : start + 100]])["ids"])
    assert len(set(ids)) == 500
    assert client.get_collection_stats(name)["row_count"] == 500
    client.flush(name)  # seals into an indexed segment; data stays readable
    assert client.get_collection_stats(name)["row_count"] == 500
    hits = client.search(name, data=[data[42]], limit=1)
    assert hits[0][0]["pk"] == ids[42] and hits[0][0]["distance"] == pytest.approx(1.0, abs=1e-5)
    client.delete(name, ids=ids[:50])
    assert client.get_collection_stats(name)["row_count"] == 450
    client.flush(name)
    assert client.get_collection_stats(name)["row_count"] == 450
    assert count(client, name) == 450
    # Flushed and growing rows are both visible.
    more = list(client.insert(name, [{"v": v} for v in data[:10]])["ids"])
    assert client.get_collection_stats(name)["row_count"] == 460
    assert len(client.get(name, ids=more + ids[50:60])) == 20
    client.drop_collection(name)


def test_varchar_auto_id_keys(client, name):
    """auto_id on a VarChar primary key: the server generates unique decimal-string keys."""
    schema = client.create_schema(auto_id=True, enable_dynamic_field=False)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    assert client.describe_collection(name)["auto_id"] is True
    ids = list(client.insert(name, [{"v": [float(i), 0.0]} for i in range(5)])["ids"])
    assert len(set(ids)) == 5 and all(isinstance(i, str) and i.isdigit() for i in ids)
    got = client.get(name, ids=ids[:2], output_fields=["v"])
    assert {r["pk"]: r["v"][0] for r in got} == {ids[0]: 0.0, ids[1]: 1.0}
    assert client.search(name, data=[[3.0, 0.0]], limit=1)[0][0]["pk"] == ids[3]
    assert client.delete(name, filter=f'pk in ["{ids[4]}"]')["delete_count"] == 1
    assert count(client, name) == 4
    # Keys are generated: passing one is refused, writing nothing.
    expect_error(lambda: client.insert(name, [{"pk": "mine", "v": [0.0, 0.0]}]), 1100, "pk")
    assert count(client, name) == 4
    client.drop_collection(name)


def test_orm_flush_and_num_entities(uri, name):
    from pymilvus import Collection, CollectionSchema, FieldSchema, connections, utility

    alias = "flush_" + name
    connections.connect(alias=alias, uri=uri)
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("v", DataType.FLOAT_VECTOR, dim=2),
    ]
    coll = Collection(name, CollectionSchema(fields), using=alias)
    coll.insert([[1, 2, 3], [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]])
    coll.flush()
    assert coll.num_entities == 3
    utility.drop_collection(name, using=alias)
    connections.disconnect(alias)
