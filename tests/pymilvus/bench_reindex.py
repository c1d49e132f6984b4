#!/usr/bin/env python3
"""Searches while a new index is built in the background, against a running server (not
part of CI).

Loads --base (e.g. glove50-100k) with HNSW M=16 efConstruction=200 (L2), flushes, waits for
every segment to be indexed, and measures top-10 searches (ef 80, one at a time) for
--seconds: "idle". Then the Milvus way to change an index: release, drop_index,
create_index with other build parameters (M=24 efConstruction=120, same metric), load — and
searches run one by one from the load until DescribeIndex reports every row indexed under the
new index: "during" (segments not rebuilt yet keep serving from their old graph; the
rebuild runs at nice 10), then for --seconds more: "after". The first --warmup searches after the load are reported apart
("warmup": the freshly loaded segments fault their pages in). Prints one JSON object: idle and during p50 / p99 (ms), the
ratio of the p99s, the seconds the rebuild took, and recall@10 against the dataset's ground
truth before and after.

  target/pymilvus-venv-2.5/bin/python tests/pymilvus/bench_reindex.py \\
      --uri http://127.0.0.1:19530 --dataset ../shared/datasets/glove50-100k
"""

import argparse
import json
import os
import time

import numpy as np
from pymilvus import DataType, MilvusClient

from bench_churn import pct, read_fvecs

NAME = "bench_reindex"


def read_ivecs(path):
    a = np.fromfile(path, dtype=np.int32)
    d = int(a[0])
    return a.reshape(-1, d + 1)[:, 1:]


def index_params(client, m, efc):
    p = client.prepare_index_params()
    p.add_index(field_name="v", index_type="HNSW", metric_type="L2",
                params={"M": m, "efConstruction": efc})
    return p


def progress(client):
    info = client.describe_index(NAME, "v")
    return info.get("indexed_rows", 0), info.get("total_rows", 0), info.get("state")


def search(client, q):
    return client.search(NAME, data=[q.tolist()], limit=10, anns_field="v",
                         search_params={"params": {"ef": 80}})[0]


def timed(client, queries, until):
    lat, i = [], 0
    while not until(i):
        t = time.perf_counter()
        search(client, queries[i % len(queries)])
        lat.append(time.perf_counter() - t)
        i += 1
    return sorted(lat)


def recall(client, queries, truth):
    got = [{h["id"] for h in search(client, q)} for q in queries]
    return float(np.mean([len(g & set(t[:10].tolist())) / 10 for g, t in zip(got, truth)]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", default="http://127.0.0.1:19530")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=int, default=1000)
    a = ap.parse_args()
    base = read_fvecs(os.path.join(a.dataset, "base.fvecs"))
    queries = read_fvecs(os.path.join(a.dataset, "query.fvecs"))[:500]
    truth = read_ivecs(os.path.join(a.dataset, "groundtruth.ivecs"))[:500]

    client = MilvusClient(uri=a.uri)
    if client.has_collection(NAME):
        client.drop_collection(NAME)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=base.shape[1])
    client.create_collection(NAME, schema=schema, index_params=index_params(client, 16, 200),
                             consistency_level="Strong")
    for s in range(0, len(base), 5000):
        client.insert(NAME, [{"id": s + i, "v": v.tolist()} for i, v in
                             enumerate(base[s:s + 5000])])
    client.flush(NAME)
    while progress(client)[0] < len(base):
        time.sleep(0.5)
    recall_before = recall(client, queries[:200], truth[:200])
    end = time.monotonic() + a.seconds
    idle = timed(client, queries, lambda i: time.monotonic() > end)

    client.release_collection(NAME)
    client.drop_index(NAME, "v")
    t0 = time.monotonic()
    # pymilvus waits for the build unless told not to: the searches are what we measure.
    client.create_index(NAME, index_params(client, 24, 120), sync=False)
    client.load_collection(NAME)
    done_at = []

    def rebuilt(i):
        if i % 20 == 0:
            indexed, total, _ = progress(client)
            if total and indexed >= total:
                done_at.append(time.monotonic())
                return True
        return False

    # The load maps the segments afresh: the first searches fault their pages in
    # (measured apart as "warmup", as idle was measured warm).
    warmup = timed(client, queries, lambda i: i >= a.warmup)
    during = timed(client, queries, rebuilt)
    # The same searches once every segment serves its new graph.
    end = time.monotonic() + a.seconds
    after = timed(client, queries, lambda i: time.monotonic() > end)
    recall_after = recall(client, queries[:200], truth[:200])
    print(json.dumps({
        "rows": len(base),
        "idle": {"searches": len(idle), "p50_ms": pct(idle, 0.5), "p99_ms": pct(idle, 0.99)},
        "warmup": {"searches": len(warmup), "p50_ms": pct(warmup, 0.5),
                   "p99_ms": pct(warmup, 0.99)},
        "during": {"searches": len(during), "p50_ms": pct(during, 0.5),
                   "p99_ms": pct(during, 0.99)},
        "after": {"searches": len(after), "p50_ms": pct(after, 0.5),
                  "p99_ms": pct(after, 0.99)},
        "p99_ratio_during_over_idle": pct(during, 0.99) / pct(idle, 0.99),
        "p99_ratio_warmup_and_during_over_idle":
            pct(sorted(warmup + during), 0.99) / pct(idle, 0.99),
        "rebuild_s": done_at[0] - t0 if done_at else None,
        "recall_at_10_before": recall_before, "recall_at_10_after": recall_after,
    }, indent=1))
    client.drop_collection(NAME)


if __name__ == "__main__":
    main()
