#!/usr/bin/env python3
"""Searches while a compaction rewrites segments, against a running server (not part of CI).

Loads --rows base vectors in --segments flushed segments, then measures --searches top-10
searches one by one while nothing runs ("idle"). Then it upserts --rewrite of every segment's
keys (with other vectors) and flushes: each old segment is now that much dead, so the
server compacts them (rewrites the live rows, builds a new HNSW). Searches run one by one
from the flush until the compaction is over (the server's /metrics shows no backlog and the
compaction count stopped moving), and those are "during". Prints one JSON object:
idle and during p50 / p99 / max (ms), the ratio of the p99s, the compactions seen, and an
exact check that every key holds its last vector.

  target/pymilvus-venv-2.5/bin/python tests/pymilvus/bench_compaction.py \\
      --uri http://127.0.0.1:19530 --base glove50-100k/base.fvecs
"""

import argparse
import json
import re
import time
import urllib.request

import numpy as np
from pymilvus import DataType, MilvusClient

from bench_churn import pct, read_fvecs

NAME = "bench_compaction"


def metric_sum(uri, name):
    text = urllib.request.urlopen(uri.rstrip("/") + "/metrics", timeout=5).read().decode()
    pattern = re.compile(r"^" + re.escape(name) + r"\{collection=\"" + NAME + r"\".*\} (\d+)$")
    return sum(int(m.group(1)) for m in map(pattern.match, text.splitlines()) if m)


def timed_searches(client, queries, until):
    out = []
    i = 0
    while not until(i):
        q = queries[i % len(queries)]
        t = time.perf_counter()
        client.search(NAME, data=[q.tolist()], limit=10, search_params={"params": {"ef": 80}})
        out.append(time.perf_counter() - t)
        i += 1
    return sorted(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--segments", type=int, default=5)
    ap.add_argument("--rewrite", type=float, default=0.3)
    ap.add_argument("--searches", type=int, default=2000)
    a = ap.parse_args()
    base = read_fvecs(a.base)[: a.rows]
    dim = base.shape[1]
    client = MilvusClient(uri=a.uri)
    if client.has_collection(NAME):
        client.drop_collection(NAME)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
    index = client.prepare_index_params()
    index.add_index("v", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 200})
    client.create_collection(NAME, schema=schema, index_params=index)
    vectors = {}
    per = a.rows // a.segments
    for s in range(a.segments):
        for start in range(s * per, (s + 1) * per, 1000):
            rows = [{"pk": k, "v": base[k].tolist()} for k in range(start, min(start + 1000, (s + 1) * per))]
            client.insert(NAME, rows)
        client.flush(NAME)
    for k in range(a.segments * per):
        vectors[k] = base[k]
    queries = base[:: max(1, len(base) // 1000)][:1000]
    # Wait until the loads' own compactions (if any) are over.
    time.sleep(1)
    while metric_sum(a.uri, "quiver_compaction_backlog") > 0:
        time.sleep(0.2)
    idle = timed_searches(client, queries, lambda i: i >= a.searches)

    before = metric_sum(a.uri, "quiver_compactions_total")
    rng = np.random.default_rng(3)
    rewritten = []
    for s in range(a.segments):
        keys = rng.choice(np.arange(s * per, (s + 1) * per), int(per * a.rewrite), replace=False)
        rewritten.extend(int(k) for k in keys)
    for start in range(0, len(rewritten), 1000):
        chunk = rewritten[start : start + 1000]
        rows = [{"pk": k, "v": base[(k + 7919) % len(base)].tolist()} for k in chunk]
        client.upsert(NAME, rows)
        for k in chunk:
            vectors[k] = base[(k + 7919) % len(base)]
    client.flush(NAME)
    started = time.monotonic()
    state = {"last": before, "stable_since": time.monotonic(), "done_at": None}

    def over(i):
        if i % 20:
            return False
        n = metric_sum(a.uri, "quiver_compactions_total")
        backlog = metric_sum(a.uri, "quiver_compaction_backlog")
        now = time.monotonic()
        if n != state["last"]:
            state["last"], state["stable_since"] = n, now
        if n > before and backlog == 0 and now - state["stable_since"] > 1.0:
            state["done_at"] = now
            return True
        return now - started > 300

    during = timed_searches(client, queries, over)
    ran = state["last"] - before
    # Exact check, 1000 keys at a time.
    wrong = 0
    keys = sorted(vectors)
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        got = client.query(NAME, filter=f"pk in {chunk}", output_fields=["pk", "v"])
        by = {r["pk"]: r["v"] for r in got}
        wrong += sum(1 for k in chunk if k not in by or not np.array_equal(np.float32(by[k]), vectors[k]))
    out = {
        "rows": a.segments * per, "segments": a.segments, "rewrite": a.rewrite,
        "idle_searches": len(idle), "idle_p50_ms": pct(idle, 0.5), "idle_p99_ms": pct(idle, 0.99),
        "idle_max_ms": pct(idle, 1.0),
        "during_searches": len(during), "during_p50_ms": pct(during, 0.5),
        "during_p99_ms": pct(during, 0.99), "during_max_ms": pct(during, 1.0),
        "p99_ratio": pct(during, 0.99) / max(pct(idle, 0.99), 1e-9),
        "compaction_window_s": (state["done_at"] or time.monotonic()) - started,
        "compactions": ran, "wrong_keys": wrong,
    }
    print(json.dumps(out))
    client.drop_collection(NAME)


if __name__ == "__main__":
    main()
