"""Collection, field and index properties as Milvus has them: a TTL (`collection.ttl.seconds`,
at creation or through alter_collection_properties) hides rows older than it from searches,
queries and counts (compaction then removes them: crates/server/tests/engine.rs); properties
are reported by describe_collection / describe_index and dropped with drop_*_properties; a
field's max_length grows (never shrinks); bad values are refused naming the property."""

import time

from conftest import expect_error

DIM = 2
TTL_S = 2


def wait_until(cond, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def ids(client, name):
    return sorted(r["id"] for r in client.query(name, filter="id >= 0"))


def test_ttl_hides_expired_rows(client, name):
    client.create_collection(name, dimension=DIM, properties={"collection.ttl.seconds": TTL_S})
    props = client.describe_collection(name)["properties"]
    assert props["collection.ttl.seconds"] == str(TTL_S)
    client.insert(name, [{"id": i, "vector": [float(i), 0.0]} for i in range(5)])
    written = time.monotonic()
    assert ids(client, name) == list(range(5))
    wait_until(lambda: ids(client, name) == [], "the rows to expire")
    assert time.monotonic() - written >= TTL_S - 0.5  # not before their time
    assert client.search(name, data=[[1.0, 0.0]], limit=5)[0] == []
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 0
    client.insert(name, [{"id": 10, "vector": [1.0, 0.0]}])
    assert ids(client, name) == [10]


def test_alter_and_drop_collection_properties(client, name):
    client.create_collection(name, dimension=DIM)
    client.insert(name, [{"id": 1, "vector": [1.0, 0.0]}])
    client.alter_collection_properties(name, properties={"collection.ttl.seconds": 3600,
                                                         "mmap.enabled": True})
    props = client.describe_collection(name)["properties"]
    assert props["collection.ttl.seconds"] == "3600" and props["mmap.enabled"] == "True"
    assert ids(client, name) == [1]  # an hour is not over
    client.drop_collection_properties(name, property_keys=["mmap.enabled"])
    assert "mmap.enabled" not in client.describe_collection(name)["properties"]
    expect_error(lambda: client.alter_collection_properties(
        name, properties={"collection.ttl.seconds": "soon"}), 1100, "collection.ttl.seconds")
    assert client.describe_collection(name)["properties"]["collection.ttl.seconds"] == "3600"


def test_alter_index_and_field_properties(client, name):
    from pymilvus import DataType
    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("title", DataType.VARCHAR, max_length=4)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=2)
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="HNSW", metric_type="L2")
    client.create_collection(name, schema=s, index_params=idx)
    row = {"id": 1, "title": "longer", "vec": [0.0, 0.0]}
    expect_error(lambda: client.insert(name, [row]), 1100, "title")
    client.alter_collection_field(name, field_name="title",
                                  field_params={"max_length": 16, "mmap.enabled": True})
    client.insert(name, [row])
    f = {f["name"]: f for f in client.describe_collection(name)["fields"]}["title"]
    assert int(f["params"]["max_length"]) == 16
    assert f["params"]["mmap_enabled"] is True  # pymilvus's name for it
    expect_error(lambda: client.alter_collection_field(
        name, field_name="title", field_params={"max_length": 8}), 1100, "shrink")
    client.alter_index_properties(name, index_name="vec", properties={"mmap.enabled": True})
    assert str(client.describe_index(name, "vec")["mmap.enabled"]).lower() == "true"
    client.drop_index_properties(name, index_name="vec", property_keys=["mmap.enabled"])
    assert "mmap.enabled" not in client.describe_index(name, "vec")
    expect_error(lambda: client.alter_index_properties(
        name, index_name="vec", properties={"M": 8}), 1100, "cannot be altered")
