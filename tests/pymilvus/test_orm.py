"""The ORM flow of Milvus's hello_milvus.py: columns, insert before index, load."""

import numpy as np
import pytest
from pymilvus import (
    Collection,
    CollectionSchema,
    DataType,
    FieldSchema,
    MilvusException,
    connections,
    utility,
)


@pytest.fixture
def orm(uri, name):
    alias = "orm_" + name
    connections.connect(alias=alias, uri=uri)
    yield alias
    if utility.has_collection(name, using=alias):
        utility.drop_collection(name, using=alias)
    connections.disconnect(alias)


def test_hello_milvus(orm, name):
    fields = [
        FieldSchema(name="pk", dtype=DataType.VARCHAR, is_primary=True, auto_id=False, max_length=100),
        FieldSchema(name="random", dtype=DataType.DOUBLE),
        FieldSchema(name="embeddings", dtype=DataType.FLOAT_VECTOR, dim=8),
    ]
    schema = CollectionSchema(fields, "hello_milvus is the simplest demo")
    coll = Collection(name, schema, consistency_level="Strong", using=orm)
    assert utility.has_collection(name, using=orm)

    rng = np.random.default_rng(seed=19530)
    n = 300
    entities = [
        [str(i) for i in range(n)],
        rng.random(n).tolist(),
        rng.random((n, 8)).astype(np.float32),
    ]
    res = coll.insert(entities)
    assert res.insert_count == n
    coll.flush()
    assert coll.num_entities == n

    # Index after insert (built in the background; create_index waits for it).
    coll.create_index("embeddings", {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 128}})
    assert coll.has_index()
    # Another index while one exists: refused as Milvus does, not a silent change.
    with pytest.raises(MilvusException) as e:
        coll.create_index("embeddings", {"index_type": "HNSW", "metric_type": "IP", "params": {}})
    assert e.value.code == 65535
    assert "at most one distinct index is allowed per field" in e.value.message
    coll.load()

    vectors = entities[-1][-2:]
    result = coll.search(
        vectors, "embeddings", {"metric_type": "L2", "params": {"nprobe": 10}}, limit=3, output_fields=["random"]
    )
    for hits, want in zip(result, [str(n - 2), str(n - 1)]):
        assert hits[0].id == want
        assert hits[0].distance == pytest.approx(0.0, abs=1e-5)
        assert 0.0 <= hits[0].entity.get("random") <= 1.0

    result = coll.query(expr="random > 0.5", output_fields=["random", "embeddings"])
    want = sum(1 for r in entities[1] if r > 0.5)
    assert len(result) == want
    assert all(r["random"] > 0.5 and len(r["embeddings"]) == 8 for r in result)

    result = coll.search(vectors, "embeddings", {"metric_type": "L2"}, limit=3, expr="random > 0.5")
    assert all(len(hits) == 3 for hits in result)

    ids = [entities[0][0], entities[0][1]]
    coll.delete(f"pk in {ids!r}".replace("'", '"'))
    assert coll.query(expr=f'pk in ["{ids[0]}", "{ids[1]}"]') == []
    coll.release()
    coll.drop()
    assert not utility.has_collection(name, using=orm)
