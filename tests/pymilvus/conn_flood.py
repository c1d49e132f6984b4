"""Silent connections against a running `quiver standalone` (not in CI: 10,000 sockets).

Starts the server with a descriptor limit below N (`prlimit`), opens N TCP connections to it
that never send a byte (no HTTP/2 preface), keeps them open, and meanwhile times new pymilvus
clients: connect, then one search. Prints one JSON object
with the new clients' latencies (ms) while the flood is held, and how many of the silent
connections the server had closed by the end.

    target/pymilvus-venv-2.5/bin/python tests/pymilvus/conn_flood.py --bin target/release/quiver
"""

import argparse
import json
import os
import resource
import socket
import sys
import tempfile
import time

from pymilvus import DataType, MilvusClient

import standalone_proc


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--silent", type=int, default=10_000)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--server-nofile", type=int, default=4096,
                   help="the server's descriptor limit (soft and hard), below --silent")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    tmp = tempfile.mkdtemp(prefix="quiver-flood-")
    nofile = f"--nofile={args.server_nofile}:{args.server_nofile}"
    proc, port = standalone_proc.start(args.bin, os.path.join(tmp, "data"),
                                       os.path.join(tmp, "server.log"), wrap=["prlimit", nofile])
    try:
        uri = f"http://127.0.0.1:{port}"
        c = MilvusClient(uri)
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
        index = c.prepare_index_params()
        index.add_index("vec", index_type="HNSW", metric_type="L2")
        c.create_collection("flood", schema=schema, index_params=index)
        c.insert("flood", [{"id": i, "vec": [float(i)] * 8} for i in range(100)])
        c.close()

        silent = []
        unanswered = 0

        def flood(n):
            nonlocal unanswered
            for _ in range(n):
                s = socket.socket()
                s.settimeout(0.2)
                try:
                    s.connect(("127.0.0.1", port))
                    silent.append(s)
                except OSError:  # the server no longer accepts: the finding, counted
                    unanswered += 1
                    s.close()

        t0 = time.monotonic()
        flood(args.silent)
        opened_s = time.monotonic() - t0

        lat = []
        failed = 0
        for i in range(args.clients):
            t = time.perf_counter()
            try:
                client = MilvusClient(uri, timeout=5)
                hits = client.search("flood", data=[[1.0] * 8], limit=3, timeout=5)
                lat.append((time.perf_counter() - t) * 1000)
                assert len(hits[0]) == 3
                client.close()
            except Exception:  # noqa: BLE001 - a client that cannot get in is the finding
                failed += 1
            # More silent ones keep arriving while clients come.
            flood(100)

        closed = 0
        for s in silent:
            s.setblocking(False)
            try:
                closed += int(s.recv(1) == b"")
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        lat.sort()
        lat = lat or [float("inf")]
        print(json.dumps({
            "server_nofile": args.server_nofile,
            "new_clients_failed": failed,
            "silent_connections": len(silent),
            "silent_connects_not_answered": unanswered,
            "seconds_to_open_them": round(opened_s, 2),
            "closed_by_server": closed,
            "new_client_connect_and_search_ms": {
                "p50": round(lat[len(lat) // 2], 2), "max": round(lat[-1], 2)},
        }))
        for s in silent:
            s.close()
        return 0 if failed == 0 and lat[-1] < 100 else 1
    finally:
        standalone_proc.stop(proc)


if __name__ == "__main__":
    sys.exit(main())
