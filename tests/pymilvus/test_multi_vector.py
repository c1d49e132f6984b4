"""Several vector fields in one collection, as Milvus has them: an index per field (each with
its own metric), load refused until every vector field has one, searches naming `anns_field`
(results checked against numpy on the same vectors, for sealed and growing rows, with filters,
deletes and upserts), the vectors read back exactly, and bad input refused whole."""

import numpy as np
import pytest
from pymilvus import DataType

from conftest import expect_error

PARAMETER_INVALID = 1100
N, K = 400, 10
DENSE, IMAGE, BITS = 16, 8, 32


@pytest.fixture
def coll(client, name):
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tag", DataType.INT64)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=DENSE)
    schema.add_field("image", DataType.FLOAT_VECTOR, dim=IMAGE)
    schema.add_field("bits", DataType.BINARY_VECTOR, dim=BITS)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    yield name
    client.drop_collection(name)


def data(seed, ids):
    rng = np.random.default_rng(seed)
    n = len(ids)
    dense = rng.random((n, DENSE), dtype=np.float32)
    image = rng.random((n, IMAGE), dtype=np.float32)
    bits = rng.integers(0, 2, size=(n, BITS), dtype=np.uint8)
    rows = [{"id": int(i), "tag": int(i) % 4, "dense": dense[j].tolist(),
             "image": image[j].tolist(), "bits": bytes(np.packbits(bits[j]))}
            for j, i in enumerate(ids)]
    return rows, dense, image, bits


def index_all(client, name):
    params = client.prepare_index_params()
    params.add_index(field_name="dense", index_type="HNSW", metric_type="L2",
                     params={"M": 16, "efConstruction": 100})
    params.add_index(field_name="image", index_type="FLAT", metric_type="IP")
    params.add_index(field_name="bits", index_type="BIN_FLAT", metric_type="HAMMING")
    client.create_index(name, params)


def exact(ids, scores, k, higher):
    order = np.argsort(-scores if higher else scores, kind="stable")[:k]
    return [int(ids[i]) for i in order], scores[order]


def test_index_per_field_then_load_and_search(client, coll):
    rows, dense, image, bits = data(1, range(N))
    client.insert(coll, rows[:300])
    client.flush(coll)  # sealed rows and growing rows below
    client.insert(coll, rows[300:])
    params = client.prepare_index_params()
    params.add_index(field_name="dense", index_type="HNSW", metric_type="L2",
                     params={"M": 16, "efConstruction": 100})
    client.create_index(coll, params)
    # Milvus refuses to load while a vector field has no index.
    expect_error(lambda: client.load_collection(coll), 65535, "no vector index", "image")
    index_all(client, coll)
    assert sorted(client.list_indexes(coll)) == ["bits", "dense", "image"]
    d = client.describe_index(coll, "image")
    assert d["field_name"] == "image" and d["metric_type"] == "IP"
    client.load_collection(coll)
    ids = np.arange(N)
    rng = np.random.default_rng(9)
    q_img = rng.random((2, IMAGE), dtype=np.float32)
    res = client.search(coll, data=q_img.tolist(), anns_field="image", limit=K,
                        search_params={"metric_type": "IP"})
    for qi, hits in enumerate(res):
        want, scores = exact(ids, image @ q_img[qi], K, higher=True)
        assert [h["id"] for h in hits] == want
        assert np.allclose([h["distance"] for h in hits], scores, atol=1e-4)
    q_bits = rng.integers(0, 2, size=(1, BITS), dtype=np.uint8)
    res = client.search(coll, data=[bytes(np.packbits(q_bits[0]))], anns_field="bits",
                        limit=K, search_params={"metric_type": "HAMMING"})
    ham = (bits != q_bits[0]).sum(axis=1).astype(np.float64)
    kth = np.sort(ham)[K - 1]
    assert len(res[0]) == K
    for h in res[0]:
        assert h["distance"] == ham[h["id"]] and h["distance"] <= kth
    # The first field still through its HNSW: the exact neighbours come back.
    q_dense = rng.random((1, DENSE), dtype=np.float32)
    res = client.search(coll, data=q_dense.tolist(), anns_field="dense", limit=K,
                        search_params={"metric_type": "L2", "params": {"ef": 200}})
    want, _ = exact(ids, ((dense - q_dense[0]) ** 2).sum(axis=1), K, higher=False)
    assert len(set(h["id"] for h in res[0]) & set(want)) >= K - 1


def test_filters_deletes_upserts_and_output(client, coll):
    rows, _, image, _ = data(2, range(N))
    client.insert(coll, rows[:200])
    client.flush(coll)
    client.insert(coll, rows[200:])
    index_all(client, coll)
    client.load_collection(coll)
    q = np.random.default_rng(3).random(IMAGE, dtype=np.float32)
    ids = np.arange(N)
    keep = ids % 4 == 1
    res = client.search(coll, data=[q.tolist()], anns_field="image", limit=K,
                        filter="tag == 1", output_fields=["image", "tag"])
    want, _ = exact(ids[keep], image[keep] @ q, K, higher=True)
    assert [h["id"] for h in res[0]] == want
    for h in res[0]:
        assert h["entity"]["tag"] == 1
        assert np.allclose(h["entity"]["image"], image[h["id"]], atol=1e-6)
    # A deleted row is gone; an upserted row is searched with its new vector.
    client.delete(coll, ids=[want[0]])
    best = np.full(IMAGE, 10.0, dtype=np.float32)
    up = dict(rows[7], image=best.tolist())
    client.upsert(coll, [up])
    res = client.search(coll, data=[q.tolist()], anns_field="image", limit=K,
                        filter="tag in [1, 3]")
    got = [h["id"] for h in res[0]]
    assert want[0] not in got and got[0] == 7
    back = client.query(coll, filter="id in [7, 8]", output_fields=["image", "bits", "dense"])
    by_id = {r["id"]: r for r in back}
    assert np.allclose(by_id[7]["image"], best)
    assert np.allclose(by_id[8]["image"], image[8], atol=1e-6)
    assert by_id[8]["bits"][0] == rows[8]["bits"]
    assert np.allclose(by_id[8]["dense"], rows[8]["dense"], atol=1e-6)


def test_bad_input_is_refused_whole(client, coll):
    rows, _, _, _ = data(4, range(10))
    index_all(client, coll)
    client.load_collection(coll)
    bad = [dict(r) for r in rows]
    bad[3]["image"] = [0.5] * (IMAGE + 1)
    expect_error(lambda: client.insert(coll, bad), PARAMETER_INVALID, "image", "dim")
    assert client.query(coll, filter="id >= 0", output_fields=["id"]) == []
    client.insert(coll, rows)
    q = [[0.1] * IMAGE]
    # Several vector fields: the search must name one (as Milvus).
    expect_error(lambda: client.search(coll, data=q, limit=3), PARAMETER_INVALID, "anns_field")
    expect_error(lambda: client.search(coll, data=q, anns_field="nope", limit=3),
                 PARAMETER_INVALID, "nope")
    expect_error(lambda: client.search(coll, data=q, anns_field="image", limit=3,
                                       search_params={"metric_type": "L2"}),
                 PARAMETER_INVALID, "metric_type")
    expect_error(lambda: client.search(coll, data=[[0.1] * (IMAGE + 2)], anns_field="image",
                                       limit=3), PARAMETER_INVALID, "image")
    # A filter cannot compare a vector field.
    expect_error(lambda: client.query(coll, filter="image > 1"), PARAMETER_INVALID, "image")


def test_drop_index_of_one_field(client, coll):
    rows, _, _, _ = data(5, range(50))
    client.insert(coll, rows)
    index_all(client, coll)
    client.load_collection(coll)
    expect_error(lambda: client.drop_index(coll, "image"), 65535, "release")
    client.release_collection(coll)
    client.drop_index(coll, "image")
    assert sorted(client.list_indexes(coll)) == ["bits", "dense"]
    expect_error(lambda: client.load_collection(coll), 65535, "image")
    params = client.prepare_index_params()
    params.add_index(field_name="image", index_type="FLAT", metric_type="COSINE")
    client.create_index(coll, params)
    client.load_collection(coll)
    res = client.search(coll, data=[[1.0] * IMAGE], anns_field="image", limit=1,
                        search_params={"metric_type": "COSINE"})
    assert len(res[0]) == 1 and -1.0001 <= res[0][0]["distance"] <= 1.0001


def test_too_many_vector_fields(client, name):
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    for i in range(5):
        schema.add_field(f"v{i}", DataType.FLOAT_VECTOR, dim=4)
    expect_error(lambda: client.create_collection(name, schema=schema), PARAMETER_INVALID,
                 "vector fields")
