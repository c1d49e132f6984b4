"""Range search (search params `radius` / `range_filter`) and pymilvus's `search_iterator`,
which pages with range searches."""

import numpy as np
import pytest
from pymilvus import DataType

from conftest import expect_error


def flat_collection(client, name, metric, vectors):
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=len(vectors[0]))
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type=metric)
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": i, "v": list(map(float, v))} for i, v in enumerate(vectors)])


def test_l2_range_keeps_range_filter_le_distance_lt_radius(client, name):
    # Row i is at squared distance i*i from the origin.
    flat_collection(client, name, "L2", [[i, 0, 0, 0] for i in range(200)])
    params = {"metric_type": "L2", "params": {"radius": 100.0, "range_filter": 25.0}}
    hits = client.search(name, data=[[0.0, 0, 0, 0]], limit=50, search_params=params)[0]
    assert [h["id"] for h in hits] == [5, 6, 7, 8, 9]
    assert [h["distance"] for h in hits] == pytest.approx([25, 36, 49, 64, 81])
    # The closest rows are outside the range: the server looks further than the limit.
    hits = client.search(name, data=[[0.0, 0, 0, 0]], limit=3, search_params=params)[0]
    assert [h["id"] for h in hits] == [5, 6, 7]
    # Only a radius: everything closer.
    hits = client.search(name, data=[[0.0, 0, 0, 0]], limit=100, search_params={"params": {"radius": 10.0}})[0]
    assert [h["id"] for h in hits] == [0, 1, 2, 3]
    client.drop_collection(name)


def test_ip_range_keeps_radius_lt_score_le_range_filter(client, name):
    flat_collection(client, name, "IP", [[i / 100, 0, 0, 0] for i in range(100)])
    params = {"metric_type": "IP", "params": {"radius": 0.5, "range_filter": 0.9}}
    hits = client.search(name, data=[[1.0, 0, 0, 0]], limit=100, search_params=params)[0]
    assert [h["id"] for h in hits] == list(range(90, 50, -1))
    client.drop_collection(name)


def test_bad_ranges_are_refused(client, name):
    flat_collection(client, name, "L2", [[i, 0, 0, 0] for i in range(10)])
    q = [[0.0, 0, 0, 0]]
    expect_error(
        lambda: client.search(name, data=q, limit=3, search_params={"params": {"radius": 1.0, "range_filter": 5.0}}),
        1100, "params.range_filter",
    )
    expect_error(
        lambda: client.search(name, data=q, limit=3, search_params={"params": {"range_filter": 5.0}}),
        1100, "params.range_filter", "radius",
    )
    client.drop_collection(name)


@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_search_iterator_pages_through_every_row_in_order(client, name, metric):
    rng = np.random.default_rng(7)
    vectors = rng.random((600, 8), dtype=np.float32)
    flat_collection(client, name, metric, vectors)
    q = rng.random(8, dtype=np.float32)
    it = client.search_iterator(name, data=[q.tolist()], batch_size=100, limit=450,
                                search_params={"metric_type": metric})
    got, scores = [], []
    while True:
        page = it.next()
        if not page:
            break
        got += [h["id"] for h in page]
        scores += [h["distance"] for h in page]
    it.close()
    assert len(got) == 450 and len(set(got)) == 450
    if metric == "L2":
        exact = np.argsort(((vectors - q) ** 2).sum(axis=1), kind="stable")
        assert scores == sorted(scores)
    else:
        norm = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        exact = np.argsort(-(norm @ (q / np.linalg.norm(q))), kind="stable")
        assert scores == sorted(scores, reverse=True)
    # Exact (FLAT) search: the pages are the 450 nearest rows (ties aside).
    assert len(set(got) & set(exact[:450].tolist())) >= 448
    client.drop_collection(name)
