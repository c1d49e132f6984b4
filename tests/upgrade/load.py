"""Load and checks of the rolling upgrade test (tests/upgrade/run.sh).

Before the roll (every process runs the previous release): a collection with an HNSW index,
rows inserted and flushed. During the roll: searches without pause, 10 rows inserted every
20 ms and a flush every 3 s (so segments are sealed and indexed while old and new processes
serve together), through a client that knows both proxies (a call that fails on one is asked of
the other; it fails only when both fail). After it: 0 failed calls, every acknowledged row there
(Strong count and by key), and an HNSW_SQ collection created, written and searched.
"""
import json
import subprocess
import sys
import threading
import time

import numpy as np
from pymilvus import DataType, MilvusClient

DIM = 16
NAME = "upgrade"


class TwoProxies:
    def __init__(self, addrs):
        self.clients = [MilvusClient(uri=f"http://{a}", timeout=10) for a in addrs]
        self.failovers = 0

    def call(self, method, *args, **kwargs):
        errors = []
        for i, c in enumerate(self.clients):
            try:
                out = getattr(c, method)(*args, **kwargs)
                if i > 0:
                    self.failovers += 1
                return out
            except Exception as e:  # noqa: BLE001 - any failure: ask the other proxy
                errors.append(f"{type(e).__name__}: {e}")
        raise RuntimeError(f"{method} failed on every proxy: {errors}")


def vectors(rng, n):
    return rng.standard_normal((n, DIM)).astype(np.float32)


def main():
    cluster_dir, new_bin = sys.argv[1], sys.argv[2]
    with open(f"{cluster_dir}/cluster.json") as f:
        procs = json.load(f)["processes"]
    proxies = [p["addr"] for p in procs if p["role"] == "proxy"]
    assert len(proxies) >= 2, f"the test needs two proxies: {proxies}"
    db = TwoProxies(proxies)
    rng = np.random.default_rng(5)

    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    index = db.clients[0].prepare_index_params()
    index.add_index(field_name="vec", index_type="HNSW", metric_type="L2",
                    params={"M": 8, "efConstruction": 64})
    db.call("create_collection", NAME, schema=schema, index_params=index)
    acked = set()
    first = vectors(rng, 3000)
    db.call("insert", NAME, [{"id": i, "vec": v.tolist()} for i, v in enumerate(first)])
    acked.update(range(3000))
    db.call("flush", NAME)
    db.call("load_collection", NAME)

    stop = threading.Event()
    stats = {"searches": 0, "search_failed": 0, "slowest_ms": 0.0, "inserts": 0,
             "insert_failed": 0, "flushes": 0, "flush_failed": 0, "errors": []}

    def searcher():
        q = vectors(np.random.default_rng(6), 64)
        i = 0
        while not stop.is_set():
            t = time.monotonic()
            try:
                hits = db.call("search", NAME, data=[q[i % 64].tolist()], limit=10)
                assert len(hits[0]) == 10, f"{len(hits[0])} hits"
                stats["searches"] += 1
            except Exception as e:  # noqa: BLE001
                stats["search_failed"] += 1
                stats["errors"].append(f"search: {e}")
            stats["slowest_ms"] = max(stats["slowest_ms"], (time.monotonic() - t) * 1e3)
            i += 1

    def writer():
        next_id, last_flush = 3000, time.monotonic()
        wrng = np.random.default_rng(7)
        while not stop.is_set():
            ids = list(range(next_id, next_id + 10))
            rows = [{"id": k, "vec": v.tolist()} for k, v in zip(ids, vectors(wrng, 10))]
            try:
                db.call("insert", NAME, rows)
                acked.update(ids)
                stats["inserts"] += 1
            except Exception as e:  # noqa: BLE001
                stats["insert_failed"] += 1
                stats["errors"].append(f"insert: {e}")
            next_id += 10
            if time.monotonic() - last_flush >= 3:
                last_flush = time.monotonic()
                try:
                    db.call("flush", NAME)
                    stats["flushes"] += 1
                except Exception as e:  # noqa: BLE001
                    stats["flush_failed"] += 1
                    stats["errors"].append(f"flush: {e}")
            time.sleep(0.02)

    threads = [threading.Thread(target=searcher), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    time.sleep(2)
    started = time.monotonic()
    roll = subprocess.run([new_bin, "cluster", "roll", "--dir", cluster_dir, "--json"],
                          capture_output=True, text=True)
    roll_s = time.monotonic() - started
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join()
    if roll.returncode != 0:
        sys.exit(f"cluster roll failed:\n{roll.stdout}\n{roll.stderr}")

    # Every acknowledged row is there, and nothing else.
    count = db.call("query", NAME, filter="", output_fields=["count(*)"],
                    consistency_level="Strong")[0]["count(*)"]
    keys = sorted(acked)
    found = set()
    for i in range(0, len(keys), 1000):
        chunk = keys[i:i + 1000]
        rows = db.call("query", NAME, filter=f"id in {chunk}", output_fields=["id"],
                       consistency_level="Strong")
        found.update(r["id"] for r in rows)
    missing = len(acked - found)

    # What the new release serves after the roll: an HNSW_SQ collection.
    sq = "upgrade_sq"
    sq_index = db.clients[0].prepare_index_params()
    sq_index.add_index(field_name="vec", index_type="HNSW_SQ", metric_type="L2",
                       params={"M": 8, "efConstruction": 64, "sq_type": "SQ8"})
    db.call("create_collection", sq, schema=schema, index_params=sq_index)
    base = vectors(rng, 500)
    db.call("insert", sq, [{"id": i, "vec": v.tolist()} for i, v in enumerate(base)])
    db.call("flush", sq)
    db.call("load_collection", sq)
    hit = db.call("search", sq, data=[base[42].tolist()], limit=1,
                  consistency_level="Strong")[0][0]

    report = {"roll_s": round(roll_s, 1), "roll": roll.stdout.strip()[-300:],
              "acked_rows": len(acked), "count": count, "missing": missing,
              "failovers": db.failovers, "hnsw_sq_nearest": hit["id"],
              **{k: v for k, v in stats.items() if k != "errors"}}
    print(json.dumps(report))
    problems = stats["errors"][:5]
    if stats["search_failed"] or stats["insert_failed"] or stats["flush_failed"]:
        problems.append("failed calls during the roll")
    if count != len(acked) or missing:
        problems.append(f"{missing} acknowledged rows missing, count {count} of {len(acked)}")
    if hit["id"] != 42:
        problems.append(f"HNSW_SQ search after the roll returned {hit['id']}, not 42")
    if stats["searches"] == 0 or stats["inserts"] == 0:
        problems.append("no load ran during the roll")
    if problems:
        sys.exit("rolling upgrade: " + "; ".join(problems))


if __name__ == "__main__":
    main()
