#!/usr/bin/env python3
"""Churn through pymilvus: the workload of `quiver bench churn` against a running server
(`quiver standalone`, or anything Milvus-compatible). Not part of CI (pytest collects only
test_*.py).

Round r (1-based) upserts every key 0..N in batches, key k taking base row
(k + r * 7919) % base_rows; then deletes a rotating slice of D = ceil(deletes * N) keys
(round r deletes [(r * D) % N, ...), wrapping; they come back with the next round's upserts);
then flushes (not with --no-flush). Then it measures and prints one JSON object per line:
  round, upserts_total (probes and their restores included),
  rss_bytes        VmRSS of --pid (null without it),
  data_dir_bytes   file sizes under --data-dir, recursively, each file once (null without it),
  segments         segment files (*.seg) under --data-dir/objects/segments, every collection
                   of the server (a standalone data dir; null without --data-dir),
  search_p50_ms / search_p99_ms    --searches top-10 searches, Eventually, the first base
                                   vectors as queries, one by one,
  visible_p50_ms / visible_p99_ms  --probes probes: upsert a live key with another vector,
                                   then Session searches for it until it is returned; upsert
                                   acknowledged -> returned (the key's vector of the round is
                                   put back after the probes),
  round_secs       the round's upserts, deletes and flush.
Then a summary line: last / round-1 ratios (rss_ratio, disk_ratio, search_p50_ratio) and an
exact check (count Strong == N - D, every live key holds its last vector bit for bit, no key of
the last deleted slice returns): "verified", "first_wrong"; exit status 1 when it fails.

Example (a server started with `quiver standalone --data-dir /tmp/q --listen 127.0.0.1:19530`):
  target/pymilvus-venv-2.5/bin/python tests/pymilvus/bench_churn.py --uri http://127.0.0.1:19530 \\
      --pid $(pgrep -f 'quiver standalone') --data-dir /tmp/q --keys 2000 --rounds 5
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from pymilvus import DataType, MilvusClient

ROUND_STRIDE = 7919
VERIFY_CHUNK = 1000


def read_fvecs(path):
    a = np.fromfile(path, dtype=np.int32)
    d = int(a[0])
    return a.reshape(-1, d + 1)[:, 1:].copy().view(np.float32)


def pct(sorted_secs, p):
    """The value at fraction p of sorted durations in ms (the bench's rule; 0 if none)."""
    if not sorted_secs:
        return 0.0
    i = min(int(len(sorted_secs) * p), len(sorted_secs) - 1)
    return sorted_secs[i] * 1e3


def timed(seconds, call):
    """Calls `call(i)` for i = 0, 1, ... one at a time for `seconds`: q/s and p50 / p99 (ms)."""
    lat, i = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        call(i)
        lat.append(time.perf_counter() - t)
        i += 1
    lat.sort()
    return {"qps": round(len(lat) / seconds, 1), "p50_ms": pct(lat, 0.5),
            "p99_ms": pct(lat, 0.99)}


def rss_bytes(pid):
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def dir_bytes(root):
    if root is None:
        return None
    total = 0
    seen = set()  # a cached segment is a hard link to its object's file: counted once
    for d, _, files in os.walk(root):
        for f in files:
            try:
                st = os.lstat(os.path.join(d, f))
            except FileNotFoundError:  # a WAL object truncated while we walk
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def segment_files(root):
    if root is None:
        return None
    return sum(
        1 for _, _, files in os.walk(Path(root) / "objects" / "segments") for f in files if f.endswith(".seg")
    )


class Workload:
    def __init__(self, base, keys, deleted):
        self.base, self.keys, self.deleted = base, keys, deleted
        self.rows = base.shape[0]

    def version(self, key, rnd):
        return (key + rnd * ROUND_STRIDE) % self.rows

    def deleted_from(self, rnd):
        return (rnd * self.deleted) % self.keys

    def is_deleted(self, key, rnd):
        return (key + self.keys - self.deleted_from(rnd)) % self.keys < self.deleted

    def deleted_keys(self, rnd):
        f = self.deleted_from(rnd)
        return [(f + i) % self.keys for i in range(self.deleted)]

    def probe_key(self, rnd, p, probes):
        live = self.keys - self.deleted
        return (self.deleted_from(rnd) + self.deleted + p * live // max(probes, 1)) % self.keys

    def rows_of(self, keys, rnd):
        return [{"id": k, "vector": self.base[self.version(k, rnd)].tolist()} for k in keys]


def probe_round(client, name, work, rnd, probes):
    if work.deleted == work.keys:
        return []
    keys = [work.probe_key(rnd, p, probes) for p in range(probes)]
    lat = []
    for k in keys:
        other = (work.version(k, rnd) + work.rows // 2 + 1) % work.rows
        v = work.base[other].tolist()
        client.upsert(name, [{"id": k, "vector": v}])
        acked = time.perf_counter()
        while True:
            res = client.search(name, data=[v], limit=10, consistency_level="Session")
            if any(h["id"] == k for h in res[0]):
                break
            if time.perf_counter() - acked > 30:
                raise SystemExit(f"round {rnd}: key {k} upserted by a probe not returned after 30 s")
        lat.append(time.perf_counter() - acked)
    for i in range(0, len(keys), VERIFY_CHUNK):
        client.upsert(name, work.rows_of(keys[i : i + VERIFY_CHUNK], rnd))
    return sorted(lat)


def first_wrong_key(client, name, work, last):
    for start in range(0, work.keys, VERIFY_CHUNK):
        keys = list(range(start, min(work.keys, start + VERIFY_CHUNK)))
        rows = client.query(
            name,
            filter=f"id in {keys}",
            output_fields=["id", "vector"],
            limit=len(keys),
            consistency_level="Strong",
        )
        found = {r["id"]: r.get("vector") for r in rows}
        for k in keys:
            got = found.get(k)
            if work.is_deleted(k, last):
                if k in found:
                    return f"key {k}: deleted in the last round, but returned"
            elif k not in found:
                return f"key {k}: missing"
            elif got is None:
                return f"key {k}: returned without its vector"
            else:
                want = work.base[work.version(k, last)]
                if not np.array_equal(np.asarray(got, dtype=np.float32).view(np.uint32), want.view(np.uint32)):
                    return f"key {k}: holds another vector than its last version"
    return None


def emit(obj):
    print(json.dumps(obj), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--uri", default="http://127.0.0.1:19530")
    p.add_argument("--pid", type=int, help="the server's process id (RSS from /proc/PID/status)")
    p.add_argument("--data-dir", help="the server's data directory (bytes on disk, segment files)")
    p.add_argument("--base", default="/work/shared/datasets/glove50-100k", help=".fvecs file, or a dir with base.fvecs")
    p.add_argument("--keys", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--deletes", type=float, default=0.05)
    p.add_argument("--searches", type=int, default=200)
    p.add_argument("--probes", type=int, default=20)
    p.add_argument("--metric", default="l2")
    p.add_argument("--no-flush", action="store_true")
    p.add_argument("--collection", default="bench_churn", help="dropped first if it exists")
    p.add_argument("--keep", action="store_true", help="keep the collection at the end")
    args = p.parse_args()
    if args.keys <= 0 or args.rounds <= 0 or args.batch <= 0:
        p.error("--keys, --rounds and --batch must be > 0")
    if not 0.0 <= args.deletes <= 1.0:
        p.error("--deletes must be a fraction in [0, 1]")

    base_path = Path(args.base)
    if base_path.is_dir():
        base_path = base_path / "base.fvecs"
    base = read_fvecs(base_path)
    dim = base.shape[1]
    work = Workload(base, args.keys, min(args.keys, math.ceil(args.deletes * args.keys)))
    queries = [base[q % work.rows].tolist() for q in range(args.searches)]

    client = MilvusClient(args.uri)
    name = args.collection
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="HNSW", metric_type=args.metric.upper(), params={"M": 16, "efConstruction": 200})
    client.create_collection(name, schema=schema, index_params=index)

    upserts_total = 0
    rounds = []
    for rnd in range(1, args.rounds + 1):
        start = time.perf_counter()
        for i in range(0, args.keys, args.batch):
            keys = range(i, min(args.keys, i + args.batch))
            client.upsert(name, work.rows_of(keys, rnd))
            upserts_total += len(keys)
        deleted = work.deleted_keys(rnd)
        for i in range(0, len(deleted), args.batch):
            client.delete(name, ids=deleted[i : i + args.batch])
        if not args.no_flush:
            client.flush(name)
        secs = time.perf_counter() - start
        search = []
        for q in queries:
            t = time.perf_counter()
            client.search(name, data=[q], limit=10, consistency_level="Eventually")
            search.append(time.perf_counter() - t)
        search.sort()
        visible = probe_round(client, name, work, rnd, args.probes)
        upserts_total += 2 * len(visible)
        r = {
            "phase": "round",
            "round": rnd,
            "upserts_total": upserts_total,
            "rss_bytes": rss_bytes(args.pid),
            "data_dir_bytes": dir_bytes(args.data_dir),
            "segments": segment_files(args.data_dir),
            "search_p50_ms": pct(search, 0.5),
            "search_p99_ms": pct(search, 0.99),
            "visible_p50_ms": pct(visible, 0.5),
            "visible_p99_ms": pct(visible, 0.99),
            "round_secs": secs,
        }
        emit(r)
        rounds.append(r)

    first, last = rounds[0], rounds[-1]

    def ratio(key):
        a, b = last[key], first[key]
        return a / b if a is not None and b else None

    count = client.query(name, output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    expected = work.keys - work.deleted
    wrong = f"count {count}, expected {expected}" if count != expected else first_wrong_key(client, name, work, args.rounds)
    emit(
        {
            "phase": "summary",
            "rounds": args.rounds,
            "keys": work.keys,
            "deleted": work.deleted,
            "upserts_total": upserts_total,
            "segments": last["segments"],
            "rss_ratio": ratio("rss_bytes"),
            "disk_ratio": ratio("data_dir_bytes"),
            "search_p50_ratio": ratio("search_p50_ms"),
            "count": count,
            "expected_count": expected,
            "verified": wrong is None,
            "first_wrong": wrong,
        }
    )
    if not args.keep:
        client.drop_collection(name)
    client.close()
    if wrong is not None:
        print(f"verification failed: {wrong}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
