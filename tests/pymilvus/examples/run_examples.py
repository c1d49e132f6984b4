"""Runs pymilvus's own example scripts, unchanged, against `quiver standalone` and tells which
pass. Not part of CI (the scripts come from pymilvus's source tree, which is not on PyPI):

    git clone --branch v2.5.18 https://github.com/milvus-io/pymilvus /tmp/pymilvus
    python tests/pymilvus/examples/run_examples.py --examples /tmp/pymilvus/examples \
        --binary target/release/quiver [--only partition.py,database.py] [--json out.json]

Each script gets a fresh server (its own data dir) on 127.0.0.1:19530, the address the scripts
use; with --cluster, a fresh local cluster (`quiver cluster up`, 3 coords, 2 datanodes, 2
querynodes, 1 proxy) whose proxy a forwarder on 127.0.0.1:19530 reaches. A script passes when it exits 0 within the timeout. Scripts that need what no local server
has (a GPU, an embedding model download, bulk import from object storage, a Zilliz cloud
volume, TLS certificates of their own) are listed in SKIP with the reason."""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import standalone_proc  # noqa: E402

SKIP = {
    "bulk_import/": "bulk import from object storage / cloud volumes",
    "gpu_indx/": "needs a GPU index",
    "milvus_model/": "downloads an embedding model",
    "hybrid_search/hello_hybrid_sparse_dense.py": "needs pymilvus[model] and downloads an embedding model",
    "datatypes/bfloat16_example.py": "needs tensorflow",
    "cert/": "TLS with the example's own certificates and server name",
    "text_embedding.py": "calls an external embedding service",
    "orm/hello_text_embedding.py": "calls an external embedding service",
    "async_previledge_test.py": "needs a server with authentication on (root:Milvus)",
    "orm/hello_milvus.ipynb": "a notebook",
    "simple_async2.py": "needs a server with authentication on",
}


def skipped(rel):
    for key, why in SKIP.items():
        if rel == key or (key.endswith("/") and rel.startswith(key)):
            return why
    return None


def forward(listen_port, target):
    """Relays TCP connections from 127.0.0.1:listen_port to target (host:port) until the
    returned server is closed."""
    import asyncio
    import threading

    host, port = target.rsplit(":", 1)
    loop = asyncio.new_event_loop()

    async def pipe(r, w):
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            w.close()

    async def handle(cr, cw):
        try:
            sr, sw = await asyncio.open_connection(host, int(port))
        except OSError:
            cw.close()
            return
        await asyncio.gather(pipe(cr, sw), pipe(sr, cw))

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", listen_port))
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def close():
        # The loop's thread is a daemon: connections still open end with the run.
        loop.call_soon_threadsafe(server.close)
    return close


def run_script(script, timeout):
    """Runs one example script against whatever serves 127.0.0.1:19530."""
    started = time.monotonic()
    try:
        out = subprocess.run([sys.executable, script.name], cwd=script.parent,
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout} s"
    took = time.monotonic() - started
    if out.returncode == 0:
        return True, f"{took:.1f} s"
    lines = [l for l in (out.stderr or out.stdout).strip().splitlines() if l.strip()]
    return False, (lines[-1] if lines else f"exit {out.returncode}")[:300]


def run_in_cluster(binary, script, timeout):
    with tempfile.TemporaryDirectory() as data:
        d = os.path.join(data, "cluster")
        up = subprocess.run([binary, "cluster", "up", "--dir", d], capture_output=True,
                            text=True, timeout=180)
        if up.returncode != 0:
            return False, "cluster did not start: " + (up.stderr or up.stdout)[-500:]
        close = None
        try:
            proxy = json.load(open(os.path.join(d, "cluster.json")))["proxy"]
            close = forward(19530, proxy)
            return run_script(script, timeout)
        finally:
            if close:
                close()
            subprocess.run([binary, "cluster", "down", "--dir", d], capture_output=True,
                           timeout=120)


def run_one(binary, script, timeout):
    with tempfile.TemporaryDirectory() as data:
        log_path = os.path.join(data, "server.log")
        proc = subprocess.Popen(
            [binary, "standalone", "--data-dir", os.path.join(data, "d"), "--listen",
             "127.0.0.1:19530"], stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while "listening on" not in open(log_path).read():
                if proc.poll() is not None or time.monotonic() > deadline:
                    return False, "server did not start: " + open(log_path).read()[-500:]
                time.sleep(0.05)
            return run_script(script, timeout)
        finally:
            standalone_proc.stop(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", required=True)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--json")
    ap.add_argument("--cluster", action="store_true",
                    help="run each script against a fresh local cluster instead")
    args = ap.parse_args()
    run = run_in_cluster if args.cluster else run_one
    root = pathlib.Path(args.examples)
    only = {s for s in args.only.split(",") if s}
    results = {}
    for script in sorted(root.rglob("*.py")):
        rel = str(script.relative_to(root))
        if only and rel not in only:
            continue
        why = skipped(rel)
        if why:
            results[rel] = {"result": "skip", "why": why}
            continue
        ok, detail = run(os.path.abspath(args.binary), script, args.timeout)
        results[rel] = {"result": "pass" if ok else "fail", "why": detail}
        print(f"{'PASS' if ok else 'FAIL'} {rel}: {detail}", flush=True)
    passed = sum(r["result"] == "pass" for r in results.values())
    ran = sum(r["result"] != "skip" for r in results.values())
    print(f"{passed} of {ran} scripts pass ({len(results) - ran} skipped)")
    if args.json:
        json.dump(results, open(args.json, "w"), indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
