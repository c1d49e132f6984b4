"""TEXT_MATCH and PHRASE_MATCH filters on a VarChar field with enable_analyzer and enable_match,
checked against the same matching in Python on the standard analyzer's tokens: in queries,
filtered searches and deletes, over sealed and growing rows; a field without enable_match is
refused."""

import random
import re

import numpy as np
import pytest
from pymilvus import DataType

from conftest import expect_error

PARAMETER_INVALID = 1100
WORDS = "machine learning deep model vector search robot data graph index query fast".split()


def tokens(text):
    return re.findall(r"[^\W_]+", text.lower())


def text_match(text, query):
    return bool(set(tokens(text)) & set(tokens(query)))


def phrase_match(text, query, slop):
    """Lucene's sloppy phrase: positions p_i with max(p_i - i) - min(p_i - i) <= slop."""
    pos = {}
    for i, t in enumerate(tokens(text)):
        pos.setdefault(t, []).append(i)
    q = tokens(query)
    if not q or any(t not in pos for t in q):
        return False
    offsets = [[p - i for p in pos[t]] for i, t in enumerate(q)]
    starts = [o for os in offsets for o in os]
    return any(all(any(w <= o <= w + slop for o in os) for os in offsets) for w in starts)


@pytest.fixture
def coll(client, name):
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("doc", DataType.VARCHAR, max_length=500, enable_analyzer=True,
                     enable_match=True)
    schema.add_field("plain", DataType.VARCHAR, max_length=50)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    params = client.prepare_index_params()
    params.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=params,
                             consistency_level="Strong")
    yield name
    client.drop_collection(name)


def corpus(n):
    rng = random.Random(7)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(2, 9))).capitalize() + "!"
             for _ in range(n)]
    vecs = np.random.default_rng(7).random((n, 4), dtype=np.float32)
    return texts, vecs


def test_text_and_phrase_match_as_python_computes_them(client, coll):
    texts, vecs = corpus(300)
    rows = [{"id": i, "doc": t, "plain": t[:50], "v": vecs[i].tolist()}
            for i, t in enumerate(texts)]
    client.insert(coll, rows[:200])
    client.flush(coll)  # sealed rows, and growing rows below
    client.insert(coll, rows[200:])
    live = dict(enumerate(texts))

    def ids(expr):
        return sorted(r["id"] for r in client.query(coll, filter=expr, output_fields=["id"]))

    for q in ["robot", "deep graph", "Machine, LEARNING!"]:
        assert ids(f"TEXT_MATCH(doc, '{q}')") == \
            sorted(i for i, t in live.items() if text_match(t, q))
    for q, slop in [("machine learning", 0), ("machine learning", 1), ("learning machine", 2),
                    ("vector search index", 3)]:
        assert ids(f"PHRASE_MATCH(doc, '{q}', {slop})") == \
            sorted(i for i, t in live.items() if phrase_match(t, q, slop))
    assert ids("PHRASE_MATCH(doc, 'data model')") == \
        sorted(i for i, t in live.items() if phrase_match(t, "data model", 0))
    # Combined with other conditions, in a filtered search.
    expr = "TEXT_MATCH(doc, 'robot') and id >= 100"
    want = [i for i, t in live.items() if text_match(t, "robot") and i >= 100]
    hits = client.search(coll, [vecs[0].tolist()], anns_field="v", filter=expr, limit=300,
                         search_params={"metric_type": "L2"})[0]
    assert sorted(h["id"] for h in hits) == sorted(want)
    # Deleting by a text match.
    client.delete(coll, filter="TEXT_MATCH(doc, 'fast')")
    live = {i: t for i, t in live.items() if not text_match(t, "fast")}
    assert ids("id >= 0") == sorted(live)
    assert ids("TEXT_MATCH(doc, 'fast')") == []


def test_text_match_needs_enable_match(client, coll):
    client.insert(coll, [{"id": 1, "doc": "a b", "plain": "a b", "v": [0.0] * 4}])
    expect_error(lambda: client.query(coll, filter="TEXT_MATCH(plain, 'a')"),
                 PARAMETER_INVALID, "plain", "enable match")
    expect_error(lambda: client.query(coll, filter="PHRASE_MATCH(doc, 'a', -2)"),
                 PARAMETER_INVALID, "slop")
