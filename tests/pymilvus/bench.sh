#!/usr/bin/env bash
# Must-show benchmark through pymilvus (not run by CI): `quiver standalone` (release build)
# next to milvus-lite, same data, one run. See bench.py for what is measured.
#   1. venv target/pymilvus-bench-venv from requirements-bench.txt (pymilvus 2.5 + milvus-lite);
#   2. cargo build --release -p quiver-server;
#   3. quiver standalone on a free port, data in a temporary dir;
#   4. bench.py against it and against milvus-lite (a database file in the same temporary dir);
#   5. the server is stopped and the temporary dir removed.
# Env: DATA (default /work/shared/datasets/glove50-100k), OUT (JSON summary file, default
# target/bench-pymilvus.json), NO_LITE=1 skips milvus-lite, QUIVER_BIN uses a prebuilt
# release binary instead of step 2, PYTHON picks the interpreter.
# Extra args go to bench.py (e.g. --queries 200 --fresh-rounds 200).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/pymilvus
python=${PYTHON:-python3}
venv=target/pymilvus-bench-venv
data=${DATA:-/work/shared/datasets/glove50-100k}
out=${OUT:-target/bench-pymilvus.json}

source tests/venv.sh
make_venv "$venv" "$here/requirements-bench.txt"

if [[ -n ${QUIVER_BIN:-} ]]; then
    bin=$QUIVER_BIN
else
    cargo build --release --quiet -p quiver-server --bin quiver
    bin=target/release/quiver
fi
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tmp=$(mktemp -d)
"$bin" standalone --data-dir "$tmp/quiver" --listen "127.0.0.1:$port" >"$tmp/quiver.log" 2>&1 &
server=$!
cleanup() {
    kill -INT "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    grep -q "listening on" "$tmp/quiver.log" && break
    kill -0 "$server" 2>/dev/null || { cat "$tmp/quiver.log"; exit 1; }
    sleep 0.1
done

lite=(--lite-db "$tmp/milvus-lite.db")
[[ ${NO_LITE:-0} != 0 ]] && lite=()
"$venv/bin/python" "$here/bench.py" --data "$data" --quiver-uri "http://127.0.0.1:$port" \
    "${lite[@]}" --json "$out" "$@"
echo "JSON summary written to $out"
