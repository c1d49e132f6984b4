#!/usr/bin/env python3
"""A filtered search on a partition key, against a running server (not part of CI).

Collection "keyed" holds --base (e.g. glove50-100k, 100k x 50-d) with an Int64 partition key
`tenant` (row i is tenant i % --tenants) over --partitions partitions. Collection "alone"
holds only the rows of the partition tenant --tenant hashes to (Quiver's partition-key hash,
as Milvus's: the rows a pruned search has to look at). The same search — `tenant == T`,
top-10, ef 80, one query at a time — runs on both for --seconds each, three rounds
alternating; the medians of q/s, p50 and p99 per collection and their ratio are printed as
one JSON object, with the recall of "keyed" against an exact numpy search of tenant T's rows.

  target/pymilvus-venv-2.5/bin/python tests/pymilvus/bench_partition_key.py \\
      --uri http://127.0.0.1:19530 --base ../shared/datasets/glove50-100k/base.fvecs \\
      --queries ../shared/datasets/glove50-100k/query.fvecs
"""

import argparse
import json
import statistics
import time

import numpy as np
from pymilvus import DataType, MilvusClient

from bench_churn import pct, read_fvecs


def key_partition(value, partitions):
    """Quiver's partition of an Int64 key: FNV-1a over its 8 little-endian bytes."""
    h = 0xCBF29CE484222325
    for b in int(value).to_bytes(8, "little", signed=True):
        h ^= b
        h = (h * 0x100000001B3) % (1 << 64)
    return h % partitions


def create(client, name, dim, partitions):
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tenant", DataType.INT64, is_partition_key=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
    params = client.prepare_index_params()
    params.add_index(field_name="v", index_type="HNSW", metric_type="L2",
                     params={"M": 16, "efConstruction": 200})
    client.create_collection(name, schema=schema, index_params=params,
                             num_partitions=partitions, consistency_level="Strong")


def load(client, name, ids, tenants, base, batch=5000):
    for s in range(0, len(ids), batch):
        rows = [{"id": int(i), "tenant": int(t), "v": base[i].tolist()}
                for i, t in zip(ids[s:s + batch], tenants[s:s + batch])]
        client.insert(name, rows)
    client.flush(name)
    # Wait until every sealed segment is indexed (DescribeIndex reports no pending rows).
    while True:
        info = client.describe_index(name, "v")
        if info.get("pending_index_rows", 0) == 0 and info.get("indexed_rows", 0) >= len(ids):
            break
        time.sleep(0.5)


def run(client, name, queries, expr, seconds):
    lat, i = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        client.search(name, data=[queries[i % len(queries)].tolist()], limit=10, filter=expr,
                      anns_field="v", search_params={"params": {"ef": 80}})
        lat.append(time.perf_counter() - t)
        i += 1
    lat.sort()
    return {"qps": len(lat) / seconds, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", default="http://127.0.0.1:19530")
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--tenants", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--tenant", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()

    base = read_fvecs(a.base)
    queries = read_fvecs(a.queries)[:200]
    n, dim = base.shape
    ids = np.arange(n)
    tenants = ids % a.tenants
    part = np.array([key_partition(t, a.partitions) for t in range(a.tenants)])
    mine = part[tenants] == key_partition(a.tenant, a.partitions)

    client = MilvusClient(uri=a.uri)
    create(client, "keyed", dim, a.partitions)
    load(client, "keyed", ids, tenants, base)
    create(client, "alone", dim, a.partitions)
    load(client, "alone", ids[mine], tenants[mine], base)

    expr = f"tenant == {a.tenant}"
    # Recall of the keyed collection against exact search of the tenant's rows.
    rows = ids[tenants == a.tenant]
    hits = total = 0
    for q in queries[:50]:
        d = ((base[rows] - q) ** 2).sum(axis=1)
        want = set(rows[np.argsort(d, kind="stable")[:10]].tolist())
        got = client.search("keyed", data=[q.tolist()], limit=10, filter=expr, anns_field="v",
                            search_params={"params": {"ef": 80}})[0]
        assert all(h["id"] in set(rows.tolist()) for h in got)
        hits += len(want & {h["id"] for h in got})
        total += len(want)

    runs = {"keyed": [], "alone": []}
    for _ in range(a.rounds):
        for name in ("keyed", "alone"):
            runs[name].append(run(client, name, queries, expr, a.seconds))
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for name, rs in runs.items()}
    print(json.dumps({
        "rows": int(n), "dim": int(dim), "tenants": a.tenants, "partitions": a.partitions,
        "alone_rows": int(mine.sum()), "tenant_rows": int(len(rows)), "filter": expr,
        "recall_at_10": hits / total,
        "keyed": med["keyed"], "alone": med["alone"],
        "qps_ratio_keyed_over_alone": med["keyed"]["qps"] / med["alone"]["qps"],
        "runs": runs,
    }, indent=1))
    for name in ("keyed", "alone"):
        client.drop_collection(name)


if __name__ == "__main__":
    main()
