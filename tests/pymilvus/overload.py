"""Overload of a `quiver standalone` with a memory limit, through pymilvus (not in CI: it runs
for minutes and wants a release build).

The server runs with `--max-memory-mib LIMIT`. Writer processes insert large batches as fast as
they can (several times what sealing keeps up with), while 64 threads (in two processes) run
large searches (limit 1,000, 16 queries each) without pause. A sampler reads the server's resident memory
every 50 ms. Refusals are counted by Milvus code (8 = rate limit: pymilvus backs off, and a
writer that sees one after pymilvus's own retries waits and sends the batch again — it is not
acknowledged). At the end every acknowledged row must be there.

    target/pymilvus-venv-2.5/bin/python tests/pymilvus/overload.py --bin target/release/quiver

Prints one JSON object: the limit, the peak and p99 resident memory, rows acknowledged and
refusals by code, searches (count, failures by code, p50/p99 ms), whether the server was still
running, and the final exact check.
"""

import argparse
import collections
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

import standalone_proc

DIM = 128


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else None


def writer(uri, w, batch, stop, out):
    """Inserts `batch` rows at a time as fast as the server takes them (column data, so the
    client is not the bottleneck). A refused batch is not acknowledged: it is sent again."""
    cl = MilvusClient(uri)
    rng = np.random.default_rng(w)
    next_id = w * 1_000_000_000
    acked, refused, write_ms = [], collections.Counter(), []
    while not stop.is_set():
        ids = list(range(next_id, next_id + batch))
        vec = rng.random((batch, DIM), dtype=np.float32)
        rows = [{"id": i, "vector": vec[k]} for k, i in enumerate(ids)]
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                cl.insert("load", rows, timeout=10)
                write_ms.append((time.perf_counter() - t0) * 1000)
                acked.extend(ids)
                next_id += batch
                break
            except MilvusException as e:
                refused[e.code] += 1
                time.sleep(0.2)
            except grpc.RpcError as e:  # the client's deadline: outcome unknown, sent again
                refused[str(e.code())] += 1
    out.put({"acked": acked, "refused": dict(refused), "write_ms": write_ms})


def searchers(uri, s, threads, stop, out):
    """`threads` threads of large searches (16 queries, limit 1,000, ef 1,000) without pause."""
    lock = threading.Lock()
    search_ms, search_fail = [], collections.Counter()

    def one(t):
        cl = MilvusClient(uri)
        rng = np.random.default_rng(1000 + s * 1000 + t)
        while not stop.is_set():
            q = rng.random((16, DIM), dtype=np.float32).tolist()
            t0 = time.perf_counter()
            try:
                cl.search("load", data=q, limit=1000, search_params={"params": {"ef": 1000}},
                          timeout=30)
                with lock:
                    search_ms.append((time.perf_counter() - t0) * 1000)
            except MilvusException as e:
                with lock:
                    search_fail[e.code] += 1
            except grpc.RpcError as e:
                with lock:
                    search_fail[str(e.code())] += 1

    ts = [threading.Thread(target=one, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put({"search_ms": search_ms, "search_fail": dict(search_fail)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--limit-mib", type=int, default=512)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--searchers", type=int, default=64)
    ap.add_argument("--search-procs", type=int, default=2)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="quiver-overload-")
    proc, port = standalone_proc.start(
        a.bin, os.path.join(tmp, "data"), os.path.join(tmp, "server.log"),
        args=["--max-memory-mib", str(a.limit_mib)])
    uri = f"http://127.0.0.1:{port}"
    c = MilvusClient(uri)
    schema = c.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    idx = c.prepare_index_params()
    idx.add_index("vector", index_type="HNSW", metric_type="L2",
                  params={"M": 16, "efConstruction": 100})
    c.create_collection("load", schema=schema, index_params=idx)
    c.insert("load", [{"id": -i - 1, "vector": [0.0] * DIM} for i in range(1000)])

    # Writers and searchers run in processes of their own: in one Python process the GIL, not
    # the server, would set the pace.
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=writer, args=(uri, w, a.batch, stop, out))
             for w in range(a.writers)]
    per = max(1, a.searchers // a.search_procs)
    procs += [ctx.Process(target=searchers, args=(uri, s, per, stop, out))
              for s in range(a.search_procs)]
    for p in procs:
        p.start()
    rss = []
    t_end = time.monotonic() + a.seconds
    while time.monotonic() < t_end and proc.poll() is None:
        rss.append(rss_mib(proc.pid))
        time.sleep(0.05)
    stop.set()
    acked, refused, write_ms = [], collections.Counter(), []
    search_ms, search_fail = [], collections.Counter()
    for _ in procs:
        r = out.get(timeout=120)
        acked.extend(r.get("acked", []))
        refused.update(r.get("refused", {}))
        write_ms.extend(r.get("write_ms", []))
        search_ms.extend(r.get("search_ms", []))
        search_fail.update(r.get("search_fail", {}))
    for p in procs:
        p.join(timeout=60)
    alive = proc.poll() is None
    missing = None
    catch_up_s = None
    if alive:
        # The replicas may lag behind the ingest: the check waits until they answer.
        t0 = time.monotonic()
        got = set()
        chunks = [acked[i:i + 10_000] for i in range(0, len(acked), 10_000)]
        while chunks and time.monotonic() - t0 < 600:
            part = chunks[0]
            try:
                rows = c.query("load", filter=f"id in {part}", output_fields=["id"],
                               limit=len(part), timeout=60)
            except MilvusException:
                time.sleep(1)
                continue
            if catch_up_s is None:
                catch_up_s = round(time.monotonic() - t0, 1)
            got.update(r["id"] for r in rows)
            chunks.pop(0)
        missing = len(set(acked) - got) if not chunks else None
    print(json.dumps({
        "limit_mib": a.limit_mib,
        "rss_peak_mib": round(max(rss), 1) if rss else None,
        "rss_p99_mib": round(pct(rss, 0.99), 1) if rss else None,
        "writers": a.writers, "batch": a.batch, "seconds": a.seconds,
        "rows_acknowledged": len(acked),
        "rows_per_s": round(len(acked) / a.seconds),
        "write_p50_ms": round(pct(write_ms, 0.5), 1) if write_ms else None,
        "write_p99_ms": round(pct(write_ms, 0.99), 1) if write_ms else None,
        "write_max_ms": round(max(write_ms), 1) if write_ms else None,
        "refusals_by_code": dict(refused),
        "searches": len(search_ms), "search_failures_by_code": dict(search_fail),
        "search_p50_ms": round(pct(search_ms, 0.5), 1) if search_ms else None,
        "search_p99_ms": round(pct(search_ms, 0.99), 1) if search_ms else None,
        "server_alive": alive,
        "final_check_waited_s": catch_up_s,
        "acknowledged_missing": missing,
    }), flush=True)
    if alive:
        try:
            standalone_proc.stop(proc, timeout=60)
        except Exception:
            print("the server did not stop within 60 s of SIGTERM; killed", file=sys.stderr)
            proc.kill()
    return 0 if alive and missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
