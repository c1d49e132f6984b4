#!/usr/bin/env python3
"""Search and freshness through pymilvus: Quiver (`quiver standalone`) next to milvus-lite,
same data, same client code, one run. Started by bench.sh (which builds and starts the
server); not part of CI.

For each target:
  1. a collection `id` INT64 + `vector` FLOAT_VECTOR(dim), HNSW M=16 efConstruction=200, L2
     (the glove sets are unit vectors: L2 order == cosine order == the ground truth's);
  2. the base vectors inserted in batches, then flush (seal + index build) and load;
  3. search: every query once, one client, sequential, nq=1, limit 10, ef=80, default
     consistency; queries/s over the whole loop, p50/p99 of each call, recall@10 against the
     ground truth; a short warm-up first;
  4. insert -> visible: insert one new row, then search for its vector (Strong consistency)
     until it is the top hit; the time from the insert call to the end of that search, per
     round (the row is new each round).
Prints a table, and the JSON summary (also written to --json FILE).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from pymilvus import DataType, MilvusClient


def read_vecs(path, dtype):
    a = np.fromfile(path, dtype=np.int32)
    d = a[0]
    a = a.reshape(-1, d + 1)[:, 1:].copy()
    return a.view(np.float32) if dtype == "f" else a


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    lo, hi = int(np.floor(k)), int(np.ceil(k))
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ms(x):
    return round(x * 1000.0, 3)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run_target(label, uri, base, queries, gt, args, fresh_rounds, max_queries):
    n, dim = base.shape
    out = {"target": label, "uri": uri}
    client = MilvusClient(uri)
    name = "bench_glove"
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    index = client.prepare_index_params()
    index.add_index(
        "vector",
        index_type="HNSW",
        metric_type="L2",
        params={"M": args.m, "efConstruction": args.ef_construction},
    )
    client.create_collection(name, schema=schema, index_params=index)

    log(f"[{label}] inserting {n} x {dim} in batches of {args.batch}")
    t0 = time.perf_counter()
    for start in range(0, n, args.batch):
        stop = min(n, start + args.batch)
        client.insert(
            name,
            [{"id": i, "vector": base[i]} for i in range(start, stop)],
        )
    out["insert_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    client.flush(name)
    client.load_collection(name)
    out["flush_index_load_s"] = round(time.perf_counter() - t0, 2)
    out["rows"] = client.get_collection_stats(name)["row_count"]
    log(f"[{label}] insert {out['insert_s']} s, flush+index+load {out['flush_index_load_s']} s")

    sp = {"metric_type": "L2", "params": {"ef": args.ef}}
    nq = min(len(queries), max_queries)
    for q in queries[: args.warmup]:
        client.search(name, data=[q], limit=args.k, search_params=sp)
    lat, found = [], []
    log(f"[{label}] searching {nq} queries one by one (ef={args.ef}, k={args.k})")
    t_all = time.perf_counter()
    for i in range(nq):
        t = time.perf_counter()
        res = client.search(name, data=[queries[i]], limit=args.k, search_params=sp)
        lat.append(time.perf_counter() - t)
        found.append([h["id"] for h in res[0]])
    wall = time.perf_counter() - t_all
    hits = sum(len(set(f) & set(gt[i, : args.k].tolist())) for i, f in enumerate(found))
    out["search"] = {
        "queries": nq,
        "qps": round(nq / wall, 1),
        "p50_ms": ms(pct(lat, 50)),
        "p99_ms": ms(pct(lat, 99)),
        "mean_ms": ms(statistics.fmean(lat)),
        "recall_at_10": round(hits / (nq * args.k), 4),
    }
    log(f"[{label}] search {out['search']}")

    rng = np.random.default_rng(20261122)
    insert_lat, visible_lat, after_ack, tries = [], [], [], []
    log(f"[{label}] insert -> visible, {fresh_rounds} rounds")
    for r in range(fresh_rounds):
        v = rng.standard_normal(dim).astype(np.float32)
        v /= np.linalg.norm(v)
        key = 10_000_000 + r
        t = time.perf_counter()
        client.insert(name, [{"id": key, "vector": v}])
        t_ack = time.perf_counter()
        attempts = 0
        while True:
            attempts += 1
            res = client.search(
                name, data=[v], limit=1, search_params=sp, consistency_level="Strong"
            )
            if res[0] and res[0][0]["id"] == key:
                break
            if time.perf_counter() - t > 30:
                raise SystemExit(f"[{label}] row {key} not visible after 30 s")
        done = time.perf_counter()
        insert_lat.append(t_ack - t)
        visible_lat.append(done - t)
        after_ack.append(done - t_ack)
        tries.append(attempts)
    out["insert_to_visible"] = {
        "rounds": fresh_rounds,
        "p50_ms": ms(pct(visible_lat, 50)),
        "p99_ms": ms(pct(visible_lat, 99)),
        "max_ms": ms(max(visible_lat)) if visible_lat else None,
        "insert_ack_p50_ms": ms(pct(insert_lat, 50)),
        "insert_ack_p99_ms": ms(pct(insert_lat, 99)),
        "ack_to_visible_p50_ms": ms(pct(after_ack, 50)),
        "ack_to_visible_p99_ms": ms(pct(after_ack, 99)),
        "searches_per_round_max": max(tries) if tries else None,
        "found_by_first_search": sum(1 for a in tries if a == 1),
    }
    log(f"[{label}] insert->visible {out['insert_to_visible']}")
    client.drop_collection(name)
    client.close()
    return out


def table(results):
    rows = [
        ("search q/s (1 client, nq=1)", lambda r: f"{r['search']['qps']:,.1f}"),
        ("search p50 ms", lambda r: f"{r['search']['p50_ms']:.2f}"),
        ("search p99 ms", lambda r: f"{r['search']['p99_ms']:.2f}"),
        ("recall@10 (ef=80)", lambda r: f"{r['search']['recall_at_10']:.3f}"),
        ("queries", lambda r: str(r["search"]["queries"])),
        ("insert -> visible p50 ms", lambda r: f"{r['insert_to_visible']['p50_ms']:.2f}"),
        ("insert -> visible p99 ms", lambda r: f"{r['insert_to_visible']['p99_ms']:.2f}"),
        ("  insert ack p50 / p99 ms", lambda r: f"{r['insert_to_visible']['insert_ack_p50_ms']:.2f} / {r['insert_to_visible']['insert_ack_p99_ms']:.2f}"),
        ("  ack -> found p50 / p99 ms", lambda r: f"{r['insert_to_visible']['ack_to_visible_p50_ms']:.2f} / {r['insert_to_visible']['ack_to_visible_p99_ms']:.2f}"),
        ("  rounds", lambda r: str(r["insert_to_visible"]["rounds"])),
        ("  found by the first search", lambda r: str(r["insert_to_visible"]["found_by_first_search"])),
        ("insert all rows s (batches)", lambda r: f"{r['insert_s']:.1f}"),
        ("flush + index + load s", lambda r: f"{r['flush_index_load_s']:.1f}"),
    ]
    heads = [r["target"] for r in results]
    w0 = max(len(a) for a, _ in rows)
    ws = [max(14, len(h)) for h in heads]
    lines = ["| " + "what".ljust(w0) + " | " + " | ".join(h.rjust(w) for h, w in zip(heads, ws)) + " |"]
    lines.append("|" + "-" * (w0 + 2) + "|" + "|".join("-" * (w + 2) for w in ws) + "|")
    for label, f in rows:
        lines.append("| " + label.ljust(w0) + " | " + " | ".join(f(r).rjust(w) for r, w in zip(results, ws)) + " |")
    if len(results) == 2 and results[1]["search"]["qps"] > 0:
        a, b = results
        lines.append("")
        lines.append(
            f"{a['target']} / {b['target']}: {a['search']['qps'] / b['search']['qps']:.1f}x queries/s, "
            f"p99 {b['search']['p99_ms'] / a['search']['p99_ms']:.1f}x lower"
        )
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="/work/shared/datasets/glove50-100k", help="dir with base.fvecs, query.fvecs, groundtruth.ivecs")
    p.add_argument("--quiver-uri", help="e.g. http://127.0.0.1:19530 (a running quiver standalone)")
    p.add_argument("--lite-db", help="milvus-lite database file (e.g. /tmp/bench.db); omit to skip milvus-lite")
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--ef", type=int, default=80)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch", type=int, default=5000)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--queries", type=int, default=1000, help="queries per target (at most the file's)")
    p.add_argument("--lite-queries", type=int, default=None, help="queries for milvus-lite (default: --queries)")
    p.add_argument("--fresh-rounds", type=int, default=1000)
    p.add_argument("--lite-fresh-rounds", type=int, default=None, help="insert->visible rounds for milvus-lite (default: --fresh-rounds)")
    p.add_argument("--json", help="also write the JSON summary to this file")
    args = p.parse_args()

    data = Path(args.data)
    base = read_vecs(data / "base.fvecs", "f")
    queries = read_vecs(data / "query.fvecs", "f")
    gt = read_vecs(data / "groundtruth.ivecs", "i")
    import pymilvus

    summary = {
        "dataset": data.name,
        "n": int(base.shape[0]),
        "dim": int(base.shape[1]),
        "index": {"type": "HNSW", "M": args.m, "efConstruction": args.ef_construction, "metric": "L2"},
        "ef": args.ef,
        "k": args.k,
        "pymilvus": pymilvus.__version__,
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "results": [],
    }
    if args.quiver_uri:
        summary["results"].append(
            run_target("quiver", args.quiver_uri, base, queries, gt, args, args.fresh_rounds, args.queries)
        )
    if args.lite_db:
        try:
            import milvus_lite

            summary["milvus_lite"] = getattr(milvus_lite, "__version__", "?")
        except ImportError:
            summary["milvus_lite"] = None
        summary["results"].append(
            run_target(
                "milvus-lite",
                args.lite_db,
                base,
                queries,
                gt,
                args,
                args.lite_fresh_rounds if args.lite_fresh_rounds is not None else args.fresh_rounds,
                args.lite_queries if args.lite_queries is not None else args.queries,
            )
        )
    summary["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(table(summary["results"]))
    print()
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
