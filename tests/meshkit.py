"""Test support: a real mesh in its own data directory, the CLI, and a watcher on the bus."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import traceback
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Callable, Iterator

from ops import cli, mesh
from ops.tap import Tap
from proto import supervisor_rpc
from proto.bus import Bus
from proto.control import Done, StatusReply, StatusRequest
from proto.layout import OPTIONAL, Layout
from proto.schema import Message
from proto.wire import Envelope

ADMIN_CODE = "246813"
SETUP_KEYS = [["ok", "1"], ["touch"], ["ok", *ADMIN_CODE, "ok"], [*ADMIN_CODE, "ok"]]


class Watcher:
    """Every message of every publisher, kept, so a test can wait for what it expects."""

    def __init__(self, layout: Layout) -> None:
        self.bus = Bus(layout, "cli")
        self.tap = Tap(self.bus)
        self.tap.settle()
        self.seen: list[Envelope] = []

    def wait_for(self, match: Callable[[Envelope], bool], timeout: float = 10.0) -> Envelope:
        for env in self.seen:
            if match(env):
                return env
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            for peer, frames in self.tap.frames(min(left, 0.2)):
                env = self.bus.receive_event_frames(frames, peer)
                if env is None:
                    continue
                self.seen.append(env)
                if match(env):
                    return env
                break
        raise AssertionError(f"not seen within {timeout}s; last: {self._recent()}")

    def _recent(self, count: int = 12) -> list[str]:
        """The last events but heartbeats, each with a short body: what a failure shows."""
        said = [e for e in self.seen if not e.topic.endswith(".beat")][-count:]
        return [f"{e.topic} {str(e.body.to_body())[:120]}" for e in said]

    def detail(self, service: str) -> dict[str, Any]:
        """What the service says of itself now (its status reply's detail), asked directly."""
        reply = mesh.service_status(self.bus, service, timeout=5.0)
        assert reply is not None, f"{service} did not answer a status request"
        return reply.detail

    def close(self) -> None:
        self.bus.close()


def shows_code(text: str, code: str) -> bool:
    """Whether text holds a code of digits as a token of its own, not inside a longer
    number: a timestamp's fraction holds any six digits now and then (run 138 of issue
    12's streak found a tapped passcode in `"mono": 67944.551246813`)."""
    number = rf"(?<!\d)(?<!\d\.){re.escape(code)}(?!\.?\d)"  # "code 4711." still shows
    return re.search(number, text) is not None


def eventually(check: Callable[[], Any], timeout: float = 10.0, every: float = 0.1) -> Any:
    """check()'s first true value within timeout, for state that settles by itself."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"{getattr(check, '__name__', 'condition')} not true within {timeout}s"
            return value
        time.sleep(every)


def is_type(kind: type, **fields: Any) -> Callable[[Envelope], bool]:
    def match(env: Envelope) -> bool:
        return isinstance(env.body, kind) and all(
            getattr(env.body, k) == v for k, v in fields.items()
        )

    return match


OUT_OF_PROCESS = ("bench",)  # commands run as their own process (multiprocessing inside)


def run_cli(argv: list[str], input: str | None = None) -> subprocess.CompletedProcess:
    """ops.cli.main(argv) in this process, as the command line would run it: its output
    captured, stdin given, a usage error's or a crash's exit code kept, the umask restored."""
    out, err = io.StringIO(), io.StringIO()
    umask = os.umask(0o022)
    os.umask(umask)
    stdin = sys.stdin
    sys.stdin = io.StringIO(input or "")
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = cli.main(argv) or 0
            except SystemExit as e:  # argparse's usage errors
                code = e.code if isinstance(e.code, int) else 1
            except Exception:  # what the interpreter would do: the traceback, exit code 1
                traceback.print_exc()
                code = 1
    finally:
        sys.stdin = stdin
        os.umask(umask)
    return subprocess.CompletedProcess(["lockmesh", *argv], code, out.getvalue(), err.getvalue())


class Lock:
    """A lock whose mesh runs under supervisord, driven as a person would: by the CLI."""

    def __init__(self, data: Path) -> None:
        self.layout = Layout.at(data)

    def cli(
        self, *args: str, check: bool = True, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess:
        """`lockmesh ARGS --data DATA`, its exit code and what it printed. Run in this
        process (ops.cli.main, the command's own code): a new interpreter importing the
        project for each of the suite's thousands of commands was most of its CPU. The
        benches start processes of their own and run as a separate command."""
        argv = [*args, "--data", str(self.layout.data)]
        if args[0] in OUT_OF_PROCESS:
            result = subprocess.run(
                [sys.executable, "-m", "ops.cli", *argv],
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
            )
        else:
            result = run_cli(argv, input)
        if check and result.returncode != 0:
            raise AssertionError(
                f"lockmesh {' '.join(args)} failed: {result.stderr}{result.stdout}{self.troubles()}"
            )
        return result

    def troubles(self, last: int = 8) -> str:
        """The services' latest warnings and errors: what a failure in CI leaves to read."""
        said = []
        for log in sorted(self.layout.logs.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            bad = [line for line in lines if " WARNING " in line or " ERROR " in line]
            said += [f"  {log.name}: {line}" for line in bad[-last:]]
        return "\nthe services' latest warnings:\n" + "\n".join(said) if said else ""

    def up(self) -> None:
        # 60 s, not the CLI's 20: eleven processes importing onnxruntime, Playwright's
        # Chromium beside them on a 2-core CI machine took 18 s and more just to start
        self.cli("up", "--timeout", "60")

    def down(self) -> None:
        mesh.down(self.layout)

    def status(self) -> dict[str, Any]:
        return json.loads(self.cli("status", "--json", check=False).stdout)

    def press(self, *keys: str) -> None:
        self.cli("sim", "press", *keys)

    def set_up(self) -> None:
        """L-12: direction, then the first administrator with ADMIN_CODE entered twice."""
        for keys in SETUP_KEYS:
            self.press(*keys)

    def watcher(self) -> Watcher:
        return Watcher(self.layout)

    def pid(self, service: str) -> int:
        return supervisor_rpc.processes(self.layout.run)[service]["pid"]

    def wait_restarted(self, service: str, killed_pid: int, timeout: float = 15.0) -> int:
        """After a kill, the pid of the first other process of service to answer. wait_healthy
        alone does not wait for it: the watchdog calls a process healthy until its beats
        have stopped for stuck_after_s, so just after a kill it still vouches for the dead
        one (a code typed then went to a policy that was not there)."""
        with Bus(self.layout, "cli") as bus:
            client, give_up = bus.client(service), time.monotonic() + timeout
            while time.monotonic() < give_up:
                answer = client.request(StatusRequest(), timeout=0.2)
                body = answer.body if answer is not None else None
                if isinstance(body, StatusReply) and body.pid != killed_pid:
                    return body.pid
        raise AssertionError(f"{service} did not answer within {timeout} s of its kill")

    def wait_healthy(self, timeout: float = 10.0) -> float:
        start = time.monotonic()
        unhealthy = mesh.wait_healthy(self.layout, timeout)
        assert not unhealthy, f"unhealthy after {timeout}s: {unhealthy}"
        return time.monotonic() - start


@contextmanager
def running(
    data: Path, config: str = "", *, set_up: bool = True, without: tuple[str, ...] = ()
) -> Iterator[Lock]:
    """A lock in its own data directory, lockmesh.toml holding config, up and (by
    default) set up with ADMIN_CODE as 001; always stopped at the end. without: the
    parts it is made without (mesh.without; LEAN for a test of none of them)."""
    lock = Lock(data)
    lock.layout.data.mkdir(parents=True, exist_ok=True)
    if without:
        config = made_without(config, without)
    if config:
        lock.layout.config_file.write_text(config)
    try:
        lock.up()  # inside: a mesh that never became healthy is stopped too
        if set_up:
            lock.set_up()
        yield lock
    finally:
        stop(lock.layout)


# A lock with none of the optional parts (no fingerprint or palm module, camera, app, Home
# Assistant or radio): the suite's meshes start about 1,200 interpreters on 2 cores, and a
# test of none of these parts needs none of them.
LEAN = OPTIONAL


def lean_but(*parts: str) -> tuple[str, ...]:
    """LEAN but for the parts a test is about."""
    return tuple(p for p in LEAN if p not in parts)


def made_without(config: str, without: tuple[str, ...]) -> str:
    """config with mesh.without set (in its [mesh] table, when it has one)."""
    line = f"without = {json.dumps(list(without))}\n"
    if "[mesh]\n" in config:
        return config.replace("[mesh]\n", "[mesh]\n" + line, 1)
    return f"[mesh]\n{line}{config}"


def stop(layout: Layout) -> None:
    """The mesh down, whatever state the test left it in: a leaked mesh keeps restarting
    its services and loads the machine for every test after it. A supervisord that does
    not stop when asked is terminated (it stops its services), then killed with them."""
    try:
        mesh.down(layout)
    except (mesh.MeshError, OSError, xmlrpc.client.Error):
        pass
    pidfile = layout.run / "supervisord.pid"
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        pid = 0
    if pid and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        try:
            eventually(lambda: not _alive(pid), timeout=30.0)
        except AssertionError:
            for child in [*_children(pid), pid]:
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    mesh.clean_run_dir(layout)


def _alive(pid: int) -> bool:
    """Whether pid is still a supervisord (not a number the system gave another since)."""
    return "supervisord" in _cmdline(pid)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def owner_request(layout: Layout, body: Message, timeout: float = 5.0) -> Envelope | None:
    """One request to policy with the owner's key (the CLI's), from any thread."""
    with Bus(layout, "cli") as owner:
        return owner.client("policy").request(body, timeout=timeout)


class Impostor:
    """A recogniser's process taken over (issue 11): the real one is stopped and its key
    used here, to send policy whatever a hijacked face or biometric service could."""

    def __init__(self, lock: Lock, name: str) -> None:
        supervisor_rpc.proxy(lock.layout.run).supervisor.stopProcess(name)
        self.lock, self.name = lock, name
        self.bus = Bus(lock.layout, name)
        self.server = self.bus.bind_commands()  # where policy sends FaceEnrol / BioEnrol

    def ask(self, body: Message, timeout: float = 5.0) -> Envelope | None:
        return self.bus.client("policy").request(body, timeout=timeout)

    def enrolment(self, opening: Message, timeout: float = 10.0) -> Envelope:
        """The owner opens an enrolment; policy asks this recogniser to capture, is answered
        "started"; that request (its body holds the ticket) is returned."""
        with ThreadPoolExecutor(1) as pool:
            opened = pool.submit(owner_request, self.lock.layout, opening)
            start = self._serve_until(f"{self.name}.enrol", timeout)
            answer = opened.result(timeout=timeout)
        assert answer is not None and answer.body.ok, answer
        return start

    def _serve_until(self, type_name: str, timeout: float) -> Envelope:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not self.server.poll(int(left * 1000) + 1):
                break
            route, peer, env = self.bus.receive_command(self.server)
            if env is None:
                continue
            self.bus.reply(self.server, route, Done(ok=True, detail="started"), env.id)
            if env.type == type_name:
                assert peer == "policy", peer
                return env
        raise AssertionError(f"policy sent no {type_name} within {timeout}s")

    def close(self) -> None:
        self.bus.close()
