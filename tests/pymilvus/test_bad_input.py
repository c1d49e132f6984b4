"""Every bad input is refused at once with a clear error (Milvus code, message naming the
field and the rule) and writes nothing: the row count is unchanged afterwards and none of
the batch's good rows became visible.

"At once" is checked as correctness, not speed: pymilvus retries an answer that looks
retriable up to 75 times (minutes); `expect_error` requires a MilvusException with the
expected code that pymilvus did not retry (no "retry" in the message, well under the
retry budget). Some inputs never reach the server through pymilvus (it checks them
client-side); those are also sent as raw gRPC requests, so the server's own checks are
covered whatever the client does."""

import math

import numpy as np
import pytest
from pymilvus import DataType, MilvusException
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from conftest import count, expect_error, expect_status, fresh_name

DIM = 4
BASE = 10  # rows in the collection before every test


def good_row(i):
    return {"id": i, "vector": [float(i), 1.0, 0.0, 0.5], "name": f"n{i}", "small": i % 100}


@pytest.fixture(scope="module")
def coll(mclient):
    name = fresh_name("bad")
    schema = mclient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("name", DataType.VARCHAR, max_length=8)
    schema.add_field("small", DataType.INT8)
    index = mclient.prepare_index_params()
    index.add_index("vector", index_type="HNSW", metric_type="L2")
    mclient.create_collection(name, schema=schema, index_params=index)
    mclient.insert(name, [good_row(i) for i in range(BASE)])
    yield name
    mclient.drop_collection(name)


@pytest.fixture
def unchanged(mclient, coll):
    """Asserts after the test that the collection still holds exactly its BASE rows."""
    yield
    assert count(mclient, coll) == BASE
    ids = [r["id"] for r in mclient.query(coll, filter="id >= 0", output_fields=["id"], limit=100)]
    assert sorted(ids) == list(range(BASE))


def batch_with(bad, at=5, n=10, start=1000):
    """`n` new good rows with row `at` replaced by `bad(row)`."""
    rows = [good_row(start + i) for i in range(n)]
    rows[at] = bad(dict(rows[at]))
    return rows


def with_vector(v):
    def f(r):
        r["vector"] = v
        return r

    return f


# --- through pymilvus ---------------------------------------------------------------------

WRITE_CASES = [
    ("wrong dim (short)", with_vector([1.0, 2.0, 3.0]), ["vector", "dim"]),
    ("wrong dim (long)", with_vector([1.0, 2.0, 3.0, 4.0, 5.0]), ["vector"]),
    ("NaN", with_vector([1.0, math.nan, 0.0, 0.0]), ["vector", "NaN"]),
    ("inf", with_vector([1.0, 0.0, math.inf, 0.0]), ["vector", "inf"]),
    ("-inf", with_vector([-math.inf, 0.0, 0.0, 0.0]), ["vector", "inf"]),
    ("varchar too long", lambda r: dict(r, name="much too long"), ["name", "max_length 8"]),
]


@pytest.mark.parametrize("op", ["insert", "upsert"])
@pytest.mark.parametrize("case,bad,words", WRITE_CASES, ids=[c[0] for c in WRITE_CASES])
def test_bad_rows_write_nothing(mclient, coll, unchanged, op, case, bad, words):
    rows = batch_with(bad)
    expect_error(lambda: getattr(mclient, op)(coll, rows), 1100, *words)
    assert mclient.get(coll, ids=[r["id"] for r in rows]) == []


def test_bad_row_among_many(mclient, coll, unchanged):
    rows = batch_with(with_vector([0.0, 0.0, math.nan, 0.0]), at=777, n=1000)
    expect_error(lambda: mclient.insert(coll, rows), 1100, "vector", "row 777")


def test_int8_out_of_range(mclient, coll, unchanged):
    # pymilvus may refuse this itself (any MilvusException is fine then); the raw
    # request below checks the server.
    from pymilvus import MilvusException

    with pytest.raises(MilvusException):
        mclient.insert(coll, batch_with(lambda r: dict(r, small=300)))


SEARCH_CASES = [
    ("wrong dim", dict(data=[[1.0, 2.0, 3.0]]), 1100, ["vector", "dim"]),
    ("NaN query", dict(data=[[1.0, math.nan, 0.0, 0.0]]), 1100, ["vector", "NaN"]),
    ("limit > 16384", dict(limit=16385), 1100, ["limit", "16384"]),
    ("limit + offset > 16384", dict(limit=16000, search_params={"offset": 1000}), 1100, ["offset", "16384"]),
    ("broken filter", dict(filter="id in [1,"), 1100, ["expr", "column"]),
    ("unknown field in filter", dict(filter="nope > 1"), 1100, ["nope"]),
    ("unknown output field", dict(output_fields=["nope"]), 1100, ["nope"]),
    ("wrong metric", dict(search_params={"metric_type": "COSINE"}), 1100, ["metric_type"]),
    ("wrong anns_field", dict(anns_field="other"), 1100, ["anns_field"]),
    ("negative ef", dict(search_params={"params": {"ef": -1}}), 1100, ["ef"]),
    ("range_filter past radius", dict(search_params={"params": {"radius": 1.0, "range_filter": 2.0}}), 1100, ["range_filter", "radius"]),
    ("partition", dict(partition_names=["p1"]), 200, ["partition not found", "p1"]),
]


@pytest.mark.parametrize("case,kw,code,words", SEARCH_CASES, ids=[c[0] for c in SEARCH_CASES])
def test_bad_search(mclient, coll, unchanged, case, kw, code, words):
    args = dict(data=[[0.0, 1.0, 0.0, 0.5]], limit=3)
    args.update(kw)
    expect_error(lambda: mclient.search(coll, **args), code, *words)


QUERY_CASES = [
    ("broken filter", dict(filter="id >"), ["expr", "column"]),
    ("type mismatch", dict(filter='name > 3'), ["name"]),
    ("limit > 16384", dict(filter="id > 0", limit=16385), ["limit", "16384"]),
    ("unknown output field", dict(filter="id > 0", output_fields=["nope"]), ["nope"]),
]


@pytest.mark.parametrize("case,kw,words", QUERY_CASES, ids=[c[0] for c in QUERY_CASES])
def test_bad_query(mclient, coll, unchanged, case, kw, words):
    expect_error(lambda: mclient.query(coll, **kw), 1100, *words)


def test_bad_delete_deletes_nothing(mclient, coll, unchanged):
    expect_error(lambda: mclient.delete(coll, filter="id in [1, 2"), 1100, "expr")
    expect_error(lambda: mclient.delete(coll, filter="nope == 1"), 1100, "nope")
    expect_error(lambda: mclient.delete(coll, filter="id"), 1100, "id")


MISSING = "no_such_collection_" + "x" * 8


@pytest.mark.parametrize(
    "op",
    [
        lambda c: c.insert(MISSING, [good_row(1)]),
        lambda c: c.upsert(MISSING, [good_row(1)]),
        lambda c: c.delete(MISSING, ids=[1]),
        lambda c: c.delete(MISSING, filter="id > 0"),
        lambda c: c.get(MISSING, ids=[1]),
        lambda c: c.query(MISSING, filter="id > 0"),
        lambda c: c.search(MISSING, data=[[0.0] * DIM], limit=1),
        lambda c: c.describe_collection(MISSING),
        lambda c: c.get_collection_stats(MISSING),
        lambda c: c.flush(MISSING),
        lambda c: c.load_collection(MISSING),
        lambda c: c.release_collection(MISSING),
        lambda c: c.get_load_state(MISSING),
        lambda c: c.describe_index(MISSING, index_name="vector"),
        lambda c: c.list_indexes(MISSING),
        lambda c: c.create_alias(MISSING, fresh_name("a")),
    ],
    ids=[
        "insert", "upsert", "delete ids", "delete filter", "get", "query", "search",
        "describe", "stats", "flush", "load", "release", "load state", "describe index",
        "list indexes", "create alias",
    ],
)
def test_missing_collection(mclient, op):
    expect_error(lambda: op(mclient), 100, MISSING)


def test_missing_collection_is_not_created(mclient):
    assert not mclient.has_collection(MISSING)
    assert MISSING not in mclient.list_collections()


# --- raw requests (what a client that checks nothing would send) --------------------------

def fd_long(name, values):
    return schema_pb2.FieldData(field_name=name, type=DataType.INT64, scalars=schema_pb2.ScalarField(long_data=schema_pb2.LongArray(data=values)))


def fd_int(name, values, dtype=DataType.INT8):
    return schema_pb2.FieldData(field_name=name, type=dtype, scalars=schema_pb2.ScalarField(int_data=schema_pb2.IntArray(data=values)))


def fd_str(name, values):
    return schema_pb2.FieldData(field_name=name, type=DataType.VARCHAR, scalars=schema_pb2.ScalarField(string_data=schema_pb2.StringArray(data=values)))


def fd_vec(floats, dim=DIM):
    return schema_pb2.FieldData(
        field_name="vector",
        type=DataType.FLOAT_VECTOR,
        vectors=schema_pb2.VectorField(dim=dim, float_vector=schema_pb2.FloatArray(data=floats)),
    )


def good_fields(n=3, start=2000):
    ids = list(range(start, start + n))
    return [
        fd_long("id", ids),
        fd_vec([float(x) for i in ids for x in (i, 1, 0, 0.5)]),
        fd_str("name", [f"n{i}" for i in range(n)]),
        fd_int("small", [1] * n),
    ]


def replace(fields, new):
    return [new if f.field_name == new.field_name else f for f in fields]


RAW_INSERTS = [
    ("vector floats not a multiple of dim", lambda f: replace(f, fd_vec([1.0] * 11)), ["vector"]),
    ("vector dim field disagrees", lambda f: replace(f, fd_vec([1.0] * 9, dim=3)), ["vector", "dim"]),
    ("NaN", lambda f: replace(f, fd_vec([1.0] * 5 + [math.nan] + [1.0] * 6)), ["vector", "NaN"]),
    ("column too short", lambda f: replace(f, fd_str("name", ["a", "b"])), ["name", "3"]),
    ("keys missing", lambda f: [x for x in f if x.field_name != "id"], ["id"]),
    ("vectors missing", lambda f: [x for x in f if x.field_name != "vector"], ["vector"]),
    ("int8 out of range", lambda f: replace(f, fd_int("small", [1, 300, 1])), ["small", "row 1", "300"]),
    ("field given twice", lambda f: f + [fd_str("name", ["a", "b", "c"])], ["name"]),
    ("unknown field", lambda f: f + [fd_str("nope", ["a", "b", "c"])], ["nope"]),
    ("wrong type for a field", lambda f: replace(f, fd_long("small", [1, 2, 3])), ["small"]),
]


@pytest.mark.parametrize("op", ["Insert", "Upsert"])
@pytest.mark.parametrize("case,mutate,words", RAW_INSERTS, ids=[c[0] for c in RAW_INSERTS])
def test_raw_bad_rows(mclient, coll, unchanged, stub, op, case, mutate, words):
    cls = milvus_pb2.InsertRequest if op == "Insert" else milvus_pb2.UpsertRequest
    req = cls(collection_name=coll, fields_data=mutate(good_fields()), num_rows=3)
    r = getattr(stub, op)(req)
    expect_status(r.status, 1100, *words)
    assert not r.status.retriable
    # The same request with good fields goes through (the check is specific).
    if op == "Insert":
        ok = stub.Insert(cls(collection_name=coll, fields_data=good_fields(start=5000), num_rows=3))
        assert ok.status.code == 0
        mclient.delete(coll, ids=[5000, 5001, 5002])


def test_raw_num_rows_disagrees(stub, coll, unchanged):
    r = stub.Insert(milvus_pb2.InsertRequest(collection_name=coll, fields_data=good_fields(), num_rows=4))
    expect_status(r.status, 1100, "vector")


def placeholder(vectors, dim=DIM):
    import struct

    ph = common_pb2.PlaceholderValue(
        tag="$0",
        type=common_pb2.PlaceholderType.FloatVector,
        values=[struct.pack(f"<{len(v)}f", *v) for v in vectors],
    )
    return common_pb2.PlaceholderGroup(placeholders=[ph]).SerializeToString()


def raw_search(stub, coll, vectors, topk=3, **extra):
    params = [common_pb2.KeyValuePair(key="topk", value=str(topk))]
    params += [common_pb2.KeyValuePair(key=k, value=str(v)) for k, v in extra.items()]
    return stub.Search(
        milvus_pb2.SearchRequest(
            collection_name=coll,
            dsl_type=common_pb2.BoolExprV1,
            placeholder_group=placeholder(vectors),
            nq=len(vectors),
            search_params=params,
        )
    )


def test_raw_search_checks(stub, coll, unchanged):
    ok = raw_search(stub, coll, [[0.0, 1.0, 0.0, 0.5]])
    assert ok.status.code == 0 and list(ok.results.topks) == [3]
    expect_status(raw_search(stub, coll, [[0.0, 1.0, 0.0]]).status, 1100, "dim")
    expect_status(raw_search(stub, coll, [[0.0, 1.0, 0.0, 0.5], [math.inf, 0, 0, 0]]).status, 1100, "query 1")
    expect_status(raw_search(stub, coll, [[0.0, 1.0, 0.0, 0.5]], topk=16385).status, 1100, "16384")
    expect_status(raw_search(stub, coll, [[0.0, 1.0, 0.0, 0.5]], topk=0).status, 1100, "limit")
    expect_status(raw_search(stub, coll, [[0.0, 1.0, 0.0, 0.5]], round_decimal=9).status, 1100, "round_decimal")
    expect_status(raw_search(stub, coll, []).status, 1100, "vector")
    r = stub.Search(milvus_pb2.SearchRequest(collection_name=coll, placeholder_group=b"\xff\xff", search_params=[common_pb2.KeyValuePair(key="topk", value="1")]))
    expect_status(r.status, 1100, "placeholder")
    # limit + offset that overflow 64 bits are refused, not wrapped around.
    big = str(2**63 - 1)
    expect_status(raw_search(stub, coll, [[0.0, 1.0, 0.0, 0.5]], topk=big, offset=big).status, 1100, "limit", "offset")
    r = stub.Query(milvus_pb2.QueryRequest(
        collection_name=coll, expr="id >= 0", output_fields=["id"],
        query_params=[common_pb2.KeyValuePair(key="limit", value=str(2**64 - 1)), common_pb2.KeyValuePair(key="offset", value="1")]))
    expect_status(r.status, 1100, "limit", "offset")


def test_limit_16384_is_accepted(mclient, coll, unchanged):
    hits = mclient.search(coll, data=[[0.0, 1.0, 0.0, 0.5]], limit=16384)
    assert len(hits[0]) == BASE
    assert len(mclient.query(coll, filter="id >= 0", limit=16384)) == BASE


def test_bad_create_collection(mclient):
    name = fresh_name("bad_create")
    # No vector field, five vector fields, a bad index type: refused, nothing created.
    s = mclient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("x", DataType.INT64)
    expect_error(lambda: mclient.create_collection(name, schema=s), 1100, "vector field")
    s = mclient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    for v in range(5):
        s.add_field(f"v{v}", DataType.FLOAT_VECTOR, dim=2)
    expect_error(lambda: mclient.create_collection(name, schema=s), 1100, "vector fields")
    s = mclient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    idx = mclient.prepare_index_params()
    idx.add_index("v", index_type="NOT_AN_INDEX", metric_type="L2")
    # pymilvus creates the collection, then the index: the index is refused.
    expect_error(lambda: mclient.create_collection(name, schema=s, index_params=idx), 1100, "index_type")
    mclient.drop_collection(name)
    s = mclient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=0)
    with pytest.raises(MilvusException):  # pymilvus may refuse dim 0 itself
        mclient.create_collection(name, schema=s)
    assert not mclient.has_collection(name)
    # A duplicate name is refused and leaves the first collection alone.
    mclient.create_collection(name, dimension=2)
    mclient.insert(name, [{"id": 1, "vector": [1.0, 2.0]}])
    expect_error(lambda: mclient.create_collection(name, dimension=3), 1100, name)
    assert count(mclient, name) == 1
    # The same parameters again are accepted (as by Milvus) and change nothing.
    mclient.create_collection(name, dimension=2)
    assert count(mclient, name) == 1
    mclient.drop_collection(name)


@pytest.mark.parametrize(
    "call,rpc",
    [
        (lambda c, n: c._get_connection().list_bulk_insert_tasks(0, n), "ListImportTasks"),
        (lambda c, n: c._get_connection().get_bulk_insert_state(1), "GetImportState"),
    ],
    ids=["list_bulk_insert_tasks", "get_bulk_insert_state"],
)
def test_unserved_rpc_fails_fast_and_says_which(mclient, coll, call, rpc):
    """An RPC Quiver does not serve answers UNIMPLEMENTED (pymilvus does not retry it) with a
    message naming the call."""
    import time

    import grpc

    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        call(mclient, coll)
    assert time.monotonic() - start < 10
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert f'"{rpc}"' in info.value.details() and "Quiver does not serve" in info.value.details()
    assert mclient.has_collection(coll)
