"""Deployment on a Pi, checked without root: the plan of owners and modes, the rendered
supervisord file, the install script's syntax."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ops import deploy
from ops.supervisor_conf import render
from proto.layout import CLIENTS, SERVICES, Layout

ROOT = Path(__file__).resolve().parents[1]


def test_every_service_secret_is_its_own_accounts_and_the_clis_stay_roots(tmp_path):
    plan = {e.path.name: e for e in deploy.plan(Layout.at(tmp_path / "d"))}
    for name in (*SERVICES, "procevents"):
        entry = plan[f"{name}.secret"]
        assert (entry.owner, entry.group, entry.mode) == (f"lockmesh-{name}",) * 2 + (0o600,)
    for name in CLIENTS:
        if name != "procevents":
            assert (plan[f"{name}.secret"].owner, plan[f"{name}.secret"].mode) == ("root", 0o600)
    assert plan["d"].owner == "lockmesh-policy"  # only policy writes the store
    assert all(e.mode & 0o007 == 0 for e in plan.values())  # nothing for others


def test_the_rendered_config_runs_each_program_as_its_account(tmp_path):
    conf = render(Layout.at(tmp_path / "d"), python="/opt/v/bin/python", users=deploy.ACCOUNTS)
    for name in SERVICES:
        section = conf.split(f"[program:{name}]")[1].split("\n[")[0]
        assert f"user=lockmesh-{name}\numask=007" in section
    assert "user=lockmesh-procevents" in conf.split("[eventlistener:procevents]")[1]
    assert "chown=root:lockmesh-watchdog" in conf


def test_make_writes_keys_config_and_conf_and_dry_run_changes_nothing(tmp_path, capsys):
    data = tmp_path / "d"
    assert deploy.main(["--data", str(data), "--dry-run"]) == 0
    assert not data.exists() and "lockmesh-motor" in capsys.readouterr().out
    layout = Layout.at(data)
    entries = deploy.make(layout, tmp_path / "etc" / "supervisord.conf", "/opt/v/bin/python")
    assert all(e.path.exists() for e in entries)
    assert 'kind = "pi"' in layout.config_file.read_text()
    assert "/opt/v/bin/python -m services.motor" in (tmp_path / "etc/supervisord.conf").read_text()


def test_install_script_parses():
    subprocess.run(["bash", "-n", str(ROOT / "ops/pi/install.sh")], check=True)
