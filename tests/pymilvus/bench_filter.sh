#!/usr/bin/env bash
# Filtered search, Quiver next to a real Milvus 2.3.5 in one run (bench_filter.py), both servers
# and the clients in a private network namespace that has only loopback (Milvus binds its
# internal ports on every interface). Not part of CI.
#
#   bash tests/pymilvus/bench_filter.sh [bench_filter.py options, e.g. --rounds 3 --seconds 10]
#
# With RUST_CLIENTS="1 16" it then runs `quiver bench search` (no Python in the client) against
# both servers, for no filter and each filter and client count, ROUNDS (3) rounds of
# BENCH_SECONDS (10) alternating; one JSON line per run.
#
# Needs: target/release/quiver (cargo build --release), target/pymilvus-venv-2.5 (made by
# tests/pymilvus/run.sh; PYMILVUS_PY names another python with pymilvus), /tmp/mv-venv with
# milvus==2.3.5 (see ../shared/peers/README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
data=${DATASET:-$root/../shared/datasets/glove50-100k}
work=$(mktemp -d /tmp/bench-filter.XXXX)
quiver=$root/target/release/quiver
py=${PYMILVUS_PY:-$root/target/pymilvus-venv-2.5/bin/python}
cat > "$work/inner.sh" <<INNER
set -u
ip link set lo up
"$quiver" standalone --data-dir "$work/quiver" --listen 127.0.0.1:19541 > "$work/quiver.log" 2>&1 &
qpid=\$!
/tmp/mv-venv/bin/python3 "$root/../shared/peers/start_milvus.py" "$work/milvus" 19600 > "$work/milvus.log" 2>&1 &
mpid=\$!
for i in \$(seq 1 120); do
  "$py" -c 'from pymilvus import MilvusClient as C; C(uri="http://127.0.0.1:19600").list_collections(); C(uri="http://127.0.0.1:19541").list_collections()' 2>/dev/null && break
  sleep 1
done
cd "$here"
"$py" bench_filter.py --a http://127.0.0.1:19541 --b http://127.0.0.1:19600 \
  --base "$data/base.fvecs" --queries "$data/query.fvecs" --keep $*
for c in ${RUST_CLIENTS:-}; do
  for f in "" "cat == 7" "price < 0.01" "cat < 50" "flag == true" "meta['lang'] == 'l7'"; do
    for r in \$(seq 1 ${ROUNDS:-3}); do
      for s in quiver:19541 milvus:19600; do
        args=()
        [ -n "\$f" ] && args=(--filter "\$f")
        out=\$("$quiver" bench search --addr 127.0.0.1:\${s#*:} --collection bench_filter \
          --query "$data/query.fvecs" --clients \$c --duration ${BENCH_SECONDS:-10} --warmup 2 \
          --ef 80 --json "\${args[@]}")
        echo "{\"server\": \"\${s%%:*}\", \"clients\": \$c, \"filter\": \"\$f\", \"round\": \$r, \"result\": \$out}"
      done
    done
  done
done
kill -TERM \$qpid \$mpid; sleep 5; kill -KILL \$mpid 2>/dev/null || true
INNER
exec unshare -n bash "$work/inner.sh"
