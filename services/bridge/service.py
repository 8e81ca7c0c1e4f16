"""The bridge's service: the lock on an MQTT broker for Home Assistant (issue 17).

Off by default: with no `[mqtt] url` it runs idle and healthy, its state saying "off: no
broker configured", so the mesh is the same on every lock (one list of services for
supervisord, the keys, the Pi accounts, the trust table and the watchdog) and turning MQTT
on is a line of configuration and a restart of this one process.

With a broker it asks policy who the lock is (its serial, in policy's status) and what the
lock is now (Home), announces the lock to HA (retained discovery configs, retained states,
`online`), keeps the states current from the bus, and turns commands into the owner's
remote requests to policy: `owner.remote_lock`, and `owner.remote_unlock` with the code as
the app PIN, which policy checks (remote unlock on, the PIN right, not locked out) as for
the app. The trust table lets it send nothing else: it adds no one, changes no setting.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, OrderedDict
from typing import Any

from proto import files, fleet
from proto.board import Bolt, Button, Door, Tamper
from proto.bridge import FleetAck, FleetPush, MqttAdd, MqttRemove
from proto.control import OK, Done, StatusReply, StatusRequest, refused
from proto.owner import Home, HomeRequest, RemoteLock, RemoteUnlock
from proto.policy import Audit, Decision
from proto.power import Battery
from proto.wire import Envelope
from services.base import Service, accepts, firmware, hears
from services.bridge import discovery
from services.bridge.commands import Command, Ledger, Refused, age_s, parse
from services.bridge.link import (
    BadSettings,
    Connected,
    Incoming,
    Link,
    Lost,
    Settings,
    response_properties,
    settings,
)
from services.bridge.topics import BadTopic, Topics, check_prefix
from services.bridge.view import LockView

log = logging.getLogger(__name__)

OFF = "off: no broker configured"
REMOVED = "off: removed from MQTT by the owner"
WIFI_OFF = "off: Wi-Fi is off in the settings"  # L-36, issue 15: off the network till on
ASK_POLICY_EVERY_S = 2.0  # while policy has not said who the lock is
POLICY_WAIT_S = 1.0  # a status or Home request: the loop beats meanwhile
UNLOCKS_KEPT = 32  # granted decisions awaiting the bolt's report
HEAD_AFTER_S = 1.0  # the audit head is asked for this long after a logged event, once


class BridgeService(Service):
    NAME = "bridge"
    LISTENS = ("policy", "motor", "power")
    TICK_S = 0.25  # its timers ask policy every few seconds; MQTT has its own thread

    def setup(self) -> None:
        self.view = LockView()
        self.counts: Counter[str] = Counter()  # commands: done, refused:<reason>, duplicate
        self.unlocks: OrderedDict[str, tuple[str | None, str]] = OrderedDict()
        self.said: dict[str, str] = {}  # each retained state as last published
        self.fleet: Counter[str] = Counter()  # pushes relayed, or refused here: fleet:<reason>
        self.head_due: float | None = None  # when to say the audit head again
        self.next_refresh = 0.0  # Home asked again while the bolt or door is unknown
        self.settings: Settings | None = None
        self.topics: Topics | None = None
        self.device: discovery.Device | None = None
        self.link: Link | None = None
        self.next_ask = 0.0
        self.wifi_off = False  # the owner's Wi-Fi setting (L-36), asked of policy at join
        self.lost = ""  # why the link last dropped, until it is back
        self.section = self.config["mqtt"]
        work = self.layout.data / "work" / "lockmesh-bridge"  # the Pi account's own folder
        self.ledger = Ledger(work / "commands.json")
        self.removed_mark = work / "removed"
        if not self.section["url"]:
            self.state = OFF
            return
        try:
            self.settings = settings(self.section, self.layout.data)
            check_prefix(self.section["discovery_prefix"])
        except (BadSettings, BadTopic, files.FileRefused, UnicodeDecodeError) as e:
            self.settings = None
            self.state = f"degraded: {e}"
            log.error("bridge: MQTT stays off: %s", e)
            return
        self.state = REMOVED if self.removed else "waiting for policy to name the lock"

    @property
    def removed(self) -> bool:
        return self.removed_mark.exists()

    def teardown(self) -> None:
        if self.link is not None:
            if self.link.connected and self.topics is not None and not self.removed:
                self.link.publish(self.topics.availability, "offline", retain=True)
            self.link.stop()
            self.link.close()

    def status_detail(self) -> dict[str, Any]:
        return {
            "broker": self.settings.url if self.settings else None,
            "connected": bool(self.link and self.link.connected),
            "wifi": not self.wifi_off,
            "node": self.link.client.node if self.link else None,  # a cluster's, now
            "serial": self.topics.serial if self.topics else None,
            "commands": dict(self.counts),
            "fleet": dict(self.fleet),
        }

    # -- joining the broker -------------------------------------------------------------------
    def tick(self, now: float) -> None:
        if self.head_due is not None and now >= self.head_due:
            self.head_due = None
            self.publish_head()
        if self.link is not None and self.link.connected and self.view.unsure():
            if now >= self.next_refresh:  # policy may learn the door or bolt after we asked
                self.next_refresh = now + ASK_POLICY_EVERY_S
                self.refresh()
                self.publish_states()
        if self.settings is None or self.link is not None or self.removed or self.wifi_off:
            return
        if now >= self.next_ask:
            self.next_ask = now + ASK_POLICY_EVERY_S
            self.join(self.settings)

    def join(self, s: Settings) -> None:
        """Policy names the lock; then the link starts (and reconnects by itself)."""
        if not self.wifi_on():
            return
        answer = self.request("policy", StatusRequest(), timeout=POLICY_WAIT_S)
        if answer is None or not isinstance(answer.body, StatusReply):
            self.state = "waiting for policy to name the lock"  # not answering yet: asked again
            return
        detail = answer.body.detail
        serial = detail.get("serial")
        if not isinstance(serial, str) or not serial:
            self.state = "waiting for policy to name the lock (its serial)"
            return
        try:
            self.topics = Topics(serial, self.section["discovery_prefix"])
        except BadTopic as e:
            self.settings, self.state = None, f"degraded: {e}"
            return
        said = detail.get("firmware")
        self.device = discovery.Device(
            serial=serial,
            firmware=said if isinstance(said, str) and said else firmware(),
            model=f"lockmesh ({self.config['board']['kind']} board)",
            name=self.section["device_name"],
        )
        self.refresh()
        t = self.topics
        client_id = self.section["client_id"] or f"lockmesh-{serial}"
        self.link = Link(s, client_id, t.availability, [t.command, t.ha_status, t.fleet_push])
        self.watch(self.link.fd, self.on_news)
        self.link.start()
        self.state = f"connecting to {s.url}"
        log.info("bridge: lock %s, connecting to %s as %s", serial, s.url, client_id)

    def refresh(self) -> None:
        """The lock as policy knows it now: at the start and at every (re)connection, so
        nothing the bridge missed while away stays wrong on the broker."""
        answer = self.request("policy", HomeRequest(), timeout=POLICY_WAIT_S)
        if answer is None or not isinstance(answer.body, Home):
            log.warning("bridge: policy did not say the lock's state; keeping what I heard")
            return
        home = answer.body
        self.view.set_bolt(home.bolt)
        self.view.door_open = {"open": True, "closed": False}.get(home.door)
        if home.battery_percent is not None:
            self.view.battery_percent = home.battery_percent
        self.view.battery_low = "low-battery" in home.alarms
        self.view.tampered = "front-escutcheon-removed" in home.alarms

    def on_news(self) -> None:
        if self.link is None:
            return
        for news in self.link.news():  # one failing is logged and counted, not the rest lost
            self._guarded("mqtt", self.on_one, news)

    def on_one(self, news: Connected | Lost | Incoming) -> None:
        assert self.settings is not None  # a link exists only with settings
        if isinstance(news, Connected):
            self.state, self.lost = f"connected to {self.settings.url}", ""
            log.info("bridge: connected (session kept: %s)", news.session_present)
            self.refresh()
            self.announce()
        elif isinstance(news, Lost):
            if not self.removed:
                self.state = f"connecting to {self.settings.url}: {news.why}"
            if news.why != self.lost:  # paho retries every few seconds: said once
                log.warning("bridge: %s (trying again)", news.why)
            self.lost = news.why
        else:
            self.on_incoming(news)

    def announce(self) -> None:
        """online, every discovery config and every state, all retained."""
        if self.link is None or self.topics is None or self.device is None:
            return
        self.link.publish(self.topics.availability, "online", retain=True)
        for topic, config in discovery.configs(self.topics, self.device).items():
            self.link.publish(topic, json.dumps(config), retain=True)
        self.said.clear()
        self.publish_states()
        self.publish_head()

    def publish_head(self) -> None:
        """The event log's sealed head as policy's status says it, retained, for a
        building's console (each push's signed ack carries it too, which the broker cannot
        forge; this one is for the doors it has not pushed to)."""
        if self.link is None or self.topics is None or self.removed:
            return
        answer = self.request("policy", StatusRequest(), timeout=POLICY_WAIT_S)
        if answer is None or not isinstance(answer.body, StatusReply):
            return
        head = answer.body.detail.get("audit_head")
        payload = json.dumps(head, sort_keys=True) if isinstance(head, dict) else None
        if payload is not None and self.said.get("audit") != payload:
            self.link.publish(self.topics.state("audit"), payload, retain=True)
            self.said["audit"] = payload

    def publish_states(self) -> None:
        """The retained states that changed since they were last said."""
        if self.link is None or self.topics is None:
            return
        for key, payload in self.view.payloads().items():
            if self.said.get(key) != payload:
                self.link.publish(self.topics.state(key), payload, retain=True)
                self.said[key] = payload

    def publish_event(self, kind: str, body: dict[str, Any]) -> None:
        if self.link is not None and self.topics is not None and not self.removed:
            body = {**body, "at": round(time.time(), 3)}
            self.link.publish(self.topics.events(kind), json.dumps(body), retain=False)

    # -- from the broker ----------------------------------------------------------------------
    def on_incoming(self, message: Incoming) -> None:
        assert self.link is not None and self.topics is not None
        try:
            if message.topic == self.topics.command:
                self.on_command(message)
            elif message.topic == self.topics.fleet_push:
                self.on_fleet_push(message)
            elif message.topic == self.topics.ha_status and message.payload == b"online":
                self.announce()  # HA restarted: it wants the configs and states again
        finally:
            self.link.ack(message)  # done, refused or ignored: never delivered again

    def on_command(self, message: Incoming) -> None:
        command = None
        try:
            command = parse(message.payload, message.correlation)
            if message.retain:  # replayed at every new subscription: never a command
                raise Refused("retained", "a command is never retained")
        except Refused as e:
            self.answer(message, command, None, e.reason, str(e))
            return
        if command.id is not None and command.id in self.ledger:
            self.counts["duplicate"] += 1
            log.info("bridge: %s %s already taken: not done again", command.action, command.id)
            self.answer(message, command, True, "duplicate", "already taken")
            self.said.clear()  # the sender may have missed the state: say it again
            self.publish_states()
            return
        stale = self.stale(command)
        if stale:
            self.answer(message, command, False, "stale", stale)
            return
        if command.id is not None:
            self.ledger.take(command.id, time.time())  # before it is done: never twice
        ok, reason, detail = self.ask_policy(command)
        self.answer(message, command, ok, reason, detail)

    def on_fleet_push(self, message: Incoming) -> None:
        """A console's sealed push, relayed to policy untouched (the bridge holds no fleet
        key: policy opens, checks and answers it); policy's signed answer published as is.
        What is refused here (retained, too long, policy silent) is answered unsigned."""
        assert self.link is not None and self.topics is not None
        serial, reason = self.topics.serial, ""
        if message.retain:  # replayed at every new subscription: never a push
            reason = "retained"
        elif len(message.payload) > fleet.MAX_PUSH:
            reason = "too-long"
        else:
            answer = self.request("policy", FleetPush(payload=message.payload))
            if answer is not None and isinstance(answer.body, FleetAck):
                self.fleet["relayed"] += 1
                self.link.publish(self.topics.fleet_ack, answer.body.payload, retain=False)
                return
            reason = "no-answer"
        self.fleet[f"refused:{reason}"] += 1
        log.warning("bridge: fleet push refused on %s: %s", message.topic, reason)
        ack = fleet.make_ack(None, serial, None, False, reason)
        self.link.publish(self.topics.fleet_ack, ack, retain=False)

    def stale(self, command: Command) -> str:
        """Why an unlock is too old to do (a command queued while the lock was away must
        not open the door long after), or ""."""
        limit = self.section["command_max_age_s"]
        if command.action != "unlock" or command.id is None or limit <= 0:
            return ""
        age = age_s(command.id, time.time())
        if age is None or abs(age) <= limit:
            return ""
        return f"sent {age:.0f} s ago by its id's time; an unlock is taken within {limit:g} s"

    def ask_policy(self, command: Command) -> tuple[bool, str, str]:
        """The owner's remote request; policy decides. (ok, reason, detail)."""
        if command.action == "unlock":
            assert command.code is not None  # parse() refuses an unlock without one
            answer = self.request("policy", RemoteUnlock(pin=command.code))
            if answer is not None and isinstance(answer.body, Decision):
                return answer.body.granted, answer.body.reason, ""
        else:
            answer = self.request("policy", RemoteLock())
            if answer is not None and isinstance(answer.body, Done):
                return answer.body.ok, answer.body.reason, answer.body.detail
        return False, "no-answer", "policy did not answer"

    def answer(
        self,
        message: Incoming,
        command: Command | None,
        ok: bool | None,
        reason: str,
        detail: str,
    ) -> None:
        """Counted, logged (never the payload: it may hold the PIN) and published on the
        result topic, and to an MQTT 5 request's response topic with its correlation."""
        assert self.link is not None and self.topics is not None
        action = command.action if command else None
        ident = command.id if command else None
        if ok is None:
            self.counts[f"refused:{reason}"] += 1
            log.warning("bridge: command refused on %s: %s: %s", message.topic, reason, detail)
        elif reason != "duplicate":
            self.counts["done" if ok else f"refused:{reason}"] += 1
            log.info("bridge: %s %s: %s", action, ident, "done" if ok else f"refused: {reason}")
        body = json.dumps({"id": ident, "action": action, "ok": bool(ok), "reason": reason,
                           "detail": detail})  # fmt: skip
        self.link.publish(self.topics.result, body, retain=False)
        if message.response_topic:
            props = response_properties(message.correlation)
            self.link.publish(message.response_topic, body, retain=False, properties=props)

    # -- the owner's word ---------------------------------------------------------------------
    @accepts(MqttRemove)
    def on_remove(self, env: Envelope[MqttRemove], peer: str) -> Done:
        """Clear every discovery config and retained state (HA removes the entities), go
        offline and stay off, across restarts, until MqttAdd."""
        if self.link is None or self.topics is None or self.device is None:
            return refused("not-connected", "the lock is not on a broker to be removed from")
        if not self.link.connected:
            return refused("not-connected", "the lock is not on a broker to be removed from")
        t = self.topics
        cleared = [*discovery.configs(t, self.device).keys(), *discovery.retained_states(t)]
        files.private_dir(self.removed_mark.parent)
        files.write_private(self.removed_mark, f"{peer}\n".encode())
        infos = [self.link.publish(topic, b"", retain=True) for topic in cleared]
        infos.append(self.link.publish(t.availability, b"", retain=True))
        deadline = time.monotonic() + POLICY_WAIT_S
        for info in infos:  # what the broker took before we leave
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        unsure = sum(not info.is_published() for info in infos)
        self.link.stop()
        self.said.clear()
        self.state = REMOVED
        log.info("bridge: removed from MQTT by %s (%d topics cleared)", peer, len(infos))
        if unsure:
            return refused("partly", f"{unsure} of {len(infos)} clearings were not confirmed")
        return OK

    @accepts(MqttAdd)
    def on_add(self, env: Envelope[MqttAdd], peer: str) -> Done:
        if self.settings is None:
            return refused("mqtt-off", self.state)
        self.removed_mark.unlink(missing_ok=True)
        if self.link is not None:
            self.link.start()
            self.state = f"connecting to {self.settings.url}"
        self.next_ask = 0.0  # else tick() joins at once
        log.info("bridge: back on MQTT at %s's word", peer)
        return OK

    # -- from the bus -------------------------------------------------------------------------
    @hears(Bolt)
    def on_bolt(self, env: Envelope[Bolt]) -> None:
        self.view.set_bolt(env.body.state)
        self.publish_states()
        if env.body.state == "unlocked" and env.cause is not None and env.cause in self.unlocks:
            person, method = self.unlocks.pop(env.cause)
            self.publish_event("unlock", {"event_type": "unlock", "person": person,
                                          "method": method})  # fmt: skip

    @hears(Decision)
    def on_decision(self, env: Envelope[Decision]) -> None:
        """A grant is an unlock once the motor reports it (the bolt's truth): its reports
        name the decision as their cause."""
        if env.body.granted:
            self.unlocks[env.id] = (env.body.person, env.body.method)
            while len(self.unlocks) > UNLOCKS_KEPT:
                self.unlocks.popitem(last=False)

    @hears(Button)
    def on_button(self, env: Envelope[Button]) -> None:
        if env.body.button == "key":  # the mechanical key: nobody decided, someone opened
            self.publish_event("unlock", {"event_type": "unlock", "person": None,
                                          "method": "mechanical-key"})  # fmt: skip

    @hears(Door)
    def on_door(self, env: Envelope[Door]) -> None:
        self.view.door_open = env.body.open
        self.publish_states()

    @hears(Tamper)
    def on_tamper(self, env: Envelope[Tamper]) -> None:
        self.view.tampered = env.body.removed
        self.publish_states()

    @hears(Battery)
    def on_battery(self, env: Envelope[Battery]) -> None:
        self.view.battery_percent = env.body.percent
        self.view.battery_low = env.body.low
        self.publish_states()

    def wifi_on(self) -> bool:
        """Whether the owner's Wi-Fi is on (Home's wifi, L-36); a silent policy: asked again."""
        answer = self.request("policy", HomeRequest(), timeout=POLICY_WAIT_S)
        if answer is not None and isinstance(answer.body, Home) and not answer.body.wifi:
            self.wifi_changed(False)
            return False
        return True

    def wifi_changed(self, on: bool) -> None:
        """Wi-Fi off takes the lock off the broker, saying offline first as a stop does (a
        clean disconnect sends no will); on, the link connects again (issue 15)."""
        self.wifi_off = not on
        if self.settings is None:
            return  # no broker configured: nothing on the network to stop
        if not on:
            if self.link is not None:
                if self.link.connected and self.topics is not None and not self.removed:
                    self.link.publish(self.topics.availability, "offline", retain=True)
                self.link.stop()
            self.state = WIFI_OFF
            log.info("bridge: Wi-Fi is off: off MQTT until it is on")
        elif self.state == WIFI_OFF:
            if self.link is not None and not self.removed:
                self.link.start()
                self.state = f"connecting to {self.settings.url}"
            else:
                self.state = REMOVED if self.removed else "waiting for policy to name the lock"
            self.next_ask = 0.0  # a lock not joined yet joins at the next tick

    @hears(Audit)
    def on_audit(self, env: Envelope[Audit]) -> None:
        name, _, value = env.body.detail.partition("=")
        if env.body.kind == "setting" and name == "wifi":  # L-36
            self.wifi_changed(value == "True")
        if self.head_due is None:  # many events in a burst: one status request
            self.head_due = self.clock() + HEAD_AFTER_S
        if env.body.kind == "doorbell":
            self.publish_event("doorbell", {"event_type": "ring"})
