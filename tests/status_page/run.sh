#!/usr/bin/env bash
# The status page in a real headless Chromium:
#   1. Debian's chromium and chromium-driver, installed with apt-get when
#      /usr/bin/chromium or /usr/bin/chromedriver is missing (needs root; a browser that
#      cannot be installed fails the test with a message saying so);
#   2. a venv with Selenium and pytest under target/status-page-venv (from requirements.txt,
#      created once, reused while the file is unchanged);
#   3. cargo build of the `quiver` binary (QUIVER_BIN uses a prebuilt one instead);
#   4. `quiver standalone` on a free port with a temporary data dir, the charts' history
#      sampled every second (QUIVER_STATUS_SAMPLE_MS=1000);
#   5. pytest tests/status_page: collections and a mirrored alias made with the CLI, the
#      page opened in Chromium, a dismissed confirm that changes nothing, an accepted one
#      that flips the alias (checked on the page and with `quiver alias show --json`), then
#      CLI traffic until the charts have data, a screenshot (target/status-page-charts.png)
#      and a check of the charts' pixels (Pillow);
#   6. the server is stopped (SIGINT) and the data dir removed.
# Env: STATUS_PAGE_TEST=0 skips all of it; PYTHON picks the interpreter (default python3);
# CHROMIUM / CHROMEDRIVER pick other binaries. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/status_page

if [[ ${STATUS_PAGE_TEST:-1} == 0 ]]; then
    echo "status page browser test skipped (STATUS_PAGE_TEST=0)"
    exit 0
fi
python=${PYTHON:-python3}
chromium=${CHROMIUM:-/usr/bin/chromium}
chromedriver=${CHROMEDRIVER:-/usr/bin/chromedriver}

if [[ ! -x $chromium || ! -x $chromedriver ]]; then
    echo "== installing Debian's chromium and chromium-driver (apt-get)"
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null ||
            echo "apt-get could not install chromium/chromium-driver"
    else
        echo "not root or no apt-get: cannot install chromium/chromium-driver"
    fi
fi
if [[ ! -x $chromium || ! -x $chromedriver ]]; then
    echo "FAIL: the status page test needs $chromium and $chromedriver (Debian: apt-get install chromium chromium-driver)," \
        "or STATUS_PAGE_TEST=0 to skip it" >&2
    exit 1
fi

venv=target/status-page-venv
source tests/venv.sh
make_venv "$venv" "$here/requirements.txt"

if [[ -n ${QUIVER_BIN:-} ]]; then
    bin=$QUIVER_BIN
else
    cargo build --quiet -p quiver-server --bin quiver
    bin=${CARGO_TARGET_DIR:-target}/debug/quiver
fi
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$(mktemp -d)
log="$data.log"
QUIVER_STATUS_SAMPLE_MS=1000 "$bin" standalone --data-dir "$data" --listen "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
cleanup() {
    kill -INT "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$data" "$log"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    grep -q "listening on" "$log" && break
    kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.1
done
grep -q "listening on" "$log" || { echo "server did not start"; cat "$log"; exit 1; }

echo "== status page in headless $("$chromium" --version 2>/dev/null || echo chromium)"
status=0
QUIVER_ADDR="127.0.0.1:$port" QUIVER_SERVER_BIN="$bin" CHROMIUM="$chromium" CHROMEDRIVER="$chromedriver" \
    "$venv/bin/python" -m pytest -q -c "$here/pytest.ini" "$here" "$@" || status=1
if [[ $status != 0 ]]; then
    echo "--- server log (tail) ---"
    tail -n 50 "$log"
fi
exit $status
