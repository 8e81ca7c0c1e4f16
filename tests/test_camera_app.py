"""The camera's HTTP routes (issue 13, L-23, L-31, L-28) on aiohttp's test server, with
the face service's real video publisher in this process (services/face/video.py) on a
real CURVE socket: /api/live's MJPEG and its 503, /api/snapshots' strict names.

A minimal app mounts camera.routes() with a session check that lets a request through
only with the header X-Test-Session: yes (the gateway's own check is app.py's)."""

from __future__ import annotations

import asyncio
import io
import os
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import numpy as np
import pytest
import zmq
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from hw.camera import SimCamera
from proto import curve, files
from proto.bus import Bus
from proto.layout import IDENTITIES, Layout
from proto.trust import VIEWERS
from services.face import video
from services.face.snapshots import SnapshotFolder
from services.gateway import camera

LOGGED_IN = {"X-Test-Session": "yes"}


def session_check(request: web.Request) -> web.StreamResponse | None:
    if request.headers.get("X-Test-Session") == "yes":
        return None
    return camera.error(401, "not-logged-in", "log in first")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    layout = Layout.at(tmp_path / "d")
    layout.data.mkdir()
    curve.ensure_keys(layout.keys, IDENTITIES)
    files.private_dir(layout.run)
    return layout


class Face:
    """The face service's video side: its bus's restricted XPUB and the publisher."""

    def __init__(self, layout: Layout, why_off: str = "") -> None:
        self.bus = Bus(layout, "face")
        sock = self.bus.bind_restricted(zmq.XPUB, layout.video("face"), video.DOMAIN, VIEWERS)
        self.why_off = why_off
        self.live = video.LiveVideo(sock, SimCamera(4).view, lambda: self.why_off,
                                    fps=12.0, quality=70)  # fmt: skip
        self.live.start()

    def close(self) -> None:
        self.live.stop()
        self.bus.close()


@pytest.fixture
def face(layout: Layout) -> Iterator[Face]:
    face = Face(layout)
    yield face
    face.close()


def with_client(
    layout: Layout, test: Callable[[TestClient, camera.Camera], Awaitable[None]]
) -> None:
    """Runs test against the camera's routes on a real local HTTP server."""

    async def run() -> None:
        cam = camera.Camera(layout, session_check)
        app = web.Application()
        app.router.add_routes(cam.routes())
        async with TestClient(TestServer(app)) as client:
            await test(client, cam)

    asyncio.run(run())


def parts(stream: bytes) -> list[bytes]:
    """The JPEGs of a multipart/x-mixed-replace body, whole parts only."""
    found = []
    for chunk in stream.split(b"--" + camera.BOUNDARY.encode() + b"\r\n")[1:]:
        head, _, rest = chunk.partition(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        if len(rest) >= length + 2:
            found.append(rest[:length])
    return found


def test_l31_issue13_live_streams_mjpeg_at_10_fps_or_more_from_the_face_video(layout, face):
    async def test(client: TestClient, cam: camera.Camera) -> None:
        response = await client.get("/api/live", headers=LOGGED_IN)
        assert response.status == 200
        assert response.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
        body, started = b"", time.monotonic()
        while time.monotonic() - started < 3.0:
            body += await asyncio.wait_for(response.content.readany(), 2.0)
        elapsed = time.monotonic() - started
        frames = parts(body)
        response.close()
        assert len(frames) / elapsed >= 10.0, f"{len(frames)} frames in {elapsed:.2f} s"
        while cam.viewers or face.live.watched:  # the browser left: its SUB closes, and
            await asyncio.sleep(0.05)  # the publisher stops (the test's timeout bounds it)
        with Image.open(io.BytesIO(frames[-1])) as image:
            assert (image.format, image.size) == ("JPEG", (640, 480))

    with_client(layout, test)


def test_l28_live_answers_503_with_the_face_services_reason_when_video_is_off(layout):
    face = Face(layout, why_off="battery too low for video (15 %, below 20 %)")
    try:

        async def test(client: TestClient, cam: camera.Camera) -> None:
            response = await client.get("/api/live", headers=LOGGED_IN)
            assert response.status == 503
            assert await response.json() == {
                "error": "video-off",
                "detail": "battery too low for video (15 %, below 20 %)",
            }
            assert cam.viewers == 0  # its socket closed

        with_client(layout, test)
    finally:
        face.close()


def test_l28_a_frame_encoded_while_video_went_off_is_not_sent():
    """Stop 26's run 402: a viewer who came just after the battery fell below
    video_min_percent got a frame that had been grabbed before, then a 200."""
    ctx = zmq.Context()
    out, viewer = ctx.socket(zmq.XPUB), ctx.socket(zmq.SUB)
    out.bind("inproc://live")
    viewer.connect("inproc://live")
    viewer.subscribe(b"")
    why = {"now": ""}
    camera_view = SimCamera(4).view

    def grabbed_as_the_battery_falls():
        why["now"] = "battery too low for video (15 %, below 20 %)"
        return camera_view()

    live = video.LiveVideo(out, grabbed_as_the_battery_falls, lambda: why["now"], fps=12.0,
                           quality=70)  # fmt: skip
    try:
        live._send(due=0.0)
        assert viewer.poll(2000)
        assert viewer.recv_multipart() == [video.OFF, why["now"].encode()]
        assert live.stats == {"frames": 0, "off": 1, "subscribes": 0}
    finally:
        ctx.destroy(linger=0)


def test_issue13_live_without_a_face_service_is_503_not_a_hang(layout, monkeypatch):
    monkeypatch.setattr(camera, "FIRST_FRAME_S", 0.5)

    async def test(client: TestClient, cam: camera.Camera) -> None:
        response = await client.get("/api/live", headers=LOGGED_IN)
        assert (response.status, (await response.json())["error"]) == (503, "no-video")

    with_client(layout, test)


def test_issue13_both_routes_need_a_session(layout, face):
    async def test(client: TestClient, cam: camera.Camera) -> None:
        for path in ("/api/live", "/api/snapshots/bell-1-2"):
            response = await client.get(path)
            assert response.status == 401, path
        assert face.live.stats["subscribes"] == 0  # refused before any socket was opened

    with_client(layout, test)


def snapshot(layout: Layout, name: str) -> bytes:
    rgb = np.zeros((480, 640, 3), np.uint8)
    assert SnapshotFolder(layout, kept=200).take(name, rgb).ok
    return layout.snapshot(name).read_bytes()


def test_l23_a_snapshot_is_served_as_jpeg_and_anything_else_is_404(layout, tmp_path):
    jpeg = snapshot(layout, "bell-1-2")
    (layout.snapshots / "notes.jpg").write_text("not a picture")  # in the folder, not a JPEG
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(jpeg)
    os.symlink(outside, layout.snapshots / "linked.jpg")  # a hijacked face's plant

    async def test(client: TestClient, cam: camera.Camera) -> None:
        response = await client.get("/api/snapshots/bell-1-2", headers=LOGGED_IN)
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/jpeg"
        assert await response.read() == jpeg
        for name in ("bell-1-3", "notes", "linked", "..", ".hidden", "bell-1-2.jpg",
                     "%2e%2e%2fkeys%2fgateway", "a" * 65, "bell 1", "b%C3%A9ll"):  # fmt: skip
            response = await client.get(f"/api/snapshots/{name}", headers=LOGGED_IN)
            assert response.status == 404, name
            if response.content_type == "application/json":  # else the router's own 404
                body: Any = await response.json()
                assert body["error"] == "not-found", name

    with_client(layout, test)


def test_l23_the_snapshot_folder_keeps_the_newest_and_never_replaces_a_name(layout):
    folder = SnapshotFolder(layout, kept=3)
    rgb = np.full((480, 640, 3), 128, np.uint8)
    for i in range(5):
        assert folder.take(f"bell-1-{i}", rgb).ok
        os.utime(layout.snapshot(f"bell-1-{i}"), ns=(i * 10**9, i * 10**9))  # distinct ages
    assert folder.take("bell-1-9", rgb).ok
    assert folder.names()[-1] == "bell-1-9" and len(folder.names()) == 3
    assert folder.names()[:2] == ["bell-1-3", "bell-1-4"]
    again = folder.take("bell-1-9", rgb)
    assert (again.ok, again.reason) == (False, "exists")
    assert folder.take("../x", rgb).reason == "bad-value"
