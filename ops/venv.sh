# Creates .venv and installs the project into it when pyproject.toml is newer than the install.
# Sourced by ./run-lock and ./run-tests; needs only python3 (>= 3.11) and the package index.
ensure_venv() {
    local extra="${1:-}" stamp=".venv/.installed${1:+-$1}"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -e ".${extra:+[$extra]}"
        touch "$stamp"
    fi
}
