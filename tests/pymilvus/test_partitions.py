"""Partitions: every collection has the one partition `_default`, which holds all its rows.
It is listed, checked, counted, loaded and released like the collection; another partition
name is not found (merr 200); creating or dropping a partition is refused at once (1100)."""

import pytest
from pymilvus import Collection, MilvusException, Partition, connections, utility
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from conftest import expect_error, expect_status, fresh_name

PARTITION_NOT_FOUND = 200
UNSUPPORTED = "partitions are not supported"


@pytest.fixture
def coll(client, name):
    client.create_collection(name, dimension=3)
    client.insert(name, [{"id": i, "vector": [float(i), 0.0, 1.0]} for i in range(7)])
    yield name
    client.drop_collection(name)


def test_default_partition_is_the_collection(client, coll):
    assert client.list_partitions(coll) == ["_default"]
    assert client.has_partition(coll, "_default")
    assert not client.has_partition(coll, "p1")

    stats = client.get_partition_stats(coll, "_default")
    assert stats["row_count"] == 7
    assert stats == client.get_collection_stats(coll)
    client.insert(coll, [{"id": 100, "vector": [1.0, 2.0, 3.0]}])
    client.delete(coll, ids=[0, 1])
    assert client.get_partition_stats(coll, "_default")["row_count"] == 6

    # Loading / releasing `_default` is loading / releasing the collection.
    client.load_partitions(coll, ["_default"])
    assert client.get_load_state(coll, partition_name="_default")["state"].name == "Loaded"
    client.release_partitions(coll, ["_default"])
    assert client.get_load_state(coll)["state"].name == "NotLoad"
    assert client.get_load_state(coll, partition_name="_default")["state"].name == "NotLoad"
    # Released, the statistics are the rows of sealed segments (Milvus counts flushed rows
    # from its catalog, loaded or not; deletes in later segments are not subtracted).
    client.flush(coll)
    assert 6 <= client.get_partition_stats(coll, "_default")["row_count"] <= 8
    client.load_partitions(coll, "_default")
    assert client.get_load_state(coll)["state"].name == "Loaded"
    hits = client.search(coll, data=[[1.0, 2.0, 3.0]], limit=1, partition_names=["_default"])
    assert hits[0][0]["id"] == 100


def test_other_partition_names_are_not_found(client, coll):
    for call in (
        lambda: client.get_partition_stats(coll, "p1"),
        lambda: client.load_partitions(coll, ["_default", "p1"]),
        lambda: client.release_partitions(coll, ["p1"]),
        lambda: client.get_load_state(coll, partition_name="p1"),
    ):
        expect_error(call, PARTITION_NOT_FOUND, "partition not found", "p1", "_default")
    # Nothing was released or changed.
    assert client.get_load_state(coll)["state"].name == "Loaded"
    assert client.get_partition_stats(coll, "_default")["row_count"] == 7


def test_create_and_drop_partition_are_refused(client, coll):
    expect_error(lambda: client.create_partition(coll, "p1"), 1100, UNSUPPORTED, '"_default"', "p1")
    expect_error(lambda: client.drop_partition(coll, "p1"), 1100, UNSUPPORTED, "p1")
    expect_error(lambda: client.drop_partition(coll, "_default"), 1100, UNSUPPORTED, "cannot be dropped")
    # `_default` exists already: creating it again succeeds, as in Milvus.
    client.create_partition(coll, "_default")
    assert client.list_partitions(coll) == ["_default"]
    assert not client.has_partition(coll, "p1")
    assert client.get_partition_stats(coll, "_default")["row_count"] == 7


def test_unknown_collection_is_not_found(client):
    missing = fresh_name("missing")
    for call in (
        lambda: client.list_partitions(missing),
        lambda: client.has_partition(missing, "_default"),
        lambda: client.get_partition_stats(missing, "_default"),
        lambda: client.load_partitions(missing, ["_default"]),
        lambda: client.release_partitions(missing, ["_default"]),
        lambda: client.load_partitions(missing, ["p1"]),
        lambda: client.create_partition(missing, "p1"),
        lambda: client.drop_partition(missing, "p1"),
    ):
        expect_error(call, 100, missing)


def test_partitions_through_an_alias(client, coll):
    alias = fresh_name("alias")
    client.create_alias(coll, alias)
    try:
        assert client.list_partitions(alias) == ["_default"]
        assert client.has_partition(alias, "_default")
        assert client.get_partition_stats(alias, "_default")["row_count"] == 7
        client.load_partitions(alias, ["_default"])
    finally:
        client.drop_alias(alias)


def test_raw_show_partitions(client, stub, coll):
    desc = stub.DescribeCollection(milvus_pb2.DescribeCollectionRequest(collection_name=coll))
    assert desc.status.code == 0
    for req in (
        milvus_pb2.ShowPartitionsRequest(collection_name=coll),
        milvus_pb2.ShowPartitionsRequest(collectionID=desc.collectionID),
        milvus_pb2.ShowPartitionsRequest(
            collection_name=coll, partition_names=["_default"], type=milvus_pb2.InMemory
        ),
    ):
        r = stub.ShowPartitions(req)
        assert r.status.code == 0 and r.status.error_code == common_pb2.Success, r.status
        assert list(r.partition_names) == ["_default"]
        # The one partition's id is its collection's; it was created with the collection.
        assert list(r.partitionIDs) == [desc.collectionID]
        assert list(r.created_timestamps) == [desc.created_timestamp]
        assert list(r.created_utc_timestamps) == [desc.created_utc_timestamp]
        assert list(r.inMemory_percentages) == [100]

    r = stub.ShowPartitions(
        milvus_pb2.ShowPartitionsRequest(
            collection_name=coll, partition_names=["_default", "p2"], type=milvus_pb2.InMemory
        )
    )
    expect_status(r.status, PARTITION_NOT_FOUND, "p2", "partition_names")
    assert r.status.error_code == common_pb2.MetaFailed and not r.status.retriable
    assert list(r.partition_names) == []

    # No partition named: the whole collection (as ReleaseCollection / LoadCollection).
    assert stub.ReleasePartitions(milvus_pb2.ReleasePartitionsRequest(collection_name=coll)).code == 0
    r = stub.GetLoadState(milvus_pb2.GetLoadStateRequest(collection_name=coll, partition_names=["_default"]))
    assert r.status.code == 0 and r.state == common_pb2.LoadStateNotLoad
    r = stub.ShowPartitions(milvus_pb2.ShowPartitionsRequest(collection_name=coll))
    assert list(r.partition_names) == ["_default"] and list(r.inMemory_percentages) == [0]
    assert stub.LoadPartitions(milvus_pb2.LoadPartitionsRequest(collection_name=coll)).code == 0
    client.load_collection(coll)  # waits until loaded
    r = stub.ShowPartitions(milvus_pb2.ShowPartitionsRequest(collection_name=coll))
    assert list(r.inMemory_percentages) == [100]
    r = stub.GetLoadingProgress(milvus_pb2.GetLoadingProgressRequest(collection_name=coll, partition_names=["_default"]))
    assert r.status.code == 0 and r.progress == 100
    r = stub.GetLoadingProgress(milvus_pb2.GetLoadingProgressRequest(collection_name=coll, partition_names=["p3"]))
    expect_status(r.status, PARTITION_NOT_FOUND, "p3")
    r = stub.GetLoadState(milvus_pb2.GetLoadStateRequest(collection_name=coll, partition_names=["p3"]))
    expect_status(r.status, PARTITION_NOT_FOUND, "p3")
    assert r.state == common_pb2.LoadStateNotExist
    r = stub.HasPartition(milvus_pb2.HasPartitionRequest(collection_name=coll, partition_name=""))
    assert r.status.code == 0 and not r.value


@pytest.fixture
def orm(uri, coll):
    alias = "orm_" + coll
    connections.connect(alias=alias, uri=uri)
    yield alias
    connections.disconnect(alias)


def test_orm_partitions(orm, coll):
    c = Collection(coll, using=orm)
    assert [p.name for p in c.partitions] == ["_default"]
    assert c.has_partition("_default") and not c.has_partition("p1")
    assert utility.has_partition(coll, "_default", using=orm)
    assert not utility.has_partition(coll, "p1", using=orm)

    p = Partition(c, "_default")  # exists: not created
    assert p.num_entities == 7 and not p.is_empty
    p.load()
    assert utility.load_state(coll, partition_names=["_default"], using=orm).name == "Loaded"
    assert utility.loading_progress(coll, partition_names=["_default"], using=orm)["loading_progress"] == "100%"
    p.release()
    assert utility.load_state(coll, using=orm).name == "NotLoad"
    c.load(partition_names=["_default"])
    assert utility.load_state(coll, using=orm).name == "Loaded"
    assert c.partition("_default").name == "_default"

    # A new partition: has_partition says no, then CreatePartition is refused.
    err = expect_error(lambda: Partition(c, "p1"), 1100, UNSUPPORTED, "p1")
    assert isinstance(err, MilvusException)
    expect_error(lambda: c.create_partition("p1"), 1100, UNSUPPORTED, "p1")
    expect_error(lambda: c.drop_partition("_default"), 1100, UNSUPPORTED)
    assert [p.name for p in c.partitions] == ["_default"]
