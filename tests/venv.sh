# Sourced by the test runners: `make_venv DIR REQUIREMENTS` creates a venv at DIR with
# the pinned requirements once, and reuses it while REQUIREMENTS is unchanged (a stamp
# named after the file's hash). Uses $python (default python3).
make_venv() {
    local dir=$1 req=$2 stamp
    stamp="$dir/.requirements.$(sha256sum "$req" | cut -c1-16)"
    if [[ ! -f $stamp ]]; then
        [[ -x $dir/bin/python ]] || "${python:-python3}" -m venv "$dir"
        "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
        rm -f "$dir"/.requirements.* && touch "$stamp"
    fi
}
