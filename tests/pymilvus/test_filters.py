"""Milvus boolean filters in query, search and delete, checked against the same predicate
evaluated in Python over the inserted rows."""

import numpy as np
import pytest
from pymilvus import DataType

from conftest import expect_error, fresh_name

N = 120
NAMES = ["alpha", "beta", "gamma", "delta", "alphabet", "Beta", "a_b", "a%b"]
CITIES = ["paris", "rome", "oslo"]


def make_rows():
    rng = np.random.default_rng(3)
    rows = []
    for i in range(N):
        row = {
            "id": i,
            "vec": rng.standard_normal(4).astype(np.float32).tolist(),
            "age": int(i % 50),
            "score": float(i) / N,
            "name": NAMES[i % len(NAMES)],
            "flag": i % 3 == 0,
            "opt": None if i % 4 == 0 else i * 10,
            "meta": {"n": i % 7, "tag": CITIES[i % 3], "nested": {"x": i % 2}},
        }
        if i % 5:
            row["city"] = CITIES[i % 3]  # dynamic key, missing on every 5th row
        rows.append(row)
    return rows


ROWS = make_rows()


@pytest.fixture(scope="module")
def coll(mclient):
    name = fresh_name("filters")
    schema = mclient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("age", DataType.INT32)
    schema.add_field("score", DataType.DOUBLE)
    schema.add_field("name", DataType.VARCHAR, max_length=32)
    schema.add_field("flag", DataType.BOOL)
    schema.add_field("opt", DataType.INT64, nullable=True)
    schema.add_field("meta", DataType.JSON)
    index = mclient.prepare_index_params()
    index.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 64})
    mclient.create_collection(name, schema=schema, index_params=index)
    mclient.insert(name, ROWS)
    yield name
    mclient.drop_collection(name)


def like(pattern):
    import re

    rx = "".join(".*" if c == "%" else re.escape(c) for c in pattern)
    return lambda s: re.fullmatch(rx, s, re.S) is not None


CASES = [
    ("age > 30", lambda r: r["age"] > 30),
    ("age >= 10 and age < 12", lambda r: 10 <= r["age"] < 12),
    ("10 <= age < 12", lambda r: 10 <= r["age"] < 12),
    ("age == 7 or age == 9", lambda r: r["age"] in (7, 9)),
    ("age != 7 && score < 0.1", lambda r: r["age"] != 7 and r["score"] < 0.1),
    ("age < 3 || age > 47", lambda r: r["age"] < 3 or r["age"] > 47),
    ("not (age > 2)", lambda r: not r["age"] > 2),
    ("!(age > 2) and flag", lambda r: r["age"] <= 2 and r["flag"]),
    ("id in [1, 5, 99, 1000]", lambda r: r["id"] in (1, 5, 99)),
    ("id not in [0, 1, 2]", lambda r: r["id"] not in (0, 1, 2)),
    ('name in ["alpha", "Beta"]', lambda r: r["name"] in ("alpha", "Beta")),
    ("name == 'gamma'", lambda r: r["name"] == "gamma"),
    ('name != "alpha"', lambda r: r["name"] != "alpha"),
    ('name like "alpha%"', lambda r: like("alpha%")(r["name"])),
    ('name like "%eta"', lambda r: like("%eta")(r["name"])),
    ('name like "%lph%"', lambda r: like("%lph%")(r["name"])),
    ("flag", lambda r: r["flag"]),
    ("flag == false", lambda r: not r["flag"]),
    ("(age > 40 or age < 5) and not flag", lambda r: (r["age"] > 40 or r["age"] < 5) and not r["flag"]),
    ("age % 7 == 0", lambda r: r["age"] % 7 == 0),
    ("age + 5 > 50", lambda r: r["age"] + 5 > 50),
    ("age * 2 <= 10", lambda r: r["age"] * 2 <= 10),
    ("score * 10 > 9", lambda r: r["score"] * 10 > 9),
    ("opt is null", lambda r: r["opt"] is None),
    ("opt is not null and opt < 100", lambda r: r["opt"] is not None and r["opt"] < 100),
    ('meta["n"] == 3', lambda r: r["meta"]["n"] == 3),
    ('meta["tag"] == "rome" and meta["nested"]["x"] == 1', lambda r: r["meta"]["tag"] == "rome" and r["meta"]["nested"]["x"] == 1),
    ('meta["n"] in [1, 2]', lambda r: r["meta"]["n"] in (1, 2)),
    ('city == "oslo"', lambda r: r.get("city") == "oslo"),
    ('$meta["city"] == "paris"', lambda r: r.get("city") == "paris"),
    ('city == "oslo" or age == 0', lambda r: r.get("city") == "oslo" or r["age"] == 0),
]


@pytest.mark.parametrize("expr,pred", CASES, ids=[c[0] for c in CASES])
def test_query_filter(mclient, coll, expr, pred):
    want = sorted(r["id"] for r in ROWS if pred(r))
    got = mclient.query(coll, filter=expr, output_fields=["id"], limit=N)
    assert sorted(r["id"] for r in got) == want


@pytest.mark.parametrize("expr,pred", CASES[::3], ids=[c[0] for c in CASES[::3]])
def test_search_filter(mclient, coll, expr, pred):
    want = {r["id"] for r in ROWS if pred(r)}
    q = ROWS[0]["vec"]
    hits = mclient.search(coll, data=[q], limit=N, filter=expr, output_fields=["age"], search_params={"params": {"ef": 200}})
    assert {h["id"] for h in hits[0]} == want
    # Best first (L2 ascending).
    d = [h["distance"] for h in hits[0]]
    assert d == sorted(d)


def test_filter_templates(mclient, coll):
    got = mclient.query(
        coll,
        filter="age > {a} and name in {names}",
        filter_params={"a": 40, "names": ["alpha", "beta"]},
        output_fields=["id"],
        limit=N,
    )
    want = sorted(r["id"] for r in ROWS if r["age"] > 40 and r["name"] in ("alpha", "beta"))
    assert sorted(r["id"] for r in got) == want
    hits = mclient.search(coll, data=[ROWS[0]["vec"]], limit=5, filter="id in {ids}", filter_params={"ids": [3, 4]})
    assert {h["id"] for h in hits[0]} == {3, 4}


def test_query_limit_offset_and_outputs(mclient, coll):
    ids = sorted(r["id"] for r in mclient.query(coll, filter="age < 10", output_fields=["id"], limit=N))
    page1 = mclient.query(coll, filter="age < 10", output_fields=["id"], limit=5)
    page2 = mclient.query(coll, filter="age < 10", output_fields=["id"], limit=5, offset=5)
    got = [r["id"] for r in page1 + page2]
    assert len(got) == 10 and len(set(got)) == 10 and set(got) <= set(ids)
    row = mclient.query(coll, filter="id == 7", output_fields=["*"])[0]
    src = ROWS[7]
    assert row["age"] == src["age"] and row["name"] == src["name"] and row["meta"] == src["meta"]
    assert row["city"] == src["city"] and row["vec"] == pytest.approx(src["vec"])
    assert mclient.query(coll, filter="age < 10", output_fields=["count(*)"])[0]["count(*)"] == len(ids)


BROKEN = [
    ("age >", "column"),
    ("age > 1 and", "column"),
    ("(age > 1", "column"),
    ('name like "x', "column"),
    ("nosuch_field_and_more +", "column"),
    ("age > 'x'", "age"),
    ('name > 3', "name"),
    ("age in [1, 'a']", "age"),
    ("flag + 1 > 0", "flag"),
    ("age", "age"),
    ("{missing} > 1", "missing"),
]


@pytest.mark.parametrize("expr,word", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_filter_is_a_clear_error(mclient, coll, expr, word):
    expect_error(lambda: mclient.query(coll, filter=expr, output_fields=["id"]), 1100, word)
    expect_error(lambda: mclient.search(coll, data=[ROWS[0]["vec"]], limit=3, filter=expr), 1100, word)
    expect_error(lambda: mclient.delete(coll, filter=expr), 1100, word)
    # Nothing was deleted.
    assert mclient.query(coll, filter="", output_fields=["count(*)"])[0]["count(*)"] == N
