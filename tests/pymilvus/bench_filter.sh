#!/usr/bin/env bash
# Filtered search, Quiver next to a real Milvus 2.3.5 in one run (bench_filter.py), both servers
# and the client in a private network namespace that has only loopback (Milvus binds its
# internal ports on every interface). Not part of CI.
#
#   bash tests/pymilvus/bench_filter.sh [bench_filter.py options, e.g. --scalar-index STL_SORT]
#
# Needs: target/release/quiver (cargo build --release), target/pymilvus-venv-2.5 (tests/pymilvus/run.sh
# makes it), /tmp/mv-venv with milvus==2.3.5 (see ../shared/peers/README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
data=${DATASET:-$root/../shared/datasets/glove50-100k}
work=$(mktemp -d /tmp/bench-filter.XXXX)
exec unshare -n bash -c "
set -e
ip link set lo up
'$root/target/release/quiver' standalone --data-dir '$work/quiver' --listen 127.0.0.1:19541 > '$work/quiver.log' 2>&1 &
qpid=\$!
/tmp/mv-venv/bin/python3 '$root/../shared/peers/start_milvus.py' '$work/milvus' 19600 > '$work/milvus.log' 2>&1 &
mpid=\$!
for i in \$(seq 1 120); do
  '$root/target/pymilvus-venv-2.5/bin/python' -c 'from pymilvus import MilvusClient; MilvusClient(uri=\"http://127.0.0.1:19600\").list_collections(); MilvusClient(uri=\"http://127.0.0.1:19541\").list_collections()' 2>/dev/null && break
  sleep 1
done
cd '$here'
'$root/target/pymilvus-venv-2.5/bin/python' bench_filter.py --a http://127.0.0.1:19541 --b http://127.0.0.1:19600 \
  --base '$data/base.fvecs' --queries '$data/query.fvecs' $* || true
kill -TERM \$qpid \$mpid; sleep 5; kill -KILL \$mpid 2>/dev/null || true
"
