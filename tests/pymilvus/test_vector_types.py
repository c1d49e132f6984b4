"""Binary, float16 and bfloat16 vectors as Milvus has them: inserted as pymilvus sends them,
searched with HAMMING / JACCARD (bits) and L2 / IP / COSINE (half floats), distances checked
against numpy on the same values, and read back byte for byte."""

import numpy as np
import pytest
from pymilvus import DataType

from conftest import expect_error

PARAMETER_INVALID = 1100
N, K = 300, 10


def make(client, name, dtype, dim):
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", dtype, dim=dim)
    client.create_collection(name, schema=schema, consistency_level="Strong")


def index(client, name, index_type, metric):
    params = client.prepare_index_params()
    params.add_index(field_name="v", index_type=index_type, metric_type=metric)
    client.create_index(name, params)
    client.load_collection(name)


def search(client, name, queries, metric):
    res = client.search(name, data=queries, limit=K, anns_field="v",
                        search_params={"metric_type": metric})
    return [[(h["id"], h["distance"]) for h in hits] for hits in res]


def check_top(got, dist_row, smaller_is_closer=True):
    """`got` holds the K best ids with their distances, as numpy computes them."""
    order = np.argsort(dist_row if smaller_is_closer else -dist_row, kind="stable")
    kth = dist_row[order[K - 1]]
    for id_, d in got:
        assert abs(d - dist_row[id_]) < 1e-4, (id_, d, dist_row[id_])
        assert (d <= kth + 1e-4) if smaller_is_closer else (d >= kth - 1e-4)
    assert len(got) == K


def distances(x, y, metric):
    """numpy's score of every row of `x` against `y`, and whether smaller is closer."""
    if metric == "L2":
        return ((x - y) ** 2).sum(axis=1), True
    if metric == "IP":
        return x @ y, False
    return (x @ y) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y)), False


@pytest.fixture
def coll(client, name):
    yield name
    client.drop_collection(name)


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_binary_vectors(client, coll, metric):
    dim = 64
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2, size=(N, dim), dtype=np.uint8)
    packed = [bytes(np.packbits(b)) for b in bits]
    make(client, coll, DataType.BINARY_VECTOR, dim)
    client.insert(coll, [{"id": i, "v": packed[i]} for i in range(N)])
    index(client, coll, "BIN_FLAT", metric)
    q = rng.integers(0, 2, size=(3, dim), dtype=np.uint8)
    got = search(client, coll, [bytes(np.packbits(x)) for x in q], metric)
    for qi, row in enumerate(got):
        a, b = q[qi].astype(bool), bits.astype(bool)
        if metric == "HAMMING":
            dist = (a != b).sum(axis=1).astype(np.float64)
        else:
            inter, union = (a & b).sum(axis=1), (a | b).sum(axis=1)
            dist = 1.0 - inter / np.maximum(union, 1)
        check_top(row, dist)
    back = client.query(coll, filter="id in [0, 1, 299]", output_fields=["v"])
    assert {r["id"]: r["v"][0] for r in back} == {i: packed[i] for i in (0, 1, 299)}


def test_binary_vectors_refuse_float_metrics_and_bad_dims(client, coll, name):
    make(client, coll, DataType.BINARY_VECTOR, 16)
    params = client.prepare_index_params()
    params.add_index(field_name="v", index_type="BIN_FLAT", metric_type="L2")
    expect_error(lambda: client.create_index(coll, params), PARAMETER_INVALID,
                 "metric type: L2")
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.BINARY_VECTOR, dim=12)
    expect_error(lambda: client.create_collection(name + "_b", schema=schema),
                 PARAMETER_INVALID, "multiple of 8")


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_float16_vectors(client, coll, metric):
    dim = 16
    rng = np.random.default_rng(11)
    data = rng.random((N, dim), dtype=np.float32).astype(np.float16)
    make(client, coll, DataType.FLOAT16_VECTOR, dim)
    client.insert(coll, [{"id": i, "v": data[i]} for i in range(N)])
    index(client, coll, "HNSW", metric)
    q = rng.random((2, dim), dtype=np.float32).astype(np.float16)
    got = search(client, coll, list(q), metric)
    x = data.astype(np.float64)
    for qi, row in enumerate(got):
        y = q[qi].astype(np.float64)
        dist, smaller = distances(x, y, metric)
        check_top(row, dist, smaller)
    back = client.query(coll, filter="id in [5, 6]", output_fields=["v"])
    for r in back:
        got_bytes = r["v"][0] if isinstance(r["v"], list) else r["v"]
        assert bytes(got_bytes) == data[r["id"]].tobytes()


def test_bfloat16_vectors(client, coll):
    dim = 8
    rng = np.random.default_rng(13)
    f32 = rng.random((N, dim), dtype=np.float32)
    # bfloat16 is the upper half of a float32 (no numpy dtype needed).
    raw = (f32.view(np.uint32) >> 16).astype(np.uint16)
    values = (raw.astype(np.uint32) << 16).view(np.float32)
    make(client, coll, DataType.BFLOAT16_VECTOR, dim)
    client.insert(coll, [{"id": i, "v": raw[i].tobytes()} for i in range(N)])
    index(client, coll, "HNSW", "L2")
    q = raw[42].tobytes()
    got = search(client, coll, [q], "L2")
    dist = ((values.astype(np.float64) - values[42].astype(np.float64)) ** 2).sum(axis=1)
    check_top(got[0], dist)
    assert got[0][0] == (42, 0.0)
    back = client.query(coll, filter="id == 42", output_fields=["v"])
    got_bytes = back[0]["v"][0] if isinstance(back[0]["v"], list) else back[0]["v"]
    assert bytes(got_bytes) == raw[42].tobytes()


@pytest.mark.skipif(not hasattr(DataType, "INT8_VECTOR"), reason="pymilvus < 3.0 has no int8 vectors")
@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_int8_vectors(client, coll, metric):
    dim = 16
    rng = np.random.default_rng(17)
    data = rng.integers(-128, 128, size=(N, dim), dtype=np.int8)
    make(client, coll, DataType.INT8_VECTOR, dim)
    client.insert(coll, [{"id": i, "v": data[i]} for i in range(N)])
    index(client, coll, "HNSW", metric)
    q = rng.integers(-128, 128, size=(2, dim), dtype=np.int8)
    got = search(client, coll, list(q), metric)
    x = data.astype(np.float64)
    for qi, row in enumerate(got):
        y = q[qi].astype(np.float64)
        dist, smaller = distances(x, y, metric)
        # Scores are float32: allow their rounding on large inner products.
        scale = max(1.0, float(np.abs(dist).max()))
        order = np.argsort(dist if smaller else -dist, kind="stable")
        kth = dist[order[K - 1]]
        assert len(row) == K
        for id_, d in row:
            assert abs(d - dist[id_]) <= 1e-5 * scale, (id_, d, dist[id_])
            assert (d <= kth + 1e-5 * scale) if smaller else (d >= kth - 1e-5 * scale)
    back = client.query(coll, filter="id in [5, 6]", output_fields=["v"])
    for r in back:
        v = r["v"][0] if isinstance(r["v"], list) else r["v"]
        assert np.array_equal(np.frombuffer(bytes(v), dtype=np.int8)
                              if isinstance(v, (bytes, bytearray)) else np.asarray(v, dtype=np.int8),
                              data[r["id"]])
