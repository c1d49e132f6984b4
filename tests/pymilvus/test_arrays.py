"""Array fields as Milvus has them: every element type, inserted as lists, read back equal,
filtered with array_contains / _all / _any, array_length and element indexing (results checked
against the same predicate in Python), and refused when an array is too long or holds
values of another type (1100, naming the field)."""

import numpy as np
import pytest
from pymilvus import DataType

from conftest import count, expect_error

PARAMETER_INVALID = 1100
N = 60


@pytest.fixture
def coll(client, name):
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=5)
    schema.add_field("names", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=3,
                     max_length=8)
    schema.add_field("flags", DataType.ARRAY, element_type=DataType.BOOL, max_capacity=2)
    schema.add_field("scores", DataType.ARRAY, element_type=DataType.DOUBLE, max_capacity=2)
    schema.add_field("small", DataType.ARRAY, element_type=DataType.INT8, max_capacity=2)
    params = client.prepare_index_params()
    params.add_index(field_name="v", index_type="HNSW", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=params,
                             consistency_level="Strong")
    rng = np.random.default_rng(3)
    rows = []
    for i in range(N):
        rows.append({
            "id": i,
            "v": [float(i), 1.0],
            "tags": [int(x) for x in rng.integers(0, 10, size=int(rng.integers(0, 6)))],
            "names": [["a", "b", "c", "d"][int(x)] for x in rng.integers(0, 4, size=i % 4)],
            "flags": [bool(i % 2), bool(i % 3)],
            "scores": [i / 2],
            "small": [i % 100, -1],
        })
    client.insert(name, rows)
    yield name, {r["id"]: r for r in rows}
    client.drop_collection(name)


def ids(client, name, expr):
    return sorted(r["id"] for r in client.query(name, filter=expr, output_fields=["id"],
                                                limit=N))


def test_arrays_read_back_equal(client, coll):
    name, rows = coll
    got = client.query(name, filter="id in [0, 7, 33]",
                       output_fields=["tags", "names", "flags", "scores", "small"])
    for r in got:
        want = rows[r["id"]]
        for f in ("tags", "names", "flags", "scores", "small"):
            assert list(r[f]) == want[f], (f, r[f], want[f])


@pytest.mark.parametrize("expr,pred", [
    ("array_contains(tags, 3)", lambda r: 3 in r["tags"]),
    ("array_contains_all(tags, [1, 2])", lambda r: {1, 2} <= set(r["tags"])),
    ("array_contains_any(tags, [1, 9])", lambda r: bool({1, 9} & set(r["tags"]))),
    ("array_contains(names, \"b\")", lambda r: "b" in r["names"]),
    ("array_length(tags) == 0", lambda r: len(r["tags"]) == 0),
    ("array_length(names) >= 2 and tags[0] < 5",
     lambda r: len(r["names"]) >= 2 and bool(r["tags"]) and r["tags"][0] < 5),
    ("not array_contains(tags, 3)", lambda r: 3 not in r["tags"]),
])
def test_array_filters_match_python(client, coll, expr, pred):
    name, rows = coll
    want = sorted(i for i, r in rows.items() if pred(r))
    assert ids(client, name, expr) == want
    hits = client.search(name, data=[[0.0, 1.0]], limit=N, filter=expr)[0]
    assert sorted(h["id"] for h in hits) == want


def test_bad_arrays_are_refused_and_write_nothing(client, coll):
    name, _ = coll
    base = {"id": 1000, "v": [0.0, 0.0], "names": [], "flags": [], "scores": [], "small": []}
    expect_error(lambda: client.insert(name, [{**base, "tags": [1, 2, 3, 4, 5, 6]}]),
                 PARAMETER_INVALID, "tags", "max_capacity")
    expect_error(lambda: client.insert(name, [{**base, "tags": [], "small": [300]}]),
                 PARAMETER_INVALID, "small")
    expect_error(lambda: client.insert(name, [{**base, "tags": [], "names": ["toolongname"]}]),
                 PARAMETER_INVALID, "names")
    assert count(client, name) == N
    expect_error(lambda: client.query(name, filter="array_contains(id, 1)"), PARAMETER_INVALID,
                 "Array field")
