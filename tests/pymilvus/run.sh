#!/usr/bin/env bash
# Runs the pymilvus suite against `quiver standalone`, unchanged pymilvus, once per
# supported pymilvus release (2.5.x and 3.0.x):
#   1. one venv per release under target/pymilvus-venv-<release>, from
#      tests/pymilvus/requirements-<release>.txt (created once, reused while the file is unchanged);
#   2. cargo build of the `quiver` binary (target/debug/quiver);
#   3. the server on a free port with a temporary data dir;
#   4. pytest tests/pymilvus with each venv in turn (QUIVER_URI tells the tests where the server is;
#      QUIVER_SERVER_BIN lets test_restart.py run and kill -9 a server of its own);
#   5. the server is stopped (SIGINT, graceful) and the data dir removed;
#   6. the suite again, with the first release, against the proxy of a local cluster
#      (`quiver cluster up`: 3 coords, 2 datanodes, 2 querynodes, each its own process),
#      which is then stopped (`quiver cluster down`). PYMILVUS_CLUSTER=0 skips this;
#   7. tests/status_page/run.sh with the same binary: the status page in headless Chromium
#      (STATUS_PAGE_TEST=0 skips it);
#   8. tests/deploy/run.sh with the same binary: the Helm chart rendered, validated against the
#      Kubernetes schemas, and its cluster run in network namespaces (DEPLOY_TEST=0 skips it,
#      DEPLOY_NETNS=0 only the namespaces).
# Env: PYMILVUS_RELEASES picks releases (default "2.5 3.0"); PYTHON picks the interpreter
# (default python3); QUIVER_BIN uses a prebuilt binary instead of step 2. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/pymilvus
python=${PYTHON:-python3}
releases=${PYMILVUS_RELEASES:-2.5 3.0}

source tests/venv.sh
for r in $releases; do
    make_venv "target/pymilvus-venv-$r" "$here/requirements-$r.txt"
done

if [[ -n ${QUIVER_BIN:-} ]]; then
    bin=$QUIVER_BIN
else
    cargo build --quiet -p quiver-server --bin quiver
    bin=target/debug/quiver
fi
first=${releases%% *}
port=$("target/pymilvus-venv-$first/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$(mktemp -d)
log="$data.log"
"$bin" standalone --data-dir "$data" --listen "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
cluster=$(mktemp -d)
cleanup() {
    kill -INT "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    [[ -f $cluster/c/cluster.json ]] && "$bin" cluster down --dir "$cluster/c" >/dev/null 2>&1
    rm -rf "$data" "$log" "$cluster"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    grep -q "listening on" "$log" && break
    kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.1
done
grep -q "listening on" "$log" || { echo "server did not start"; cat "$log"; exit 1; }

status=0
for r in $releases; do
    py="target/pymilvus-venv-$r/bin/python"
    echo "== pymilvus $("$py" -c 'import pymilvus; print(pymilvus.__version__)')"
    QUIVER_URI="http://127.0.0.1:$port" QUIVER_SERVER_BIN="$bin" "$py" -m pytest -q -p no:cacheprovider "$here" "$@" || status=1
done
if [[ $status != 0 ]]; then
    echo "--- server log (tail) ---"
    tail -n 50 "$log"
fi

if [[ ${PYMILVUS_CLUSTER:-1} != 0 ]]; then
    py="target/pymilvus-venv-$first/bin/python"
    echo "== pymilvus $("$py" -c 'import pymilvus; print(pymilvus.__version__)') against a cluster (quiver cluster up)"
    if "$bin" cluster up --dir "$cluster/c" --coords 3 --datanodes 2 --querynodes 2; then
        proxy=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["proxy"])' "$cluster/c/cluster.json")
        QUIVER_URI="http://$proxy" "$py" -m pytest -q -p no:cacheprovider "$here" "$@" || {
            status=1
            for f in "$cluster"/c/logs/*.log; do echo "--- $f (tail)"; tail -n 20 "$f"; done
        }
    else
        status=1
        for f in "$cluster"/c/logs/*.log; do echo "--- $f (tail)"; tail -n 20 "$f"; done
    fi
fi

echo "== status page (tests/status_page/run.sh)"
QUIVER_BIN="$bin" PYTHON="$python" tests/status_page/run.sh || status=1

if [[ ${DEPLOY_TEST:-1} != 0 ]]; then
    echo "== chart and image (tests/deploy/run.sh)"
    QUIVER_BIN="$bin" PYTHON="$python" tests/deploy/run.sh || status=1
fi
exit $status
