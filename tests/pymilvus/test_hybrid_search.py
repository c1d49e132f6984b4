"""HybridSearch as Milvus does it: searches of several vector fields (each with its own query,
filter and limit) fused by RRF or weighted ranking, checked against the same fusion computed
with numpy over exact searches; output fields, offsets, several queries, and bad rankers."""

import math

import numpy as np
import pytest
from pymilvus import AnnSearchRequest, DataType, RRFRanker, WeightedRanker

from conftest import expect_error

PARAMETER_INVALID = 1100
N, DENSE, IMAGE = 300, 12, 6


@pytest.fixture
def coll(client, name):
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tag", DataType.INT64)
    schema.add_field("cat", DataType.INT64)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=DENSE)
    schema.add_field("image", DataType.FLOAT_VECTOR, dim=IMAGE)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    rng = np.random.default_rng(21)
    dense = rng.random((N, DENSE), dtype=np.float32)
    image = rng.random((N, IMAGE), dtype=np.float32) - 0.5
    rows = [{"id": i, "tag": i % 3, "cat": i % 25, "dense": dense[i].tolist(),
             "image": image[i].tolist()} for i in range(N)]
    client.insert(name, rows[:200])
    client.flush(name)
    client.insert(name, rows[200:])
    params = client.prepare_index_params()
    # FLAT: both lists are exact, so the fusion can be checked exactly.
    params.add_index(field_name="dense", index_type="FLAT", metric_type="L2")
    params.add_index(field_name="image", index_type="FLAT", metric_type="IP")
    client.create_index(name, params)
    client.load_collection(name)
    yield name, dense, image
    client.drop_collection(name)


def exact(scores, k, higher, mask=None):
    ids = np.arange(len(scores))
    if mask is not None:
        ids, scores = ids[mask], scores[mask]
    order = np.argsort(-scores if higher else scores, kind="stable")[:k]
    return [(int(ids[i]), float(scores[i])) for i in order]


def lists(dense, image, qd, qi, k):
    a = exact(((dense - qd) ** 2).sum(axis=1), k, higher=False)
    b = exact(image @ qi, k, higher=True, mask=np.arange(N) % 3 == 1)
    return a, b


def check(hits, want):
    """Same fused scores in the same order; ids agree wherever scores are not tied."""
    got = [(h["id"], h["distance"]) for h in hits]
    assert len(got) == len(want)
    assert np.allclose([d for _, d in got], [s for _, s in want], atol=1e-5)
    fused = dict(want)
    for id_, d in got:
        assert id_ in fused and abs(fused[id_] - d) < 1e-5, (id_, d)


def fuse(parts, limit):
    total = {}
    for part in parts:
        for id_, s in part:
            total[id_] = total.get(id_, 0.0) + s
    return sorted(total.items(), key=lambda x: -x[1])[:limit]


def reqs(qd, qi, k=20):
    return [
        AnnSearchRequest(data=[q.tolist() for q in qd], anns_field="dense",
                         param={"metric_type": "L2"}, limit=k),
        AnnSearchRequest(data=[q.tolist() for q in qi], anns_field="image",
                         param={"metric_type": "IP"}, limit=k, expr="tag == 1"),
    ]


def test_rrf_fuses_ranks(client, coll):
    name, dense, image = coll
    rng = np.random.default_rng(5)
    qd, qi = rng.random((2, DENSE), dtype=np.float32), rng.random((2, IMAGE), dtype=np.float32)
    res = client.hybrid_search(name, reqs(qd, qi), RRFRanker(60), limit=10,
                               output_fields=["tag"])
    assert len(res) == 2
    for q in range(2):
        a, b = lists(dense, image, qd[q], qi[q], 20)
        want = fuse([[(i, 1 / (60 + r + 1)) for r, (i, _) in enumerate(p)] for p in (a, b)], 10)
        check(res[q], want)
        for h in res[q]:
            assert h["entity"]["tag"] == h["id"] % 3


def test_weighted_normalizes_scores(client, coll):
    name, dense, image = coll
    rng = np.random.default_rng(6)
    qd, qi = rng.random((1, DENSE), dtype=np.float32), rng.random((1, IMAGE), dtype=np.float32)
    res = client.hybrid_search(name, reqs(qd, qi), WeightedRanker(0.3, 0.7), limit=8)
    a, b = lists(dense, image, qd[0], qi[0], 20)
    want = fuse([[(i, 0.3 * (1 - 2 * math.atan(s) / math.pi)) for i, s in a],
                 [(i, 0.7 * (0.5 + math.atan(s) / math.pi)) for i, s in b]], 8)
    check(res[0], want)
    # An offset skips the best fused hits.
    paged = client.hybrid_search(name, reqs(qd, qi), WeightedRanker(0.3, 0.7), limit=4,
                                 offset=4)
    check(paged[0], want[4:8])


def test_bad_hybrid_searches_are_refused(client, coll):
    name, _, _ = coll
    qd, qi = np.ones((1, DENSE), dtype=np.float32), np.ones((1, IMAGE), dtype=np.float32)
    expect_error(lambda: client.hybrid_search(name, reqs(qd, qi), WeightedRanker(0.5),
                                              limit=5), PARAMETER_INVALID, "weights")
    bad = reqs(qd, qi)
    bad[1] = AnnSearchRequest(data=[qi[0].tolist()], anns_field="nope",
                              param={"metric_type": "IP"}, limit=5)
    expect_error(lambda: client.hybrid_search(name, bad, RRFRanker(), limit=5),
                 PARAMETER_INVALID, "nope")
    two = AnnSearchRequest(data=[qd[0].tolist(), qd[0].tolist()], anns_field="dense",
                           param={"metric_type": "L2"}, limit=5)
    expect_error(lambda: client.hybrid_search(name, [two, reqs(qd, qi)[1]], RRFRanker(),
                                              limit=5), PARAMETER_INVALID, "queries")


def grouped(order, keys, groups, size):
    """`order` (ids, best first) as its first `groups` groups of `size`, flattened."""
    out, seen = {}, []
    for i in order:
        k = keys[i]
        if k not in out:
            if len(seen) == groups:
                continue
            out[k] = []
            seen.append(k)
        if len(out[k]) < size:
            out[k].append(i)
    return [i for k in seen for i in out[k]]


def test_grouped_hybrid_search(client, coll):
    name, dense, image = coll
    cats = np.arange(N) % 25
    rng = np.random.default_rng(7)
    qd, qi = rng.random((1, DENSE), dtype=np.float32), rng.random((1, IMAGE), dtype=np.float32)
    res = client.hybrid_search(name, reqs(qd, qi, k=6), WeightedRanker(0.4, 0.6), limit=4,
                               group_by_field="cat", group_size=2, output_fields=["cat"])
    d = ((dense - qd[0]) ** 2).sum(axis=1)
    ip = image @ qi[0]
    a = grouped([int(i) for i in np.argsort(d, kind="stable")], cats, 6, 2)
    mask = np.arange(N) % 3 == 1
    b_order = [int(i) for i in np.argsort(-ip, kind="stable") if mask[i]]
    b = grouped(b_order, cats, 6, 2)
    fused = fuse([[(i, 0.4 * (1 - 2 * math.atan(d[i]) / math.pi)) for i in a],
                  [(i, 0.6 * (0.5 + math.atan(ip[i]) / math.pi)) for i in b]], 10 ** 6)
    want = grouped([i for i, _ in fused], cats, 4, 2)
    assert [h["id"] for h in res[0]] == want
    assert len({h["entity"]["cat"] for h in res[0]}) == 4
