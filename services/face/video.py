"""The app's live view (issue 13): JPEG frames on a socket of their own, never on the bus.

Why this path. The bus carries small, validated, logged messages (64 KiB at most, each in
the tap and counted); a 640x480 JPEG at 12 a second is 0.2-0.7 MB/s that no other service
wants, and it would crowd the tap, the watchdog's heartbeats and policy's decisions on the
same publisher. So the face service binds a second ZeroMQ socket, an XPUB at
ipc://RUN/face.video, with the bus's CURVE keys and ZAP handler under a domain of its own
that admits only proto.trust.VIEWERS (the gateway): no new key, no new trust mechanism,
and any other identity is refused at the handshake and counted. XPUB tells the publisher
when the first viewer subscribes and when the last one leaves, so nothing is grabbed or
encoded while nobody watches; a slow viewer loses frames at the high-water mark instead
of queueing them (a live view shows now, not late). Shared memory (frigate's way) would
save a copy of each frame, but its gain is for many consumers of raw frames on one
machine; here there is one consumer of compressed ones, it must be told apart by key, it
needs the "there is a viewer" signal and the "video is off, and why" message anyway, and
a ring of frames would need its own locking, naming and clean-up after a crash. At ~50 KB
a frame the copy costs nothing worth that.

The wire: multipart [b"jpeg", JPEG bytes] at face.live_fps while watched, or
[b"off", reason in UTF-8] about once a second while video is not allowed (battery below
power.video_min_percent, L-28; no camera) so the viewer can say why. Grabbing and encoding
run in this thread, never in the service loop nor in the recogniser's worker.
"""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from typing import Callable

import numpy as np
import zmq
from PIL import Image

from hw.camera import Frame

log = logging.getLogger(__name__)

DOMAIN = "lockmesh-video"  # the ZAP domain of the video socket: only VIEWERS pass
JPEG, OFF = b"jpeg", b"off"  # the first part of each message
OFF_EVERY_S = 1.0  # while video is off, a watcher hears why this often
IDLE_POLL_S = 0.2  # how often an unwatched publisher looks at its stop flag
SEND_HWM = 4  # messages queued per viewer; beyond, the newest are dropped for it


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=quality)
    return out.getvalue()


class LiveVideo:
    """Publishes what the camera shows while someone watches; why not, when video is off.

    view() gives the camera's frame now (None: none yet); why_off() gives "" while video is
    allowed, else the reason. The socket is this thread's alone once started."""

    def __init__(
        self,
        sock: zmq.Socket[bytes],
        view: Callable[[], Frame | None],
        why_off: Callable[[], str],
        *,
        fps: float,
        quality: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        sock.sndhwm = SEND_HWM
        sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every new viewer is heard: told the state at once
        self.sock, self.view, self.why_off = sock, view, why_off
        self.period, self.quality, self.clock = 1.0 / fps, quality, clock
        self.watched = False
        self.stats = {"frames": 0, "off": 0, "subscribes": 0}
        self.encode_ms: list[float] = []  # the last frames' grab and encode times
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-video", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def status(self) -> dict[str, object]:
        timing = sorted(self.encode_ms)
        return {
            "watched": self.watched,
            **self.stats,
            "encode_ms_p50": round(timing[len(timing) // 2], 2) if timing else None,
        }

    def _run(self) -> None:
        due = self.clock()
        while not self._stop.is_set():
            try:
                due = self._step(due)
            except Exception:  # a bad frame or a bug: logged, the live view goes on
                log.exception("a live video frame failed")
                due = self.clock() + OFF_EVERY_S

    def _step(self, due: float) -> float:
        """Waits for viewers' news or the next frame's time (the stop flag looked at every
        IDLE_POLL_S at most); the time the next message is due."""
        wait = min(max(0.0, due - self.clock()), IDLE_POLL_S) if self.watched else IDLE_POLL_S
        if self.sock.poll(math.ceil(wait * 1000)):
            return self.clock() if self._heard_viewers() else due  # a new viewer: tell it now
        if self.watched and self.clock() >= due:
            return self._send(due)
        return due

    def _heard_viewers(self) -> bool:
        """Reads XPUB's news; True when a viewer came. With XPUB_VERBOSE each subscribe is
        passed up, an unsubscribe only when the last viewer has gone."""
        came = False
        while self.sock.poll(0):
            news = self.sock.recv()
            if news[:1] == b"\x01":
                self.watched = came = True
                self.stats["subscribes"] += 1
            elif news[:1] == b"\x00":
                self.watched = False
        return came

    def _send(self, due: float) -> float:
        """One message; the time the next is due (a late frame does not bunch the next)."""
        if why := self.why_off():
            return self._off(why)
        started = time.perf_counter()
        frame = self.view()
        if frame is None:
            return self._off("the camera has given no frame yet")
        jpeg = encode_jpeg(frame.rgb, self.quality)
        self.encode_ms = (self.encode_ms + [(time.perf_counter() - started) * 1000])[-100:]
        if why := self.why_off():  # video went off while this frame was encoded: it stays here
            return self._off(why)
        self._post(JPEG, jpeg)
        self.stats["frames"] += 1
        return max(due + self.period, self.clock())

    def _off(self, why: str) -> float:
        self._post(OFF, why.encode())
        self.stats["off"] += 1
        return self.clock() + OFF_EVERY_S

    def _post(self, kind: bytes, payload: bytes) -> None:
        try:
            self.sock.send_multipart([kind, payload], flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # XPUB drops for a full viewer rather than block; kept for safety
