#!/usr/bin/env bash
# Installs lockmesh on a Raspberry Pi (64-bit Raspberry Pi OS, Debian bookworm) from the
# checkout this script is in. Run as root:  sudo ops/pi/install.sh
# Safe to run again: it upgrades in place and keeps keys, lock.db and lockmesh.toml.
# Never run on real hardware by its authors: see "Not tested" in ops/pi/README.md.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PREFIX=${LOCKMESH_PREFIX:-/opt/lockmesh}
DATA=${LOCKMESH_DATA:-/var/lib/lockmesh}
CONF=${LOCKMESH_CONF:-/etc/lockmesh}
UNIT=/etc/systemd/system/lockmesh.service
# The system's python, not one found first in root's PATH: the services run as other
# accounts, and a python under /root (pyenv, ...) is not theirs to execute.
PYTHON=${LOCKMESH_PYTHON:-/usr/bin/python3}
# proto.layout.SERVICES and the procevents listener (tests/test_deploy.py keeps them equal).
ACCOUNTS="policy motor power biometric face keypad gateway bridge ble watchdog procevents"

say() { echo "lockmesh install: $*"; }
die() { echo "lockmesh install: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
case "$(dpkg --print-architecture)" in
    armhf | armel) die "needs a 64-bit OS (arm64): onnxruntime publishes no 32-bit ARM wheels" ;;
esac

say "packages"
apt-get update
# lgpio (gpiozero's pin factory) comes from PyPI as a prebuilt arm64 wheel with the pi extra.
apt-get install -y python3 python3-venv python3-dev

say "group lockmesh and one account per service"
getent group lockmesh >/dev/null || groupadd --system lockmesh
for name in $ACCOUNTS; do
    user="lockmesh-$name"
    # Each account's primary group is its own, so that what a service creates (lock.db,
    # its sockets before the run folder's setgid applies) is not shared with the others.
    getent group "$user" >/dev/null || groupadd --system "$user"
    if ! id "$user" >/dev/null 2>&1; then
        useradd --system --gid "$user" --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "lockmesh $name service" "$user"
    fi
    [ "$(id -gn "$user")" = "$user" ] || usermod --gid "$user" "$user"
    usermod --append --groups lockmesh "$user"
done
join() {  # join USER GROUP...: add USER to each hardware group this board has
    local user=$1 group
    shift
    for group in "$@"; do
        if getent group "$group" >/dev/null; then
            usermod --append --groups "$group" "$user"
        else
            say "warning: no group $group here, $user not added to it"
        fi
    done
}
join lockmesh-motor gpio
join lockmesh-keypad gpio i2c
join lockmesh-power gpio i2c  # the USB-C sense pin, the battery gauge
join lockmesh-face video
join lockmesh-biometric dialout
# The watchdog reaches supervisord's socket through its own group lockmesh-watchdog
# (ops/supervisor_conf.py: chown=root:lockmesh-watchdog), made above.

compgen -G "/dev/i2c-*" >/dev/null ||
    say "warning: no /dev/i2c-*: enable I2C (raspi-config nonint do_i2c 0) and reboot"

say "virtual environment in $PREFIX/venv"
install -d -m 0755 "$PREFIX"
[ -x "$PREFIX/venv/bin/python" ] || "$PYTHON" -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/python" -m pip install --quiet --upgrade pip
"$PREFIX/venv/bin/python" -m pip install --quiet --upgrade "${SRC}[pi]"

say "data in $DATA, supervisord config in $CONF"
"$PREFIX/venv/bin/python" -m ops.deploy --data "$DATA" --conf "$CONF/supervisord.conf" \
    --python "$PREFIX/venv/bin/python"

say "systemd unit $UNIT"
sed -e "s#/opt/lockmesh#$PREFIX#g" -e "s#/var/lib/lockmesh#$DATA#g" \
    -e "s#/etc/lockmesh#$CONF#g" "$SRC/ops/pi/lockmesh.service" >"$UNIT.tmp"
chmod 0644 "$UNIT.tmp"
mv "$UNIT.tmp" "$UNIT"
systemctl daemon-reload
systemctl enable lockmesh.service
systemctl restart lockmesh.service
say "done; check it with: sudo $PREFIX/venv/bin/lockmesh --data $DATA status"
