# shellcheck shell=bash
# Creates .venv and installs the project into it when pyproject.toml is newer than the install.
# Sourced by ./run-lock and ./run-tests; needs only python3 (>= 3.11) and the package index.
# uv installs it (PyPI's `uv`, one binary, kept in .venv/uv): it fetches in parallel, 13 s
# from an empty cache on 2 cores where pip took 31 s with a warm one (23 s to install, one
# file at a time, then 8 s of compileall).
# Bytecode is not compiled ahead for all 3,900 files (uv's --compile-bytecode: 11-15 s of a
# fresh clone's install, warm cache or not); each module's is written at its first import
# and read by every later one. So the writing is never off in what these scripts start:
# where the environment sets PYTHONDONTWRITEBYTECODE, each of the mesh's processes would
# compile all it imports at every start.
UV_VERSION=0.13.9
ensure_venv() {
    local extra="${1:-}" stamp=".venv/.installed${1:+-$1}"
    unset PYTHONDONTWRITEBYTECODE
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv --without-pip .venv
    fi
    ensure_uv
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        .venv/uv/bin/uv pip install --quiet --python .venv/bin/python -e ".${extra:+[$extra]}"
        touch "$stamp"
    fi
}

# uv from PyPI with python3's own pip; where python3 has none, with the one ensurepip gives.
ensure_uv() {
    [ -x .venv/uv/bin/uv ] && .venv/uv/bin/uv --version 2>/dev/null | grep -q " $UV_VERSION" &&
        return 0
    rm -rf .venv/uv
    if ! python3 -m pip install --quiet --target .venv/uv "uv==$UV_VERSION" 2>/dev/null; then
        python3 -m venv .venv/uv-pip && .venv/uv-pip/bin/python -m pip install --quiet \
            --target .venv/uv "uv==$UV_VERSION"
    fi
}

# The tests' system parts, from Debian's packages: Chromium for the app's browser tests
# (tests/test_app_browser.py, driven by Playwright at /usr/bin/chromium: a browser download,
# `playwright install`, is impossible here and never used), Mosquitto for the MQTT
# bridge's (issue 17), dbus-daemon and python3-dbus for the BLE's (see ensure_dbusmock), and
# ShellCheck for the Pi's install script (tests/test_deploy.py).
# Only the missing ones are installed, in one apt-get run that says so; without root (or a
# sudo that asks nothing) a line says what the tests will miss.
ensure_test_packages() {
    local missing=() sudo=""
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
    # the fleet on a three-node clustered MQTT broker (issue 17, tests/test_fleet_cluster.py)
    command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
    command -v dbus-daemon >/dev/null 2>&1 || missing+=(dbus-daemon)
    /usr/bin/python3 -c "import dbus" 2>/dev/null || missing+=(python3-dbus)
    command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)  # the Pi's install script
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            echo "tests: ${missing[*]} missing and apt-get needs root: the tests that use them fail or skip, saying so"
            return 0
        fi
    fi
    echo "tests: installing ${missing[*]} from Debian's packages (apt-get)"
    if ! { $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
        echo "tests: apt-get could not install ${missing[*]}: the tests that use them fail or skip, saying so"
    fi
}

# The BLE tests (tests/test_ble_bluez.py, issue 16) play bluetoothd with python-dbusmock's
# BlueZ template on a private D-Bus, run by Debian's python3 with Debian's python3-dbus
# (ensure_test_packages). python-dbusmock (pure Python, from PyPI) is not in the test extra
# because it requires dbus-python, which PyPI ships only as source needing libdbus-1-dev,
# libglib2.0-dev and a compiler; so it goes to .venv/dbusmock for that python3.
ensure_dbusmock() {
    local target=.venv/dbusmock version=0.38.1
    if [ ! -f "$target/.installed-$version" ]; then
        .venv/uv/bin/uv pip install --quiet --no-deps --python .venv/bin/python \
            --target "$target" "python-dbusmock==$version" && touch "$target/.installed-$version"
    fi
}
