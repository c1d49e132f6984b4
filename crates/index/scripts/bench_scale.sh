#!/bin/bash
# `quiver bench index` (hnsw, hnsw_sq) alternating with hnswlib 0.8.0 on one TEXMEX dir,
# single-thread builds and queries, ROUNDS rounds (README "Measured"):
#   crates/index/scripts/bench_scale.sh DIR [EFS] [ROUNDS] [QUIVER_BIN] [PYTHON with hnswlib]
# then: python3 crates/index/scripts/bench_summary.py LOG
set -u
D=$1
EFS=${2:-80,100,120}
ROUNDS=${3:-3}
Q=${4:-target/release/quiver}
PY=${5:-python3}
HERE=$(dirname "$0")
for r in $(seq "$ROUNDS"); do
  for idx in hnsw hnsw_sq; do
    echo "== round $r $idx"
    "$Q" bench index --base "$D/base.fvecs" --query "$D/query.fvecs" --gt "$D/groundtruth.ivecs" \
      --metric l2 --k 10 --m 16 --ef-construction 200 --ef "$EFS" --threads 1 --index $idx --json
  done
  echo "== round $r hnswlib"
  "$PY" "$HERE/hnswlib_ref.py" "$D" 1 "$EFS"
done
