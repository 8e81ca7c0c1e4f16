"""The owner app's HTTP API (APP.md, issue 13): the route table, and the aiohttp app.

Every route is one row of ROUTES: method, path, what it takes (a Body or a Query, both
made of a proto message's fields), whether it needs a session, and a handler, or none
when the answer is simply policy's answer to the message. The OpenAPI document is made
from the same rows (openapi.py), so the fuzzer tests what is served.

Each request passes the same gate, in endpoint(): the Host (a DNS-rebinding page cannot
name the lock), the Origin of a change when the browser sends one, the session cookie,
the CSRF token of a change, the size and the JSON of the body, and the message's own
checks. Only then is policy asked, which decides. Refusals are {"error", "detail"} with
a 4xx; nothing a client sends makes a 5xx (the fuzz test holds the gateway to that).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web

from proto.biometric import EnrolOpen
from proto.control import Done, StatusReply, StatusRequest
from proto.layout import Layout
from proto.owner import (
    AppLogin,
    AuditVerify,
    DuressSet,
    EventsRequest,
    Home,
    HomeRequest,
    Listing,
    LockoutRelease,
    PairClaim,
    PeopleRequest,
    PersonAdd,
    PersonDelete,
    PersonRename,
    RemoteLock,
    RemoteUnlock,
    SettingSet,
    SettingsRequest,
    ValiditySet,
    VisitorAdd,
    VisitorDelete,
    VisitorsRequest,
)
from proto.schema import MAX_TEXT, Message
from proto.wire import Envelope
from services.gateway import answers, openapi
from services.gateway.bodies import MAX_BODY_BYTES, Body, Query, Refused, bad, parse_json
from services.gateway.sessions import Session, Sessions, Throttle
from services.gateway.stream import PING, PING_S, Hub

log = logging.getLogger(__name__)

COOKIE = "lm_session"
CSRF_HEADER = "X-CSRF-Token"
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STATIC = Path(__file__).parent / "static"
ASK_THREADS = 4  # requests to policy waiting at once; more wait for one of them
PLACEHOLDER = b"""<!doctype html><meta charset="utf-8"><title>lockmesh</title>
<p>The lock's app is not installed here yet. Its API is at <a href="/api/openapi.json">
/api/openapi.json</a>.</p>
"""
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}
Request = Callable[[str, Message], "Envelope[Message] | None"]  # the mailbox's


@dataclass
class Gateway:
    """What the routes share; lives in the HTTP thread."""

    request: Request  # blocking: a worker thread waits on the service's loop
    config: dict[str, dict[str, Any]]
    cert_sha256: str | None = None  # on TLS: what the claim gives the phone to pin
    sessions: Sessions = field(init=False)
    throttle: Throttle = field(init=False)
    hub: Hub = field(init=False)
    serial: str | None = None  # policy's word, asked once
    documented: tuple[Route, ...] = ()  # what the OpenAPI document shows: what is served
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(ASK_THREADS, thread_name_prefix="ask")
    )

    def __post_init__(self) -> None:
        c = self.config["gateway"]
        self.sessions = Sessions(c["session_idle_s"], c["session_max_s"])
        self.throttle = Throttle(c["login_attempts"], c["login_window_s"])
        self.hub = Hub(self.ask, self.home_body)
        self.documented = self.documented or ROUTES

    @property
    def secure(self) -> bool:
        return bool(self.config["gateway"]["tls"])

    async def ask(self, body: Message) -> Message | None:
        """Policy's answer, or None when it gave none in time."""
        loop = asyncio.get_running_loop()
        env = await loop.run_in_executor(self.pool, self.request, "policy", body)
        return None if env is None else env.body

    def home_body(self, home: Home) -> dict[str, Any]:
        return {**home.to_body(), "live_view": live_view(home, self.config)}

    # -- from the bus side (service.py), in this loop ---------------------------------------
    def heard(self, type_name: str, body: dict[str, Any], stamped: float) -> None:
        """A new claim or a factory reset ends every session made before it (the password
        they were made with is gone); the rest is for the pages' streams."""
        if type_name == "policy.audit" and body.get("kind") in ("paired", "factory-reset"):
            self.sessions.end_before(stamped)
            self.hub.drop(self.sessions.alive)
        self.hub.heard(type_name, body)

    def close(self) -> None:
        self.hub.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def live_view(home: Home, config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether the page may show the camera now, and why not (L-28: the battery)."""
    if config["face"]["camera"] == "none":
        return {"on": False, "why": "no-camera"}
    if not home.video_allowed:
        return {"on": False, "why": "battery-low"}
    return {"on": True, "why": ""}


# -- the routes' own handlers ---------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    request: web.Request
    session: Session | None
    message: Message | None


Handler = Callable[[Gateway, Call], Awaitable["web.StreamResponse | dict[str, Any]"]]


async def session_info(gw: Gateway, call: Call) -> dict[str, Any]:
    home = await gw.ask(HomeRequest())
    if not isinstance(home, Home):
        raise answers.no_answer()
    if gw.serial is None:
        status = await gw.ask(StatusRequest())
        if isinstance(status, StatusReply) and isinstance(status.detail.get("serial"), str):
            gw.serial = status.detail["serial"]
    return {
        "logged_in": call.session is not None,
        "claimed": home.claimed,
        "csrf": call.session.csrf if call.session else None,
        "lock": {"serial": gw.serial},
    }


def _throttled(gw: Gateway, request: web.Request) -> None:
    wait = gw.throttle.retry_after(request.remote or "?")
    if wait is not None:
        seconds = f"{max(1, round(wait))}"
        raise Refused(
            429, "throttled", f"too many attempts from here: wait {seconds} s",
            {"Retry-After": seconds},
        )  # fmt: skip


def _logged_in(gw: Gateway, request: web.Request, body: dict[str, Any]) -> web.Response:
    gw.sessions.end(request.cookies.get(COOKIE))
    token, session = gw.sessions.mint()
    response = web.json_response({**body, "ok": True, "csrf": session.csrf})
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(gw.config["gateway"]["session_max_s"]),
        path="/",
        secure=gw.secure,
        httponly=True,
        samesite="Strict",
    )
    return response


async def claim(gw: Gateway, call: Call) -> web.Response:
    _throttled(gw, call.request)
    assert call.message is not None
    answers.body_of(await gw.ask(call.message))  # Refused unless policy took the claim
    gw.sessions.end_all()  # the old password's sessions end with it
    gw.hub.drop(gw.sessions.alive)
    return _logged_in(gw, call.request, {"cert_sha256": gw.cert_sha256})


async def login(gw: Gateway, call: Call) -> web.Response:
    _throttled(gw, call.request)
    assert call.message is not None
    answer = await gw.ask(call.message)
    if isinstance(answer, Done) and not answer.ok and answer.reason == "not-claimed":
        raise Refused(409, "not-claimed", answer.detail or "claim the lock first")
    answers.body_of(answer)
    return _logged_in(gw, call.request, {})


async def logout(gw: Gateway, call: Call) -> web.Response:
    gw.sessions.end(call.request.cookies.get(COOKIE))
    gw.hub.drop(gw.sessions.alive)
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/", secure=gw.secure, httponly=True, samesite="Strict")
    return response


async def home(gw: Gateway, call: Call) -> dict[str, Any]:
    answer = await gw.ask(HomeRequest())
    if not isinstance(answer, Home):
        answers.body_of(answer)  # a refusal or no answer
        raise answers.no_answer()
    return gw.home_body(answer)


async def events(gw: Gateway, call: Call) -> dict[str, Any]:
    assert isinstance(call.message, EventsRequest)
    answer = await gw.ask(call.message)
    if not isinstance(answer, Listing):
        answers.body_of(answer)
        raise answers.no_answer()
    items = answer.items
    full = len(items) >= call.message.limit
    return {"items": items, "next_before": items[-1].get("seq") if full and items else None}


async def stream(gw: Gateway, call: Call) -> web.StreamResponse:
    """APP.md: `home` at once and on every change, `event` rows, `enrol` steps, a
    `: ping` every PING_S; it ends when the session does."""
    assert call.session is not None
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }  # fmt: skip
    )
    await response.prepare(call.request)
    sub = await gw.hub.join(call.session)
    try:
        while gw.sessions.alive(call.session):
            try:
                chunk = await asyncio.wait_for(sub.queue.get(), PING_S)
            except asyncio.TimeoutError:
                chunk = PING
            if chunk is None:
                break
            await response.write(chunk)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        gw.hub.unsubscribe(sub)
    return response


async def openapi_document(gw: Gateway, call: Call) -> dict[str, Any]:
    return openapi.document(gw.documented, COOKIE, CSRF_HEADER)


async def ping(gw: Gateway, call: Call) -> dict[str, Any]:
    """The gate and the HTTP server alone, without policy: `lockmesh bench gateway`'s
    bare route, beside which /api/home is timed. It says nothing about the lock."""
    return {"ok": True}


ENROL_KINDS = {"face": "face", "fingerprint": "finger", "palm-vein": "palm"}


def enrolment(body: dict[str, Any]) -> dict[str, Any]:
    """The app's words (Matter's kinds) in EnrolOpen's (the panel's modalities)."""
    kind = body["kind"]
    if not isinstance(kind, str) or kind not in ENROL_KINDS:  # a list would not even hash
        raise bad("bad-field", f"kind: {str(kind)[:40]!r} is not one of {sorted(ENROL_KINDS)}")
    return {
        "modality": ENROL_KINDS[kind],
        "person": body.get("person", ""),
        "role": body.get("role", ""),
    }


ENROLMENT = Body(
    EnrolOpen,
    schema={
        "kind": {"type": "string", "enum": list(ENROL_KINDS)},
        "person": {"type": "string", "maxLength": MAX_TEXT},
        "role": {"type": "string", "enum": ["", "admin", "user"]},
    },
    required=("kind",),
    convert=enrolment,
)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    body: Body | None = None  # a GET's: its message, all from the path (or none)
    query: Query | None = None
    handler: Handler | None = None  # None: policy's answer to the message is the answer
    auth: bool = True
    ok: int = 200
    content: str = "application/json"


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/session", "who is logged in; whether the lock is claimed",
          handler=session_info, auth=False),
    Route("POST", "/api/claim", "claim the lock in pairing mode (L-17): logs in",
          Body(PairClaim), handler=claim, auth=False),
    Route("POST", "/api/login", "log in with the owner's password", Body(AppLogin),
          handler=login, auth=False),
    Route("POST", "/api/logout", "end this session", handler=logout),
    Route("GET", "/api/home", "the lock now (L-31)", handler=home),
    Route("POST", "/api/unlock", "unlock, with the app PIN (L-18, L-32)", Body(RemoteUnlock)),
    Route("POST", "/api/lock", "lock (L-32)", Body(RemoteLock)),
    Route("GET", "/api/people", "people and their credentials' counts (L-33)",
          Body(PeopleRequest)),
    Route("POST", "/api/people", "add a person with a passcode", Body(PersonAdd), ok=201),
    Route("PATCH", "/api/people/{number}", "rename a person",
          Body(PersonRename, from_path=("number",))),
    Route("DELETE", "/api/people/{number}", "delete a person",
          Body(PersonDelete, from_path=("number",))),
    Route("PUT", "/api/people/{number}/validity", "a person's window and weekly slots (L-7)",
          Body(ValiditySet, from_path=("number",))),
    Route("PUT", "/api/people/{number}/duress", "a person's duress code",
          Body(DuressSet, from_path=("number",))),
    Route("POST", "/api/enrolments", "start enrolling a face, finger or palm (L-14)",
          ENROLMENT, ok=201),
    Route("GET", "/api/visitors", "visitor codes (never the codes)", Body(VisitorsRequest)),
    Route("POST", "/api/visitors", "add a visitor code (L-9)", Body(VisitorAdd), ok=201),
    Route("DELETE", "/api/visitors/{label}", "delete a visitor code",
          Body(VisitorDelete, from_path=("label",))),
    Route("GET", "/api/events", "the event log, newest first (L-35)",
          query=Query(EventsRequest), handler=events),
    Route("GET", "/api/settings", "the owner's settings (L-36)", Body(SettingsRequest)),
    Route("PUT", "/api/settings/{name}", "change a setting",
          Body(SettingSet, from_path=("name",))),
    Route("POST", "/api/lockout/release", "end a keypad lockout now (L-20)",
          Body(LockoutRelease)),
    Route("GET", "/api/audit", "check the event log's hash chain", Body(AuditVerify)),
    Route("GET", "/api/stream", "live updates: Server-Sent Events", handler=stream,
          content="text/event-stream"),
    Route("GET", "/api/openapi.json", "this document", handler=openapi_document, auth=False),
    Route("GET", "/api/ping", "the gateway answers, policy not asked (the bench's baseline)",
          handler=ping, auth=False),
)  # fmt: skip
# Served by camera.py's handlers (mount_camera), documented here with the rest.
CAMERA_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/live", "the camera now: MJPEG while video is on (503 and why when not)",
          content="multipart/x-mixed-replace"),
    Route("GET", "/api/snapshots/{name}", "a doorbell snapshot (L-23)", content="image/jpeg"),
)  # fmt: skip


# -- the gate every request passes -----------------------------------------------------------
def error(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status, headers=headers)


def check_host(request: web.Request, allowed: tuple[str, ...]) -> None:
    """The Host a browser sent must be this lock's: an address, localhost, a .local name,
    or one configured. A page of another site that a DNS trick points at the lock names
    its own host, and is refused before anything else."""
    name = host_name(request.host or "").lower()
    try:
        ipaddress.ip_address(name)
        return
    except ValueError:
        pass
    if name == "localhost" or name.endswith(".local") or name in allowed:
        return
    raise Refused(421, "wrong-host", "this lock answers to its address or NAME.local only")


def host_name(host: str) -> str:
    """The name in a Host header, without its port: "[::1]:8470" is "::1"."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def check_origin(request: web.Request) -> None:
    """A browser names the page that sent a change: it must be this lock's own."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    if origin != f"{request.scheme}://{request.host}":
        raise Refused(403, "bad-origin", "a change must come from the lock's own page")


def check_csrf(session: Session, request: web.Request) -> None:
    if not session.csrf_matches(request.headers.get(CSRF_HEADER)):
        raise Refused(403, "csrf", f"a change needs the {CSRF_HEADER} header of this session")


async def read_body(request: web.Request) -> Any:
    """The JSON body, or None when there is none; Refused 413 / 415 / 400."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise Refused(413, "too-large", f"a body is {MAX_BODY_BYTES} bytes at most")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Refused(413, "too-large", f"a body is {MAX_BODY_BYTES} bytes at most") from None
    if not raw:
        return None
    if request.content_type != "application/json":
        raise Refused(415, "not-json", "a body must be sent as application/json")
    return parse_json(raw)


async def message_of(route: Route, request: web.Request) -> Message | None:
    if route.query is not None:
        return route.query.message_of(list(request.query.items()))
    if route.method in CHANGING:
        raw = await read_body(request)
    else:
        raw = None
        if request.query:
            raise Refused(400, "unknown-field", f"{route.path} takes no parameters")
    if route.body is None:
        if raw not in (None, {}):
            raise Refused(400, "unknown-field", f"{route.path} takes no body")
        return None
    return route.body.message_of(raw, request.match_info)


def endpoint(gw: Gateway, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            check_host(request, tuple(gw.config["gateway"]["names"]))
            changing = request.method in CHANGING
            if changing:
                check_origin(request)
            session = gw.sessions.find(request.cookies.get(COOKIE))
            if route.auth and session is None:
                raise Refused(401, "not-logged-in", "log in first")
            if changing and route.auth and session is not None:
                check_csrf(session, request)
            message = await message_of(route, request)
            if route.handler is not None:
                result = await route.handler(gw, Call(request, session, message))
            else:
                assert message is not None
                result = answers.body_of(await gw.ask(message))
            if isinstance(result, web.StreamResponse):
                return result
            return web.json_response(result, status=route.ok)
        except Refused as r:
            if r.status >= 500:
                log.warning("%s %s: %s (%s)", request.method, route.path, r.error, r.detail)
            return error(r.status, r.error, r.detail, r.headers)

    return handle


@web.middleware
async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """JSON errors for what no route handled (404, 405, a body too large), the security
    headers on everything, and no traceback ever: a bug is a 500 logged here."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as e:
        if not request.path.startswith("/api/") or e.status < 400:
            raise
        response = error(e.status, e.reason.lower().replace(" ", "-"), e.reason)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        response = error(500, "internal-error", "the gateway failed on this request")
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        if request.secure:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


async def index(request: web.Request) -> web.StreamResponse:
    page = STATIC / "index.html"
    if page.is_file():
        return web.FileResponse(page)
    return web.Response(body=PLACEHOLDER, content_type="text/html")


def make_app(gw: Gateway) -> web.Application:
    """The aiohttp application: ROUTES and the web app's files."""
    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY_BYTES)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, endpoint(gw, route))
    app.router.add_get("/", index)
    if STATIC.is_dir():
        app.router.add_static("/static/", STATIC, follow_symlinks=False)
    return app


def session_check(gw: Gateway) -> Callable[[web.Request], web.StreamResponse | None]:
    """The gate's host and session checks, for routes mounted from elsewhere (camera.py):
    None when the request may go on, else the refusal to answer."""

    def check(request: web.Request) -> web.StreamResponse | None:
        try:
            check_host(request, tuple(gw.config["gateway"]["names"]))
            if gw.sessions.find(request.cookies.get(COOKIE)) is None:
                raise Refused(401, "not-logged-in", "log in first")
        except Refused as r:
            return error(r.status, r.error, r.detail)
        return None

    return check


def mount_camera(app: web.Application, gw: Gateway, layout: Layout) -> web.Application:
    """The camera's routes (services/gateway/camera.py, the live view and the doorbell's
    snapshots) behind the same session check, when that module is there."""
    try:
        from services.gateway import camera
    except ImportError as e:  # not built yet: the app goes without video
        log.warning("no live view: %s", e)
        return app
    app.router.add_routes(camera.routes(layout, session_check(gw)))
    gw.documented = ROUTES + CAMERA_ROUTES
    return app
