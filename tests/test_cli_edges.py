"""The CLI's edges a new user hit (issue 15, faults 9 and 10): one line, at once, never a
traceback; every refusal with its sentence. No mesh: these need no running lock."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops import cli, mesh, owner, words
from ops.tap import record_line
from proto.keypad import Key, Prompt
from proto.layout import Layout
from proto.policy import Decision
from proto.wire import Stamper, encode
from tests.meshkit import run_cli


@pytest.fixture
def stopped(tmp_path: Path) -> Layout:
    """A lock that has run (its folders and keys) but is not running now."""
    layout = Layout.at(tmp_path / "data")
    mesh.prepare(layout)
    yield layout
    mesh.clean_run_dir(layout)


# -- fault 9: a stopped lock answers at once --------------------------------------------------
AT_A_STOPPED_LOCK = [
    ["people"],
    ["settings", "volume", "1"],
    ["unlock", "--pin", "1234"],
    ["sim", "press", "touch"],
    ["sim", "button", "set"],
    ["sim", "power-cycle", "--hold-set", "6"],
    ["enrol", "palm", "001"],
    ["tap", "--count", "1"],
]


@pytest.mark.parametrize("verb", AT_A_STOPPED_LOCK, ids=lambda v: " ".join(v[:2]))
def test_issue15_a_stopped_lock_is_said_at_once_in_one_line(stopped, verb):
    started = time.monotonic()
    result = run_cli([*verb, "--data", str(stopped.data)])
    took = time.monotonic() - started
    assert result.returncode == 1 and result.stdout == ""
    said = f"lockmesh: no lock is running at {stopped.data} (start it with `lockmesh up`)\n"
    assert result.stderr == said
    assert took < 2.0, f"{took:.1f}s: it waited for an answer that cannot come"


# -- fault 10: the CLI's edges ------------------------------------------------------------------
def test_issue15_status_into_a_closed_pipe_prints_no_traceback(tmp_path):
    """`lockmesh status | head -1`: the reader leaves before the rest is written."""
    data = tmp_path / "data"
    data.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "status", "--data", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the interpreter has even started: every write finds it gone
    err = proc.stderr.read()
    proc.wait(timeout=30)
    assert err == "", err  # the reader leaving is no error of ours: nothing to say


def test_issue15_l18_a_refused_decision_says_why_in_words(capsys):
    for reason in ("remote-disabled", "remote-unlock-off", "lockout", "something-new"):
        code = owner.show(Decision(granted=False, method="remote", reason=reason), False)
        out = capsys.readouterr().out.strip()
        assert code == 1
        said, _, sentence = out.partition(f"refused: {reason}: ")
        assert said == "" and len(sentence) > 10, out
    assert "remote_unlock on" in words.decision_sentence("remote-disabled")
    # granted but not driven (issue 13's leftover): no unlock, and not a refusal either
    owner.show(Decision(granted=False, method="remote", reason="busy"), False)
    busy = "not unlocked: busy: the bolt did not move: the motor is busy"
    assert capsys.readouterr().out.strip() == busy


def test_issue15_l7_weekly_slots_are_shown_as_they_are_typed():
    for typed in ("mon-fri@08:00-18:00", "sun,sat@10:00-12:00", "mon,wed,fri@07:30-09:05"):
        slot = owner.parse_slot(typed)
        assert owner.slot_text(slot) == typed
        assert owner._shown([slot, slot], "slots") == f"{typed},{typed}"


def recording(path: Path) -> Path:
    stamper = Stamper("keypad")
    with open(path, "wb") as out:
        record_line(out, encode(stamper.stamp(Key(key="touch"))))
        record_line(out, encode(stamper.stamp(Prompt(prompt="enter-code", text="Enter"))))
    return path


@pytest.mark.parametrize(
    "argv",
    [["--json", "FILE", "*.prompt"], ["FILE", "--json", "*.prompt"],
     ["FILE", "*.prompt", "--json"]],
    ids=["json-first", "json-between", "json-last"],
)  # fmt: skip
def test_issue15_replay_takes_json_before_between_or_after_the_globs(tmp_path, argv):
    file = recording(tmp_path / "rec.bin")
    result = run_cli(["replay", *[str(file) if a == "FILE" else a for a in argv]])
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["type"] for line in lines] == ["keypad.prompt"]


def test_issue15_an_unknown_option_after_the_globs_is_still_refused(tmp_path):
    file = recording(tmp_path / "rec.bin")
    result = run_cli(["replay", str(file), "keypad.*", "--nonsense"])
    assert result.returncode == 2 and "unrecognized arguments: --nonsense" in result.stderr


def test_issue15_tap_names_the_publishers_it_did_not_hear():
    heard = {"policy", "motor", "power", "biometric", "face", "keypad", "gateway", "watchdog"}
    assert cli.heard_line(heard) == "heard 8 of 10 services; silent: bridge, ble"
    assert cli.heard_line(heard | {"bridge", "ble"}) == "heard 10 of 10 services"


def test_issue15_l14_enrol_help_names_face_and_sim_and_enrol_take_json(tmp_path):
    helped = run_cli(["enrol", "--help"])
    assert helped.returncode == 0 and "face" in helped.stdout.split("positional")[0]
    data = tmp_path / "data"
    data.mkdir()
    local = run_cli(["sim", "clock", "offset", "5", "--json", "--data", str(data)])
    assert local.returncode == 0 and json.loads(local.stdout) == {"ok": True}
    args = cli.parser().parse_args(["enrol", "face", "001", "--json", "--timeout", "3"])
    assert args.json and args.timeout == 3


@pytest.mark.parametrize(
    "toml, named",
    [("[nosuch]\nx = 1\n", "unknown section [nosuch]"),
     ("[keypad]\nvoice = 3\n", "keypad.voice must be str"),
     ("[keypad\n", "lockmesh.toml: ")],
    ids=["unknown-section", "wrong-type", "not-toml"],
)  # fmt: skip
def test_issue15_a_bad_lockmesh_toml_is_one_line_naming_the_file(tmp_path, toml, named):
    data = tmp_path / "data"
    data.mkdir()
    (data / "lockmesh.toml").write_text(toml)
    result = run_cli(["up", "--data", str(data)])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert str(data / "lockmesh.toml") in result.stderr and named in result.stderr
    assert not mesh.running(Layout.at(data))
    mesh.clean_run_dir(Layout.at(data))
