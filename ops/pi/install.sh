#!/usr/bin/env bash
# Installs lockmesh on a Raspberry Pi (Raspberry Pi OS bookworm) from this checkout.
# Run as root: sudo ops/pi/install.sh    Safe to run again (it upgrades in place).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
PREFIX=${LOCKMESH_PREFIX:-/opt/lockmesh}
DATA=${LOCKMESH_DATA:-/var/lib/lockmesh}
CONF=${LOCKMESH_CONF:-/etc/lockmesh}
SERVICES="policy motor power biometric face keypad watchdog procevents"

[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }

apt-get update
apt-get install -y python3-venv python3-dev

# One account per service, all in the group lockmesh; hardware groups where needed.
getent group lockmesh >/dev/null || groupadd --system lockmesh
for svc in $SERVICES; do
    id "lockmesh-$svc" >/dev/null 2>&1 || useradd --system --no-create-home \
        --shell /usr/sbin/nologin --gid lockmesh "lockmesh-$svc"
done
join() {  # join USER GROUP...: add to the groups this board has
    local user=$1; shift
    for g in "$@"; do
        getent group "$g" >/dev/null && usermod -aG "$g" "$user"
    done
    return 0
}
join lockmesh-motor gpio
join lockmesh-keypad gpio i2c
join lockmesh-power i2c
join lockmesh-face video
join lockmesh-biometric dialout
# Only the watchdog may ask supervisord to restart a stuck service.
getent group lockmesh-watchdog >/dev/null || groupadd --system lockmesh-watchdog
usermod -aG lockmesh-watchdog lockmesh-watchdog

python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --upgrade pip
"$PREFIX/venv/bin/pip" install --upgrade "$SRC[pi]"

"$PREFIX/venv/bin/python" -m ops.deploy --data "$DATA" --conf "$CONF/supervisord.conf" \
    --python "$PREFIX/venv/bin/python"

install -m 0644 "$SRC/ops/pi/lockmesh.service" /etc/systemd/system/lockmesh.service
systemctl daemon-reload
systemctl enable lockmesh
systemctl restart lockmesh
echo "lockmesh installed: sudo $PREFIX/venv/bin/lockmesh --data $DATA status"
