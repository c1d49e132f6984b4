"""Databases as Milvus has them: created, listed, described, altered and dropped; a client
works in one through `MilvusClient(db_name=...)`, `using_database` or a request's `db_name`;
collections and aliases of one database are invisible from another, and the same name holds
different data in each. Results are checked against what was written to each database."""

import pytest
from pymilvus import MilvusClient
from pymilvus.grpc_gen import milvus_pb2

from conftest import count, expect_error, expect_status, fresh_name

DATABASE_NOT_FOUND = 800
PARAMETER_INVALID = 1100
UNEXPECTED = 65535


@pytest.fixture
def db(uri, client):
    name = fresh_name("db")
    client.create_database(name, properties={"team": "feeds"})
    yield name
    # Leave nothing behind whatever the test did.
    scoped = MilvusClient(uri=uri, db_name=name)
    for c in scoped.list_collections():
        scoped.drop_collection(c)
    scoped.close()
    client.drop_database(name)


@pytest.fixture
def in_db(uri, db):
    c = MilvusClient(uri=uri, db_name=db)
    yield c
    c.close()


def fill(c, name, ids, x):
    c.create_collection(name, dimension=2)
    c.insert(name, [{"id": i, "vector": [x, float(i)]} for i in ids])


def test_create_list_describe_alter_drop(client):
    name = fresh_name("db")
    before = client.list_databases()
    assert "default" in before and name not in before
    client.create_database(name, properties={"key1": "value1"})
    assert client.list_databases() == before + [name]
    info = client.describe_database(name)
    assert info["name"] == name and info["key1"] == "value1"

    client.alter_database_properties(name, properties={"key2": "value2"})
    info = client.describe_database(name)
    assert (info["key1"], info["key2"]) == ("value1", "value2")
    client.drop_database_properties(name, property_keys=["key1"])
    info = client.describe_database(name)
    assert "key1" not in info and info["key2"] == "value2"

    expect_error(lambda: client.create_database(name), UNEXPECTED, "database already exist", name)
    client.drop_database(name)
    assert name not in client.list_databases()
    # Dropping it again is not an error (as Milvus).
    client.drop_database(name)
    expect_error(lambda: client.describe_database(name), DATABASE_NOT_FOUND, name)


def test_default_cannot_be_dropped(client):
    expect_error(lambda: client.drop_database("default"), PARAMETER_INVALID, "default database")
    assert "default" in client.list_databases()


def test_same_name_different_data(client, in_db, db, name):
    fill(client, name, range(5), 1.0)
    fill(in_db, name, range(100, 103), 2.0)
    try:
        assert count(client, name) == 5 and count(in_db, name) == 3
        hits = in_db.search(name, data=[[2.0, 101.0]], limit=10)[0]
        assert sorted(h["id"] for h in hits) == [100, 101, 102]
        got = in_db.query(name, filter="id >= 0", output_fields=["id"])
        assert sorted(r["id"] for r in got) == [100, 101, 102]
        in_db.delete(name, ids=[100])
        assert count(in_db, name) == 2 and count(client, name) == 5

        assert name in client.list_collections() and name in in_db.list_collections()
        assert in_db.list_collections() == [name]
        desc = in_db.describe_collection(name)
        assert desc["collection_name"] == name
        # Dropping it in one database leaves the other's.
        in_db.drop_collection(name)
        assert count(client, name) == 5
        assert not in_db.has_collection(name)
    finally:
        client.drop_collection(name)


def test_using_database(client, db, name):
    # (pymilvus shares one connection between clients of one address, database and user:
    # this test switches the fixture's own.)
    c = client
    try:
        c.use_database(db)
        fill(c, name, range(4), 3.0)
        assert count(c, name) == 4 and c.list_collections() == [name]
        c.use_database("default")
        assert not c.has_collection(name)
        c.use_database(db)
        assert c.has_collection(name)
    finally:
        c.drop_collection(name)
        c.use_database("default")


def test_raw_request_db_name_wins_over_nothing(stub, in_db, db, name):
    fill(in_db, name, range(3), 1.0)
    resp = stub.HasCollection(milvus_pb2.HasCollectionRequest(db_name=db, collection_name=name))
    assert resp.status.code == 0 and resp.value
    resp = stub.HasCollection(milvus_pb2.HasCollectionRequest(collection_name=name))
    assert resp.status.code == 0 and not resp.value
    resp = stub.ShowCollections(milvus_pb2.ShowCollectionsRequest(db_name=db))
    assert list(resp.collection_names) == [name]
    resp = stub.DescribeCollection(
        milvus_pb2.DescribeCollectionRequest(db_name=db, collection_name=name)
    )
    assert (resp.collection_name, resp.db_name) == (name, db)


def test_aliases_live_in_their_database(client, in_db, db, name):
    fill(in_db, name, range(3), 1.0)
    alias = fresh_name("a")
    in_db.create_alias(name, alias)
    assert in_db.list_aliases(name)["aliases"] == [alias]
    assert in_db.describe_alias(alias)["collection_name"] == name
    assert count(in_db, alias) == 3
    # The default database sees neither the alias nor the collection.
    assert alias not in client.list_aliases()["aliases"]
    assert not client.has_collection(alias)
    in_db.drop_alias(alias)


def test_a_database_with_collections_cannot_be_dropped(client, in_db, db, name):
    fill(in_db, name, range(2), 1.0)
    expect_error(lambda: client.drop_database(db), UNEXPECTED, "not empty", db, name)
    assert count(in_db, name) == 2


def test_unknown_database(client, stub):
    missing = fresh_name("nodb")
    resp = stub.ShowCollections(milvus_pb2.ShowCollectionsRequest(db_name=missing))
    expect_status(resp.status, DATABASE_NOT_FOUND, missing)
    c = client

    def create():
        # pymilvus 3 checks the database when switching to it; 2.5 when creating in it.
        c.use_database(missing)
        c.create_collection("c", dimension=2)

    try:
        expect_error(create, DATABASE_NOT_FOUND, missing)
    finally:
        c.use_database("default")
    resp = stub.ListDatabases(milvus_pb2.ListDatabasesRequest())
    assert missing not in resp.db_names


def test_rename_keeps_rows_and_aliases_and_moves_between_databases(client, in_db, db, name):
    fill(client, name, range(4), 1.0)
    new = name + "_r"
    alias = fresh_name("a")
    client.create_alias(name, alias)
    try:
        client.rename_collection(name, new)
        assert not client.has_collection(name)
        assert count(client, new) == 4 and count(client, alias) == 4
        assert client.describe_alias(alias)["collection_name"] == new
        other = fresh_name("c")
        fill(client, other, range(1), 1.0)
        expect_error(lambda: client.rename_collection(new, other), PARAMETER_INVALID, other)
        client.drop_collection(other)
        # Into another database: only without aliases (as Milvus).
        expect_error(lambda: client.rename_collection(new, new, target_db=db), UNEXPECTED,
                     "aliases")
        client.drop_alias(alias)
        client.rename_collection(new, name, target_db=db)
        assert not client.has_collection(new) and count(in_db, name) == 4
    finally:
        client.drop_alias(alias)
        for c in (name, new):
            if client.has_collection(c):
                client.drop_collection(c)
