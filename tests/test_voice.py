"""The panel's voice (L-21, L-28): spoken by an external program, never blocking, muted on L-21.

The speakers here are stand-in shell scripts put first on PATH: external programs that
write down what they were asked to say, so the words can be compared with the prompts.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from proto.keypad import Lit, Prompt
from services.keypad.prompts import text
from services.keypad.voice import Voice
from tests.meshkit import ADMIN_CODE, LEAN, eventually, is_type, running


def fake_program(bin_dir: Path, name: str, said: Path, delay_s: float = 0.0) -> None:
    """A program that appends its arguments, one call a line, to said."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\nsleep {delay_s}\nprintf "%s\\n" "$*" >> "{said}"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def speaker(tmp_path, monkeypatch) -> Path:
    """espeak-ng and aplay stand-ins first on PATH; returns the file they write to."""
    said = tmp_path / "said.txt"
    for name in ("espeak-ng", "aplay"):
        fake_program(tmp_path / "bin", name, said, delay_s=0.2)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return said


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def drain(voice: Voice, said: Path, count: int) -> list[str]:
    def done() -> list[str]:
        voice.pump()
        return lines(said) if len(lines(said)) >= count else []

    return eventually(done, timeout=10, every=0.05)


def test_espeak_speaks_prompts_in_order_without_blocking(speaker):
    voice = Voice("espeak-ng")
    voice.say("battery-low", text("battery-low", {}))
    voice.say("enter-code", text("enter-code", {}))  # returns at once: the first still speaks
    assert lines(speaker) == []
    assert drain(voice, speaker, 2) == [text("battery-low", {}), text("enter-code", {})]
    voice.close()


def test_none_is_silent_and_a_missing_program_leaves_the_panel_silent(tmp_path, monkeypatch):
    assert Voice("none").silent
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng anywhere
    voice = Voice("espeak-ng")
    voice.say("doorbell", text("doorbell", {}))  # logged once, never raised
    voice.say("doorbell", text("doorbell", {}))
    assert voice.silent and voice.spoken == 0


def test_a_folder_of_recordings_plays_the_ones_it_has(speaker, tmp_path):
    folder = tmp_path / "voice"
    folder.mkdir()
    (folder / "doorbell.wav").write_bytes(b"RIFF")
    voice = Voice(str(folder))
    voice.say("enter-code", text("enter-code", {}))  # not recorded: skipped
    voice.say("doorbell", text("doorbell", {}))
    assert drain(voice, speaker, 1) == [f"-q {folder / 'doorbell.wav'}"]
    voice.close()


@pytest.mark.slow
def test_l21_the_lock_speaks_its_prompts_and_a_muted_lock_says_nothing(speaker, tmp_path):
    with running(tmp_path / "data", '[keypad]\nvoice = "espeak-ng"\n', without=LEAN) as lock:
        watch = lock.watcher()
        lock.press("touch")
        shown = watch.wait_for(is_type(Prompt, prompt="enter-code")).body
        eventually(lambda: shown.text in lines(speaker))
        lock.press("back")
        spoken = eventually(lambda: lines(speaker)[-1] == shown.text and lines(speaker))
        assert text("admin-created", {"number": "001"}) in spoken  # said while set up

        lock.press("touch", "hold-0")  # L-21: muted until the next unlock from outside
        watch.wait_for(is_type(Lit, flashing=["0"]))  # 0 flashes: muted
        spoken = eventually(lambda: len(lines(speaker)) > len(spoken) and lines(speaker))
        watch.seen.clear()
        lock.press("touch")
        assert not watch.wait_for(is_type(Prompt, prompt="enter-code")).body.audible
        lock.press("1", "ok")
        watch.wait_for(is_type(Prompt, prompt="verify-failed"))
        assert lines(speaker) == spoken
        keypad = lock.status()["services"]["keypad"]["detail"]
        assert keypad["spoken"] == len(spoken)

        lock.press(*ADMIN_CODE, "ok")  # an unlock from outside ends the mute
        watch.wait_for(is_type(Prompt, prompt="unlocked"))
        eventually(lambda: lines(speaker)[-1] == text("unlocked", {}))
