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

# The MQTT bridge's tests (issue 17) run a real broker: Mosquitto, from Debian's packages.
# Installed here only when missing, and only where apt-get can (root); otherwise a line says
# so and those tests say what they miss.
ensure_mosquitto() {
    if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "mosquitto is missing: the MQTT bridge's tests need it (apt-get install mosquitto)" >&2
        return 0
    fi
    echo "installing mosquitto from Debian's packages (the MQTT bridge's tests use it)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
}

# The owner app's browser tests (tests/test_app_browser.py) drive Debian's Chromium through
# Playwright, launched at /usr/bin/chromium: a browser download (`playwright install`) is
# impossible here and never used. Installed with apt-get when missing (as root, or through
# sudo when it asks nothing); otherwise the tests say why they are skipped.
ensure_chromium() {
    [ -x /usr/bin/chromium ] && return 0
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            echo "browser tests: /usr/bin/chromium is missing and apt-get needs root: they will be skipped"
            return 0
        fi
    fi
    echo "browser tests: installing Debian's chromium with apt-get (/usr/bin/chromium is missing)"
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null; }; then
        echo "browser tests: apt-get could not install chromium: they will be skipped"
    fi
}
