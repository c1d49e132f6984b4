"""A full disk under a running `quiver standalone`, through pymilvus (not in CI: it mounts a
tmpfs, so it needs root).

The data dir lives on a small tmpfs. A filler file takes part of it; inserts run until the
disk is full while another client searches without pause. Then the filler is deleted and the
script measures how long inserts take to work again, without a restart. At the end every
acknowledged row must be there, and no refused one.

    target/pymilvus-venv-2.5/bin/python tests/pymilvus/disk_full.py --bin target/release/quiver

Prints one JSON object: refusals (count, codes, latency of each refused insert), searches
during the full disk (count, failures, p50/p99/max ms), seconds from freeing space to the first
insert that works, and the final exact check.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

import standalone_proc

DIM = 64
BATCH = 2000


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--size-mib", type=int, default=128, help="tmpfs size")
    p.add_argument("--filler-mib", type=int, default=96,
                   help="freed to give space back (room to seal what the WAL holds)")
    args = p.parse_args()

    mnt = tempfile.mkdtemp(prefix="quiver-disk-full-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.size_mib}m", "tmpfs", mnt],
                   check=True)
    proc = None
    try:
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (args.filler_mib << 20))
        log_path = os.path.join(tempfile.gettempdir(), "quiver-disk-full.log")
        proc, port = standalone_proc.start(args.bin, os.path.join(mnt, "data"), log_path)
        uri = f"http://127.0.0.1:{port}"
        client = MilvusClient(uri)
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
        index = client.prepare_index_params()
        index.add_index("vec", index_type="HNSW", metric_type="L2",
                        params={"M": 16, "efConstruction": 64})
        client.create_collection("full", schema=schema, index_params=index)
        rng = np.random.default_rng(7)

        stop = threading.Event()
        searches = {"ok": [], "failed": 0, "errors": []}

        def search_loop():
            c = MilvusClient(uri)
            while not stop.is_set():
                q = rng.random((1, DIM), dtype=np.float32).tolist()
                t = time.perf_counter()
                try:
                    c.search("full", data=q, limit=10, search_params={"ef": 64},
                             timeout=5)
                    searches["ok"].append((time.perf_counter() - t) * 1000)
                except MilvusException as e:
                    searches["failed"] += 1
                    searches["errors"].append(str(e)[:200])

        acked = []
        refused = []
        codes = set()
        next_id = 0
        full_at = None
        searcher = None
        # Fill the disk.
        while True:
            ids = list(range(next_id, next_id + BATCH))
            vecs = rng.random((BATCH, DIM), dtype=np.float32)
            t = time.perf_counter()
            try:
                client.insert("full", [{"id": i, "vec": v.tolist()} for i, v in zip(ids, vecs)],
                              timeout=30)
                acked.extend(ids)
            except MilvusException as e:
                refused.append((time.perf_counter() - t) * 1000)
                codes.add(e.code)
                full_at = time.monotonic()
                next_id += BATCH
                break
            next_id += BATCH
            if searcher is None and len(acked) >= 10 * BATCH:
                searcher = threading.Thread(target=search_loop)
                searcher.start()
        if searcher is None:
            searcher = threading.Thread(target=search_loop)
            searcher.start()
        # Stay full for 5 s: every insert refused, searches on.
        ok_before = len(searches["ok"])
        while time.monotonic() - full_at < 5:
            ids = list(range(next_id, next_id + 100))
            t = time.perf_counter()
            try:
                client.insert("full", [{"id": i, "vec": [0.5] * DIM} for i in ids], timeout=30)
                acked.extend(ids)
            except MilvusException as e:
                refused.append((time.perf_counter() - t) * 1000)
                codes.add(e.code)
            next_id += 100
            time.sleep(0.1)
        during = searches["ok"][ok_before:]
        # Give space back; time until an insert works.
        os.remove(filler)
        freed = time.monotonic()
        resumed = None
        while time.monotonic() - freed < 60:
            ids = list(range(next_id, next_id + 100))
            try:
                client.insert("full", [{"id": i, "vec": [0.25] * DIM} for i in ids], timeout=30)
                acked.extend(ids)
                resumed = time.monotonic() - freed
                next_id += 100
                break
            except MilvusException as e:
                codes.add(e.code)
                next_id += 100
                time.sleep(0.05)
        stop.set()
        searcher.join()
        # The segments of what the WAL holds need room too: flush until it can.
        flushed = None
        while flushed is None and time.monotonic() - freed < 120:
            try:
                client.flush("full", timeout=60)
                flushed = time.monotonic() - freed
            except MilvusException as e:
                codes.add(e.code)
                time.sleep(0.5)
        count = client.query("full", filter="", output_fields=["count(*)"],
                             consistency_level="Strong")[0]["count(*)"]
        present = set()
        for start_ in range(0, next_id, 10000):
            rows = client.query("full", filter=f"id >= {start_} and id < {start_ + 10000}",
                                output_fields=["id"], limit=16384, consistency_level="Strong")
            present.update(r["id"] for r in rows)
        out = {
            "tmpfs_mib": args.size_mib,
            "acknowledged": len(acked),
            "refused_inserts": len(refused),
            "refusal_codes": sorted(codes),
            "refusal_ms": {"p50": pct(refused, 0.5), "max": max(refused) if refused else None},
            "searches_while_full": {"ok": len(during), "failed": searches["failed"],
                                    "p50_ms": pct(during, 0.5), "p99_ms": pct(during, 0.99),
                                    "max_ms": max(during) if during else None},
            "search_errors": searches["errors"][:3],
            "seconds_to_resume": resumed,
            "seconds_to_flush": flushed,
            "count": count,
            "missing_acknowledged": len(set(acked) - present),
            "unacknowledged_present": len(present - set(acked)),
        }
        print(json.dumps(out))
        ok = (resumed is not None and searches["failed"] == 0 and count == len(acked)
              and out["missing_acknowledged"] == 0)
        return 0 if ok else 1
    finally:
        if proc is not None:
            standalone_proc.stop(proc)
        subprocess.run(["umount", mnt], check=False)
        os.rmdir(mnt)


if __name__ == "__main__":
    sys.exit(main())
