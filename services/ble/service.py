"""The ble service (issue 16, L-32, L-34): the lock's Bluetooth LE peripheral.

It advertises the lock's GATT service and relays each phone's messages to policy
(relay.py): a challenge asked for, an answer handed over, policy's verdict handed back.
It decides nothing and may send policy nothing but those two requests (proto/trust.py).

Transports (`[ble] transport`): "sim", the in-process radio (hw/ble.py), which the phone
CLI and the bench reach through `ble.sim` requests as if through the air; "bluez", BlueZ
over D-Bus (hw/bluez.py, its own thread and asyncio loop, asking policy through the
mailbox); "off". The radio's state (absent, off, on, advertising, connected) goes to
policy for the app's Home, and is in this service's status.
"""

from __future__ import annotations

import logging
from typing import Any

from hw.ble import InProcessRadio, Radio, RadioState
from proto.ble import BleSim, BleSimReply, BleState
from proto.control import refused
from proto.schema import Message
from proto.wire import Envelope
from services.base import Service, accepts
from services.ble.relay import Relay
from services.mailbox import Mailbox

log = logging.getLogger(__name__)

ASK_S = 2.0  # a challenge or an answer waits this long for policy: then "no-answer"


class BleService(Service):
    NAME = "ble"
    LISTENS = ()
    TICK_S = 0.25  # a change of the radio's state is told to policy this soon

    def setup(self) -> None:
        self.section = self.config["ble"]
        self.transport = self.section["transport"]
        self.radio: Radio | None = None
        self.sim: InProcessRadio | None = None
        self.mailbox: Mailbox | None = None
        self.relay = Relay(self._ask_from_loop, self._notify)
        self._told: tuple[RadioState, float] | None = None
        if self.transport == "sim":
            self.radio = self.sim = InProcessRadio(self.section["sim_mtu"])
        elif self.transport == "bluez":
            self.radio = self._bluez()
        if self.radio is not None:
            self.radio.start(self.relay)

    def _bluez(self) -> Radio:
        """BlueZ in its own thread: its writes ask policy through the mailbox, which this
        loop empties (sockets belong to one thread)."""
        from hw.bluez import BluezRadio  # dbus-fast only where BlueZ is used

        self.mailbox = mailbox = Mailbox(ASK_S + 0.5)
        self.watch(mailbox.fd, lambda: mailbox.deliver(self.publish, self._deliver_ask))
        self.relay.ask = lambda body: mailbox.request("policy", body)
        return BluezRadio(adapter=self.section["adapter"], name=self.section["name"])

    def _ask_from_loop(self, body: Message) -> Envelope[Message] | None:
        return self.request("policy", body, timeout=ASK_S)

    def _deliver_ask(self, to: str, body: Message, cause: str | None) -> Envelope[Message] | None:
        return self.request(to, body, cause=cause, timeout=ASK_S)

    def _notify(self, conn: str, chunk: bytes) -> None:
        if self.radio is not None:
            self.radio.notify(conn, chunk)

    def radio_state(self) -> RadioState:
        if self.radio is None:
            return RadioState("off", self.transport, "[ble] transport = off")
        return self.radio.state()

    def tick(self, now: float) -> None:
        """Policy hears the state on each change and every state_every_s (so a restarted
        policy learns it again)."""
        state = self.radio_state()
        if self._told is not None:
            told, when = self._told
            if told == state and now - when < self.section["state_every_s"]:
                return
        self._told = (state, now)
        self.publish(BleState(state=state.state, transport=state.transport, detail=state.detail))

    def teardown(self) -> None:
        if self.radio is not None:
            self.radio.close()
        if self.mailbox is not None:
            self.mailbox.close()

    @accepts(BleSim)
    def on_sim(self, env: Envelope[BleSim], peer: str) -> Message:
        """The simulated air: a phone connects, writes chunks, or leaves; the answer holds
        what the lock notified it meanwhile."""
        sim = self.sim
        if sim is None:
            return refused("not-simulated", f"the radio here is {self.transport}")
        b = env.body
        if b.action == "connect":
            sim.connect(b.conn)
        elif b.action == "disconnect":
            sim.disconnect(b.conn)
        for chunk in b.writes:
            sim.write(b.conn, chunk)
        return BleSimReply(notified=sim.take(b.conn), mtu=sim.mtu, state=sim.state().state)

    def status_detail(self) -> dict[str, Any]:
        state = self.radio_state()
        return {
            "bluetooth": state.state,
            "transport": state.transport,
            "radio": state.detail,
            "counts": dict(self.relay.counts),
        }
