"""Decides every unlock, owns the store, and is the only one the motor obeys."""

from __future__ import annotations

from typing import Any

from proto.control import OK, Done, refused
from proto.policy import Audit, FactoryReset
from proto.wire import Envelope
from proto.witness import Head
from services.base import Service, accepts
from services.policy.account import Account
from services.policy.actuation import Actuation
from services.policy.board import Board
from services.policy.changes import Changes
from services.policy.decider import Decider
from services.policy.doorbell import Bell
from services.policy.fleet import Fleet
from services.policy.home import HomeScreen
from services.policy.lock import Lock
from services.policy.menu import Menu
from services.policy.modes import OperatingModes
from services.policy.offline_codes import OfflineCodes
from services.policy.owner import Owner
from services.policy.pairing import PairingMode
from services.policy.panel import Panel
from services.policy.phonekeys import PhoneKeys
from services.policy.secrets import device_secret, identity, lock_id, subkey
from services.policy.templates import Biometrics
from services.policy.tickets import TicketBook


class PolicyService(Service):
    """Each capability is a part with its own state (PARTS); the service builds them on
    the lock's store, routes their messages to them, and ticks them."""

    NAME = "policy"
    LISTENS = ("motor", "power", "ble")
    # Its parts' timers (a door ajar, auto-lock, a lockout's or a pairing window's end) are
    # seconds long: a quarter second late is unnoticed, and 20 ticks a second were most of
    # an idle policy's CPU. Every decision is made when its message comes, not on a tick.
    TICK_S = 0.25
    PARTS = (
        Actuation,
        Board,
        Panel,
        Menu,
        Biometrics,
        Owner,
        Account,
        HomeScreen,
        PairingMode,
        Bell,
        PhoneKeys,
        OperatingModes,
        Fleet,
    )

    def setup(self) -> None:
        data = self.layout.data
        secret = device_secret(data / "device.secret", keyed=data / "lock.db")
        self.lock_id = lock_id(secret)
        self.lock = lock = Lock(data, self.config, secret, clock=self.clock, outlet=self)
        who = identity(secret)
        self.serial = who.serial  # public: system information announces it (L-16)
        tickets = TicketBook(self.clock, self.config["enrol"]["ticket_s"])  # issue 11
        changes = Changes(lock, tickets)
        self.actuation = Actuation(lock)
        self.decider = Decider(lock, self.actuation)
        self.account = Account(lock, secret)  # issue 13
        self.pairing = PairingMode(lock, who, self.account)
        self.board = Board(lock, self.actuation, self.decider, self.pairing)
        self.menu = Menu(lock, self.decider, changes, who)
        self.tickets = tickets
        self.phonekeys = PhoneKeys(  # issue 16: Bluetooth keys, the offline codes' secret
            lock, self.decider, self.actuation, self.account, self.pairing,
            lock_id=bytes.fromhex(self.lock_id), code_key=subkey(secret, "offline-codes"),
        )  # fmt: skip
        offline = OfflineCodes(lock, self.decider, self.phonekeys.code_secret)
        owner = Owner(lock, self.decider, changes, self.actuation, self.account)
        self.modes = OperatingModes(
            lock, self.actuation, self.board, owner.remote_authority
        )  # issue 15
        self.fleet = Fleet(lock, changes, self.serial)  # issue 17: a building's console
        self.route(
            self.actuation,
            self.board,
            Panel(lock, self.decider, changes, self.actuation, self.board, offline),
            self.menu,
            Biometrics(lock, tickets, self.decider, self.menu),
            owner,
            self.modes,
            self.account,
            HomeScreen(
                lock,
                self.actuation,
                self.board,
                self.decider,
                self.account,
                lambda: self.phonekeys.bluetooth,
            ),  # fmt: skip
            self.pairing,
            Bell(lock, lambda: self.board.battery),
            self.phonekeys,
            self.fleet,
        )

    def teardown(self) -> None:
        if "lock" in vars(self):  # setup may have failed before the store was open
            self.lock.store.close()

    def counted_drop(self, reason: str, detail: str, where: str) -> None:
        self.bus.counters.drop(reason, detail, where)

    def tick(self, now: float) -> None:
        self.pairing.tick(now)
        self.actuation.tick(now)
        self.board.tick(now)
        self.decider.tick(now)  # a lockout's end, a half-done multi-factor attempt (issue 15)
        self.modes.tick(now)  # passage mode's weekly slots (issue 15)

    def status_detail(self) -> dict[str, Any]:
        return {
            "audit_head": self._audit_head(),
            "serial": self.serial,
            "initial": self.lock.initial,
            "direction": self.lock.settings.get("direction"),
            "people": self.lock.people.count(),
            "bolt": self.actuation.bolt,
            "door": self.board.door,
            "locked_out": self.decider.locked_out(),
            "operating_mode": self.decider.operating_mode(),  # issue 15: the mode in force
            "time_known": self.lock.wall.now() is not None,
            "ble": {
                "bluetooth": self.phonekeys.bluetooth,
                "refused": dict(self.phonekeys.refusals),
            },
            "fleet": self.fleet.status(),
        }

    def _audit_head(self) -> dict[str, Any] | None:
        """The log's sealed head, for every peer to witness (issue 11: rollback shows)."""
        head = self.lock.store.head()
        if head is None:
            return None
        return Head(self.lock_id, head.epoch, head.count, head.last.hex()).to_body()

    @accepts(FactoryReset)
    def on_factory_reset(self, env: Envelope[FactoryReset], peer: str) -> Done:
        """L-30: erase everything, if the SET gesture was just made at the lock itself. A
        panel alone cannot ask for this: the gesture needs the battery out and back.
        Every part's state goes with the store's."""
        gesture = self.board.take_reset_gesture()
        if gesture is None:
            self.counted_drop("unauthorized", "factory reset without the gesture", "commands")
            return refused("no-gesture", "hold SET for 5 s while putting the battery back")
        self.lock.store.factory_reset(source="keypad", cause=env.trace, detail=gesture)
        self.menu.close_all()
        self.tickets.clear()
        self.decider.forget()
        self.account.forget()
        self.phonekeys.forget()
        self.lock.reload_codes()
        self.publish(Audit(kind="factory-reset"), env.trace)
        return OK
