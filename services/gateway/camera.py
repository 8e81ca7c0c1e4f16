"""The camera in the app (issue 13): the live view as MJPEG, and the doorbell's snapshots.

Frames come from the face service's video socket, not from the bus (services/face/video.py
says why), through a SUB with the gateway's own CURVE key: the face service admits no other.
Each browser viewing opens its own SUB; the face service grabs and encodes only while one
is open. Both routes need a logged-in session: the gateway core's check is passed in.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import stat
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import zmq
import zmq.asyncio
from aiohttp import web

from proto import curve
from proto.biometric import snapshot_name
from proto.layout import Layout

BOUNDARY = "frame"
JPEG, OFF = b"jpeg", b"off"  # services/face/video.py's message kinds
FIRST_FRAME_S = 3.0  # the face service answers a new viewer at once: silence is an error
FRAME_GAP_S = 5.0  # a stream that gets no frame for this long ends
MAX_VIEWERS = 4  # live views at once: each costs the Pi's uplink 0.1-0.7 MB/s
MAX_SNAPSHOT_BYTES = 4 << 20  # a 640x480 JPEG is ~50 KB; anything this big is not ours
JPEG_MAGIC = b"\xff\xd8\xff"

# None when the request may go on; otherwise the answer to give (401 not logged in).
SessionCheck = Callable[
    [web.Request], "web.StreamResponse | None | Awaitable[web.StreamResponse | None]"
]


def video_socket(ctx: zmq.Context[Any], layout: Layout, identity: str = "gateway") -> Any:
    """A SUB on the face service's live video, CURVE-authenticated as identity (only the
    gateway is admitted; tests use this with other keys to see them refused)."""
    me = curve.load_identity(layout.keys, identity)
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    sock.rcvhwm = 4  # a slow browser loses frames here rather than seeing old ones
    sock.curve_secretkey, sock.curve_publickey = me.secret, me.public
    sock.curve_serverkey = curve.public_key(layout.keys, "face")
    sock.connect(layout.video("face"))
    sock.subscribe(b"")
    return sock


def error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)


def mjpeg_part(jpeg: bytes) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    return head.encode() + jpeg + b"\r\n"


@dataclass
class Camera:
    """The two routes' state: the lock's layout, the session check, the viewers open."""

    layout: Layout
    check_session: SessionCheck
    zmq_ctx: zmq.asyncio.Context | None = None
    viewers: int = 0
    stats: dict[str, int] = field(default_factory=lambda: {"frames": 0, "views": 0})

    async def _refused(self, request: web.Request) -> web.StreamResponse | None:
        answer = self.check_session(request)
        return await answer if inspect.isawaitable(answer) else answer

    def _context(self) -> zmq.asyncio.Context:
        """An asyncio view of the process's global context: no context of the video's own
        to stop. Not zmq.asyncio.Context.instance(), which hands back the plain global one
        if anything made that first."""
        if self.zmq_ctx is None:
            self.zmq_ctx = zmq.asyncio.Context.shadow(zmq.Context.instance())
        return self.zmq_ctx

    async def live(self, request: web.Request) -> web.StreamResponse:
        """GET /api/live: multipart/x-mixed-replace JPEG frames while video is on; 503 with
        the face service's reason when it is off (battery below video_min_percent, L-28)."""
        refused = await self._refused(request)
        if refused is not None:
            return refused
        if self.viewers >= MAX_VIEWERS:
            return error(503, "busy", f"{MAX_VIEWERS} live views are open already")
        self.viewers += 1
        sock = video_socket(self._context(), self.layout)
        try:
            return await self._stream(request, sock)
        finally:
            sock.close(linger=0)
            self.viewers -= 1

    async def _stream(self, request: web.Request, sock: Any) -> web.StreamResponse:
        first = await _next(sock, FIRST_FRAME_S)
        if first is None:
            return error(503, "no-video", "the face service sent no video: is it running?")
        kind, payload = first
        if kind != JPEG:
            return error(503, "video-off", payload.decode(errors="replace"))
        # sent here, before the app's guard could add its headers: the stream names its own
        response = web.StreamResponse(
            headers={
                "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            }
        )
        await response.prepare(request)
        self.stats["views"] += 1
        try:
            while kind == JPEG:
                await response.write(mjpeg_part(payload))
                self.stats["frames"] += 1
                message = await _next(sock, FRAME_GAP_S)
                if message is None:
                    break
                kind, payload = message
        except ConnectionResetError:
            pass  # the browser went away
        return response  # video went off or silent: the stream ends, /api/home says why

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        """GET /api/snapshots/{name}: a doorbell snapshot as image/jpeg, or 404."""
        refused = await self._refused(request)
        if refused is not None:
            return refused
        name = request.match_info.get("name", "")
        if snapshot_name(name) is not None:
            return error(404, "not-found", "no such snapshot")
        data = read_snapshot(self.layout, name)
        if data is None:
            return error(404, "not-found", f"no snapshot named {name}")
        return web.Response(
            body=data, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            # no HEAD: its body is dropped, so a HEAD that went away would hold a viewer
            web.get("/api/live", self.live, allow_head=False),
            web.get("/api/snapshots/{name}", self.snapshot),
        ]


def routes(layout: Layout, check_session: SessionCheck) -> list[web.RouteDef]:
    """The camera's routes for the gateway's app to mount."""
    return Camera(layout, check_session).routes()


async def _next(sock: Any, timeout: float) -> tuple[bytes, bytes] | None:
    """The next [kind, payload] message, or None after timeout (or a malformed one)."""
    try:
        parts = await asyncio.wait_for(sock.recv_multipart(), timeout)
    except asyncio.TimeoutError:
        return None
    return (parts[0], parts[1]) if len(parts) == 2 else None


def read_snapshot(layout: Layout, name: str) -> bytes | None:
    """The snapshot's bytes, or None when there is none: only a regular file, not reached
    through a link (the folder is the face service's: a hijacked face could plant one
    pointing at a file the gateway may read), of a sane size, that is a JPEG."""
    try:
        fd = os.open(layout.snapshot(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_SNAPSHOT_BYTES:
            return None
        data = f.read(MAX_SNAPSHOT_BYTES + 1)
    return data if data.startswith(JPEG_MAGIC) and len(data) <= MAX_SNAPSHOT_BYTES else None
