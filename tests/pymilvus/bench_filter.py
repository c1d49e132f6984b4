#!/usr/bin/env python3
"""Filtered search through pymilvus against two running servers (e.g. Quiver and Milvus 2.3.5),
rounds alternating, in one run (not part of CI).

Loads --base into each: `id` INT64 primary key, `cat` INT64 (every row gets one of 100 values,
shuffled so a category has nothing to do with where its vectors lie), `price` DOUBLE (uniform in
[0, 1)), `flag` BOOL (true for 1 % of rows, at random), `meta` JSON (`{"lang": "l0"}` to
`"l99"`, at random), `v` FLOAT_VECTOR, HNSW M=16 efConstruction=200 L2, and with --scalar-index TYPE a scalar
index of that type on `cat` and `price` (STL_SORT: the one both Milvus 2.3 and Quiver take for
numbers; INVERTED from Milvus 2.4 on). Then for each filter:
--rounds rounds of --seconds per server, alternating: one client, top-10, ef 80, Bounded, queries
from --queries; recall@10 against the exact top-10 of the rows the filter accepts (numpy).

Filters: `cat == 7` (1 %), `price < 0.01` (1 %, a range), `cat < 50` (50 %), `flag == true`
(1 %, a boolean), `meta['lang'] == 'l7'` (1 %, a JSON path). No scalar index (which neither server
builds for booleans or JSON paths unless asked) bounds the last two.

  target/pymilvus-venv-2.5/bin/python tests/pymilvus/bench_filter.py \\
      --a http://127.0.0.1:19541 --b http://127.0.0.1:19600 \\
      --base ../shared/datasets/glove50-100k/base.fvecs \\
      --queries ../shared/datasets/glove50-100k/query.fvecs

Prints one JSON object: per filter and server the medians of q/s, p50, p99 and recall, and the
ratio of q/s (a over b).
"""

import argparse
import json
import statistics
import time

import numpy as np
from pymilvus import DataType, MilvusClient

from bench_churn import read_fvecs, timed

NAME = "bench_filter"
FILTERS = {
    "eq_1pct": ("cat == 7", lambda c: c["cat"] == 7),
    "range_1pct": ("price < 0.01", lambda c: c["price"] < 0.01),
    "range_50pct": ("cat < 50", lambda c: c["cat"] < 50),
    "bool_1pct": ("flag == true", lambda c: c["flag"]),
    "json_1pct": ("meta['lang'] == 'l7'", lambda c: c["lang"] == 7),
}


def columns(n):
    rng = np.random.default_rng(7)
    cat = rng.permutation(np.arange(n) % 100)
    price = rng.random(n)
    # Drawn after the first two, so those are what they always were.
    flag = rng.random(n) < 0.01
    lang = rng.integers(0, 100, n)
    return {"cat": cat, "price": price, "flag": flag, "lang": lang}


def load(client, base, cols, scalar_index):
    if client.has_collection(NAME):
        client.drop_collection(NAME)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("cat", DataType.INT64)
    schema.add_field("price", DataType.DOUBLE)
    schema.add_field("flag", DataType.BOOL)
    schema.add_field("meta", DataType.JSON)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=base.shape[1])
    params = client.prepare_index_params()
    params.add_index(field_name="v", index_type="HNSW", metric_type="L2",
                     params={"M": 16, "efConstruction": 200})
    if scalar_index:
        params.add_index(field_name="cat", index_type=scalar_index)
        params.add_index(field_name="price", index_type=scalar_index)
    client.create_collection(NAME, schema=schema, index_params=params)
    for s in range(0, len(base), 5000):
        client.insert(NAME, [{"id": s + i, "cat": int(cols["cat"][s + i]),
                              "price": float(cols["price"][s + i]),
                              "flag": bool(cols["flag"][s + i]),
                              "meta": {"lang": f"l{cols['lang'][s + i]}"},
                              "v": v.tolist()} for i, v in enumerate(base[s:s + 5000])])
    client.flush(NAME)
    while True:
        info = client.describe_index(NAME, "v")
        if info.get("pending_index_rows", 0) == 0 and info.get("indexed_rows", 0) >= len(base):
            break
        time.sleep(0.5)
    client.load_collection(NAME)


def truth(base, queries, mask, k=10):
    rows = np.nonzero(mask)[0]
    sub = base[rows]
    out = []
    for q in queries:
        d = ((sub - q) ** 2).sum(axis=1)
        out.append(set(rows[np.argsort(d)[:k]].tolist()))
    return out


def recall(client, queries, expr, exact):
    got = 0
    for q, t in zip(queries, exact):
        res = client.search(NAME, [q.tolist()], limit=10, filter=expr,
                            search_params={"params": {"ef": 80}}, consistency_level="Bounded")
        got += len({h["id"] for h in res[0]} & t)
    return got / (10 * len(queries))


def run(client, queries, expr, seconds):
    return timed(seconds, lambda i: client.search(
        NAME, [queries[i % len(queries)].tolist()], limit=10, filter=expr,
        search_params={"params": {"ef": 80}}, consistency_level="Bounded"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--recall-queries", type=int, default=200)
    ap.add_argument("--scalar-index", default="", help="e.g. STL_SORT or INVERTED")
    ap.add_argument("--only", default="", help="comma-separated filter names")
    ap.add_argument("--keep", action="store_true", help="leave the collections loaded")
    a = ap.parse_args()
    base = read_fvecs(a.base)
    queries = read_fvecs(a.queries)[:1000]
    cols = columns(len(base))
    clients = {"a": MilvusClient(uri=a.a), "b": MilvusClient(uri=a.b)}
    for c in clients.values():
        load(c, base, cols, a.scalar_index)
    out = {"rows": len(base), "scalar_index": a.scalar_index}
    only = [f for f in a.only.split(",") if f]
    for name, (expr, accept) in FILTERS.items():
        if only and name not in only:
            continue
        mask = accept(cols)
        exact = truth(base, queries[:a.recall_queries], mask)
        rec = {k: recall(c, queries[:a.recall_queries], expr, exact) for k, c in clients.items()}
        rounds = {k: [] for k in clients}
        for _ in range(a.rounds):
            for k, c in clients.items():
                rounds[k].append(run(c, queries, expr, a.seconds))
        med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in rounds.items()}
        for k in med:
            med[k]["recall"] = round(rec[k], 4)
        out[name] = {"filter": expr, "selectivity": float(mask.mean()), **med,
                     "qps_ratio_a_over_b": round(med["a"]["qps"] / med["b"]["qps"], 2),
                     "runs": rounds}
        print(json.dumps({name: out[name]}), flush=True)
    print(json.dumps(out, indent=1))
    for c in clients.values():
        if not a.keep:
            c.drop_collection(NAME)


if __name__ == "__main__":
    main()
