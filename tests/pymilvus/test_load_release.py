"""Load / release and a collection's own consistency level.

Release frees the querynode's copy: GetLoadState says NotLoad, searches and queries fail at
once with Milvus's "collection not loaded" (101), writes still land, and Load serves the
collection again with everything written meanwhile. A collection keeps the consistency level
it was created with; reads that name no level use it, and a client always reads its own
writes (pymilvus sends its last write timestamp with default-level reads)."""

import time

import pytest
from pymilvus import Collection, connections
from pymilvus.client.types import LoadState
from pymilvus.grpc_gen import milvus_pb2

from conftest import count, expect_error, fresh_name


def vec(i):
    return [float(i), 1.0, 0.0, 1.0]


def test_release_refuses_reads_keeps_writes_and_load_serves_again(client, name):
    client.create_collection(name, dimension=4, metric_type="L2")
    client.insert(name, [{"id": i, "vector": vec(i)} for i in range(10)])
    assert client.get_load_state(name)["state"] == LoadState.Loaded

    client.release_collection(name)
    assert client.get_load_state(name)["state"] == LoadState.NotLoad
    expect_error(lambda: client.search(name, data=[vec(1)], limit=3), 101, "not loaded", name)
    expect_error(lambda: client.query(name, filter="id > 2"), 101, "not loaded")
    expect_error(lambda: client.get(name, ids=[1]), 101, "not loaded")
    expect_error(lambda: client.query(name, filter="", output_fields=["count(*)"]), 101, "not loaded")
    # Released is not gone: it is listed and described, and it takes writes.
    assert name in client.list_collections()
    assert client.describe_collection(name)["collection_name"] == name
    assert client.describe_index(name, "vector")["index_type"] == "HNSW"
    client.insert(name, [{"id": 100, "vector": vec(100)}])
    client.delete(name, ids=[0])
    client.release_collection(name)  # releasing twice is fine

    client.load_collection(name)
    assert client.get_load_state(name)["state"] == LoadState.Loaded
    assert count(client, name) == 10
    hits = client.search(name, data=[vec(100)], limit=1)
    assert hits[0][0]["id"] == 100
    assert client.get(name, ids=[0]) == []
    client.load_collection(name)  # loading a loaded collection is fine
    client.drop_collection(name)


def test_release_and_load_through_an_alias_and_the_orm(client, uri, name):
    alias = fresh_name("alias")
    client.create_collection(name, dimension=4)
    client.create_alias(name, alias)
    client.insert(alias, [{"id": 1, "vector": vec(1)}])
    client.release_collection(alias)
    assert client.get_load_state(name)["state"] == LoadState.NotLoad
    expect_error(lambda: client.search(alias, data=[vec(1)], limit=1), 101, "not loaded")

    connections.connect(alias="orm_load", uri=uri)
    try:
        col = Collection(name, using="orm_load")
        col.load()
        assert client.get_load_state(alias)["state"] == LoadState.Loaded
        assert [h.id for h in col.search([vec(1)], "vector", {"metric_type": "COSINE"}, limit=1)[0]] == [1]
        col.release()
        expect_error(lambda: col.query("id >= 0"), 101, "not loaded")
        col.load()
        assert [r["id"] for r in col.query("id >= 0")] == [1]
    finally:
        connections.disconnect("orm_load")
    client.drop_alias(alias)
    client.drop_collection(name)


def test_released_collections_are_listed_as_not_in_memory(client, stub, name):
    from pymilvus.grpc_gen import milvus_pb2

    client.create_collection(name, dimension=4)
    client.release_collection(name)
    r = stub.ShowCollections(milvus_pb2.ShowCollectionsRequest())
    i = list(r.collection_names).index(name)
    assert (r.inMemory_percentages[i], r.query_service_available[i]) == (0, False)
    client.load_collection(name)
    r = stub.ShowCollections(milvus_pb2.ShowCollectionsRequest())
    i = list(r.collection_names).index(name)
    assert (r.inMemory_percentages[i], r.query_service_available[i]) == (100, True)
    client.drop_collection(name)


@pytest.mark.parametrize("level,number", [("Strong", 0), ("Session", 1), ("Bounded", 2), ("Eventually", 3)])
def test_a_collection_keeps_its_consistency_level(client, name, level, number):
    client.create_collection(name, dimension=4, consistency_level=level)
    assert client.describe_collection(name)["consistency_level"] == number
    # Default-level reads of the writing client see its writes at every level.
    for i in range(20):
        client.insert(name, [{"id": i, "vector": vec(i)}])
        assert [r["id"] for r in client.get(name, ids=[i])] == [i], (level, i)
        assert client.search(name, data=[vec(i)], limit=1)[0][0]["id"] == i, (level, i)
    client.drop_collection(name)


def test_pymilvus_default_level_is_bounded(client, name):
    """MilvusClient creates collections Bounded unless told otherwise (as against Milvus)."""
    client.create_collection(name, dimension=4)
    assert client.describe_collection(name)["consistency_level"] == 2
    client.drop_collection(name)


def test_unknown_consistency_level_is_refused(stub, name):
    from pymilvus import DataType
    from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

    dim = common_pb2.KeyValuePair(key="dim", value="4")
    schema = schema_pb2.CollectionSchema(
        name=name,
        fields=[
            schema_pb2.FieldSchema(name="id", data_type=DataType.INT64, is_primary_key=True),
            schema_pb2.FieldSchema(name="v", data_type=DataType.FLOAT_VECTOR, type_params=[dim]),
        ],
    )
    status = stub.CreateCollection(
        milvus_pb2.CreateCollectionRequest(collection_name=name, schema=schema.SerializeToString(), consistency_level=9)
    )
    assert status.code == 1100 and "consistency_level" in status.reason, status
    has = stub.HasCollection(milvus_pb2.HasCollectionRequest(collection_name=name))
    assert not has.value


def test_get_replicas_describes_what_serves_a_loaded_collection(client, stub, uri, name):
    client.create_collection(name, dimension=3, num_shards=2)
    client.create_partition(name, "p1")
    desc = stub.DescribeCollection(milvus_pb2.DescribeCollectionRequest(collection_name=name))
    # In a cluster a replica can be re-placed between two calls (a querynode's lease lapsing
    # under load leaves its shard unserved for a moment): wait until both shards are listed.
    deadline = time.monotonic() + 30
    while True:
        r = stub.GetReplicas(milvus_pb2.GetReplicasRequest(collectionID=desc.collectionID))
        assert r.status.code == 0, r.status
        served = sum(len(rep.shard_replicas) for rep in r.replicas)
        if served == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(r.replicas) == 1  # replica_number 1
    rep = r.replicas[0]
    assert rep.collectionID == desc.collectionID
    assert rep.resource_group_name == "__default_resource_group"
    assert len(rep.partition_ids) == 2  # _default and p1, both loaded
    assert sorted(s.dm_channel_name for s in rep.shard_replicas) == sorted(
        desc.virtual_channel_names)
    for s in rep.shard_replicas:
        assert list(s.node_ids) == [s.leaderID] and s.leaderID in rep.node_ids
    # pymilvus's own view of it.
    # In a cluster a replica can be re-placed between two calls (a querynode's lease lapsing
    # under load): wait until both shards are served again.
    connections.connect(alias="orm_replicas", uri=uri)
    try:
        deadline = time.monotonic() + 30
        while True:
            groups = Collection(name, using="orm_replicas").get_replicas().groups
            if len(groups) == 1 and len(groups[0].shards) == 2:
                break
            assert time.monotonic() < deadline, groups
            time.sleep(0.2)
    finally:
        connections.disconnect("orm_replicas")
    # Released: nothing serves it.
    client.release_collection(name)
    r = stub.GetReplicas(milvus_pb2.GetReplicasRequest(collectionID=desc.collectionID))
    assert r.status.code == 0 and list(r.replicas) == []
    r = stub.GetReplicas(milvus_pb2.GetReplicasRequest(collectionID=987654321))
    assert r.status.code == 100
