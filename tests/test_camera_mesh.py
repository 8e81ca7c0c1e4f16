"""The camera for the app through the real processes (issue 13): the doorbell's snapshot
(L-23), the live view (L-31) on its own socket, both off below 20 % battery (L-28).

The face service's video socket is an XPUB off the bus (services/face/video.py); these
tests subscribe to it as the gateway does (services/gateway/camera.video_socket).
"""

from __future__ import annotations

import http.client
import io
import os
import signal
import stat
import time
import urllib.parse

import pytest
import zmq
from PIL import Image

from hw.camera import FRAME_SIZE
from proto import supervisor_rpc
from proto.biometric import Snapshot
from proto.bus import Bus
from proto.config import DEFAULTS
from proto.control import Done
from proto.health import Heartbeat
from proto.policy import Audit
from proto.power import Battery
from services.face.video import JPEG, OFF
from services.gateway.camera import video_socket
from tests.appkit import CONFIG, App, claimed_app
from tests.meshkit import Lock, Watcher, eventually, is_type, lean_but, running

WITHOUT = lean_but("face", "gateway")  # the lock fixture's (conftest.py), and below

pytestmark = pytest.mark.slow

MIN_FPS = 10.0  # the issue's floor; the face service aims at face.live_fps (12)
MEASURE_S = 3.0
VIDEO_MIN_PERCENT = DEFAULTS["power"]["video_min_percent"]  # 20 (L-28)
APP_CONFIG = CONFIG  # the app on any free port; pairing opens quickly (tests/appkit.py)


def face_detail(watch: Watcher) -> dict:
    return watch.detail("face")


def set_battery(lock: Lock, watch: Watcher, percent: float) -> None:
    """The simulated battery at percent, and the face service has heard it."""
    lock.cli("sim", "battery", str(percent))
    watch.wait_for(is_type(Battery, percent=float(percent)))
    low = percent < VIDEO_MIN_PERCENT
    eventually(lambda: bool(face_detail(watch)["video_off"]) is low)


class PolicyStandIn:
    """face.snapshot sent with policy's key, as the doorbell does. The real policy is
    stopped first: its key is this test's now, and the face service takes requests only
    from the newest session of a one-process identity."""

    def __init__(self, lock: Lock) -> None:
        supervisor_rpc.proxy(lock.layout.run).supervisor.stopProcess("policy")
        self.bus = Bus(lock.layout, "policy")

    def snapshot(self, name: str) -> Done:
        answer = self.bus.client("face").request(Snapshot(name=name), timeout=5.0)
        assert answer is not None, "the face service did not answer"
        assert isinstance(answer.body, Done)
        return answer.body

    def close(self) -> None:
        self.bus.close()


def receive(sock: zmq.Socket, timeout: float) -> tuple[bytes, bytes] | None:
    if not sock.poll(int(timeout * 1000)):
        return None
    kind, payload = sock.recv_multipart()
    return kind, payload


def beats(watch: Watcher, count: int) -> list[Heartbeat]:
    """Waits for the face service's next count heartbeats (0.5 s apart): time passing,
    measured by the mesh's own clock, not by a sleep."""
    heard: list[Heartbeat] = []

    def face_beat(env) -> bool:
        if env.sender == "face" and isinstance(env.body, Heartbeat):
            heard.append(env.body)
        return len(heard) >= count

    watch.seen.clear()
    watch.wait_for(face_beat, timeout=count * 2.0 + 5)
    return heard


def test_l23_a_snapshot_is_a_real_jpeg_of_the_camera_and_refused_below_video_min(lock):
    watch, policy = lock.watcher(), PolicyStandIn(lock)
    started = time.monotonic()
    done = policy.snapshot("bell-1-7")
    print(f"snapshot answered in {(time.monotonic() - started) * 1000:.1f} ms")
    assert (done.ok, done.detail) == (True, "bell-1-7"), done
    path = lock.layout.snapshot("bell-1-7")
    with Image.open(path) as image:
        assert image.format == "JPEG"
        assert image.size == FRAME_SIZE  # the simulated camera's empty doorstep, 640x480
        image.load()  # decodes whole: a real picture, not a header
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640  # the gateway's group reads it (Pi)

    again = policy.snapshot("bell-1-7")
    assert (again.ok, again.reason) == (False, "exists")  # a name is never replaced

    set_battery(lock, watch, 15)  # below power.video_min_percent (20)
    low = policy.snapshot("bell-1-8")
    assert (low.ok, low.reason) == (False, "battery-low"), low
    assert low.detail == "battery too low for video (15 %, below 20 %)"
    assert not lock.layout.snapshot("bell-1-8").exists()
    policy.close()


def test_issue13_live_video_reaches_the_gateway_at_10_fps_only_while_watched(lock):
    watch = lock.watcher()
    assert face_detail(watch)["live"]["frames"] == 0
    idle = [b.lag_ms for b in beats(watch, 4)]  # 1.5 s unwatched: nothing grabbed or sent
    assert face_detail(watch)["live"]["frames"] == 0

    ctx = zmq.Context()
    try:
        gateway = video_socket(ctx, lock.layout)
        first = receive(gateway, 10.0)
        assert first is not None and first[0] == JPEG, first
        with Image.open(io.BytesIO(first[1])) as image:
            assert (image.format, image.size) == ("JPEG", FRAME_SIZE)
        watch.seen.clear()
        frames, started = 0, time.monotonic()
        while (elapsed := time.monotonic() - started) < MEASURE_S:
            message = receive(gateway, 1.0)
            assert message is not None and message[0] == JPEG, message
            frames += 1
        fps = frames / elapsed
        lags = [b.lag_ms for b in beats(watch, 4)]  # the face loop's, while watched
        print(f"live view: {frames} frames in {elapsed:.2f} s = {fps:.1f} fps; face loop "
              f"lag_ms unwatched {sorted(idle)}, watched {sorted(lags)}; "
              f"{face_detail(watch)['live']}")  # fmt: skip
        assert fps >= MIN_FPS, f"{frames} frames in {elapsed:.2f} s"
        gateway.close()
        eventually(lambda: not face_detail(watch)["live"]["watched"])
        sent = face_detail(watch)["live"]["frames"]
        beats(watch, 3)
        assert face_detail(watch)["live"]["frames"] == sent  # the last viewer left: none
    finally:
        ctx.destroy(linger=0)


def test_issue13_only_the_gateway_key_may_watch_the_live_video(lock):
    watch = lock.watcher()
    ctx = zmq.Context()
    try:
        stranger = ctx.socket(zmq.SUB)  # a key the lock has never made
        public, secret = zmq.curve_keypair()
        stranger.curve_publickey, stranger.curve_secretkey = public, secret
        stranger.curve_serverkey = (lock.layout.keys / "face.key").read_bytes().strip()
        stranger.connect(lock.layout.video("face"))
        stranger.subscribe(b"")
        keypad = video_socket(ctx, lock.layout, identity="keypad")  # the lock's, not a viewer
        eventually(lambda: refused_both(lock.status()["services"]["face"]["drops"]))
        assert receive(stranger, 0.5) is None and receive(keypad, 0.5) is None
        live = face_detail(watch)["live"]
        assert (live["watched"], live["frames"], live["subscribes"]) == (False, 0, 0)
    finally:
        ctx.destroy(linger=0)


def refused_both(drops: dict) -> bool:
    """The stranger's key refused as unknown, the keypad's as not a viewer."""
    return drops.get("unknown-key", 0) > 0 and drops.get("unauthorized", 0) > 0


def test_l28_live_video_stops_with_its_reason_below_20_percent_and_resumes(lock):
    """... and after the face service is killed, its viewer is served again."""
    watch = lock.watcher()
    ctx = zmq.Context()
    try:
        gateway = video_socket(ctx, lock.layout)
        assert (receive(gateway, 10.0) or (b"",))[0] == JPEG
        set_battery(lock, watch, 15)
        message = receive(gateway, 2.0)
        while message is not None and message[0] == JPEG:  # frames already on their way
            message = receive(gateway, 2.0)
        assert message is not None and message[0] == OFF, message
        assert message[1].decode() == "battery too low for video (15 %, below 20 %)"
        for _ in range(2):  # while off: only the reason, about once a second
            later = receive(gateway, 3.0)
            assert later is not None and later[0] == OFF, later
        set_battery(lock, watch, 80)
        message = receive(gateway, 3.0)
        while message is not None and message[0] == OFF:
            message = receive(gateway, 3.0)
        assert message is not None and message[0] == JPEG

        killed = lock.pid("face")
        os.kill(killed, signal.SIGKILL)  # supervisord restarts it over its stale socket file
        eventually(lambda: lock.pid("face") not in (killed, 0), timeout=20)

        def served_again() -> bool:
            """The same subscriber reconnects by itself (its socket runs libzmq's commands,
            the new subscription among them, only while it is used, as the gateway's is)
            and the new process sends to it."""
            receive(gateway, 0.2)
            return face_detail(watch)["live"]["frames"] > 0

        eventually(served_again, timeout=20)
        message = receive(gateway, 2.0)
        assert message is not None and message[0] == JPEG
    finally:
        ctx.destroy(linger=0)


# -- through the gateway's HTTP, as the app's page sees it --------------------------------
def mjpeg_frames(app: App, seconds: float) -> tuple[int, float, bytes]:
    """GET /api/live read for seconds: whole JPEG parts counted, the elapsed time, the
    last part."""
    where = urllib.parse.urlsplit(app.url)
    conn = http.client.HTTPConnection(where.hostname or "", where.port, timeout=5.0)
    try:
        conn.request("GET", "/api/live", headers=app.headers("GET"))
        response = conn.getresponse()
        assert response.status == 200, (response.status, response.read())
        assert response.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
        body, started = b"", time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            body += response.read1(1 << 16)
    finally:
        conn.close()
    jpegs = [p.partition(b"\r\n\r\n")[2] for p in body.split(b"--frame\r\n")[1:-1]]
    return len(jpegs), elapsed, jpegs[-1].removesuffix(b"\r\n")


def test_l23_l31_issue13_the_app_shows_the_bells_snapshot_and_the_live_view(tmp_path):
    with running(tmp_path / "data", APP_CONFIG, without=WITHOUT) as lock:
        app, watch = claimed_app(lock), lock.watcher()
        assert App(app.url).get("/api/live").status == 401  # not logged in
        frames, elapsed, last = mjpeg_frames(app, MEASURE_S)
        print(f"/api/live: {frames} frames in {elapsed:.2f} s = {frames / elapsed:.1f} fps")
        assert frames / elapsed >= MIN_FPS
        with Image.open(io.BytesIO(last)) as image:
            assert (image.format, image.size) == ("JPEG", FRAME_SIZE)

        lock.press("touch", "bell")  # L-23: policy asks the face service for the picture
        rung = watch.wait_for(lambda e: isinstance(e.body, Audit) and e.body.kind == "doorbell")
        assert rung.body.detail.startswith("snapshot="), rung.body.detail
        name = rung.body.detail.removeprefix("snapshot=")
        shot = app.get(f"/api/snapshots/{name}")
        assert (shot.status, shot.headers["Content-Type"]) == (200, "image/jpeg")
        with Image.open(io.BytesIO(shot.body)) as image:
            assert (image.format, image.size) == ("JPEG", FRAME_SIZE)
        assert App(app.url).get(f"/api/snapshots/{name}").status == 401
        assert app.get("/api/snapshots/bell-9-9").status == 404

        set_battery(lock, watch, 15)  # L-28: below 20 % the live view is off, and says why
        off = app.get("/api/live")
        why = "battery too low for video (15 %, below 20 %)"
        assert (off.status, off.body) == (503, {"error": "video-off", "detail": why})
