"""The panel's voice: audible prompts spoken by espeak-ng or played from pre-rendered files.

keypad.voice is "none" (silent), "espeak-ng", or a folder holding PROMPT_ID.wav files
played with aplay. Speech runs as a child process and never blocks the service's loop:
prompts wait their turn in a short queue, pumped from the loop's tick. A missing program
is logged once; the panel then stays silent and works on.
"""

from __future__ import annotations

import logging
import subprocess
from collections import deque
from pathlib import Path

log = logging.getLogger(__name__)

QUEUE_MAX = 4  # older prompts are dropped: what is said should be what is shown now
# The owner's volume (L-36) as espeak-ng's amplitude (0-200, its default 100); 0 is never
# asked for: the panel says nothing at volume 0. A recording plays at its own level.
AMPLITUDE = {1: 50, 2: 100, 3: 170}


class Voice:
    def __init__(self, setting: str) -> None:
        self.setting = setting
        self.folder = None if setting in ("none", "espeak-ng") else Path(setting)
        self.spoken = 0  # commands started, for status
        self._waiting: deque[list[str]] = deque(maxlen=QUEUE_MAX)
        self._speaking: subprocess.Popen | None = None
        self._broken = False

    @property
    def busy(self) -> bool:
        """Speaking, or prompts waiting their turn: the loop's tick should come soon."""
        return self._speaking is not None or bool(self._waiting)

    @property
    def silent(self) -> bool:
        return self.setting == "none" or self._broken

    def say(self, prompt: str, text: str, volume: int = 2) -> None:
        if self.silent or volume <= 0:
            return
        command = self._command(prompt, text, volume)
        if command is not None:
            self._waiting.append(command)
            self.pump()

    def _command(self, prompt: str, text: str, volume: int = 2) -> list[str] | None:
        if self.folder is None:
            level = ["-a", str(AMPLITUDE[volume])] if volume in AMPLITUDE and volume != 2 else []
            return ["espeak-ng", *level, text]  # 2 is espeak-ng's own default
        recording = self.folder / f"{prompt}.wav"
        return ["aplay", "-q", str(recording)] if recording.is_file() else None

    def pump(self) -> None:
        """Start the next prompt once the last one is done; called from the loop's tick."""
        if self._speaking is not None:
            if self._speaking.poll() is None:
                return
            self._speaking = None
        if not self._waiting or self._broken:
            return
        command = self._waiting.popleft()
        try:
            self._speaking = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.spoken += 1
        except OSError as e:
            self._broken = True
            self._waiting.clear()
            log.warning(
                "voice %r: cannot run %s (%s): the panel stays silent", self.setting, command[0], e
            )

    def close(self) -> None:
        if self._speaking is not None and self._speaking.poll() is None:
            self._speaking.terminate()
            try:
                self._speaking.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                self._speaking.kill()
        self._waiting.clear()
