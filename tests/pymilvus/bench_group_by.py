#!/usr/bin/env python3
"""Grouping search against plain search, against a running server (not part of CI).

Loads --base (e.g. glove50-100k) with an Int64 field `creator` (row i is creator
i % --creators: the "one result per creator" of a recommendation feed), HNSW M=16
efConstruction=200 (L2). Then, one query at a time, for --seconds each and three rounds
alternating: a plain top-10 search at ef --ef, and the same search grouped by `creator`
(10 groups, `group_size` --group-size) at the same ef. Prints one JSON object: medians of
q/s, p50 and p99 per kind and the ratio of the q/s, and how often the grouped answer has
10 distinct creators.

  target/pymilvus-venv-2.5/bin/python tests/pymilvus/bench_group_by.py \\
      --uri http://127.0.0.1:19530 --base ../shared/datasets/glove50-100k/base.fvecs \\
      --queries ../shared/datasets/glove50-100k/query.fvecs
"""

import argparse
import json
import statistics
import time

from pymilvus import DataType, MilvusClient

from bench_churn import pct, read_fvecs

NAME = "bench_group_by"


def run(client, queries, seconds, kw):
    lat, full, i = [], 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        q = queries[i % len(queries)]
        t = time.perf_counter()
        hits = client.search(NAME, data=[q.tolist()], limit=10, **kw)[0]
        lat.append(time.perf_counter() - t)
        full += len({h["entity"].get("creator") for h in hits}) == 10
        i += 1
    lat.sort()
    return {"qps": round(len(lat) / seconds, 1), "p50_ms": pct(lat, 0.5),
            "p99_ms": pct(lat, 0.99), "ten_creators": full / max(1, len(lat))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", default="http://127.0.0.1:19530")
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--creators", type=int, default=10_000)
    ap.add_argument("--group-size", type=int, default=1)
    ap.add_argument("--ef", type=int, default=80)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    base = read_fvecs(a.base)
    queries = read_fvecs(a.queries)[:1000]
    client = MilvusClient(uri=a.uri)
    if client.has_collection(NAME):
        client.drop_collection(NAME)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("creator", DataType.INT64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=base.shape[1])
    params = client.prepare_index_params()
    params.add_index(field_name="v", index_type="HNSW", metric_type="L2",
                     params={"M": 16, "efConstruction": 200})
    client.create_collection(NAME, schema=schema, index_params=params,
                             consistency_level="Strong")
    for s in range(0, len(base), 5000):
        client.insert(NAME, [{"id": s + i, "creator": (s + i) % a.creators, "v": v.tolist()}
                             for i, v in enumerate(base[s:s + 5000])])
    client.flush(NAME)
    while True:
        info = client.describe_index(NAME, "v")
        if info.get("pending_index_rows", 0) == 0 and info.get("indexed_rows", 0) >= len(base):
            break
        time.sleep(0.5)
    common = {"search_params": {"params": {"ef": a.ef}}, "output_fields": ["creator"],
              "consistency_level": "Bounded"}
    kinds = {
        "plain": common,
        "grouped": dict(common, group_by_field="creator", group_size=a.group_size),
    }
    rounds = {k: [] for k in kinds}
    for _ in range(3):
        for k, kw in kinds.items():
            rounds[k].append(run(client, queries, a.seconds, kw))
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in rounds.items()}
    print(json.dumps({
        "rows": len(base), "creators": a.creators, "group_size": a.group_size, "ef": a.ef,
        **med,
        "qps_ratio_grouped_over_plain": med["grouped"]["qps"] / med["plain"]["qps"],
        "runs": rounds,
    }, indent=1))
    client.drop_collection(NAME)


if __name__ == "__main__":
    main()
