"""Deployment on a Pi, checked without a Pi: the plan of owners and modes, the rendered
supervisord file, --dry-run, make/apply (as root, on accounts this machine has), the
install script and the systemd unit."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ops import deploy
from proto.config import DEFAULTS
from proto.layout import CLIENTS, IDENTITIES, SERVICES, Layout

ROOT = Path(__file__).resolve().parents[1]
PI = ROOT / "ops" / "pi"


def by_path(entries: list[deploy.Entry]) -> dict[Path, deploy.Entry]:
    return {e.path: e for e in entries}


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout.at(tmp_path / "d")


# -- the plan -------------------------------------------------------------------------------


def test_every_service_secret_is_its_own_account_and_the_cli_and_bench_stay_roots(layout):
    plan = by_path(deploy.plan(layout))
    for name in (*SERVICES, "procevents"):
        e = plan[layout.keys / f"{name}.secret"]
        assert (e.owner, e.group, e.mode) == (f"lockmesh-{name}", f"lockmesh-{name}", 0o600)
    for name in ("cli", "bench"):
        e = plan[layout.keys / f"{name}.secret"]
        assert (e.owner, e.group, e.mode) == ("root", "root", 0o600)
    assert set(IDENTITIES) == {*SERVICES, *CLIENTS}  # nothing left out above
    for name in IDENTITIES:  # public keys: the group reads them, nobody else
        e = plan[layout.keys / f"{name}.key"]
        assert (e.owner, e.group, e.mode) == ("root", "lockmesh", 0o640)


def test_the_accounts_are_every_service_and_the_event_listener():
    assert deploy.ACCOUNTS == {n: f"lockmesh-{n}" for n in (*SERVICES, "procevents")}


def test_nothing_is_for_others_and_only_policy_writes_the_data_dir(layout):
    entries = deploy.plan(layout)
    assert all(e.mode & 0o007 == 0 for e in entries)
    plan = by_path(entries)
    data = plan[layout.data]
    assert (data.owner, data.group, data.mode) == ("lockmesh-policy", "lockmesh", 0o750)
    for name in ("device.secret", "lock.db", "lock.db-wal", "lock.db-shm"):
        e = plan[layout.data / name]
        assert (e.owner, e.mode, e.if_present) == ("lockmesh-policy", 0o600, True)
    assert plan[layout.config_file].mode == 0o640
    assert layout.data / "sim-board.json" not in plan  # no simulated board on a Pi


def test_on_the_simulated_board_motor_may_write_its_file_and_no_one_removes_anothers(layout):
    plan = by_path(deploy.plan(layout, board="sim"))
    assert plan[layout.data].mode == 0o1770  # group may create, sticky keeps each one's own
    e = plan[layout.data / "sim-board.json"]
    assert (e.owner, e.mode, e.if_present) == ("lockmesh-motor", 0o600, True)


def test_run_dir_sockets_are_the_groups_and_each_account_has_a_private_workdir(layout):
    plan = by_path(deploy.plan(layout))
    run = plan[layout.run]
    assert layout.run == layout.data / "run"
    assert (run.owner, run.group) == ("root", "lockmesh")
    assert run.mode & stat.S_ISGID and run.mode & stat.S_ISVTX and run.mode & 0o070 == 0o070
    for account in deploy.ACCOUNTS.values():
        e = plan[deploy.workdir(layout, account)]
        assert (e.owner, e.mode, e.is_dir) == (account, 0o700, True)
    logs = plan[layout.logs]
    assert (logs.owner, logs.group) == ("root", "root")


def test_l23_the_gateway_reads_the_snapshots_the_face_service_writes(layout):
    e = by_path(deploy.plan(layout))[layout.snapshots]
    assert (e.owner, e.group, e.is_dir) == ("lockmesh-face", "lockmesh-gateway", True)
    assert e.mode == stat.S_ISGID | 0o750  # each new picture in the gateway's group


def test_directories_come_before_what_is_in_them(layout):
    entries = deploy.plan(layout)
    seen: set[Path] = set()
    for e in entries:
        assert e.path.parent in seen or e.path == layout.data, e
        if e.is_dir:
            seen.add(e.path)


# -- the supervisord file -------------------------------------------------------------------


def sections(conf: str) -> dict[str, str]:
    parts = re.split(r"^\[([^\]]+)\]\n", conf, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_the_rendered_config_runs_each_program_as_its_account_in_its_workdir(layout):
    conf = sections(deploy.render_conf(layout, "/opt/v/bin/python"))
    for name in SERVICES:
        lines = conf[f"program:{name}"].splitlines()
        assert f"user=lockmesh-{name}" in lines
        assert "umask=007" in lines
        assert f"directory={layout.data / 'work' / f'lockmesh-{name}'}" in lines
        assert f"command=/opt/v/bin/python -m services.{name} --data {layout.data}" in lines
    listener = conf["eventlistener:procevents"].splitlines()
    assert "user=lockmesh-procevents" in listener
    assert f"directory={layout.data / 'work' / 'lockmesh-procevents'}" in listener
    server = conf["unix_http_server"].splitlines()
    assert "chown=root:lockmesh-watchdog" in server and "chmod=0770" in server


def test_the_development_config_is_unchanged_by_the_pi_options(layout):
    from ops.supervisor_conf import render

    conf = render(layout, python="/x/python")
    assert "user=" not in conf and "directory=" not in conf and "chmod=0700" in conf


# -- dry run, make, apply -------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_touches_nothing(tmp_path, capsys, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError(f"dry run changed the disk: {args}")

    for name in ("chown", "fchown", "chmod", "fchmod", "mkdir", "makedirs", "replace", "open"):
        monkeypatch.setattr(os, name, forbidden)
    monkeypatch.setattr(Path, "write_text", forbidden)
    monkeypatch.setattr(Path, "write_bytes", forbidden)
    data, conf = tmp_path / "d", tmp_path / "etc" / "supervisord.conf"
    assert deploy.main(["--data", str(data), "--conf", str(conf), "--dry-run"]) == 0
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    out = capsys.readouterr().out
    assert f"0600 lockmesh-motor:lockmesh-motor {data / 'keys' / 'motor.secret'}" in out
    assert f"0600 root:root {data / 'keys' / 'cli.secret'}" in out
    assert str(conf) in out


def test_a_data_path_too_deep_for_sockets_is_refused(tmp_path, capsys):
    deep = tmp_path / ("x" * 100)
    assert deploy.main(["--data", str(deep), "--dry-run"]) == 2
    assert "too deep" in capsys.readouterr().err


def test_make_writes_keys_config_and_conf_and_keeps_what_exists(layout, tmp_path):
    conf = tmp_path / "etc" / "supervisord.conf"
    deploy.make(layout, conf, "/opt/v/bin/python")
    entries = deploy.plan(layout, board=deploy.board_kind(layout))
    assert all(e.path.exists() for e in entries if not e.if_present)
    assert tomllib.loads(layout.config_file.read_text())["board"]["kind"] == "pi"
    assert "/opt/v/bin/python -m services.motor" in conf.read_text()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o644
    secret = (layout.keys / "policy.secret").read_bytes()
    layout.config_file.write_text('[board]\nkind = "sim"\n')
    deploy.make(layout, conf, "/opt/v/bin/python")  # a second deploy: an upgrade
    assert (layout.keys / "policy.secret").read_bytes() == secret
    assert deploy.board_kind(layout) == "sim"


def test_missing_accounts_are_named(layout):
    accounts = {name: "lockmesh-test-no-such-account" for name in deploy.ACCOUNTS}
    entries = deploy.plan(layout, accounts=accounts, group="lockmesh-test-no-such-group")
    assert deploy.missing_names(entries) == [
        "lockmesh-test-no-such-account",
        "lockmesh-test-no-such-group",
    ]


def existing_account_and_group() -> tuple[str, str]:
    """An account whose own group has its name, and another group, on this machine."""
    for account, group in (("daemon", "bin"), ("bin", "sys"), ("nobody", "nogroup")):
        try:
            pwd.getpwnam(account), grp.getgrnam(account), grp.getgrnam(group)
        except KeyError:
            continue
        return account, group
    pytest.skip("no suitable system account here")


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


@needs_root
def test_apply_gives_each_path_its_owner_and_mode(layout, tmp_path):
    account, group = existing_account_and_group()
    accounts = {name: account for name in deploy.ACCOUNTS}
    deploy.make(layout, tmp_path / "supervisord.conf", sys.executable, accounts)
    (layout.data / "device.secret").write_bytes(b"x" * 32)  # as if policy had run as root
    entries = deploy.plan(layout, accounts=accounts, group=group)
    deploy.apply(entries)
    deploy.apply(entries)  # idempotent
    uid, gid = pwd.getpwnam(account).pw_uid, grp.getgrnam(group).gr_gid
    for e in entries:
        if e.if_present and not e.path.exists():
            continue
        st = e.path.stat()
        assert stat.S_IMODE(st.st_mode) == e.mode, e
        assert st.st_uid == (uid if e.owner == account else 0), e
        assert st.st_gid == (gid if e.group == group else grp.getgrnam(e.group).gr_gid), e
    assert (layout.data / "device.secret").stat().st_uid == uid


@needs_root
def test_deploy_never_changes_a_path_through_a_symbolic_link(layout, tmp_path):
    account, group = existing_account_and_group()
    accounts = {name: account for name in deploy.ACCOUNTS}
    deploy.make(layout, tmp_path / "supervisord.conf", sys.executable, accounts)
    victim = tmp_path / "victim"
    victim.write_text("root's")
    os.chmod(victim, 0o600)
    (layout.data / "lock.db").symlink_to(victim)  # planted by a service that can write there
    with pytest.raises(deploy.DeployError):
        deploy.apply(deploy.plan(layout, accounts=accounts, group=group))
    assert victim.stat().st_uid == 0 and stat.S_IMODE(victim.stat().st_mode) == 0o600
    (layout.data / "lock.db").unlink()
    workdir = deploy.workdir(layout, account)
    shutil.rmtree(workdir)
    workdir.symlink_to(tmp_path)
    with pytest.raises(deploy.DeployError):
        deploy.make(layout, tmp_path / "supervisord.conf", sys.executable, accounts)


# -- install script and systemd unit ----------------------------------------------------------


def test_install_script_parses():
    subprocess.run(["bash", "-n", str(PI / "install.sh")], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_install_script_passes_shellcheck():
    subprocess.run(["shellcheck", str(PI / "install.sh")], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_the_readme_commands_and_ci_pass_shellcheck():
    scripts = ["run-lock", "run-tests", ".ci/run", "ops/venv.sh"]  # -x: venv.sh as sourced
    subprocess.run(["shellcheck", "-x", "--severity=warning", *scripts], cwd=ROOT, check=True)


def test_install_script_creates_every_account_with_its_hardware_groups():
    script = (PI / "install.sh").read_text()
    listed = re.search(r'^ACCOUNTS="([^"]+)"', script, re.M).group(1).split()
    assert listed == list(deploy.ACCOUNTS)
    joins = {
        user: groups.split("#")[0].split()
        for user, groups in re.findall(r"^join (lockmesh-\w+) (.+)$", script, re.M)
    }
    assert joins == {
        "lockmesh-motor": ["gpio"],
        "lockmesh-keypad": ["gpio", "i2c"],
        "lockmesh-power": ["gpio", "i2c"],  # the USB-C sense pin, the battery gauge
        "lockmesh-face": ["video"],
        "lockmesh-biometric": ["dialout"],
    }
    assert "set -euo pipefail" in script and "-m ops.deploy" in script and "${SRC}[pi]" in script


def test_the_unit_runs_supervisord_in_the_foreground_and_restarts_it():
    unit = (PI / "lockmesh.service").read_text()
    assert re.search(
        r"^ExecStart=/opt/lockmesh/venv/bin/supervisord -n -c /etc/lockmesh/supervisord.conf$",
        unit,
        re.M,
    )
    assert re.search(r"^Restart=always$", unit, re.M)
    assert re.search(r"^ReadWritePaths=/var/lib/lockmesh$", unit, re.M)
    assert not re.search(r"^(User|PrivateDevices|DeviceAllow|ProtectClock)=", unit, re.M)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    venv_bin = Path(sys.executable).parent
    supervisord = venv_bin / "supervisord"
    if not supervisord.exists():
        pytest.skip("no supervisord beside this python")
    unit = (PI / "lockmesh.service").read_text().replace("/opt/lockmesh/venv/bin", str(venv_bin))
    path = tmp_path / "lockmesh.service"
    path.write_text(unit)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    complaints = [line for line in done.stderr.splitlines() if str(path) in line]
    assert done.returncode == 0 and complaints == [], done.stderr


def test_the_readme_lists_every_default_pin():
    readme = (PI / "README.md").read_text()
    block = re.search(r"```toml\n(.*?)```", readme, re.S).group(1)
    assert tomllib.loads(block)["pins"] == DEFAULTS["pins"]
    assert "Not tested" in readme and "lockmesh --data /var/lib/lockmesh status" in readme
