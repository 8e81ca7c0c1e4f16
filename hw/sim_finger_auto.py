"""The simulated fingerprint module's automatic commands: AutoEnroll (31h), AutoIdentify (32h).

Each runs on a worker thread, as the module's firmware runs them on its own: the line
stays heard, so Cancel (30h) stops one, and ReadSysPara shows the busy bit meanwhile.
Other commands wait for no one: the module ignores them until the job ends. The staged
acknowledgements follow the R503 manual (V1.2.1, section V): AutoEnroll's two bytes are
the step and the slot, AutoIdentify's five the step, the slot and the score; with the
"return key steps" flag off, only the last one comes.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hw import fingerprint as fp

if TYPE_CHECKING:
    from hw.sim_fingerprint import FingerprintSimulator

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Cancel came, or the power went: the job ends without another word."""


class AutoCommands:
    """Mixed into FingerprintSimulator: the worker, Cancel, and the two jobs."""

    _auto: threading.Thread | None
    _cancelled: threading.Event
    _running: threading.Event

    def _init_auto(self) -> None:
        self._auto = None
        self._cancelled = threading.Event()
        self._running = threading.Event()  # cleared before the last word: the next command
        # that the host sends on hearing it must not find the module still busy

    @property
    def busy(self) -> bool:
        return self._running.is_set()

    def _final(self, code: int, data: bytes, instruction: int) -> None:
        self._running.clear()
        sim: Any = self
        sim._reply(code, data, to=instruction)

    def _start_auto(self, job: Callable[[bytes, int], None], args: bytes) -> None:
        sim: Any = self
        instruction = sim._instruction
        self._cancelled.clear()
        self._running.set()
        self._auto = threading.Thread(
            target=self._run_auto, args=(job, args, instruction), name="sim-fingerprint-auto"
        )
        self._auto.daemon = True
        self._auto.start()

    def _run_auto(self, job: Callable[[bytes, int], None], args: bytes, instruction: int) -> None:
        try:
            job(args, instruction)
        except Cancelled:
            pass
        except Exception:  # a bug here must not kill the module: answer an error
            log.exception("simulated fingerprint module: %s failed", fp.COMMAND_NAMES[instruction])
            self._final(fp.EXECUTION_FAILED, b"", instruction)
        finally:
            self._running.clear()

    def _cancel_auto(self) -> None:
        self._cancelled.set()
        if self._auto is not None and self._auto is not threading.current_thread():
            self._auto.join(timeout=2)

    def _cancel(self, args: bytes) -> None:
        self._cancel_auto()
        self._cancelled.clear()
        sim: Any = self
        sim._reply(fp.OK)

    # -- waiting for the finger ------------------------------------------------------------
    def _await(self, want_finger: bool) -> Any:
        """An image once a finger is on (want_finger), or OK once it is gone; TIMED_OUT
        after finger_wait_s, CAPTURE_FAILED from a broken sensor."""
        sim: FingerprintSimulator = self  # type: ignore[assignment]
        waited = 0.0
        while True:
            if self._cancelled.is_set() or not sim.powered:
                raise Cancelled
            got = sim._take_image()
            if isinstance(got, int) and got != fp.NO_FINGER:
                return got  # the sensor failed
            if want_finger and not isinstance(got, int):
                sim.image = got
                return got
            if not want_finger and got == fp.NO_FINGER:
                return fp.OK
            if waited >= sim.timing.finger_wait_s:
                return fp.TIMED_OUT
            self._cancelled.wait(sim.timing.poll_s)
            waited += sim.timing.poll_s + sim.timing.capture_s

    def _extract_now(self) -> int:
        """After the part's extraction time: the current image's verdict."""
        sim: FingerprintSimulator = self  # type: ignore[assignment]
        if self._cancelled.wait(sim.timing.extract_s):
            raise Cancelled
        assert sim.image is not None
        return sim._usable(sim.image)

    # -- AutoEnroll ------------------------------------------------------------------------
    def _auto_enroll(self, args: bytes, instruction: int) -> None:
        sim: FingerprintSimulator = self  # type: ignore[assignment]
        page, overwrite, duplicates, report, lift = args[:5]

        def say(code: int, step: int, slot: int = 0) -> None:  # the last word
            self._final(code, bytes([step, slot]), instruction)

        def progress(step: int) -> None:
            if report:
                sim._reply(fp.OK, bytes([step, 0]), to=instruction)

        if page >= fp.ENROLL_AUTO_ID:
            free = [p for p in range(sim.capacity) if p not in sim.library]
            if not free:
                say(fp.LIBRARY_FULL, 0)
                return
            page = free[0]
        elif page >= sim.capacity:
            say(fp.BAD_LOCATION, 0)
            return
        elif page in sim.library and not overwrite:
            say(fp.TEMPLATE_EMPTY, 0)  # the manual's flow: a taken slot, not to be covered
            return
        captures = []
        steps = list(zip(fp.ENROLL_CAPTURE_STEPS, fp.ENROLL_EXTRACT_STEPS))
        for i, (capture_step, extract_step) in enumerate(steps):
            got = self._await(want_finger=True)
            if isinstance(got, int):
                say(got, capture_step)
                return
            progress(capture_step)
            verdict = self._extract_now()
            if verdict != fp.OK:
                say(verdict, extract_step)
                return
            assert sim.image is not None
            captures.append(sim._extract(sim.image))
            sim.buffers[i + 1] = captures[-1]
            progress(extract_step)
            if lift and i < len(steps) - 1:
                gone = self._await(want_finger=False)
                if gone != fp.OK:
                    say(gone, extract_step)
                    return
        if not duplicates and any(sim.best_match(c, range(sim.capacity)) for c in captures):
            say(fp.ALREADY_EXISTS, fp.ENROLL_DUPLICATE_CHECK)
            return
        progress(fp.ENROLL_DUPLICATE_CHECK)
        merged = sim.merge_captures(captures)
        if merged is None:
            say(fp.MERGE_MISMATCH, fp.ENROLL_MERGE)
            return
        progress(fp.ENROLL_MERGE)
        sim.library[page] = merged
        sim._save_flash()
        say(fp.OK, fp.ENROLL_STORE, page)

    # -- AutoIdentify ----------------------------------------------------------------------
    def _auto_identify(self, args: bytes, instruction: int) -> None:
        sim: FingerprintSimulator = self  # type: ignore[assignment]
        level, start, end, report, tries = args[:5]

        def say(code: int, step: int, slot: int = 0, score: int = 0) -> None:  # the last word
            self._final(code, struct.pack(">BHH", step, slot, score), instruction)

        def progress(step: int) -> None:
            if report:
                sim._reply(fp.OK, struct.pack(">BHH", step, 0, 0), to=instruction)

        if level not in fp.SECURITY_LEVELS:
            say(fp.PACKET_ERROR, 0)  # the manual's flow: a bad level is answered 01h
            return
        if start > end or end >= sim.capacity:
            say(fp.BAD_LOCATION, 0)
            return
        if not sim.library:
            say(fp.LIBRARY_EMPTY, 0)
            return
        attempts = 0
        while True:
            attempts += 1
            got = self._await(want_finger=True)
            if isinstance(got, int):
                say(got, fp.IDENTIFY_CAPTURE)
                return
            progress(fp.IDENTIFY_CAPTURE)
            verdict, step = self._extract_now(), fp.IDENTIFY_EXTRACT
            if verdict == fp.OK:
                assert sim.image is not None
                probe = sim.buffers[1] = sim._extract(sim.image)
                progress(fp.IDENTIFY_EXTRACT)
                hit = sim.best_match(probe, range(start, end + 1), level=level)
                sim._matched = hit is not None
                if hit is not None:
                    say(fp.OK, fp.IDENTIFY_SEARCH, *hit)
                    return
                verdict, step = fp.NOT_FOUND, fp.IDENTIFY_SEARCH
            if tries and attempts >= tries:
                say(verdict, step)
                return
            if self._cancelled.wait(sim.timing.poll_s):
                raise Cancelled
