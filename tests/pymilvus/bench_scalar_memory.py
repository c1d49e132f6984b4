"""Resident memory of a server holding rows with many numeric scalar fields. Not part of CI.

    python bench_scalar_memory.py --uri http://127.0.0.1:19530 --pid PID [--rows 400000]

Creates `scalar_memory`: `id` INT64 key, an 8-d FLOAT_VECTOR (HNSW M=8 efConstruction=40, so
the vectors and their graph stay small next to the scalars), three INT64, three DOUBLE and one
BOOL field, random values. Inserts --rows rows, flushes, waits --settle seconds for the seal and
the graphs, releases and loads the collection (so every row is served from sealed segments),
counts the rows of a filter on three of the fields, then prints the server's VmRSS
(/proc/PID/status) three times, 5 s apart, as one JSON object.
"""

import argparse
import json
import time

import numpy as np
from pymilvus import DataType, MilvusClient

NAME = "scalar_memory"


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--rows", type=int, default=400_000)
    ap.add_argument("--settle", type=float, default=20)
    a = ap.parse_args()
    c = MilvusClient(uri=a.uri)
    if c.has_collection(NAME):
        c.drop_collection(NAME)
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=8)
    fields = []
    for i in range(3):
        s.add_field(f"i{i}", DataType.INT64)
        s.add_field(f"f{i}", DataType.DOUBLE)
        fields += [(f"i{i}", "int"), (f"f{i}", "float")]
    s.add_field("b0", DataType.BOOL)
    fields.append(("b0", "bool"))
    p = c.prepare_index_params()
    p.add_index(field_name="v", index_type="HNSW", metric_type="L2",
                params={"M": 8, "efConstruction": 40})
    c.create_collection(NAME, schema=s, index_params=p)
    before = rss_mib(a.pid)
    rng = np.random.default_rng(1)
    cast = {"int": int, "float": float, "bool": bool}
    for s0 in range(0, a.rows, 10_000):
        m = min(10_000, a.rows - s0)
        v = rng.random((m, 8), dtype=np.float32)
        cols = {
            name: (rng.integers(0, 1000, m) if kind == "int"
                   else rng.random(m) if kind == "float" else rng.random(m) < 0.5)
            for name, kind in fields
        }
        c.insert(NAME, [
            {"id": s0 + j, "v": v[j].tolist(),
             **{name: cast[kind](cols[name][j]) for name, kind in fields}}
            for j in range(m)
        ])
    c.flush(NAME)
    time.sleep(a.settle)
    c.release_collection(NAME)
    c.load_collection(NAME)
    res = c.query(NAME, filter="i0 < 500 and f1 < 0.5 and b0", output_fields=["count(*)"])
    after = []
    for _ in range(3):
        time.sleep(5)
        after.append(round(rss_mib(a.pid), 1))
    print(json.dumps({"rows": a.rows, "count": res[0]["count(*)"],
                      "rss_before_mib": round(before, 1), "rss_after_mib": after}))


if __name__ == "__main__":
    main()
