"""Sparse float vectors as Milvus has them: dict rows in, dict rows out; SPARSE_INVERTED_INDEX /
SPARSE_WAND with IP; searches checked against exact inner products in Python (sealed and growing
rows, filters, deletes, upserts, drop_ratio_search), next to a dense field; bad input refused."""

import random
import numpy as np
import pytest
from pymilvus import AnnSearchRequest, DataType, RRFRanker

from conftest import expect_error

PARAMETER_INVALID = 1100
DIM, NNZ, N, K = 1000, 12, 500, 10


def sparse_rows(seed, n):
    rng = random.Random(seed)
    return [{i: rng.uniform(0.01, 1.0) for i in rng.sample(range(DIM), NNZ)} for _ in range(n)]


def f32(x):
    return float(np.float32(x))


def exact_ip(rows, ids, query, k, keep=lambda i: True):
    """Top-k by inner product over the rows sharing a term with the query."""
    scored = []
    for i, row in zip(ids, rows):
        common = set(row) & set(query)
        if common and keep(i):
            scored.append((sum(f32(row[t]) * f32(query[t]) for t in common), i))
    scored.sort(key=lambda s: -s[0])
    return scored[:k]


@pytest.fixture
def coll(client, name):
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tag", DataType.INT64)
    schema.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
    params = client.prepare_index_params()
    params.add_index(field_name="sv", index_type="SPARSE_INVERTED_INDEX", metric_type="IP",
                     params={"drop_ratio_build": 0.2})
    client.create_collection(name, schema=schema, index_params=params,
                             consistency_level="Strong")
    yield name
    client.drop_collection(name)


def check(client, coll, live, queries):
    ids = sorted(live)
    rows = [live[i][0] for i in ids]
    got = client.search(coll, queries, anns_field="sv", limit=K,
                        search_params={"metric_type": "IP"})
    for q, hits in zip(queries, got):
        want = exact_ip(rows, ids, q, K)
        assert [h["id"] for h in hits] == [i for _, i in want]
        assert np.allclose([h["distance"] for h in hits], [s for s, _ in want], rtol=1e-4)


def test_search_matches_exact_inner_products(client, coll):
    rows = sparse_rows(1, N)
    data = [{"id": i, "tag": i % 3, "sv": rows[i]} for i in range(N)]
    client.insert(coll, data[:350])
    client.flush(coll)  # sealed rows, and growing rows below
    client.insert(coll, data[350:])
    live = {i: (rows[i], i % 3) for i in range(N)}
    queries = sparse_rows(2, 5)
    check(client, coll, live, queries)
    # A filter.
    got = client.search(coll, queries, anns_field="sv", limit=K, filter="tag == 1",
                        search_params={"metric_type": "IP"})
    for q, hits in zip(queries, got):
        want = exact_ip([rows[i] for i in range(N)], range(N), q, K, lambda i: i % 3 == 1)
        assert [h["id"] for h in hits] == [i for _, i in want]
    # Deletes (sealed and growing) and upserts change the answer at once.
    client.delete(coll, ids=[i for _, i in exact_ip(rows, range(N), queries[0], 4)] + [400, 401])
    fresh = sparse_rows(3, 20)
    client.upsert(coll, [{"id": i, "tag": 0, "sv": fresh[i]} for i in range(20)])
    for i in [i for _, i in exact_ip(rows, range(N), queries[0], 4)] + [400, 401]:
        live.pop(i, None)
    for i in range(20):
        live[i] = (fresh[i], 0)
    check(client, coll, live, queries)
    # Rows read back exactly (float32).
    back = client.query(coll, filter="id in [20, 21]", output_fields=["sv"])
    for r in back:
        assert {int(k): f32(v) for k, v in r["sv"].items()} == \
            {k: f32(v) for k, v in rows[r["id"]].items()}


def test_drop_ratio_search_leaves_out_the_smallest_query_values(client, coll):
    rows = sparse_rows(4, 200)
    client.insert(coll, [{"id": i, "tag": 0, "sv": rows[i]} for i in range(200)])
    query = sparse_rows(5, 1)[0]
    kept = dict(sorted(query.items(), key=lambda kv: -kv[1])[: NNZ // 2])
    got = client.search(coll, [query], anns_field="sv", limit=K,
                        search_params={"metric_type": "IP", "params": {"drop_ratio_search": 0.5}})
    want = exact_ip(rows, range(200), kept, K)
    assert [h["id"] for h in got[0]] == [i for _, i in want]


def test_sparse_next_to_a_dense_field_and_in_hybrid_search(client, name):
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
    params = client.prepare_index_params()
    params.add_index(field_name="dense", index_type="FLAT", metric_type="L2")
    params.add_index(field_name="sv", index_type="SPARSE_WAND", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=params,
                             consistency_level="Strong")
    rows = sparse_rows(6, 100)
    vecs = np.random.default_rng(6).random((100, 4), dtype=np.float32)
    client.insert(name, [{"id": i, "dense": vecs[i].tolist(), "sv": rows[i]} for i in range(100)])
    query = sparse_rows(7, 1)[0]
    got = client.search(name, [query], anns_field="sv", limit=5,
                        search_params={"metric_type": "IP"})
    assert [h["id"] for h in got[0]] == [i for _, i in exact_ip(rows, range(100), query, 5)]
    fused = client.hybrid_search(
        name,
        [AnnSearchRequest([query], "sv", {"metric_type": "IP"}, limit=5),
         AnnSearchRequest([vecs[0].tolist()], "dense", {"metric_type": "L2"}, limit=5)],
        RRFRanker(60), limit=5)
    dense = client.search(name, [vecs[0].tolist()], anns_field="dense", limit=5,
                          search_params={"metric_type": "L2"})
    rrf = {}
    for hits in (got[0], dense[0]):
        for rank, h in enumerate(hits):
            rrf[h["id"]] = rrf.get(h["id"], 0) + 1 / (60 + rank + 1)
    assert np.allclose([h["distance"] for h in fused[0]], sorted(rrf.values(), reverse=True)[:5])
    assert client.describe_index(name, "sv")["index_type"] == "SPARSE_WAND"
    # A dense query to the sparse field, and a sparse one to the dense field.
    expect_error(lambda: client.search(name, [[0.1] * 4], anns_field="sv", limit=3,
                                       search_params={"metric_type": "IP"}),
                 PARAMETER_INVALID, "sv")
    expect_error(lambda: client.search(name, [query], anns_field="dense", limit=3,
                                       search_params={"metric_type": "L2"}),
                 PARAMETER_INVALID, "dense")


def raw_insert(stub, name, rows):
    """Inserts sparse rows as raw bytes (pymilvus checks rows itself first)."""
    import struct

    from pymilvus.grpc_gen import milvus_pb2, schema_pb2

    contents = [b"".join(struct.pack("<If", i, v) for i, v in row) for row in rows]
    fields = [
        schema_pb2.FieldData(field_name="id", type=DataType.INT64, scalars=schema_pb2.ScalarField(
            long_data=schema_pb2.LongArray(data=list(range(len(rows)))))),
        schema_pb2.FieldData(field_name="sv", type=DataType.SPARSE_FLOAT_VECTOR,
                             vectors=schema_pb2.VectorField(sparse_float_vector=schema_pb2.SparseFloatArray(
                                 contents=contents, dim=10))),
    ]
    return stub.Insert(milvus_pb2.InsertRequest(collection_name=name, fields_data=fields,
                                                num_rows=len(rows)))


def test_bad_sparse_indexes_and_rows_are_refused(client, name, stub):
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    for index_type, metric, words in [("HNSW", "IP", ["SPARSE_INVERTED_INDEX"]),
                                      ("SPARSE_INVERTED_INDEX", "L2", ["IP"]),
                                      ("SPARSE_INVERTED_INDEX", "BM25", ["IP"])]:
        params = client.prepare_index_params()
        params.add_index(field_name="sv", index_type=index_type, metric_type=metric)
        expect_error(lambda: client.create_index(name, params), PARAMETER_INVALID, *words)
    # Rows pymilvus would not build: refused whole, naming the field and the row.
    for rows, words in [([[(1, 0.5)], [(2, float("nan"))]], ["sv", "row 1"]),
                        ([[(3, 0.5), (3, 0.25)]], ["sv", "unique"]),
                        ([[(4294967295, 1.0)]], ["sv", "4294967295"])]:
        r = raw_insert(stub, name, rows)
        assert r.status.code == PARAMETER_INVALID, r.status
        assert all(w in r.status.reason for w in words), r.status.reason
    ok = raw_insert(stub, name, [[(5, 0.5), (1, 2.0)]])  # any order: sorted
    assert ok.status.code == 0, ok.status
    params = client.prepare_index_params()
    params.add_index(field_name="sv", index_type="AUTOINDEX", metric_type="IP")
    client.create_index(name, params)
    client.load_collection(name)
    assert client.query(name, filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 1
    assert client.query(name, filter="id == 0", output_fields=["sv"])[0]["sv"] == {1: 2.0, 5: 0.5}
