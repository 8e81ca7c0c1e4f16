"""The owner app's gateway through real HTTP against a real mesh (issue 13, L-17, L-31..L-36).

The claim in pairing mode, logins and their two limits (policy's lockout, 423; the
gateway's throttle, 429), sessions (CSRF, Origin, Host, a cookie of another lock or of
before a restart), every route's answer and a refusal of it, bad bodies, source=app in
the log, the live stream, the TLS certificate, and what the gateway's own key cannot do.
"""

from __future__ import annotations

import json
import socket
import ssl
import stat
import urllib.parse
from typing import Iterator

import pytest

from proto import supervisor_rpc
from proto.biometric import EnrolCancel
from proto.board import Actuate, Bolt
from proto.bus import Bus
from proto.control import Done
from proto.owner import RemoteUnlock
from services.gateway import tls
from tests.appkit import (
    CONFIG,
    PASSWORD,
    PIN,
    App,
    app_url,
    claim,
    claimed_app,
    events,
    lock_identity,
    open_pairing,
)
from tests.meshkit import ADMIN_CODE, Lock, eventually, is_type, lean_but, running, shows_code

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def claimed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lock, App]]:
    """One lock, set up (001 is the administrator) and claimed through the app."""
    config = CONFIG + "login_attempts = 1000\n"  # every test logs in afresh
    with running(
        tmp_path_factory.mktemp("gateway") / "data",
        config,
        without=lean_but("gateway", "biometric"),  # an enrolment opens from the app
    ) as lock:
        yield lock, claimed_app(lock)


def logged_in(lock: Lock) -> App:
    """Another browser of the owner, logged in with the password."""
    return logged_in_with(lock, PASSWORD)


def logged_in_with(lock: Lock, password: str) -> App:
    app = App(app_url(lock))
    answer = app.login(password)
    assert answer.status == 200, answer
    return app


def gateway_detail(lock: Lock) -> dict:
    """The gateway's own word on itself ({} while it does not answer)."""
    return lock.status()["services"]["gateway"]["detail"]


def gateway_pid(lock: Lock) -> int:
    return lock.pid("gateway")


# -- the claim and logins ------------------------------------------------------------------
def test_l17_issue13_the_app_claims_the_lock_only_in_pairing_mode_and_is_logged_in(tmp_path):
    with running(
        tmp_path / "data", CONFIG + "login_attempts = 100\n", without=lean_but("gateway")
    ) as lock:
        app = App(app_url(lock))
        assert "app: http://127.0.0.1:" in lock.cli("status", check=False).stdout
        before = app.get("/api/session")
        assert before.status == 200 and before.body["claimed"] is False
        assert before.body["logged_in"] is False and before.body["csrf"] is None
        assert before.body["lock"]["serial"] == lock_identity(lock)[0]  # the login names it
        assert app.login().body["error"] == "not-claimed"  # nothing to log in to yet

        refused = claim(app, lock)  # no pairing window
        assert (refused.status, refused.body["error"]) == (409, "not-pairing")
        open_pairing(lock)
        serial, code = lock_identity(lock)
        not_it = "000000" if code != "000000" else "111111"
        wrong = app.post(
            "/api/claim", {"serial": serial, "code": not_it, "password": PASSWORD, "pin": PIN}
        )
        assert (wrong.status, wrong.body["error"]) == (403, "wrong-code")
        assert app.cookie is None
        weak = app.post("/api/claim", {"serial": serial, "code": code, "password": "short",
                                       "pin": PIN})  # fmt: skip
        assert (weak.status, weak.body["error"]) == (400, "bad-field")  # the message's rule
        assert "password" in weak.body["detail"]

        answer = claim(app, lock)
        assert answer.status == 200, answer
        assert answer.body["ok"] is True and answer.body["cert_sha256"] is None  # plain HTTP
        cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # not on plain HTTP: the browser would not send it
        assert len(app.cookie) >= 43  # 256 random bits, base64
        now = app.get("/api/session").body
        assert now == {"logged_in": True, "claimed": True, "csrf": app.csrf,
                       "lock": {"serial": now["lock"]["serial"]}}  # fmt: skip
        assert app.get("/api/home").status == 200
        assert "paired" in [e["kind"] for e in events(app, limit=10)]

        # a second claim (again at the door) replaces the password and ends old sessions
        other = logged_in(lock)
        open_pairing(lock)
        assert claim(App(app_url(lock)), lock, password="another password").status == 200
        assert eventually(lambda: other.get("/api/home").status == 401)
        assert app.get("/api/home").status == 401
        assert App(app_url(lock)).login(PASSWORD).status == 401
        newest = logged_in_with(lock, "another password")

        # a claim from the CLI ends the app's sessions too: the gateway hears it on the bus
        open_pairing(lock)
        typed = f"{code}\n{PASSWORD}\n{PIN}\n"
        assert lock.cli("pair", "--serial", serial, "--code-stdin", input=typed).returncode == 0
        assert eventually(lambda: newest.get("/api/home").status == 401)
        assert logged_in(lock).get("/api/home").status == 200


def test_issue13_wrong_passwords_lock_logins_out_423_and_one_address_is_throttled_429(tmp_path):
    config = CONFIG + "login_attempts = 9\nlogin_window_s = 600.0\n"
    with running(tmp_path / "data", config, without=lean_but("gateway")) as lock:
        owner = claimed_app(lock)
        app = App(app_url(lock))
        for n in range(5):  # policy counts them (5 in 5 min, like L-20)
            answer = app.login(f"wrong guess {n}")
            assert (answer.status, answer.body["error"]) == (401, "wrong-password"), answer
        locked = app.login(PASSWORD)  # even the right one, while locked out
        assert (locked.status, locked.body["error"]) == (423, "locked-out")
        assert app.cookie is None
        # the claim counted too: 1 + 6 so far, 9 per window from this address
        assert app.login(PASSWORD).status == 423
        assert app.login(PASSWORD).status == 423
        throttled = app.login(PASSWORD)
        assert (throttled.status, throttled.body["error"]) == (429, "throttled")
        assert int(throttled.headers["Retry-After"]) > 0
        assert owner.get("/api/home").status == 200  # a session already open stays open
        rows = events(owner, limit=50)
        failed = [e for e in rows if e["kind"] == "app-login-failed"]
        assert len(failed) == 5 and all(e["source"] == "app" for e in failed)
        assert [e for e in rows if e["kind"] == "app-login-locked"]


# -- sessions --------------------------------------------------------------------------------
def test_issue13_a_change_needs_the_sessions_csrf_token_and_the_locks_own_origin(claimed):
    lock, owner = claimed
    app = logged_in(lock)
    no_token = app.post("/api/lock", csrf=False)
    assert (no_token.status, no_token.body["error"]) == (403, "csrf")
    wrong = app.post("/api/lock", csrf=False, headers={"X-CSRF-Token": owner.csrf})
    assert (wrong.status, wrong.body["error"]) == (403, "csrf")  # another session's token
    origin = app.post("/api/lock", headers={"Origin": "http://evil.example"})
    assert (origin.status, origin.body["error"]) == (403, "bad-origin")
    host = urllib.parse.urlsplit(app.url).netloc
    assert app.post("/api/lock", headers={"Origin": f"http://{host}"}).status == 200
    rebound = app.get("/api/home", headers={"Host": "evil.example"})
    assert (rebound.status, rebound.body["error"]) == (421, "wrong-host")  # DNS rebinding
    stranger = App(app.url)
    assert stranger.post("/api/lock").status == 401
    assert stranger.get("/api/people").status == 401
    assert stranger.get("/api/stream").status == 401
    assert stranger.get("/api/live").status == 401
    forged = App(app.url, cookie="A" * 43, csrf="A" * 43)
    assert forged.post("/api/lock").status == 401

    cookie = app.cookie
    assert app.post("/api/logout").status == 200
    assert app.cookie is None  # told to forget it
    assert App(app.url, cookie=cookie).get("/api/home").status == 401  # and it is void


def test_issue13_a_cookie_minted_by_another_locks_gateway_or_before_a_restart_is_refused(
    claimed, tmp_path
):
    lock, _ = claimed
    app = logged_in(lock)
    with running(tmp_path / "other", CONFIG, without=lean_but("gateway")) as other:
        elsewhere = claimed_app(other)
        assert elsewhere.get("/api/home").status == 200
        stolen = App(app_url(other), cookie=app.cookie, csrf=app.csrf)
        assert stolen.get("/api/home").status == 401
        assert stolen.post("/api/lock").status == 401
        assert App(app.url, cookie=elsewhere.cookie).get("/api/home").status == 401
    assert app.get("/api/home").status == 200

    pid = gateway_pid(lock)
    rpc = supervisor_rpc.proxy(lock.layout.run).supervisor
    rpc.stopProcess("gateway")
    rpc.startProcess("gateway")
    lock.wait_healthy(20)
    assert gateway_pid(lock) != pid
    assert App(app_url(lock), cookie=app.cookie).get("/api/home").status == 401  # logged out


# -- every route ------------------------------------------------------------------------------
def test_l31_l32_l18_home_unlock_with_the_pin_and_lock_from_the_app(claimed):
    lock, _ = claimed
    app = logged_in(lock)
    home = app.get("/api/home")
    assert home.status == 200
    assert home.body["claimed"] is True and home.body["bolt"] == "locked"
    assert home.body["live_view"] == {"on": True, "why": ""}
    assert set(home.body) >= {"door", "battery_percent", "alarms", "locked_out", "remote_unlock"}

    app.call("PUT", "/api/settings/remote_unlock", {"value": "off"})
    off = app.post("/api/unlock", {"pin": PIN})
    assert (off.status, off.body["error"]) == (403, "remote-unlock-off")
    assert app.call("PUT", "/api/settings/remote_unlock", {"value": "on"}).status == 200
    wrong = app.post("/api/unlock", {"pin": "0000"})
    assert (wrong.status, wrong.body["error"]) == (403, "wrong-pin")
    shape = app.post("/api/unlock", {"pin": "12"})
    assert (shape.status, shape.body["error"]) == (400, "bad-field")  # the message's rule
    assert app.post("/api/unlock", {}).body["error"] == "missing-field"

    watch = lock.watcher()
    try:
        granted = app.post("/api/unlock", {"pin": PIN})
        assert (granted.status, granted.body) == (200, {"granted": True})
        watch.wait_for(lambda e: is_type(Bolt, state="unlocked")(e) and e.sender == "motor")
        assert app.post("/api/lock").status == 200
        watch.wait_for(lambda e: is_type(Bolt, state="locked")(e) and e.sender == "motor")
    finally:
        watch.close()
    assert eventually(lambda: app.get("/api/home").body["bolt"] == "locked")
    rows = events(app, limit=30)
    mine = [(e["kind"], e["reason"]) for e in rows if e["source"] == "app"]
    for row in [("lock", None), ("unlock", None), ("granted", ""), ("refused", "wrong-pin"),
                ("refused", "remote-unlock-off")]:  # fmt: skip
        assert row in mine, (row, mine)


def test_l33_l7_people_added_renamed_limited_and_deleted_from_the_app(claimed):
    lock, _ = claimed
    app = logged_in(lock)
    listed = app.get("/api/people")
    assert listed.status == 200
    admin = next(p for p in listed.body["items"] if p["number"] == "001")
    assert admin["passcodes"] == 1 and ADMIN_CODE not in json.dumps(listed.body)  # counts only

    added = app.post("/api/people", {"name": "Ada", "code": "582947", "role": "user"})
    assert added.status == 201, added
    again = app.post("/api/people", {"name": "Bob", "code": "582947", "role": "user"})
    assert (again.status, again.body["error"]) == (409, "code-in-use")
    ada = next(p for p in app.get("/api/people").body["items"] if p["name"] == "Ada")
    number = ada["number"]
    assert app.call("PATCH", f"/api/people/{number}", {"name": "Ada L."}).status == 200
    ghost = app.call("PATCH", "/api/people/999", {"name": "nobody"})
    assert (ghost.status, ghost.body["error"]) == (409, "unknown-person")
    slots = {"start": None, "end": None, "slots": [[62, 480, 1080]]}  # Mon-Fri 08-18
    assert app.call("PUT", f"/api/people/{number}/validity", slots).status == 200
    bad_slot = app.call("PUT", f"/api/people/{number}/validity", {"slots": [[0, 10, 5]]})
    assert (bad_slot.status, bad_slot.body["error"]) == (400, "bad-field")
    assert app.call("PUT", f"/api/people/{number}/duress", {"code": "739164"}).status == 200
    weak = app.call("PUT", f"/api/people/{number}/duress", {"code": "123456"})
    assert weak.status in (400, 409) and weak.body["error"] not in ("", None)
    assert app.call("DELETE", f"/api/people/{number}").status == 200
    assert app.call("DELETE", f"/api/people/{number}").status == 409
    last = app.call("DELETE", "/api/people/001")  # the only administrator
    assert last.status == 409, last
    kinds = [(e["kind"], e["source"]) for e in events(app, limit=20)]
    for kind in ("person-added", "person-renamed", "validity-set", "duress-set",
                 "person-deleted"):  # fmt: skip
        assert (kind, "app") in kinds, (kind, kinds)


def test_l9_l35_l36_l20_visitors_events_settings_lockout_and_audit_from_the_app(claimed):
    lock, _ = claimed
    app = logged_in(lock)
    visitor = {"label": "cleaner", "code": "864213", "start": None, "end": None, "uses": 3}
    assert app.post("/api/visitors", visitor).status == 201
    assert app.post("/api/visitors", visitor).status == 409
    items = app.get("/api/visitors").body["items"]
    assert any(v["label"] == "cleaner" for v in items)
    assert not shows_code(json.dumps(items), "864213")
    assert app.call("DELETE", "/api/visitors/cleaner").status == 200
    gone = app.call("DELETE", "/api/visitors/cleaner")
    assert (gone.status, gone.body["error"]) == (409, "unknown")

    settings = {s["name"]: s["value"] for s in app.get("/api/settings").body["items"]}
    assert "auto_lock" in settings and "volume" in settings
    assert app.call("PUT", "/api/settings/volume", {"value": "1"}).status == 200
    assert {s["name"]: s["value"] for s in app.get("/api/settings").body["items"]}["volume"] == 1
    nope = app.call("PUT", "/api/settings/volume", {"value": "11"})
    assert nope.status == 400 and nope.body["error"] == "bad-value"
    unknown = app.call("PUT", "/api/settings/colour", {"value": "red"})
    assert (unknown.status, unknown.body["error"]) == (409, "unknown-setting")
    assert app.call("PUT", "/api/settings/volume", {"value": 1}).body["error"] == "bad-field"

    assert app.post("/api/lockout/release").status == 200
    audit = app.get("/api/audit")
    assert audit.status == 200 and audit.body["intact"] is True and audit.body["checked"] > 0

    page = app.get("/api/events?limit=2")
    assert page.status == 200 and len(page.body["items"]) == 2
    first, second = page.body["items"]
    assert first["seq"] > second["seq"] and page.body["next_before"] == second["seq"]
    older = app.get(f"/api/events?limit=2&before={page.body['next_before']}").body["items"]
    assert older and all(e["seq"] < second["seq"] for e in older)
    only = events(app, kind="setting", limit=100)
    assert only and all(e["kind"] == "setting" for e in only)
    for query in ("limit=0", "limit=abc", "limit=5000", "colour=red", "since=NaN",
                  "before=1e3", "limit=1&limit=2"):  # fmt: skip
        answer = app.get(f"/api/events?{query}")
        assert answer.status == 400, (query, answer)


def test_l14_issue13_an_enrolment_opens_from_the_app_and_its_steps_come_on_the_stream(claimed):
    lock, _ = claimed
    app = logged_in(lock)
    stream = app.stream()
    try:
        stream.wait_for("home")  # sent first, at once
        opened = app.post("/api/enrolments", {"kind": "fingerprint", "person": "001"})
        assert opened.status == 201, opened
        step = stream.wait_for("enrol", lambda d: d["kind"] == "fingerprint")
        assert step["person"] == "001" and step["prompt"] and step["done"] is False
    finally:
        stream.close()
    with Bus(lock.layout, "cli") as bus:  # the sensor waits for a finger: let it go
        bus.client("biometric").request(EnrolCancel(), timeout=5)
    for kind in ("retina", [], {"a": 1}):  # an array once failed as a 500 (unhashable)
        bad = app.post("/api/enrolments", {"kind": kind, "person": "001"})
        assert (bad.status, bad.body["error"]) == (400, "bad-field"), (kind, bad)
        assert bad.body["detail"].startswith("kind: "), bad
    unknown = app.post("/api/enrolments", {"kind": "face", "person": "042"})
    assert unknown.status == 409, unknown


# -- bad input ------------------------------------------------------------------------------
def test_issue13_bad_bodies_are_4xx_json_and_the_gateway_keeps_running(claimed):
    lock, _ = claimed
    app = logged_in(lock)
    pid = gateway_pid(lock)
    people_before = app.get("/api/people").body
    cases = [
        (b"\x00\xff\xfe garbage", 400, "bad-json"),
        (b"{not json", 400, "bad-json"),
        (b"[]", 400, "not-an-object"),
        (b'"name"', 400, "not-an-object"),
        (b'{"name": 5, "code": "582947"}', 400, "bad-field"),
        (b'{"name": "x", "code": "582947", "role": "king"}', 400, "bad-field"),
        (b'{"name": "x", "code": "582947", "admin": true}', 400, "unknown-field"),
        (b'{"code": "582947"}', 400, "missing-field"),
        (b'{"name": "x", "code": NaN}', 400, "bad-json"),
        (b'{"name": "\\ud800", "code": "582947"}', 400, "bad-field"),
        (b'{"name": "x", "code": "1", "role": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, None),
        (json.dumps({"name": "x" * 5000, "code": "582947"}).encode(), 400, "bad-field"),
        (b'{"name": "x", "code": ' + b"9" * 30 + b"}", 400, "bad-field"),
    ]
    for raw, status, error in cases:
        answer = app.post("/api/people", raw=raw)
        assert answer.status == status, (raw[:40], answer)
        assert set(answer.body) == {"error", "detail"}, answer
        if error:
            assert answer.body["error"] == error, (raw[:40], answer)
    huge = app.post("/api/people", raw=b'{"name": "' + b"x" * 20_000 + b'", "code": "582947"}')
    assert (huge.status, huge.body["error"]) == (413, "too-large")
    typed = app.post("/api/people", raw=b"name=x", headers={"Content-Type": "text/plain"})
    assert typed.status == 415
    chunked = chunked_post(app, "/api/people", b"x" * 40_000)
    assert chunked.startswith(b"HTTP/1.1 413"), chunked[:80]
    assert app.call("PUT", "/api/nothing").status == 404
    assert app.call("PUT", "/api/people").status == 405
    assert app.call("DELETE", "/api/people/%ED%A0%80").status in (400, 409)
    assert app.get("/api/people?x=1").status == 400

    assert app.get("/api/people").body == people_before  # nothing stored
    assert gateway_pid(lock) == pid
    status = lock.status()["services"]["gateway"]
    assert status["verdict"] == "healthy" and status["state"] == "ready"


def chunked_post(app: App, path: str, data: bytes) -> bytes:
    """A body sent in chunks, with no Content-Length to refuse it by: read and cut off."""
    where = urllib.parse.urlsplit(app.url)
    with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: application/json\r\n"
            f"Cookie: lm_session={app.cookie}\r\nX-CSRF-Token: {app.csrf}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
        sock.sendall(head)
        try:
            for i in range(0, len(data), 4096):
                part = data[i : i + 4096]
                sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may close as soon as it has refused
        return sock.recv(4096)


# -- live updates ---------------------------------------------------------------------------
def test_l31_issue13_the_stream_sends_home_when_the_door_opens_and_the_new_log_rows(claimed):
    lock, _ = claimed
    app = logged_in(lock)
    stream = app.stream()
    try:
        first = stream.wait_for("home")
        assert first["door"] == "closed"
        lock.cli("sim", "door", "open")
        opened = stream.wait_for("home", lambda d: d["door"] == "open")
        assert opened["bolt"] in ("locked", "unlocked")
        app.call("PUT", "/api/settings/volume", {"value": "2"})
        row = stream.wait_for("event", lambda d: d["kind"] == "setting")
        assert row["source"] == "app" and "volume" in row["detail"]
        lock.cli("sim", "door", "close")
        stream.wait_for("home", lambda d: d["door"] == "closed")
        assert app.post("/api/logout").status == 200  # the stream ends with the session
        rest = list(stream.events())
        assert all(name != "home" or data for name, data in rest)
    finally:
        stream.close()


# -- what the gateway's key cannot do --------------------------------------------------------
def test_issue13_the_gateways_own_key_cannot_drive_the_motor_nor_unlock_without_the_pin(claimed):
    """A hijacked gateway holds its CURVE key: the motor obeys policy only, and policy
    checks the app PIN (DESIGN.md; issue 13)."""
    lock, app = claimed
    logged_in(lock).call("PUT", "/api/settings/remote_unlock", {"value": "on"})
    watch = lock.watcher()
    try:
        with Bus(lock.layout, "gateway") as bus:
            moved = bus.client("motor").request(
                Actuate(action="unlock", direction="right"), timeout=5
            )
            assert isinstance(moved.body, Done) and moved.body.reason == "unauthorized"
            for guess in ("0000", "1234", "99999999"):
                answer = bus.client("policy").request(RemoteUnlock(pin=guess), timeout=5)
                assert answer is not None and not answer.body.granted
                assert answer.body.reason in ("wrong-pin", "pin-locked-out")
        with pytest.raises(AssertionError):
            watch.wait_for(lambda e: is_type(Bolt, state="unlocked")(e), timeout=2)
    finally:
        watch.close()
    assert lock.status()["lock"]["bolt"] == "locked"
    refused = [e for e in events(logged_in(lock), kind="refused", limit=20)]
    assert any(e["reason"] == "wrong-pin" and e["source"] == "app" for e in refused)


# -- TLS on the Pi --------------------------------------------------------------------------
def test_issue13_tls_device_certificate_is_made_once_pinned_by_the_claim_and_kept(tmp_path):
    config = CONFIG + "tls = true\n"
    with running(tmp_path / "data", config, set_up=False, without=lean_but("gateway")) as lock:
        detail = eventually(lambda: (d := gateway_detail(lock)).get("url") and d)
        url, pinned = detail["url"], detail["cert_sha256"]
        assert url.startswith("https://127.0.0.1:") and len(pinned) == 95
        assert f"app: {url} (certificate SHA-256 {pinned})" in lock.cli("status").stdout
        where = urllib.parse.urlsplit(url)
        served = ssl.get_server_certificate((where.hostname, where.port))
        assert tls.fingerprint(served.encode()) == pinned
        folder = lock.layout.gateway_dir
        key = folder / tls.KEY_FILE
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700

        pinning = ssl.create_default_context()
        pinning.check_hostname, pinning.verify_mode = False, ssl.CERT_NONE  # pinned below
        app = App(url, tls=pinning)
        open_pairing(lock)
        answer = claim(app, lock)
        assert answer.status == 200 and answer.body["cert_sha256"] == pinned
        assert "Secure" in answer.headers["Set-Cookie"]
        assert answer.headers["Strict-Transport-Security"]

        rpc = supervisor_rpc.proxy(lock.layout.run).supervisor
        rpc.stopProcess("gateway")
        rpc.startProcess("gateway")
        lock.wait_healthy(20)
        detail = eventually(lambda: (d := gateway_detail(lock)).get("url") and d)
        assert detail["cert_sha256"] == pinned
        where = urllib.parse.urlsplit(detail["url"])
        assert tls.fingerprint(ssl.get_server_certificate((where.hostname, where.port)).encode()) \
            == pinned  # fmt: skip


def test_issue13_an_address_in_use_leaves_the_gateway_degraded_not_the_lock(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = f"[gateway]\nport = {port}\n"
        with running(tmp_path / "data", config, set_up=False, without=lean_but("gateway")) as lock:
            status = lock.status()
            gateway = status["services"]["gateway"]
            assert status["healthy"] and gateway["verdict"] == "healthy"
            assert gateway["state"].startswith("degraded: cannot serve the app on")
            assert gateway["detail"].get("url") is None
            assert lock.cli("status", check=False).stdout.count("app:") == 0
