#!/usr/bin/env bash
# A rolling upgrade from the previous release, under load. The previous release is the
# commit in .ci/previous-release (the last one that landed; bump it when a release lands):
#   1. its tree (git archive) is built into this tree's target dir, so the dependencies built
#      for this tree are reused and only its own crates compile; its binary is kept aside;
#   2. a local cluster of that binary (`cluster up`: 3 coords, 2 datanodes, 2 querynodes,
#      2 proxies), a collection indexed and loaded (tests/upgrade/load.py);
#   3. `quiver cluster roll` of this build restarts every process one at a time on the new
#      binary, so old and new processes serve together for a while, while load.py searches,
#      inserts and flushes through a client that knows both proxies;
#   4. load.py asserts 0 failed calls, every acknowledged row there, and an HNSW_SQ collection
#      served once every process runs the new binary.
# A clone without the previous release's commit (shallow) skips the test, saying so.
set -euo pipefail
cd "$(dirname "$0")/../.."
prev=$(tr -d '[:space:]' < .ci/previous-release)
if ! git cat-file -e "$prev^{commit}" 2>/dev/null; then
    echo "SKIPPED: the previous release $prev is not in this clone's history (shallow clone?)"
    exit 0
fi
python=${PYTHON:-python3}
source tests/venv.sh
make_venv target/pymilvus-venv-2.5 tests/pymilvus/requirements-2.5.txt
py=target/pymilvus-venv-2.5/bin/python

work=$(mktemp -d)
cleanup() {
    [[ -f $work/c/cluster.json ]] && target/debug/quiver cluster down --dir "$work/c" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

echo "building the previous release ${prev:0:12}"
mkdir "$work/src"
# Both trees' workspace crates get the same artifact names in the shared target dir (cargo
# hashes a path package by its path within the workspace), and cargo tells a stale artifact
# by file times: the previous tree's files are extracted with the time of now (-m), so its
# crates are rebuilt rather than taken from this tree's artifacts, ...
git archive "$prev" | tar -x -m -C "$work/src"
# No incremental caches for these two builds: each would add gigabytes to the target dir.
export CARGO_INCREMENTAL=0
CARGO_TARGET_DIR=$PWD/target cargo build --quiet --locked \
    --manifest-path "$work/src/Cargo.toml" -p quiver-server --bin quiver
cp target/debug/quiver "$work/quiver-prev"
rm -rf "$work/src"
# ... and this tree's crates are touched after it, so they are rebuilt in turn:
# target/debug/quiver is this tree's binary again.
git ls-files -z crates proto | xargs -0 touch
cargo build --quiet --locked -p quiver-server --bin quiver
new=$PWD/target/debug/quiver
if cmp -s "$new" "$work/quiver-prev"; then
    echo "the previous release's binary and this one are the same file"; exit 1
fi

"$work/quiver-prev" cluster up --dir "$work/c" --coords 3 --datanodes 2 --querynodes 2 --proxies 2
if ! "$py" tests/upgrade/load.py "$work/c" "$new"; then
    for f in "$work"/c/logs/*.log; do echo "--- $f (tail)"; tail -n 30 "$f"; done
    exit 1
fi
