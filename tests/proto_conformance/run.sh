#!/usr/bin/env bash
# Checks proto/milvus/*.proto against the descriptors bundled with pymilvus.
#
#   1. pymilvus 2.5.x (requirements.txt), strict: every message, enum value and RPC we
#      define must match exactly (fields included both ways).
#   2. pymilvus 3.0.x (requirements-pymilvus3.txt), with --additions-ok: fields and enum
#      values that only 3.0 defines are printed as notes; conflicts fail.
#
# Venvs live under target/proto-venv and target/proto-venv-3 (created or reused).
# Env: PROTO_CHECK_PYMILVUS3=0 skips step 2; PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/proto_conformance
python=${PYTHON:-python3}

source tests/venv.sh

status=0
make_venv target/proto-venv "$here/requirements.txt"
target/proto-venv/bin/python "$here/check_descriptors.py" || status=1

if [[ ${PROTO_CHECK_PYMILVUS3:-1} != 0 ]]; then
    make_venv target/proto-venv-3 "$here/requirements-pymilvus3.txt"
    target/proto-venv-3/bin/python "$here/check_descriptors.py" --additions-ok || status=1
fi
exit $status
