"""hnswlib reference on a TEXMEX dir: build (threads), then single-thread batch-1 queries.

python3 hnswlib_ref.py DIR [build_threads] [efs] [INDEX_FILE] [passes]

With INDEX_FILE the index is loaded from it when it exists ("hnswlib loaded_s"
instead of "hnswlib build_s"), and saved there after a build when it does not.
Each ef is measured `passes` times (default 2). The space is $METRIC (l2, ip or cosine;
default l2).
"""
import os, sys, time
import numpy as np
import hnswlib

def vecs(path, dtype):
    a = np.fromfile(path, dtype=np.int32)
    d = a[0]
    v = a.reshape(-1, d + 1)[:, 1:].copy()
    return v.view(dtype) if dtype == np.float32 else v

d = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/datasets/glove50-100k"
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
efs = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "40,80,160").split(",")]
keep = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
passes = int(sys.argv[5]) if len(sys.argv) > 5 else 2
base, q, gt = vecs(f"{d}/base.fvecs", np.float32), vecs(f"{d}/query.fvecs", np.float32), vecs(f"{d}/groundtruth.ivecs", np.int32)
p = hnswlib.Index(space=os.environ.get("METRIC", "l2"), dim=base.shape[1])
t = time.perf_counter()
if keep and os.path.exists(keep):
    p.load_index(keep, max_elements=len(base))
    print(f"hnswlib loaded_s {time.perf_counter()-t:.2f}", flush=True)
else:
    p.init_index(max_elements=len(base), M=16, ef_construction=200, random_seed=100)
    p.set_num_threads(threads)
    p.add_items(base, np.arange(len(base))); print(f"hnswlib build_s {time.perf_counter()-t:.2f} threads {threads}", flush=True)
    if keep:
        p.save_index(keep + ".tmp")
        os.replace(keep + ".tmp", keep)
p.set_num_threads(1)
truth = [set(row[:10].tolist()) for row in gt]
for _ in range(passes):
    for ef in efs:
        p.set_ef(ef)
        for i in range(100): p.knn_query(q[i:i+1], k=10)
        lat, found = [], []
        t0 = time.perf_counter()
        for i in range(len(q)):
            t = time.perf_counter(); labels, _ = p.knn_query(q[i:i+1], k=10); lat.append(time.perf_counter() - t)
            found.append(labels)
        wall = time.perf_counter() - t0
        hits = sum(len(set(f[0].tolist()) & truth[i]) for i, f in enumerate(found))
        lat.sort()
        print(f"hnswlib ef {ef:4} recall {hits/(len(q)*10):.4f} qps {len(q)/wall:8.0f} p50_us {lat[len(lat)//2]*1e6:7.1f} p99_us {lat[int(len(lat)*0.99)]*1e6:7.1f}", flush=True)
