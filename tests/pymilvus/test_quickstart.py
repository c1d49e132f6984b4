"""The Milvus quickstart (MilvusClient) against Quiver, step by step."""

import random

import numpy as np
import pytest
from pymilvus import DataType, MilvusException

COLORS = ["red", "blue", "green"]


def rows(n, dim=5, start=0):
    rng = random.Random(42 + start)
    return [
        {
            "id": i,
            "vector": [rng.uniform(-1, 1) for _ in range(dim)],
            "color": rng.choice(COLORS),  # dynamic field
        }
        for i in range(start, start + n)
    ]


def test_quickstart(client, name):
    assert not client.has_collection(name)
    client.create_collection(collection_name=name, dimension=5)
    assert client.has_collection(name)
    assert name in client.list_collections()
    desc = client.describe_collection(name)
    assert desc["enable_dynamic_field"]
    assert [f["name"] for f in desc["fields"]] == ["id", "vector"]
    assert desc["fields"][1]["params"]["dim"] == 5
    idx = client.describe_index(name, index_name="vector")
    assert idx["metric_type"] == "COSINE"
    assert client.get_load_state(name)["state"].name == "Loaded"

    data = rows(10)
    res = client.insert(collection_name=name, data=data)
    assert res["insert_count"] == 10
    assert list(res["ids"]) == list(range(10))

    # Search: the row itself is the best COSINE match (similarity 1).
    res = client.search(
        collection_name=name,
        data=[data[0]["vector"], data[1]["vector"]],
        limit=3,
        output_fields=["color"],
    )
    assert len(res) == 2
    assert res[0][0]["id"] == 0 and res[1][0]["id"] == 1
    assert res[0][0]["distance"] == pytest.approx(1.0, abs=1e-5)
    assert res[0][0]["entity"]["color"] == data[0]["color"]
    assert all(a["distance"] >= b["distance"] for a, b in zip(res[0], res[0][1:]))

    # Search with a filter on the dynamic field.
    res = client.search(
        collection_name=name,
        data=[data[0]["vector"]],
        limit=10,
        filter='color == "red"',
        output_fields=["color", "id"],
    )
    red = {r["id"] for r in data if r["color"] == "red"}
    assert {h["id"] for h in res[0]} == red
    assert all(h["entity"]["color"] == "red" for h in res[0])

    # Query and get.
    got = client.query(collection_name=name, filter="id in [1, 2]", output_fields=["*"])
    assert sorted(r["id"] for r in got) == [1, 2]
    assert got[0]["color"] == data[got[0]["id"]]["color"]
    assert np.allclose(got[0]["vector"], data[got[0]["id"]]["vector"], atol=1e-6)
    got = client.get(collection_name=name, ids=[3, 4], output_fields=["color"])
    assert sorted(r["id"] for r in got) == [3, 4]
    assert {r["color"] for r in got} <= set(COLORS)
    assert client.query(collection_name=name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 10

    # Delete by ids and by filter.
    client.delete(collection_name=name, ids=[0])
    res = client.delete(collection_name=name, filter='color == "red"')
    left = [r["id"] for r in data if r["id"] != 0 and r["color"] != "red"]
    got = client.query(collection_name=name, filter="id >= 0", output_fields=["id"])
    assert sorted(r["id"] for r in got) == sorted(left)

    client.drop_collection(name)
    assert not client.has_collection(name)


def test_upsert_and_limits(client, name):
    client.create_collection(collection_name=name, dimension=4, metric_type="L2")
    client.insert(name, [{"id": i, "vector": [float(i), 0, 0, 0]} for i in range(5)])
    client.upsert(name, [{"id": 2, "vector": [10.0, 0, 0, 0], "tag": "moved"}])
    res = client.search(name, data=[[10.0, 0, 0, 0]], limit=1, output_fields=["tag"])
    assert res[0][0]["id"] == 2 and res[0][0]["distance"] == pytest.approx(0.0)
    assert res[0][0]["entity"]["tag"] == "moved"
    # offset skips the best hits.
    res = client.search(name, data=[[0.0, 0, 0, 0]], limit=2, search_params={"offset": 1})
    assert [h["id"] for h in res[0]] == [1, 3]
    with pytest.raises(MilvusException) as e:
        client.search(name, data=[[0.0, 0, 0, 0]], limit=16385)
    assert e.value.code == 1100
    with pytest.raises(MilvusException) as e:
        client.insert(name, [{"id": 9, "vector": [1.0, 2.0, 3.0]}])
    with pytest.raises(MilvusException) as e:
        client.query(name, filter="id >", output_fields=["id"])
    assert e.value.code == 1100
    with pytest.raises(MilvusException) as e:
        client.search(name, data=[[0.0, 0, 0, 0]], limit=1, search_params={"metric_type": "IP"})
    assert "metric_type" in e.value.message
    with pytest.raises(MilvusException) as e:
        client.search(name, data=[[0.0, 0, 0, 0]], limit=1, partition_names=["p1"])
    assert e.value.code == 200 and "partition not found" in e.value.message
    assert client.get_collection_stats(name)["row_count"] == 5
    client.drop_collection(name)


def test_missing_collection(client):
    with pytest.raises(MilvusException) as e:
        client.query("does_not_exist", filter="id > 0")
    assert e.value.code == 100


def test_custom_schema_auto_id_and_aliases(client, name):
    schema = client.create_schema(auto_id=True, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("emb", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    schema.add_field("year", DataType.INT32)
    index = client.prepare_index_params()
    index.add_index("emb", index_type="HNSW", metric_type="IP", params={"M": 8, "efConstruction": 64})
    client.create_collection(name, schema=schema, index_params=index)
    rng = np.random.default_rng(0)
    vecs = rng.random((20, 8), dtype=np.float32)
    res = client.insert(
        name,
        [{"emb": v.tolist(), "title": f"book {i}", "year": 2000 + i} for i, v in enumerate(vecs)],
    )
    ids = list(res["ids"])
    assert len(set(ids)) == 20
    hits = client.search(
        name,
        data=[vecs[3].tolist()],
        limit=5,
        filter="year >= 2010",
        output_fields=["title", "year"],
        search_params={"params": {"ef": 64}},
    )
    assert all(h["entity"]["year"] >= 2010 for h in hits[0])
    client.create_alias(name, name + "_alias")
    assert client.describe_alias(name + "_alias")["collection_name"] == name
    assert client.list_aliases(name)["aliases"] == [name + "_alias"]
    got = client.query(name + "_alias", filter="year == 2005", output_fields=["title"])
    assert [r["title"] for r in got] == ["book 5"]
    client.drop_alias(name + "_alias")
    client.flush(name)
    client.drop_collection(name)
