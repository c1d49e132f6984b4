#!/bin/bash
# `quiver bench index` (hnsw, hnsw_sq) against hnswlib 0.8.0 on one TEXMEX dir, single-thread
# builds and queries (README "Measured"):
#   crates/index/scripts/bench_scale.sh DIR [EFS] [ROUNDS] [QUIVER_BIN] [PYTHON with hnswlib] [PASSES] [INDEXES]
# INDEXES: any of hnsw, hnsw_sq, hnsw:exact (an f32 graph linked by exact distances).
# METRIC (environment, default l2): l2, ip or cosine, for both (DIR's ground truth must be
# under it: wide768-100k's rows and queries are unit vectors, so its truth serves all three).
# then: python3 crates/index/scripts/bench_summary.py LOG
#
# First ROUNDS build rounds, each building every index once (and searching it); the last
# round's graphs are kept in a temporary directory. Then PASSES search passes over the kept
# graphs, one index right after the other (who goes first alternates): a pass of each index
# at every ef takes seconds, so both see the machine as it is then. On a shared VM whose
# speed moves by 2x over minutes, a round's build (minutes) separated the two indexes'
# queries; the passes are what bench_summary.py compares.
set -u
D=$1
EFS=${2:-80,100,120}
ROUNDS=${3:-3}
Q=${4:-target/release/quiver}
PY=${5:-python3}
PASSES=${6:-7}
INDEXES=${7:-hnsw hnsw_sq}
export METRIC=${METRIC:-l2}
HERE=$(dirname "$0")
KEEP=$(mktemp -d)
trap 'rm -rf "$KEEP"' EXIT
quiver() { # INDEX: one quiver run over the graph kept for INDEX (hnsw:exact: --exact-links)
  local extra=()
  [ "${1#*:}" = exact ] && extra=(--exact-links)
  "$Q" bench index --base "$D/base.fvecs" --query "$D/query.fvecs" --gt "$D/groundtruth.ivecs" \
    --metric "$METRIC" --k 10 --m 16 --ef-construction 200 --ef "$EFS" --threads 1 --index "${1%%:*}" \
    --graph "$KEEP/$1.bin" --json "${extra[@]}"
}
for r in $(seq "$ROUNDS"); do
  rm -f "$KEEP"/*.bin
  for idx in $INDEXES; do
    echo "== round $r $idx"
    quiver "$idx"
  done
  echo "== round $r hnswlib"
  "$PY" "$HERE/hnswlib_ref.py" "$D" 1 "$EFS" "$KEEP/hnswlib.bin"
done
for p in $(seq "$PASSES"); do
  order="$INDEXES hnswlib"
  [ $((p % 2)) -eq 0 ] && order="hnswlib $INDEXES"
  for idx in $order; do
    echo "== pass $p $idx"
    if [ "$idx" = hnswlib ]; then
      "$PY" "$HERE/hnswlib_ref.py" "$D" 1 "$EFS" "$KEEP/hnswlib.bin" 1
    else
      quiver "$idx"
    fi
  done
done
