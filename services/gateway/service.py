"""The gateway's bus side: it hears what the app shows live and asks policy for the rest.

Policy decides everything; the gateway only translates HTTP into owner requests (issue
13). It never talks to the motor: the trust table lets it send owner requests to policy
and nothing that moves a bolt, and the remote unlock's PIN is checked by policy.

The HTTP server runs in its own thread (server.py). Its requests to policy come through
a mailbox: the loop here sends them, one at a time, each waiting at most ASK_S, and all
of one wake-up together at most ASK_BUDGET_S, so the heartbeats go on while policy is
slow (the watchdog restarts a service silent for 3 s); a request left without an answer
is a 503 for the page. What the gateway hears goes the other way with call().
"""

from __future__ import annotations

import logging
from typing import Any

from proto.biometric import EnrolDone, EnrolStep, Unreadable
from proto.board import Bolt, Door
from proto.owner import Home, HomeRequest
from proto.policy import Alarm, Audit, Pairing
from proto.power import Battery
from proto.schema import Message
from proto.wire import Envelope
from services.base import Service, hears
from services.gateway import tls
from services.gateway.app import Gateway, make_app, mount_camera
from services.gateway.server import HttpServer
from services.mailbox import Mailbox

log = logging.getLogger(__name__)

ASK_S = 2.0  # one request to policy
ASK_BUDGET_S = 2.0  # all the requests of one wake-up of the loop
MAILBOX_WAIT_S = ASK_BUDGET_S + 0.5  # an HTTP worker's wait for the loop's answer
RETRY_LISTEN_S = 5.0  # an address in use is tried again this often
ASK_WIFI_EVERY_S = 1.0  # the owner's Wi-Fi setting is asked of policy until it answers
WIFI_OFF = "off: Wi-Fi is off in the settings"  # L-36, issue 15: no app until it is on


class GatewayService(Service):
    NAME = "gateway"
    LISTENS = ("policy", "motor", "power", "face", "biometric")
    TICK_S = 0.25  # its timers ask policy every few seconds; HTTP has its own thread

    def setup(self) -> None:
        self.settings = self.config["gateway"]
        self.mailbox = Mailbox(MAILBOX_WAIT_S)
        self.watch(self.mailbox.fd, self._deliver)
        self.heard: dict[str, int] = {}  # events heard, by type
        self.cert: tls.DeviceCertificate | None = None
        if self.settings["tls"]:
            self.cert = tls.ensure(self.layout.gateway_dir)
        self.gw: Gateway | None = None
        self.http: HttpServer | None = None
        self.url = ""
        self._next_listen = 0.0
        self.wifi: bool | None = None  # the owner's setting (L-36): None until policy says
        self._next_wifi_ask = 0.0
        self._listen()

    def _listen(self) -> None:
        """Serve HTTP; an address in use leaves the gateway degraded (the rest of the lock
        runs on), trying again every RETRY_LISTEN_S."""
        gw = Gateway(
            self.mailbox.request,
            self.config,
            cert_sha256=self.cert.sha256 if self.cert else None,
        )
        http = HttpServer(
            lambda: mount_camera(make_app(gw), gw, self.layout),
            self.settings["host"],
            self.settings["port"],
            self.cert.context() if self.cert else None,
            on_stop=gw.close,
        )
        try:
            self.url = http.start()
        except OSError as e:
            http.stop()
            gw.close()
            self.state = f"degraded: cannot serve the app on {self._address()}: {e.strerror or e}"
            log.warning("%s; trying again in %.0f s", self.state, RETRY_LISTEN_S)
            self._next_listen = self.clock() + RETRY_LISTEN_S
            return
        self.gw, self.http, self.state = gw, http, "ready"
        log.info("the app is served at %s", self.url)

    def _address(self) -> str:
        return f"{self.settings['host']}:{self.settings['port']}"

    def tick(self, now: float) -> None:
        if self.wifi is None and now >= self._next_wifi_ask:
            self._ask_wifi(now)
        if self.http is None and self.wifi is not False and now >= self._next_listen:
            self._listen()

    def _ask_wifi(self, now: float) -> None:
        self._next_wifi_ask = now + ASK_WIFI_EVERY_S
        answer = self.request("policy", HomeRequest(), timeout=0.3)
        if answer is not None and isinstance(answer.body, Home):
            self._wifi(answer.body.wifi)

    def _wifi(self, on: bool) -> None:
        """Wi-Fi off (L-36): the app is not served on the network until it is on again;
        the sessions end with the server (a restart of the gateway does the same)."""
        self.wifi = on
        if not on:
            if self.http is not None:
                self.http.stop()
            self.http, self.gw, self.url, self.state = None, None, "", WIFI_OFF
            log.info("Wi-Fi is off: the app is not served")
        elif self.state == WIFI_OFF:
            self.state, self._next_listen = "starting", 0.0  # tick() listens again

    def _deliver(self) -> None:
        """The HTTP thread's requests, sent from this loop (which owns the sockets)."""
        budget_ends = self.clock() + ASK_BUDGET_S

        def ask(to: str, body: Message, cause: str | None) -> Envelope[Message] | None:
            left = budget_ends - self.clock()
            if left < 0.05:
                return None  # answered "no answer": the beats come first
            try:
                return self.request(to, body, cause=cause, timeout=min(ASK_S, left))
            except Exception:  # one letter's failure is its own 503, not the others'
                self.bus.counters.drops["handler-error"] += 1
                log.exception("asking %s for %s failed", to, body.TYPE)
                return None

        self.mailbox.deliver(self.publish, ask)

    def teardown(self) -> None:
        if self.http is not None:
            self.http.stop()
        self.mailbox.close()

    # -- what the app shows live ---------------------------------------------------------------
    def _heard(self, env: Envelope[Any]) -> None:
        self.heard[env.type] = self.heard.get(env.type, 0) + 1
        if self.http is not None and self.gw is not None:
            self.http.call(self.gw.heard, env.type, env.body.to_body(), env.mono)

    @hears(Bolt)
    def on_bolt(self, env: Envelope[Bolt]) -> None:
        self._heard(env)

    @hears(Door)
    def on_door(self, env: Envelope[Door]) -> None:
        self._heard(env)

    @hears(Battery)
    def on_battery(self, env: Envelope[Battery]) -> None:
        self._heard(env)

    @hears(Alarm)
    def on_alarm(self, env: Envelope[Alarm]) -> None:
        self._heard(env)

    @hears(Audit)
    def on_audit(self, env: Envelope[Audit]) -> None:
        self._heard(env)
        name, _, value = env.body.detail.partition("=")
        if env.body.kind == "setting" and name == "wifi":
            self._wifi(value == "True")

    @hears(Pairing)
    def on_pairing(self, env: Envelope[Pairing]) -> None:
        self._heard(env)

    @hears(EnrolStep)
    def on_enrol_step(self, env: Envelope[EnrolStep]) -> None:
        self._heard(env)

    @hears(Unreadable)
    def on_unreadable(self, env: Envelope[Unreadable]) -> None:
        self._heard(env)

    @hears(EnrolDone)
    def on_enrolled(self, env: Envelope[EnrolDone]) -> None:
        self._heard(env)

    def status_detail(self) -> dict[str, Any]:
        gw = self.gw
        return {
            "url": self.url or None,
            "wifi": self.wifi,
            "cert_sha256": self.cert.sha256 if self.cert else None,
            "sessions": len(gw.sessions) if gw else 0,
            "streams": len(gw.hub.subscribers) if gw else 0,
            "heard": dict(self.heard),
        }
