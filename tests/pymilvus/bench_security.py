"""What authentication and TLS cost a pymilvus search client (not run by CI).

Four `quiver standalone` processes from the same binary, same data: plain (auth off, no
TLS), auth (`--auth`, a service user's token), tls (one-way TLS) and auth+tls. Rounds
alternate between them so all see the same machine; each round runs `--queries` searches from
one client (and then from `--threads` clients at once) and records q/s and per-request
latency. Prints medians over rounds and the secure/plain ratios.

    target/pymilvus-venv-2.5/bin/python tests/pymilvus/bench_security.py --bin target/release/quiver
"""

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time

import numpy as np
from pymilvus import DataType, MilvusClient

import standalone_proc
from test_tls import issue, make_ca

ROOT_PASSWORD = "bench-root-pass"


def certs(d):
    make_ca(d, "ca")
    cert, key = issue(d, "ca", "server",
                      "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    return {"ca": os.path.join(d, "ca.crt"), "cert": cert, "key": key}


def start(binary, tmp, name, flags):
    return standalone_proc.start(binary, os.path.join(tmp, name),
                                 os.path.join(tmp, f"{name}.log"), args=flags,
                                 env=dict(os.environ, QUIVER_ROOT_PASSWORD=ROOT_PASSWORD))


def load(client, vectors):
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
    index = client.prepare_index_params()
    index.add_index("vec", index_type="HNSW", metric_type="L2",
                    params={"M": 16, "efConstruction": 100})
    client.create_collection("bench", schema=schema, index_params=index)
    for start in range(0, len(vectors), 5000):
        chunk = vectors[start:start + 5000]
        client.insert("bench", [{"id": start + i, "vec": v.tolist()} for i, v in enumerate(chunk)])
    client.flush("bench")


def run(make_client, queries, threads):
    """q/s and latencies (ms) of `queries` searches split over `threads` clients."""
    per = [queries[i::threads] for i in range(threads)]
    lat = [[] for _ in range(threads)]
    clients = [make_client() for _ in range(threads)]

    def work(t):
        for q in per[t]:
            t0 = time.perf_counter()
            clients[t].search("bench", [q], limit=10, search_params={"params": {"ef": 64}},
                              consistency_level="Bounded")
            lat[t].append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - start
    for c in clients:
        c.close()
    all_lat = sorted(x for l in lat for x in l)
    return {"qps": len(queries) / elapsed, "p50_ms": all_lat[len(all_lat) // 2],
            "p99_ms": all_lat[int(len(all_lat) * 0.99)]}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True)
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=4)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="quiver-bench-security-")
    c = certs(tmp)
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((args.rows, args.dim)).astype(np.float32)
    queries = [v.tolist() for v in rng.standard_normal((args.queries, args.dim)).astype(np.float32)]
    procs, ports = {}, {}
    flags = {"plain": [], "auth": ["--auth"], "tls": ["--tls-cert", c["cert"], "--tls-key", c["key"]]}
    flags["auth+tls"] = flags["auth"] + flags["tls"]
    for name, f in flags.items():
        procs[name], ports[name] = start(args.bin, tmp, name.replace("+", "-"), f)

    def endpoint(name):
        if "tls" in name:
            return dict(uri=f"https://127.0.0.1:{ports[name]}", server_pem_path=c["ca"],
                        server_name="localhost")
        return dict(uri=f"http://127.0.0.1:{ports[name]}")

    # With auth, a service account with one grant (Search on the collection), not root: the
    # searches pay the whole check (credential cache, roles, grants).
    def maker(name):
        token = {"token": "svc:svc-password"} if "auth" in name else {}
        return lambda: MilvusClient(**token, **endpoint(name))

    targets = {name: maker(name) for name in flags}
    try:
        for name, make in targets.items():
            admin = {"token": f"root:{ROOT_PASSWORD}"} if "auth" in name else {}
            client = MilvusClient(**admin, **endpoint(name))
            load(client, vectors)
            if "auth" in name:
                client.create_user("svc", "svc-password")
                client.create_role("searcher")
                client.grant_privilege("searcher", "Collection", "Search", "bench")
                client.grant_role("svc", "searcher")
            client.close()
            run(make, queries[:200], 1)  # warm up
        results = {name: {"1": [], str(args.threads): []} for name in targets}
        for _ in range(args.rounds):
            for name, make in targets.items():
                for threads in (1, args.threads):
                    results[name][str(threads)].append(run(make, queries, threads))
        summary = {}
        for name, by_threads in results.items():
            summary[name] = {
                f"{t}_clients": {k: round(statistics.median(r[k] for r in rounds), 3)
                                 for k in ("qps", "p50_ms", "p99_ms")}
                for t, rounds in by_threads.items()}
        for name in ("auth", "tls", "auth+tls"):
            for t in ("1", str(args.threads)):
                key = f"{t}_clients"
                summary[f"ratio_{name}_{key}"] = {
                    k: round(summary[name][key][k] / summary["plain"][key][k], 3)
                    for k in ("qps", "p50_ms", "p99_ms")}
        summary["setup"] = vars(args)
        print(json.dumps(summary, indent=2))
    finally:
        for proc in procs.values():
            standalone_proc.stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
