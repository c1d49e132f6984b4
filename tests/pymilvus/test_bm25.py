"""Full-text search as Milvus has it: a BM25 function from an analysed VarChar field to a sparse
field, searched with raw text. Scores are checked against the `rank_bm25` package on the same
tokens (its BM25Okapi with Lucene's idf, which Milvus uses), on sealed and growing rows, after
deletes, upserts and a compaction (the corpus statistics follow the live rows); analyzers with
stemming and stop words; hybrid BM25 + dense search; bad input refused."""

import math
import random
import re

import numpy as np
import pytest
from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, RRFRanker
from rank_bm25 import BM25Okapi

from conftest import compact_and_wait, expect_error

PARAMETER_INVALID = 1100
K = 10
WORDS = ("vector search engine milvus quiver index graph query text token field shard segment "
         "stream embed recall latency memory disk node coord proxy alias mirror filter range "
         "group hybrid sparse dense score rank fusion").split()


class LuceneBM25(BM25Okapi):
    """rank_bm25's BM25 with Lucene's idf, ln(1 + (N - df + 0.5) / (df + 0.5)), as Milvus."""

    def _calc_idf(self, nd):
        for word, freq in nd.items():
            self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))


def tokens(text):
    """Milvus's standard analyzer: split on anything not alphanumeric, lowercase."""
    return re.findall(r"[^\W_]+", text.lower())


def docs(seed, n):
    rng = random.Random(seed)
    weights = [1 / (r + 1) for r in range(len(WORDS))]
    return [" ".join(rng.choices(WORDS, weights, k=rng.randint(3, 20))).capitalize() + "."
            for _ in range(n)]


def schema_with_bm25(client, analyzer=None, dense=False):
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    kwargs = {"analyzer_params": analyzer} if analyzer else {}
    schema.add_field("text", DataType.VARCHAR, max_length=2000, enable_analyzer=True, **kwargs)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    if dense:
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=4)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    return schema


def create(client, name, schema, k1=1.2, b=0.75, dense=False):
    params = client.prepare_index_params()
    params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"bm25_k1": k1, "bm25_b": b})
    if dense:
        params.add_index(field_name="dense", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=params, num_shards=1,
                             consistency_level="Strong")


def check(client, name, live, queries, k1, b):
    ids = sorted(live)
    ref = LuceneBM25([tokens(live[i]) for i in ids], k1=k1, b=b)
    got = client.search(name, queries, anns_field="sparse", limit=K,
                        search_params={"metric_type": "BM25"}, output_fields=["text"])
    for q, hits in zip(queries, got):
        scores = ref.get_scores(tokens(q))
        want = sorted((s for s in scores if s > 0), reverse=True)[:K]
        assert np.allclose([h["distance"] for h in hits], want, rtol=1e-4), (q, hits, want)
        by_id = dict(zip(ids, scores))
        for h in hits:
            assert math.isclose(h["distance"], by_id[h["id"]], rel_tol=1e-4)
            assert h["entity"]["text"] == live[h["id"]]


@pytest.mark.parametrize("k1,b", [(1.2, 0.75), (2.0, 0.3)])
def test_bm25_scores_match_rank_bm25_through_writes_and_compaction(client, name, k1, b):
    create(client, name, schema_with_bm25(client), k1, b)
    corpus = docs(1, 300)
    client.insert(name, [{"id": i, "text": t} for i, t in enumerate(corpus[:200])])
    client.flush(name)  # sealed rows, and growing rows below
    client.insert(name, [{"id": i + 200, "text": t} for i, t in enumerate(corpus[200:])])
    live = dict(enumerate(corpus))
    queries = ["vector search", "shard segment stream", "fusion", "Rank rank dense", "nothing"]
    check(client, name, live, queries, k1, b)
    # Deletes and upserts change the statistics at once.
    gone = list(range(0, 300, 7))
    client.delete(name, ids=gone)
    fresh = docs(2, 20)
    client.upsert(name, [{"id": i + 1, "text": t} for i, t in enumerate(fresh)])
    for i in gone:
        live.pop(i)
    live.update({i + 1: t for i, t in enumerate(fresh)})
    check(client, name, live, queries, k1, b)
    # And a compaction changes nothing.
    client.flush(name)
    compact_and_wait(client, name)
    check(client, name, live, queries, k1, b)
    # The function's output is computed, never returned.
    assert "sparse" not in client.query(name, filter="id == 2", output_fields=["*"])[0]
    expect_error(lambda: client.query(name, filter="id == 2", output_fields=["sparse"]),
                 PARAMETER_INVALID, "sparse")


def test_english_analyzer_stems_and_drops_stop_words(client, name):
    create(client, name, schema_with_bm25(client, {"type": "english"}))
    texts = ["The runner is running fast", "Runs of tests", "A quiet garden", "the and of"]
    client.insert(name, [{"id": i, "text": t} for i, t in enumerate(texts)])
    got = client.search(name, ["run"], anns_field="sparse", limit=5,
                        search_params={"metric_type": "BM25"})
    assert sorted(h["id"] for h in got[0]) == [0, 1]
    assert client.search(name, ["the of"], anns_field="sparse", limit=5,
                         search_params={"metric_type": "BM25"})[0] == []


def test_hybrid_bm25_and_dense(client, name):
    create(client, name, schema_with_bm25(client, dense=True), dense=True)
    corpus = docs(3, 100)
    vecs = np.random.default_rng(3).random((100, 4), dtype=np.float32)
    client.insert(name, [{"id": i, "text": t, "dense": vecs[i].tolist()}
                         for i, t in enumerate(corpus)])
    text = AnnSearchRequest(["graph index recall"], "sparse", {"metric_type": "BM25"}, limit=K)
    near = AnnSearchRequest([vecs[5].tolist()], "dense", {"metric_type": "L2"}, limit=K)
    fused = client.hybrid_search(name, [text, near], RRFRanker(60), limit=K)
    rrf = {}
    for req, field, metric in [(["graph index recall"], "sparse", "BM25"),
                               ([vecs[5].tolist()], "dense", "L2")]:
        hits = client.search(name, req, anns_field=field, limit=K,
                             search_params={"metric_type": metric})[0]
        for rank, h in enumerate(hits):
            rrf[h["id"]] = rrf.get(h["id"], 0) + 1 / (60 + rank + 1)
    assert np.allclose([h["distance"] for h in fused[0]], sorted(rrf.values(), reverse=True)[:K])


def test_bad_full_text_schemas_and_indexes_are_refused(client, name):
    expect_error(lambda: client.create_collection(
        name, schema=schema_with_bm25(client, {"type": "klingon"})), PARAMETER_INVALID,
        "analyzer", "klingon")
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=100)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    expect_error(lambda: client.create_collection(name, schema=schema), PARAMETER_INVALID,
                 "enable_analyzer")
    client.create_collection(name, schema=schema_with_bm25(client), consistency_level="Strong")
    params = client.prepare_index_params()
    params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    expect_error(lambda: client.create_index(name, params), PARAMETER_INVALID, "BM25")
    params = client.prepare_index_params()
    params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"bm25_k1": 5})
    expect_error(lambda: client.create_index(name, params), PARAMETER_INVALID, "bm25_k1")
