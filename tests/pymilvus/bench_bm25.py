#!/usr/bin/env python3
"""Full-text search (BM25) and hybrid BM25 + dense search, against a running server (not part
of CI).

The corpus is Debian's package descriptions (`apt-cache dumpavail`, free-licence text on any
Debian/Ubuntu machine): each package's one-line description and the first paragraph of its long
description when the package lists carry it, --docs documents in all (beyond what the lists
hold, two descriptions joined). Each row also carries a 50-d dense
vector (row i of --base, e.g. glove50-100k: real vectors, unrelated to the text). Collection:
`text` (English analyzer) -> BM25 function -> `sparse` (SPARSE_INVERTED_INDEX, BM25), `dense`
HNSW M=16 efConstruction=200 (L2). Then, one query at a time, --seconds each, three rounds
alternating: a BM25 search of 1 to 3 words drawn from the corpus, a dense search (ef 80), and a
hybrid search of both fused by RRF(60). Prints one JSON object: insert rate, and medians of q/s,
p50 and p99 per kind.

  target/pymilvus-venv-2.5/bin/python tests/pymilvus/bench_bm25.py \\
      --uri http://127.0.0.1:19530 --base ../shared/datasets/glove50-100k/base.fvecs \\
      --queries ../shared/datasets/glove50-100k/query.fvecs
"""

import argparse
import json
import random
import re
import statistics
import subprocess
import time

from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient, RRFRanker

from bench_churn import read_fvecs, timed

NAME = "bench_bm25"


def debian_docs(limit):
    out = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True,
                         check=True).stdout
    shorts, longs = [], []
    for block in out.split("\n\n"):
        lines = block.split("\n")
        for j, line in enumerate(lines):
            if line.startswith("Description:"):
                shorts.append(line[len("Description:"):].strip())
                para = []
                for cont in lines[j + 1:]:
                    if not cont.startswith(" ") or cont.strip() == ".":
                        break
                    para.append(cont.strip())
                if para:
                    longs.append(" ".join(para)[:400])
                break
    docs = shorts + longs
    # Package lists without long descriptions (Ubuntu's, Debian's without
    # Translation-en) hold ~64k: the rest are two descriptions joined.
    n = len(docs)
    docs += [f"{docs[i % n]} {docs[(i * 7919 + 1) % n]}" for i in range(max(0, limit - n))]
    return docs[:limit]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", default="http://127.0.0.1:19530")
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    docs = debian_docs(a.docs)
    base = read_fvecs(a.base)
    dense_q = read_fvecs(a.queries)[:1000]
    n = min(len(docs), len(base))
    client = MilvusClient(uri=a.uri)
    if client.has_collection(NAME):
        client.drop_collection(NAME)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=2000, enable_analyzer=True,
                     analyzer_params={"type": "english"})
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=base.shape[1])
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    params = client.prepare_index_params()
    params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    params.add_index(field_name="dense", index_type="HNSW", metric_type="L2",
                     params={"M": 16, "efConstruction": 200})
    client.create_collection(NAME, schema=schema, index_params=params,
                             consistency_level="Strong")
    start = time.monotonic()
    for s in range(0, n, 5000):
        client.insert(NAME, [{"id": s + i, "text": docs[s + i], "dense": base[s + i].tolist()}
                             for i in range(min(5000, n - s))])
    insert_s = time.monotonic() - start
    client.flush(NAME)
    while True:
        info = client.describe_index(NAME, "dense")
        if info.get("pending_index_rows", 0) == 0 and info.get("indexed_rows", 0) >= n:
            break
        time.sleep(0.5)
    rng = random.Random(1)
    words = [[w for w in re.findall(r"[a-z]{4,}", d.lower())] for d in docs[:20000]]
    texts = []
    while len(texts) < 1000:
        ws = words[rng.randrange(len(words))]
        if ws:
            texts.append(" ".join(rng.sample(ws, min(len(ws), rng.randint(1, 3)))))
    bounded = {"consistency_level": "Bounded"}
    kinds = {
        "bm25": lambda i: client.search(NAME, [texts[i % 1000]], anns_field="sparse", limit=10,
                                        search_params={"metric_type": "BM25"}, **bounded),
        "dense": lambda i: client.search(NAME, [dense_q[i % 1000].tolist()], anns_field="dense",
                                         limit=10, search_params={"params": {"ef": 80}},
                                         **bounded),
        "hybrid": lambda i: client.hybrid_search(
            NAME,
            [AnnSearchRequest([texts[i % 1000]], "sparse", {"metric_type": "BM25"}, limit=10),
             AnnSearchRequest([dense_q[i % 1000].tolist()], "dense", {"params": {"ef": 80}},
                              limit=10)],
            RRFRanker(60), limit=10, **bounded),
    }
    rounds = {k: [] for k in kinds}
    for _ in range(3):
        for k, f in kinds.items():
            rounds[k].append(timed(a.seconds, f))
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in rounds.items()}
    print(json.dumps({
        "docs": n, "avg_words": round(sum(len(d.split()) for d in docs[:n]) / n, 1),
        "insert_rows_per_s": round(n / insert_s), **med, "runs": rounds,
    }, indent=1))
    client.drop_collection(NAME)


if __name__ == "__main__":
    main()
