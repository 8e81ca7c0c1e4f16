"""The supervisord configuration of the whole mesh, rendered for one data directory."""

from __future__ import annotations

import sys
from pathlib import Path

from proto import config as configuration
from proto import files
from proto.layout import SERVICES, Layout
from proto.supervisor_rpc import socket_path

STOP_WAIT_S = 5  # longer than a service's drain (it stops within 2 s of SIGTERM)
# Restarted at once, however often (issue 11: back within 5 s of any kill). With
# startsecs=0 supervisord counts every start as a success, so a process killed within
# a second of starting is not "exited too quickly" and never waits out a back-off
# (1 s, 2 s, 3 s... with startsecs=1: 5.28 s measured after repeated kills). A service
# that fails in its own setup pauses before exiting instead (services/base.py), so a
# broken one restarts about once a second rather than spinning.
START_SECS = 0


def render(
    layout: Layout,
    *,
    python: str = sys.executable,
    users: dict[str, str] | None = None,
    directories: dict[str, Path] | None = None,
) -> str:
    """users maps a service to the account it runs as (on a Pi); None runs all as the caller.

    directories maps a service to its working directory (on a Pi, a private one: lgpio makes
    its notification pipes in the working directory); None keeps supervisord's."""
    cwd = {name: f"directory={path}\n" for name, path in (directories or {}).items()}
    run, logs, data = layout.run, layout.logs, layout.data
    # With an account per service, the watchdog's group may reach supervisord (to restart
    # a stuck service) and sockets in the run folder are made group-writable.
    access = f"chmod=0770\nchown=root:{users['watchdog']}" if users else "chmod=0700"
    parts = [
        f"""\
[unix_http_server]
file={socket_path(run)}
{access}

[supervisord]
umask=077
logfile={logs / "supervisord.log"}
pidfile={run / "supervisord.pid"}
childlogdir={logs}
environment=LOCKMESH_DATA="{data}",PYTHONUNBUFFERED="1"

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{socket_path(run)}
"""
    ]
    fitted = configuration.services(configuration.load(layout.config_file))
    for priority, name in enumerate(SERVICES, start=1):
        if name not in fitted:
            continue  # a part this lock is made without (mesh.without)
        user = f"user={users[name]}\numask=007\n" if users and name in users else ""
        parts.append(f"""
[program:{name}]
command={python} -m services.{name} --data {data}
priority={priority * 10}
autostart=true
autorestart=true
startsecs={START_SECS}
startretries=1000
stopsignal=TERM
stopwaitsecs={STOP_WAIT_S}
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={logs / (name + ".log")}
stdout_logfile_maxbytes=5MB
stdout_logfile_backups=3
{user}{cwd.get(name, "")}""")
    user = f"user={users['procevents']}\numask=007\n" if users and "procevents" in users else ""
    parts.append(f"""
[eventlistener:procevents]
command={python} -m ops.procevents --data {data}
events=PROCESS_STATE
buffer_size=1000
autorestart=true
stdout_logfile=NONE
stderr_logfile={logs / "procevents.log"}
stderr_logfile_maxbytes=1MB
{user}{cwd.get("procevents", "")}""")
    return "".join(parts)


def write(layout: Layout, **kw) -> Path:
    path = layout.run / "supervisord.conf"
    files.write_private(path, render(layout, **kw).encode())
    return path
