#!/usr/bin/env python3
"""The same search workload against two running servers, rounds alternating, to compare two
builds (e.g. with and without metrics) in one run (not part of CI).

Loads --base into each (HNSW M=16 efConstruction=200, L2), then --rounds rounds of --seconds
per server, alternating: one client, top-10, ef 80, queries from --queries. Prints one JSON
object: medians of q/s, p50 and p99 per server and the ratio of q/s (b over a).

  target/pymilvus-venv-2.5/bin/python tests/pymilvus/bench_ab.py \\
      --a http://127.0.0.1:19541 --b http://127.0.0.1:19542 \\
      --base ../shared/datasets/glove50-100k/base.fvecs \\
      --queries ../shared/datasets/glove50-100k/query.fvecs
"""

import argparse
import json
import statistics
import time

from pymilvus import DataType, MilvusClient

from bench_churn import read_fvecs, timed

NAME = "bench_ab"


def load(client, base):
    if client.has_collection(NAME):
        client.drop_collection(NAME)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=base.shape[1])
    params = client.prepare_index_params()
    params.add_index(field_name="v", index_type="HNSW", metric_type="L2",
                     params={"M": 16, "efConstruction": 200})
    client.create_collection(NAME, schema=schema, index_params=params)
    for s in range(0, len(base), 5000):
        client.insert(NAME, [{"id": s + i, "v": v.tolist()} for i, v in enumerate(base[s:s + 5000])])
    client.flush(NAME)
    while True:
        info = client.describe_index(NAME, "v")
        if info.get("pending_index_rows", 0) == 0 and info.get("indexed_rows", 0) >= len(base):
            return
        time.sleep(0.5)


def run(client, queries, seconds):
    return timed(seconds, lambda i: client.search(
        NAME, [queries[i % len(queries)].tolist()], limit=10,
        search_params={"params": {"ef": 80}}, consistency_level="Bounded"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    base = read_fvecs(a.base)
    queries = read_fvecs(a.queries)[:1000]
    clients = {"a": MilvusClient(uri=a.a), "b": MilvusClient(uri=a.b)}
    for c in clients.values():
        load(c, base)
    rounds = {k: [] for k in clients}
    for _ in range(a.rounds):
        for k, c in clients.items():
            rounds[k].append(run(c, queries, a.seconds))
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in rounds.items()}
    print(json.dumps({"rows": len(base), **med,
                      "qps_ratio_b_over_a": med["b"]["qps"] / med["a"]["qps"],
                      "runs": rounds}, indent=1))
    for c in clients.values():
        c.drop_collection(NAME)


if __name__ == "__main__":
    main()
