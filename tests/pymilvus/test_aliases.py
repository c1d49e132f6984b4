"""Aliases: create / alter / drop / describe / list, and an alias accepted wherever a
collection name is (DML, search, query, describe, index, load, flush, stats)."""

import pytest
from pymilvus import DataType

from conftest import count, expect_error, fresh_name


def make(client, name, extra_field=False):
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=3)
    if extra_field:
        schema.add_field("tag", DataType.VARCHAR, max_length=16, nullable=True)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="HNSW", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)


def test_alias_lifecycle_and_use(client, name):
    other = fresh_name()
    alias = fresh_name("alias")
    make(client, name)
    make(client, other, extra_field=True)
    try:
        client.create_alias(name, alias)
        assert client.describe_alias(alias)["collection_name"] == name
        assert client.list_aliases(name)["aliases"] == [alias]
        assert alias in client.list_aliases()["aliases"]
        assert client.describe_collection(name)["aliases"] == [alias]

        # The alias in place of the collection name, for every call.
        assert client.has_collection(alias)
        assert client.describe_collection(alias)["collection_name"] == name
        client.insert(alias, [{"id": i, "vector": [float(i), 0, 0]} for i in range(5)])
        client.upsert(alias, [{"id": 4, "vector": [40.0, 0, 0]}])
        assert count(client, alias) == 5
        assert client.get(alias, ids=[4], output_fields=["vector"])[0]["vector"] == pytest.approx([40.0, 0, 0])
        hits = client.search(alias, data=[[40.0, 0, 0]], limit=1)
        assert hits[0][0]["id"] == 4
        assert [r["id"] for r in client.query(alias, filter="id < 2", output_fields=["id"])] in ([0, 1], [1, 0])
        client.delete(alias, ids=[0])
        client.delete(alias, filter="id == 1")
        assert count(client, name) == 3
        client.flush(alias)
        assert client.get_collection_stats(alias)["row_count"] == 3
        assert client.describe_index(alias, index_name="vector")["metric_type"] == "L2"
        assert client.list_indexes(alias) == ["vector"]
        client.create_index(alias, _index(client, "vector", "L2"))  # same metric: accepted
        client.load_collection(alias)
        assert client.get_load_state(alias)["state"].name == "Loaded"
        client.release_collection(alias)
        assert client.get_load_state(name)["state"].name == "NotLoad"
        client.load_collection(alias)

        # Alter: the alias now names the other collection (which has another schema).
        client.alter_alias(other, alias)
        assert client.describe_alias(alias)["collection_name"] == other
        assert client.list_aliases(name)["aliases"] == []
        assert client.list_aliases(other)["aliases"] == [alias]
        assert count(client, alias) == 0
        # This client cached the alias's old schema: the server answers SchemaMismatch
        # (the schema_timestamp is the old collection's) and pymilvus refreshes and retries.
        client.insert(alias, [{"id": 99, "vector": [1.0, 2, 3]}])
        client.insert(alias, [{"id": 100, "vector": [1.0, 2, 3], "tag": "moved"}])
        assert count(client, other) == 2 and count(client, name) == 3
        assert client.get(alias, ids=[100], output_fields=["tag"])[0]["tag"] == "moved"

        # A collection that has aliases cannot be dropped; nor can it be dropped by alias.
        expect_error(lambda: client.drop_collection(alias), 1100, alias)
        expect_error(lambda: client.drop_collection(other), 1100, alias)
        assert client.has_collection(other)

        client.drop_alias(alias)
        expect_error(lambda: client.describe_alias(alias), 1600, alias)
        assert not client.has_collection(alias)
        expect_error(lambda: client.query(alias, filter="id > 0"), 100, alias)
        client.drop_alias(alias)  # dropping a missing alias succeeds, as in Milvus
    finally:
        for a in (alias,):
            try:
                client.drop_alias(a)
            except Exception:
                pass
        client.drop_collection(name)
        client.drop_collection(other)


def _index(client, field, metric):
    p = client.prepare_index_params()
    p.add_index(field, index_type="HNSW", metric_type=metric)
    return p


def test_alias_errors(client, name):
    alias = fresh_name("alias")
    make(client, name)
    try:
        client.create_alias(name, alias)
        # The same alias again (1602, alias already exist), an alias that is a collection's
        # name (1601, alias and collection name conflict), a missing target.
        expect_error(lambda: client.create_alias(name, alias), 1602, "alias already exist", alias)
        expect_error(lambda: client.create_alias(name, name), 1601, "name conflict", name)
        expect_error(lambda: client.create_alias("no_such_collection", fresh_name("a")), 100, "no_such_collection")
        expect_error(lambda: client.alter_alias("no_such_collection", alias), 100, "no_such_collection")
        expect_error(lambda: client.alter_alias(name, "no_such_alias"), 1600, "no_such_alias")
        expect_error(lambda: client.describe_alias("no_such_alias"), 1600, "no_such_alias")
        # A collection cannot take a name that is an alias.
        expect_error(lambda: client.create_collection(alias, dimension=3), 1601, alias)
        assert client.describe_alias(alias)["collection_name"] == name
    finally:
        client.drop_alias(alias)
        client.drop_collection(name)
