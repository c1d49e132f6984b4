"""Milvus's documentation quickstart (milvus.io/docs/quickstart.md), unchanged except for the
URI and the embedding model: the docs' `model.DefaultEmbeddingFunction` needs a model
download, so each text gets a fixed pseudo-random 768-d unit vector instead (the docs offer
random vectors as the alternative too)."""

import hashlib

import numpy as np
import pytest
from pymilvus import MilvusClient


def embed(texts):
    out = []
    for t in texts:
        seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(768).astype(np.float32)
        out.append(v / np.linalg.norm(v))
    return out


def test_docs_quickstart(uri):
    client = MilvusClient(uri)

    if client.has_collection(collection_name="demo_collection"):
        client.drop_collection(collection_name="demo_collection")
    client.create_collection(
        collection_name="demo_collection",
        dimension=768,  # The vectors we will use in this demo has 768 dimensions
    )

    docs = [
        "Artificial intelligence was founded as an academic discipline in 1956.",
        "Alan Turing was the first person to conduct substantial research in AI.",
        "Born in Maida Vale, London, Turing was raised in southern England.",
    ]
    vectors = embed(docs)
    data = [
        {"id": i, "vector": vectors[i], "text": docs[i], "subject": "history"}
        for i in range(len(vectors))
    ]
    res = client.insert(collection_name="demo_collection", data=data)
    assert res["insert_count"] == 3 and list(res["ids"]) == [0, 1, 2]

    # Vector search: the document itself is the best COSINE match.
    res = client.search(
        collection_name="demo_collection",
        data=[vectors[1]],
        limit=2,
        output_fields=["text", "subject"],
    )
    assert len(res) == 1 and len(res[0]) == 2
    assert res[0][0]["id"] == 1
    assert res[0][0]["distance"] == pytest.approx(1.0, abs=1e-4)
    assert res[0][0]["entity"] == {"text": docs[1], "subject": "history"}

    # Vector search with metadata filtering.
    docs = [
        "Machine learning has been used for drug design.",
        "Computational synthesis with AI algorithms predicts molecular properties.",
        "DDR1 is involved in cancers and fibrosis.",
    ]
    vectors = embed(docs)
    data = [
        {"id": 3 + i, "vector": vectors[i], "text": docs[i], "subject": "biology"}
        for i in range(len(vectors))
    ]
    client.insert(collection_name="demo_collection", data=data)
    res = client.search(
        collection_name="demo_collection",
        data=embed(["tell me AI related information"]),
        filter="subject == 'biology'",
        limit=2,
        output_fields=["text", "subject"],
    )
    assert len(res[0]) == 2
    assert all(h["entity"]["subject"] == "biology" and h["id"] in (3, 4, 5) for h in res[0])

    # Query by filter and by ids.
    res = client.query(
        collection_name="demo_collection",
        filter="subject == 'history'",
        output_fields=["text", "subject"],
    )
    assert sorted(r["id"] for r in res) == [0, 1, 2]
    res = client.query(
        collection_name="demo_collection",
        ids=[0, 2],
        output_fields=["vector", "text", "subject"],
    )
    assert sorted(r["id"] for r in res) == [0, 2]
    assert all(len(r["vector"]) == 768 for r in res)

    # Delete by ids and by filter.
    res = client.delete(collection_name="demo_collection", ids=[0, 2])
    assert res["delete_count"] == 2
    res = client.delete(collection_name="demo_collection", filter="subject == 'biology'")
    assert res["delete_count"] == 3
    res = client.query(collection_name="demo_collection", filter="id >= 0", output_fields=["text"])
    assert [r["id"] for r in res] == [1]

    client.drop_collection(collection_name="demo_collection")
    assert not client.has_collection("demo_collection")
    client.close()
