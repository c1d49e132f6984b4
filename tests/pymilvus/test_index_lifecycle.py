"""The index lifecycle as Milvus has it: a collection created without an index is NotLoad and
cannot be loaded; rows inserted first are indexed later with any metric (the segments are
re-indexed in the background, DescribeIndex reports the rows done); DropIndex needs a
released collection and really drops; release -> drop -> index with another metric -> load
serves the new metric. Results are checked against numpy."""

import numpy as np
from pymilvus import DataType

from conftest import expect_error
from test_schema_index import brute_force

DIM = 8
N = 600


def schema_only(client, name):
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection(name, schema=schema)


def index(client, metric, index_type="HNSW", params=None):
    p = client.prepare_index_params()
    p.add_index("vec", index_type=index_type, metric_type=metric, params=params or {})
    return p


def insert_and_seal(client, name, base, start=0):
    rows = [{"id": start + i, "vec": v.tolist()} for i, v in enumerate(base)]
    for i in range(0, len(rows), 200):
        client.insert(name, rows[i:i + 200])
        client.flush(name)  # one sealed segment per batch


def assert_matches_numpy(client, name, base, metric, queries):
    for q in queries:
        want, scores = brute_force(metric, base, q, 5)
        hits = client.search(name, data=[q.tolist()], limit=5, anns_field="vec",
                             search_params={"metric_type": metric, "params": {"ef": 600}})[0]
        assert [h["id"] for h in hits] == want.tolist()
        np.testing.assert_allclose([h["distance"] for h in hits], scores, rtol=1e-4, atol=1e-4)


def test_insert_first_index_later_with_any_metric(client, name):
    schema_only(client, name)
    # Created without an index: not loaded, nothing to load, no index listed.
    assert client.get_load_state(name)["state"].name == "NotLoad"
    assert client.list_indexes(name) == []
    assert client.describe_index(name, "vec") is None
    expect_error(lambda: client.load_collection(name), 65535,
                 "there is no vector index on field: [vec]", "please create index firstly")
    expect_error(lambda: client.search(name, data=[[0.0] * DIM], limit=1), 101, "not loaded")

    rng = np.random.default_rng(11)
    base = rng.standard_normal((N, DIM)).astype(np.float32)
    insert_and_seal(client, name, base)  # writes land while not loaded

    # Any metric, on a collection that holds sealed rows: built in the background;
    # create_index returns once DescribeIndex says Finished.
    client.create_index(name, index(client, "COSINE", params={"M": 8, "efConstruction": 64}))
    desc = client.describe_index(name, "vec")
    assert desc["metric_type"] == "COSINE" and desc["index_type"] == "HNSW"
    assert desc["state"] == "Finished"
    assert desc["total_rows"] == N and desc["indexed_rows"] == N
    assert desc["pending_index_rows"] == 0
    assert client.get_load_state(name)["state"].name == "NotLoad"
    client.load_collection(name)
    assert client.get_load_state(name)["state"].name == "Loaded"
    assert_matches_numpy(client, name, base, "COSINE", base[:5] + 0.01)

    # A second, different index on the field is refused; the same one again is not.
    expect_error(lambda: client.create_index(name, index(client, "L2")), 65535,
                 "at most one distinct index is allowed per field")
    client.create_index(name, index(client, "COSINE", params={"M": 8, "efConstruction": 64}))

    # Dropping needs a release; then it is gone, and another metric can be indexed.
    expect_error(lambda: client.drop_index(name, "vec"), 65535,
                 "index cannot be dropped, collection is loaded, please release it first")
    assert client.list_indexes(name) == ["vec"]
    client.release_collection(name)
    client.drop_index(name, "vec")
    assert client.list_indexes(name) == []
    assert client.describe_index(name, "vec") is None
    expect_error(lambda: client.load_collection(name), 65535, "please create index firstly")
    client.drop_index(name, "vec")  # nothing to drop: as Milvus, not an error

    more = rng.standard_normal((200, DIM)).astype(np.float32)
    insert_and_seal(client, name, more, start=N)
    base = np.vstack([base, more])
    client.create_index(name, index(client, "L2", params={"M": 16, "efConstruction": 100}))
    desc = client.describe_index(name, "vec")
    assert desc["metric_type"] == "L2" and desc["indexed_rows"] == N + 200
    client.load_collection(name)
    assert_matches_numpy(client, name, base, "L2", base[-5:] + 0.01)
    # The search metric must be the index's.
    expect_error(lambda: client.search(name, data=[[0.0] * DIM], limit=1,
                                       search_params={"metric_type": "IP"}), 1100, "metric")


def test_searches_before_the_rebuild_finishes_are_exact(client, name):
    """Loaded right after an asynchronous CreateIndex, segments not yet rebuilt are searched
    exactly with the new metric: results never mix metrics."""
    schema_only(client, name)
    rng = np.random.default_rng(5)
    base = rng.standard_normal((N, DIM)).astype(np.float32)
    insert_and_seal(client, name, base)
    client.create_index(name, index(client, "IP"), sync=False)
    client.load_collection(name)
    assert_matches_numpy(client, name, base, "IP", base[:5])


def test_quick_setup_is_indexed_and_loaded(client, name):
    client.create_collection(name, dimension=DIM, metric_type="IP")
    assert client.get_load_state(name)["state"].name == "Loaded"
    desc = client.describe_index(name, client.list_indexes(name)[0])
    assert desc["metric_type"] == "IP"
    client.insert(name, [{"id": 1, "vector": [1.0] * DIM}])
    hit = client.search(name, data=[[1.0] * DIM], limit=1)[0][0]
    assert hit["id"] == 1 and abs(hit["distance"] - DIM) < 1e-4


def test_field_names_follow_milvus_rules(client, name):
    """Reserved words, `$meta` and bad characters are refused as Milvus does (1701)."""
    for bad in ("$meta", "and", "LIKE", "array_contains", "1st", "with space"):
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field(bad, DataType.INT64)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
        expect_error(lambda: client.create_collection(name, schema=schema), 1701,
                     "Invalid field name", bad)
        assert not client.has_collection(name)


def test_dim_below_two_is_refused(client, name):
    for dim in (1,):
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
        expect_error(lambda: client.create_collection(name, schema=schema), 1100,
                     "invalid dimension: 1. should be in range 2 ~ 32768")
        assert not client.has_collection(name)


def test_duplicate_keys_in_one_upsert_batch_are_refused(client, name):
    client.create_collection(name, dimension=DIM)
    rows = [{"id": 1, "vector": [0.0] * DIM}, {"id": 1, "vector": [1.0] * DIM}]
    expect_error(lambda: client.upsert(name, rows), 1100,
                 "duplicate primary keys are not allowed in the same batch")
    assert client.query(name, filter="id >= 0") == []


def test_costs_are_reported(client, name):
    """Milvus reports a request's cost in the status's extra info (pymilvus: `cost`)."""
    client.create_collection(name, dimension=DIM)
    ins = client.insert(name, [{"id": i, "vector": [float(i)] * DIM} for i in range(100)])
    assert ins["cost"] >= 1
    big = client.insert(name, [{"id": 1000 + i, "vector": [float(i)] * DIM} for i in range(2000)])
    assert big["cost"] > ins["cost"]  # KiB moved
    assert client.upsert(name, [{"id": 1, "vector": [1.0] * DIM}])["cost"] >= 1
    q = client.query(name, filter="id < 10", output_fields=["vector"])
    assert q.extra["cost"] >= 1
    s = client.search(name, data=[[1.0] * DIM], limit=3)
    assert s.extra["cost"] >= 1
    assert client.delete(name, ids=[1, 2])["cost"] >= 1


def test_scalar_indexes_are_recorded_checked_listed_used_and_dropped(client, name):
    """CreateIndex on scalar fields as a Milvus user writes it: the index is listed and described,
    a kind that does not fit the field is refused naming both, filters answer the same with it,
    and drop_index needs a release like any index."""
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("cat", DataType.INT64)
    schema.add_field("price", DataType.DOUBLE)
    schema.add_field("tag", DataType.VARCHAR, max_length=16)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    p = index(client, "L2")
    p.add_index("cat", index_type="INVERTED", index_name="cat_idx")
    p.add_index("price", index_type="STL_SORT")
    client.create_collection(name, schema=schema, index_params=p)
    rng = np.random.default_rng(5)
    base = rng.random((N, DIM), dtype=np.float32)
    rows = [{"id": i, "cat": i % 10, "price": float(i % 97) / 97, "tag": f"t{i % 3}",
             "vec": v.tolist()} for i, v in enumerate(base)]
    client.insert(name, rows)
    client.flush(name)
    assert set(client.list_indexes(name)) >= {"cat_idx", "price", "vec"}
    d = client.describe_index(name, "cat_idx")
    assert (d["index_type"], d["field_name"]) == ("INVERTED", "cat")
    assert client.describe_index(name, "price")["index_type"] == "STL_SORT"
    # A kind that does not fit the field is refused, naming the kind and the field.
    bad = client.prepare_index_params()
    bad.add_index("tag", index_type="STL_SORT")
    expect_error(lambda: client.create_index(name, bad), 1100, "STL_SORT", "tag")
    bad = client.prepare_index_params()
    bad.add_index("price", index_type="NOPE")
    expect_error(lambda: client.create_index(name, bad), 1100, "NOPE")
    assert "tag" not in client.list_indexes(name)
    # Filters through the indexes answer what numpy says.
    client.load_collection(name)
    for expr, want in [("cat == 3", [i for i in range(N) if i % 10 == 3]),
                       ("price < 0.05", [i for i in range(N) if (i % 97) / 97 < 0.05]),
                       ("cat in [1, 2] and price >= 0.5",
                        [i for i in range(N) if i % 10 in (1, 2) and (i % 97) / 97 >= 0.5])]:
        got = client.query(name, filter=expr, output_fields=["id"], limit=N)
        assert sorted(r["id"] for r in got) == want, expr
    expect_error(lambda: client.drop_index(name, "cat_idx"), 65535, "release")
    client.release_collection(name)
    client.drop_index(name, "cat_idx")
    assert "cat_idx" not in client.list_indexes(name)
    assert "price" in client.list_indexes(name)


def test_hnsw_sq_searches_codes_and_answers_exact_distances(client, name):
    """HNSW_SQ (and IVF_SQ8, served by it) as a Milvus user creates it: the graph is built over
    8-bit codes, and the hits carry exact distances of the stored vectors (re-ranked), so at a
    wide beam, or re-ranking every row (refine_k), the answer is numpy's."""
    schema_only(client, name)
    rng = np.random.default_rng(13)
    base = rng.standard_normal((N, DIM)).astype(np.float32)
    insert_and_seal(client, name, base)
    client.create_index(name, index(client, "L2", "HNSW_SQ", {"M": 8, "efConstruction": 64,
                                                               "sq_type": "SQ8"}))
    desc = client.describe_index(name, "vec")
    assert (desc["index_type"], desc["state"]) == ("HNSW_SQ", "Finished")
    assert desc["indexed_rows"] == N
    client.load_collection(name)
    assert_matches_numpy(client, name, base, "L2", base[:5] + 0.01)
    # refine_k (Milvus 2.5): at least refine_k × limit rows re-ranked, the beam widened to
    # hold them; 120 × 5 is every row here, so a beam of 5 answers exactly.
    for q in base[5:10] - 0.02:
        want, scores = brute_force("L2", base, q, 5)
        hits = client.search(name, data=[q.tolist()], limit=5, anns_field="vec",
                             search_params={"params": {"ef": 5, "refine_k": 120}})[0]
        assert [h["id"] for h in hits] == want.tolist()
    for bad_k in [0.5, "many"]:
        expect_error(lambda: client.search(name, data=[base[0].tolist()], limit=5,
                                           search_params={"params": {"refine_k": bad_k}}),
                     1100, "refine_k")
    bad = index(client, "L2", "HNSW_SQ", {"sq_type": "PQ"})
    client.release_collection(name)
    client.drop_index(name, "vec")
    expect_error(lambda: client.create_index(name, bad), 1100, "sq_type")


def test_json_path_indexes_are_created_described_used_and_dropped(client, name):
    """A JSON field indexed by path as a Milvus 2.5 user writes it (json_path, json_cast_type):
    two paths of one field, each described with its path and cast; a bad cast, path or kind is
    refused naming the parameter; filters on the paths answer what Python says over sealed and
    growing rows; drop_index by name after a release keeps the other path's index."""
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("meta", DataType.JSON)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    p = index(client, "L2")
    p.add_index("meta", index_type="INVERTED", index_name="by_color",
                params={"json_path": 'meta["color"]', "json_cast_type": "varchar"})
    p.add_index("meta", index_type="AUTOINDEX", index_name="by_size",
                params={"json_path": "meta['dims']['size']", "json_cast_type": "double"})
    p.add_index("meta", index_type="INVERTED", index_name="by_price",
                params={"json_path": 'meta["price"]', "json_cast_type": "double"})
    client.create_collection(name, schema=schema, index_params=p)
    colors = ["red", "green", "blue", "black"]

    def meta(i):
        # Sizes as ints, integral floats and strings; some rows lack a key.
        size = [i % 7, float(i % 7), str(i % 7), None][i % 4]
        doc = {"color": colors[i % 4] if i % 9 else None, "dims": {"size": size},
               "price": i // 2 if i % 2 else i / 2}
        if i % 11 == 0:
            doc = {"other": i}
        return doc

    rng = np.random.default_rng(3)
    base = rng.random((N + 50, DIM), dtype=np.float32)
    rows = [{"id": i, "meta": meta(i), "vec": v.tolist()} for i, v in enumerate(base)]
    client.insert(name, rows[:N])
    client.flush(name)
    d = client.describe_index(name, "by_color")
    assert (d["field_name"], d["index_type"]) == ("meta", "INVERTED")
    assert (d["json_path"], d["json_cast_type"]) == ('meta["color"]', "VARCHAR")
    d = client.describe_index(name, "by_size")
    assert (d["json_path"], d["json_cast_type"]) == ('meta["dims"]["size"]', "DOUBLE")
    assert {"by_color", "by_size"} <= set(client.list_indexes(name))
    for params, index_type, word in [
        ({"json_path": 'meta["x"]', "json_cast_type": "INT"}, "INVERTED", "json_cast_type"),
        ({"json_path": 'other["x"]', "json_cast_type": "VARCHAR"}, "INVERTED", "json_path"),
        ({"json_path": "meta[x]", "json_cast_type": "VARCHAR"}, "INVERTED", "json_path"),
        ({"json_path": 'meta["x"]', "json_cast_type": "VARCHAR"}, "STL_SORT", "INVERTED or AUTOINDEX"),
        ({}, "INVERTED", "json_path"),
    ]:
        bad = client.prepare_index_params()
        bad.add_index("meta", index_type=index_type, index_name="bad", params=params)
        expect_error(lambda: client.create_index(name, bad), 1100, word)
    assert "bad" not in client.list_indexes(name)
    client.load_collection(name)
    client.insert(name, rows[N:])  # growing rows, tested row by row

    def color(i):
        return meta(i).get("color")

    def size(i):
        return meta(i).get("dims", {}).get("size")

    def price(i):
        return meta(i).get("price")

    for expr, want in [
        ('meta["color"] == "red"', [i for i in range(N + 50) if color(i) == "red"]),
        ('meta["color"] in ["blue", "black"] and id < 300',
         [i for i in range(300) if color(i) in ("blue", "black")]),
        ('meta["dims"]["size"] in [3, 5]',
         [i for i in range(N + 50) if type(size(i)) in (int, float) and size(i) in (3, 5)]),
        ('meta["dims"]["size"] == "3"', [i for i in range(N + 50) if size(i) == "3"]),
        # Ranges: the price path holds numbers only (a sorted index), the size path mixes
        # numbers with strings and nulls (tested row by row).
        ('meta["price"] > 100.5', [i for i in range(N + 50) if price(i) is not None
                                   and price(i) > 100.5]),
        ('meta["price"] >= 10 and meta["price"] < 20 or meta["color"] == "blue"',
         [i for i in range(N + 50) if (price(i) is not None and 10 <= price(i) < 20)
          or color(i) == "blue"]),
        ('not (meta["price"] < 250) and id > 100',
         [i for i in range(101, N + 50) if price(i) is not None and price(i) >= 250]),
        ('meta["dims"]["size"] > 4 and meta["dims"]["size"] <= 6',
         [i for i in range(N + 50) if type(size(i)) in (int, float) and 4 < size(i) <= 6]),
        ('meta["color"] == "red" or meta["dims"]["size"] == 2',
         [i for i in range(N + 50)
          if color(i) == "red" or (type(size(i)) in (int, float) and size(i) == 2)]),
    ]:
        got = client.query(name, filter=expr, output_fields=["id"], limit=N + 50,
                           consistency_level="Strong")
        assert sorted(r["id"] for r in got) == want, expr
        hits = client.search(name, [base[7].tolist()], limit=10, filter=expr,
                             consistency_level="Strong")[0]
        assert {h["id"] for h in hits} <= set(want), expr
        assert len(hits) == min(10, len(want)), expr
    client.release_collection(name)
    client.drop_index(name, "by_color")
    assert "by_color" not in client.list_indexes(name)
    assert "by_size" in client.list_indexes(name)
