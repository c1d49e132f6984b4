"""Grouping search as Milvus does it: `group_by_field` returns the best `limit` groups (ordered
by their best hit), `group_size` hits each (all of them with `strict_group_size`), checked
against numpy over an exact (FLAT) search; VarChar groups, offsets, and refusals."""

import numpy as np
import pytest
from pymilvus import DataType

from conftest import expect_error

PARAMETER_INVALID = 1100
N, DIM, CATS = 400, 8, 10


@pytest.fixture
def coll(client, name):
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("cat", DataType.INT64)
    schema.add_field("label", DataType.VARCHAR, max_length=8)
    schema.add_field("score", DataType.DOUBLE)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    rng = np.random.default_rng(8)
    vecs = rng.random((N, DIM), dtype=np.float32)
    cats = rng.integers(0, CATS, size=N)
    rows = [{"id": i, "cat": int(cats[i]), "label": f"l{cats[i] % 4}", "score": 0.5,
             "v": vecs[i].tolist()} for i in range(N)]
    client.insert(name, rows[:250])
    client.flush(name)
    client.insert(name, rows[250:])
    params = client.prepare_index_params()
    params.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    client.create_index(name, params)
    client.load_collection(name)
    yield name, vecs, cats
    client.drop_collection(name)


def expected(vecs, keys, q, groups, size, skip=0):
    d = ((vecs - q) ** 2).sum(axis=1)
    out, order = {}, []
    for i in np.argsort(d, kind="stable"):
        k = keys[i]
        if k not in out:
            out[k] = []
            order.append(k)
        if len(out[k]) < size:
            out[k].append(int(i))
    return [i for k in order[skip:skip + groups] for i in out[k]]


def test_groups_by_int_field(client, coll):
    name, vecs, cats = coll
    q = np.random.default_rng(1).random((2, DIM), dtype=np.float32)
    res = client.search(name, data=q.tolist(), limit=5, group_by_field="cat",
                        output_fields=["cat"])
    for qi, hits in enumerate(res):
        assert [h["id"] for h in hits] == expected(vecs, cats, q[qi], 5, 1)
        assert len({h["entity"]["cat"] for h in hits}) == 5
    res = client.search(name, data=q[:1].tolist(), limit=4, group_by_field="cat",
                        group_size=3, strict_group_size=True, output_fields=["cat"])
    assert [h["id"] for h in res[0]] == expected(vecs, cats, q[0], 4, 3)
    assert len(res[0]) == 12
    # An offset skips whole groups.
    res = client.search(name, data=q[:1].tolist(), limit=3, offset=2, group_by_field="cat",
                        group_size=2, strict_group_size=True)
    assert [h["id"] for h in res[0]] == expected(vecs, cats, q[0], 3, 2, skip=2)


def test_groups_by_varchar_and_filter(client, coll):
    name, vecs, cats = coll
    q = np.random.default_rng(2).random(DIM, dtype=np.float32)
    labels = np.array([f"l{c % 4}" for c in cats])
    res = client.search(name, data=[q.tolist()], limit=10, group_by_field="label",
                        group_size=2, strict_group_size=True, filter="cat < 8",
                        output_fields=["label"])
    keep = cats < 8
    want = expected(vecs[keep], labels[keep], q, 10, 2)
    ids = np.arange(N)[keep]
    assert [h["id"] for h in res[0]] == [int(ids[i]) for i in want]
    # Only four labels exist: four groups however many are asked for.
    assert len({h["entity"]["label"] for h in res[0]}) == 4


def test_bad_groupings_are_refused(client, coll):
    name, _, _ = coll
    q = [[0.5] * DIM]
    for field in ["v", "score", "nope"]:
        expect_error(lambda: client.search(name, data=q, limit=3, group_by_field=field),
                     PARAMETER_INVALID, "group_by_field")
    expect_error(lambda: client.search(name, data=q, limit=3, group_by_field="cat",
                                       group_size=0), PARAMETER_INVALID, "group_size")
