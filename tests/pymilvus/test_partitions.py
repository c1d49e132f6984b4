"""Partitions as Milvus has them: a collection starts with `_default`; partitions are created,
written to, searched, queried, counted, released, loaded and dropped by name; a partition key
spreads rows over `_default_0..N-1`; a name that does not exist is not found (merr 200).
Results are checked against what was written to each partition."""

import pytest
from pymilvus import Collection, Partition, connections, utility
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from conftest import expect_error, expect_status, fresh_name

PARTITION_NOT_FOUND = 200


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
        expect_error(call, PARTITION_NOT_FOUND, "partition not found", "p1")
    # Nothing was released or changed.
    assert client.get_load_state(coll)["state"].name == "Loaded"
    assert client.get_partition_stats(coll, "_default")["row_count"] == 7


def ids_of(hits):
    return sorted(h["id"] for h in hits)


def test_partitions_hold_their_rows(client, coll):
    client.create_partition(coll, "p1")
    client.create_partition(coll, "p1")  # exists: nothing to do, as Milvus
    client.create_partition(coll, "p2")
    assert client.list_partitions(coll) == ["_default", "p1", "p2"]
    assert client.has_partition(coll, "p1") and not client.has_partition(coll, "p3")
    client.insert(coll, [{"id": 100 + i, "vector": [1.0, float(i), 0.0]} for i in range(5)],
                  partition_name="p1")
    client.insert(coll, [{"id": 200 + i, "vector": [2.0, float(i), 0.0]} for i in range(3)],
                  partition_name="p2")
    expect_error(lambda: client.insert(coll, [{"id": 1, "vector": [0.0] * 3}], partition_name="p9"),
                 PARTITION_NOT_FOUND, "p9")

    def q(parts):
        return sorted(r["id"] for r in client.query(coll, filter="id >= 0", partition_names=parts))

    assert q(["p1"]) == [100, 101, 102, 103, 104]
    assert q(["p2"]) == [200, 201, 202]
    assert q(["_default"]) == list(range(7))
    assert q(["p1", "p2"]) == [100, 101, 102, 103, 104, 200, 201, 202]
    assert len(q([])) == 15
    hits = client.search(coll, data=[[1.0, 0.0, 0.0]], limit=20, partition_names=["p2"])[0]
    assert ids_of(hits) == [200, 201, 202]
    assert client.get_partition_stats(coll, "p1")["row_count"] == 5
    # A delete naming a partition touches only its rows.
    client.delete(coll, filter="id >= 0", partition_name="p2")
    assert q(["p2"]) == [] and len(q([])) == 12

    # A released partition is skipped by reads that name none and refused by those that do.
    client.release_partitions(coll, ["p1"])
    assert client.get_load_state(coll, partition_name="p1")["state"].name == "NotLoad"
    assert client.get_load_state(coll, partition_name="_default")["state"].name == "Loaded"
    assert len(q([])) == 7
    expect_error(lambda: q(["p1"]), 101, "p1")
    client.load_partitions(coll, ["p1"])
    assert len(q([])) == 12

    # Dropping needs the partition released; `_default` is never dropped.
    expect_error(lambda: client.drop_partition(coll, "p1"), 65535, "release it first")
    expect_error(lambda: client.drop_partition(coll, "_default"), 1100, "default partition")
    client.release_partitions(coll, ["p1"])
    client.drop_partition(coll, "p1")
    assert client.list_partitions(coll) == ["_default", "p2"]
    client.load_collection(coll)
    assert sorted(r["id"] for r in client.query(coll, filter="id >= 0")) == list(range(7))
    hits = client.search(coll, data=[[1.0, 0.0, 0.0]], limit=20)[0]
    assert ids_of(hits) == list(range(7))


def test_partition_key_spreads_rows(client, name):
    from pymilvus import DataType
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=3)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="HNSW", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, num_partitions=4)
    try:
        assert client.list_partitions(name) == [f"_default_{i}" for i in range(4)]
        rows = [{"id": i, "tenant": f"t{i % 5}", "vector": [float(i), 0.0, 0.0]} for i in range(50)]
        client.insert(name, rows)
        for t in range(5):
            got = client.query(name, filter=f'tenant == "t{t}"', output_fields=["tenant"])
            assert sorted(r["id"] for r in got) == [i for i in range(50) if i % 5 == t]
        hits = client.search(name, data=[[7.0, 0.0, 0.0]], limit=3, filter='tenant == "t2"')[0]
        assert [h["id"] for h in hits] == [7, 2, 12]
        # Rows are spread over more than one partition.
        counts = [client.get_partition_stats(name, f"_default_{i}")["row_count"] for i in range(4)]
        assert sum(counts) == 50 and sum(c > 0 for c in counts) > 1
        expect_error(lambda: client.create_partition(name, "p1"), 1100, "partition key")
        expect_error(lambda: client.query(name, filter="id >= 0", partition_names=["_default_0"]),
                     1100, "partition key")
        expect_error(lambda: client.insert(name, rows[:1], partition_name="_default_0"), 1100,
                     "partition key")
    finally:
        client.drop_collection(name)


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
        # It was created with the collection.
        assert len(r.partitionIDs) == 1
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

    # A new partition: has_partition says no, then CreatePartition makes it.
    p1 = Partition(c, "p1")
    assert p1.is_empty
    c.create_partition("p2")
    expect_error(lambda: c.drop_partition("_default"), 1100, "default partition")
    assert [p.name for p in c.partitions] == ["_default", "p1", "p2"]
