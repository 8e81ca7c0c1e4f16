"""The serial line to a biometric module, and what its two protocols share on it.

- Uart: a pyserial port (a real /dev/ttyS0 or a simulator's pseudo-terminal, alike) whose
  reads never wait longer than they are told to.
- ReadDeadline: when a wait for an answer gives up, with one last look past it.
- FrameScanner: finds sync-word, length-prefixed frames in a byte stream, resyncing after
  garbage, a half frame or a failed check, and counting why it dropped what it dropped.
- ModuleSide and Faults: the module's end of a pseudo-terminal, for the simulators, with
  the faults a real line shows (garbage, truncated or corrupted frames, silence).
"""

from __future__ import annotations

import os
import random
import select
import termios
import threading
import time
import tty
from collections import Counter
from typing import Generic, TypeVar

import serial

T = TypeVar("T")
# what a port that went away raises, depending on the call: termios' error is no OSError
_PORT_ERRORS = (serial.SerialException, OSError, ValueError, termios.error)


class UartError(Exception):
    """The serial port itself failed: cannot be opened, or went away."""


class Uart:
    """A serial port, 8N1, read with an explicit timeout on every call.

    Reads wait with select() on the port's descriptor rather than through pyserial's
    timeout property: setting that reconfigures the port (tcsetattr) on every change,
    and every read here has its own deadline. Posix only, as the lock board is.
    """

    def __init__(self, port: str, baudrate: int, *, write_timeout_s: float = 1.0) -> None:
        self.port = port
        try:
            self._serial = serial.Serial(
                port,
                baudrate,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                timeout=0,  # non-blocking: only called once select() said bytes are there
                write_timeout=write_timeout_s,
            )
        except _PORT_ERRORS as e:
            raise UartError(f"cannot open serial port {port}: {e}") from e

    def read(self, timeout_s: float, max_bytes: int = 4096) -> bytes:
        """What has arrived, waiting up to timeout_s for the first byte; b"" when nothing did."""
        try:
            ready, _, _ = select.select([self._serial.fileno()], [], [], max(0.0, timeout_s))
            if not ready:
                return b""
            data = self._serial.read(max(1, min(max_bytes, self._serial.in_waiting)))
        except _PORT_ERRORS as e:
            raise UartError(f"serial port {self.port} failed while reading: {e}") from e
        return data

    def write(self, data: bytes) -> None:
        try:
            self._serial.write(data)
            self._serial.flush()
        except _PORT_ERRORS as e:
            raise UartError(f"serial port {self.port} failed while writing: {e}") from e

    def reset_input(self) -> None:
        """Drop whatever arrived and was not read: a late answer to an earlier command."""
        try:
            self._serial.reset_input_buffer()
        except _PORT_ERRORS as e:
            raise UartError(f"serial port {self.port} failed: {e}") from e

    def close(self) -> None:
        self._serial.close()

    def __enter__(self) -> Uart:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- framing ----------------------------------------------------------------------------
INTER_BYTE_GAP_S = 0.1  # a frame's bytes come back to back: a longer silence ends a half frame


class ReadDeadline:
    """When a wait for a module's answer gives up. Past it, the port is looked at once
    more without waiting: a busy board may give the host's process a core only after the
    deadline, and an answer waiting in the port's buffer by then came in time."""

    def __init__(self, at: float) -> None:
        self.at, self._looked_late = at, False

    def left(self) -> float | None:
        """Seconds a read may wait now; 0 for the last look; None once that was had."""
        remaining = self.at - time.monotonic()
        if remaining > 0:
            return remaining
        if self._looked_late:
            return None
        self._looked_late = True
        return 0.0


class FrameScanner(Generic[T]):
    """Frames out of a byte stream: sync word, a header that tells the length, a check.

    Subclasses say how long a frame is from its header, whether its check holds, and
    what it decodes to. feed() never raises on what the line brings: it drops it and
    counts the reason in `rejected` (and loose bytes in `garbage_bytes`).

    Resync rules: bytes before a sync word are garbage. A frame whose header is
    impossible or whose check fails loses its first byte only, and the search goes on
    inside it, as a real frame may start there. A half frame (the module was reset
    mid-answer, or a byte was lost) is given up as soon as a complete, valid frame
    starts after it: without that, its length field would swallow the next answer. A
    frame that did complete, but over the start of a valid frame running at least as far,
    is taken for such a half frame whose check passed by chance: the later one wins.
    Fed byte by byte, a parser cannot know that yet; the drivers add an inter-byte
    timeout (drop_partial) for the half frame followed by silence.
    """

    sync: bytes = b""
    header_len: int = 0

    def __init__(self) -> None:
        self._buf = bytearray()
        self.rejected: Counter[str] = Counter()
        self.garbage_bytes = 0
        self._rejected_at_reset: Counter[str] = Counter()
        self._garbage_at_reset = 0

    # -- what a protocol defines ---------------------------------------------------------
    def frame_length(self, header: bytes) -> int | str:
        """The whole frame's length from its header, or why the header is impossible."""
        raise NotImplementedError

    def check(self, frame: bytes) -> str | None:
        """None when the frame's check holds, else the reason it does not."""
        raise NotImplementedError

    def decode_frame(self, frame: bytes) -> T:
        raise NotImplementedError

    # -- the scanner ---------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Bytes held back, waiting for the rest of a frame."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget a half frame, and count what goes wrong from here (see corruption())."""
        self._buf.clear()
        self._rejected_at_reset = self.rejected.copy()
        self._garbage_at_reset = self.garbage_bytes

    def corruption(self) -> str | None:
        """What the line brought that was not a frame since reset(), or None: why an answer
        did not come is told apart from no answer at all."""
        self.drop_partial()
        rejected = self.rejected - self._rejected_at_reset
        if not rejected:
            return None
        parts = ", ".join(f"{n}× {r}" for r, n in sorted(rejected.items()))
        return f"{parts}; {self.garbage_bytes - self._garbage_at_reset} garbage bytes"

    def read_from(self, uart: Uart, into: list[T], timeout_s: float, last_byte: float) -> float:
        """One read from the line into frames, waiting at most timeout_s (less while a frame
        is half in); a half frame followed by INTER_BYTE_GAP_S of silence is dropped.
        Returns when the last byte came. Raises UartError."""
        if self.pending:
            timeout_s = min(timeout_s, max(0.0, last_byte + INTER_BYTE_GAP_S - time.monotonic()))
        data = uart.read(timeout_s)
        if data:
            into.extend(self.feed(data))
            return time.monotonic()
        if time.monotonic() - last_byte >= INTER_BYTE_GAP_S:
            self.drop_partial()
        return last_byte

    def drop_partial(self) -> None:
        """Give up a half frame after a silence on the line: whatever completed it later
        could only be the start of the next frame (the inter-byte timeout of real hosts)."""
        if self._buf:
            if self._buf.startswith(self.sync):
                self.rejected["truncated frame"] += 1
            else:
                self.rejected["garbage"] += 1
                self.garbage_bytes += len(self._buf)
            self._buf.clear()

    def feed(self, data: bytes) -> list[T]:
        self._buf += data
        buf, out = self._buf, []
        while buf:
            start = buf.find(self.sync)
            if start < 0:
                # keep a trailing first byte of the sync word: the rest may be on its way
                keep = 1 if buf[-1] == self.sync[0] else 0
                self._drop_garbage(len(buf) - keep)
                break
            self._drop_garbage(start)
            probe = self._probe(0)
            if probe is None:
                later = self._next_valid(1)
                if later is None:
                    break
                self.rejected["truncated frame"] += 1
                del buf[:later]
                continue
            if isinstance(probe, str):
                self.rejected[probe] += 1
                del buf[:1]
                continue
            end = probe
            overlapping = self._next_valid(1, before=end, min_end=end)
            if overlapping is not None:
                # a half frame whose length ran into the next whole one, and whose weak
                # check passed by chance: the whole one wins
                self.rejected["truncated frame"] += 1
                del buf[:overlapping]
                continue
            frame = bytes(buf[:end])
            del buf[:end]
            out.append(self.decode_frame(frame))
        return out

    def _drop_garbage(self, n: int) -> None:
        if n > 0:
            del self._buf[:n]
            self.garbage_bytes += n
            self.rejected["garbage"] += 1

    def _probe(self, at: int) -> int | str | None:
        """The frame at `at`: its end if whole and valid, why it is bad, or None while it
        is not all here."""
        buf = self._buf
        if len(buf) - at < self.header_len:
            return None
        length = self.frame_length(bytes(buf[at : at + self.header_len]))
        if isinstance(length, str):
            return length
        end = at + length
        if end > len(buf):
            return None
        return self.check(bytes(buf[at:end])) or end

    def _next_valid(self, start: int, *, before: int | None = None, min_end: int = 0) -> int | None:
        """Where the next complete, valid frame starts (at or after start), if any."""
        at = self._buf.find(self.sync, start)
        while at >= 0 and (before is None or at < before):
            end = self._probe(at)
            if isinstance(end, int) and end >= min_end:
                return at
            at = self._buf.find(self.sync, at + 1)
        return None


# -- the module's side, for the simulators ------------------------------------------------
class ModuleSide:
    """The module's end of a pseudo-terminal; clients open `path` as their serial port."""

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        # raw from the start: before a client configures the port, the line discipline
        # would echo our bytes back to us and turn CR into LF
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        # the slave stays open here too, so a client closing its end is no hang-up for us
        self.path = os.ttyname(self._slave)
        self._closed = False

    def read(self, timeout_s: float) -> bytes:
        if self._closed:
            return b""
        ready, _, _ = select.select([self._master], [], [], timeout_s)
        if not ready:
            return b""
        try:
            return os.read(self._master, 4096)
        except OSError:  # nothing after all (EAGAIN), or no client yet (EIO)
            return b""

    def host_baud(self) -> int | None:
        """The baud rate the client set on its end (a pty's two ends share one setting);
        None when unknown."""
        try:
            speed = termios.tcgetattr(self._slave)[5]
        except (termios.error, OSError):
            return None
        return _BAUD_OF.get(speed)

    def write(self, data: bytes, *, timeout_s: float = 0.2) -> bool:
        """Send data; False when nobody reads the line and its buffer stays full."""
        view, deadline = memoryview(data), time.monotonic() + timeout_s
        while view and not self._closed:
            try:
                view = view[os.write(self._master, view) :]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False  # like a real UART: bytes nobody listens to are lost
                select.select([], [self._master], [], 0.01)
            except OSError:
                return False
        return True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._master)
            os.close(self._slave)


_BAUD_OF = {
    getattr(termios, f"B{rate}"): rate
    for rate in (9600, 19200, 38400, 57600, 115200, 230400)
    if hasattr(termios, f"B{rate}")
}

GARBAGE, TRUNCATE, BAD_CHECK, SILENT = "garbage", "truncate", "bad-checksum", "silent"
FAULTS = (GARBAGE, TRUNCATE, BAD_CHECK, SILENT)


class Faults:
    """What the line does to the module's outgoing frames, for the next N frames or until cleared.

    garbage: random bytes (sometimes with a stray half header) before the frame;
    truncate: only the first half of the frame; bad-checksum: the last byte (both
    protocols end in their check) flipped; silent: nothing at all.
    """

    def __init__(self, sync: bytes, seed: int = 0) -> None:
        self.sync = sync
        self._rng = random.Random(seed)
        self._mode: str | None = None
        self._left: int | None = None
        self._lock = threading.Lock()
        self.applied: Counter[str] = Counter()

    @property
    def mode(self) -> str | None:
        return self._mode

    def inject(self, mode: str, count: int | None = None) -> None:
        if mode not in FAULTS:
            raise ValueError(f"fault {mode!r}: one of {', '.join(FAULTS)}")
        with self._lock:
            self._mode, self._left = mode, count

    def clear(self) -> None:
        with self._lock:
            self._mode, self._left = None, None

    def apply(self, frame: bytes) -> bytes:
        with self._lock:
            mode = self._mode
            if mode is None:
                return frame
            if self._left is not None:
                self._left -= 1
                if self._left <= 0:
                    self._mode, self._left = None, None
            self.applied[mode] += 1
            rng = self._rng
            if mode == GARBAGE:
                noise = rng.randbytes(rng.randint(4, 24))
                if rng.random() < 0.5:
                    noise += self.sync + rng.randbytes(rng.randint(0, 3))  # a stray half header
                return noise + frame
            if mode == TRUNCATE:
                return frame[: max(1, len(frame) // 2)]
            if mode == BAD_CHECK:
                return frame[:-1] + bytes([frame[-1] ^ 0x5A])
            return b""
