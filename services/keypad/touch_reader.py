"""The Pi board's keypad: MPR121 chips polled in a thread, contacts turned into panel inputs.

The thread reads TouchPanel.touched() every poll_s and feeds hw/touch_keys.KeyScanner;
each input (touch, a key, hold-0) goes into a queue and one byte into a pipe, so the
service's loop (Service.watch on fd) wakes and presses it as SimKeys would. A chip that
fails is restarted after retry_s; until then the reader reports itself broken.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any, Callable

from hw.mpr121 import MPR121Error, TouchPanel, layout_from_config
from hw.touch_keys import KeyScanner
from proto.keypad import INPUTS

log = logging.getLogger(__name__)

RETRY_S = 1.0


def panel_from_config(bus: Any, settings: dict[str, Any]) -> TouchPanel:
    layout = layout_from_config(settings["addresses"], settings["keys"])
    unknown = {k for keys in layout.values() for k in keys if k} - set(INPUTS)
    if unknown:
        raise ValueError(f"keypad_hw.keys: no such key: {', '.join(sorted(unknown))}")
    return TouchPanel(bus, layout)


class TouchReader:
    def __init__(
        self,
        panel: TouchPanel,
        scanner: KeyScanner,
        poll_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.panel, self.scanner, self.poll_s, self.clock = panel, scanner, poll_s, clock
        self.fault: str | None = "not started"
        self._inputs: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._stop = threading.Event()
        self._sleep = threading.Event()
        self._thread = threading.Thread(target=self._run, name="touch-reader", daemon=True)

    @property
    def fd(self) -> int:
        return self._read_fd

    def start(self) -> None:
        self._thread.start()

    def sleep(self) -> None:
        """The panel went dark: the next contact only wakes it (from the loop's thread)."""
        self._sleep.set()

    def take(self) -> list[str]:
        """The inputs waiting, oldest first; called in the loop when fd is readable."""
        try:
            while os.read(self._read_fd, 4096):
                pass
        except BlockingIOError:
            pass
        inputs = []
        while True:
            try:
                inputs.append(self._inputs.get_nowait())
            except queue.Empty:
                return inputs

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            if self.fault is not None and not self._restart():
                self._stop.wait(RETRY_S)
                continue
            try:
                touched = self.panel.touched()
            except MPR121Error as e:
                self._failed(e)
                continue
            if self._sleep.is_set():
                self._sleep.clear()
                self.scanner.sleep()
            for event in self.scanner.feed(self.clock(), touched):
                if event.input is not None:
                    self._inputs.put(event.input)
                    os.write(self._write_fd, b"\0")
            self._stop.wait(self.poll_s)

    def _restart(self) -> bool:
        try:
            self.panel.start()
        except MPR121Error as e:
            self._failed(e)
            return False
        if self.fault != "not started":
            log.info("keypad touch controllers answer again")
        self.fault = None
        return True

    def _failed(self, e: MPR121Error) -> None:
        if self.fault in (None, "not started"):
            log.warning("keypad touch controllers failed: %s", e)
        self.fault = str(e)
