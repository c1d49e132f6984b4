#!/usr/bin/env bash
# Runs the pymilvus suite against `quiver standalone`, unchanged pymilvus:
#   1. venv under target/pymilvus-venv (pip install -r requirements.txt; reused);
#   2. cargo build of the `quiver` binary (target/debug/quiver);
#   3. the server on a free port with a temporary data dir;
#   4. pytest tests/pymilvus (QUIVER_URI tells the tests where the server is);
#   5. the server is stopped (SIGINT, graceful) and the data dir removed.
# Env: PYTHON picks the interpreter (default python3); extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/pymilvus
python=${PYTHON:-python3}
venv=target/pymilvus-venv

stamp="$venv/.requirements.$(sha256sum "$here/requirements.txt" | cut -c1-16)"
if [[ ! -f $stamp ]]; then
    [[ -x $venv/bin/python ]] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    rm -f "$venv"/.requirements.* && touch "$stamp"
fi

cargo build --quiet -p quiver-server --bin quiver
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$(mktemp -d)
log="$data.log"
target/debug/quiver standalone --data-dir "$data" --listen "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
cleanup() {
    kill -INT "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    grep -q "listening on" "$log" && break
    kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.1
done
grep -q "listening on" "$log" || { echo "server did not start"; cat "$log"; exit 1; }

status=0
QUIVER_URI="http://127.0.0.1:$port" "$venv/bin/python" -m pytest -q "$here" "$@" || status=1
if [[ $status != 0 ]]; then
    echo "--- server log (tail) ---"
    tail -n 50 "$log"
fi
rm -f "$log"
exit $status
