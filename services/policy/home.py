"""The app's Home screen (L-31): the lock as policy knows it now, read from the state its
parts already keep; nothing here is stored or asked of another service."""

from __future__ import annotations

from typing import Callable

from proto.owner import Home, HomeRequest
from proto.wire import Envelope
from services.base import accepts
from services.policy.account import LOGIN_LIMIT_ALARM, PIN_LIMIT_ALARM, Account
from services.policy.actuation import Actuation
from services.policy.board import Board
from services.policy.decider import Decider
from services.policy.doorbell import video_allowed
from services.policy.lock import Lock

BLUETOOTH = "absent"  # until the ble service tells its radio's state (issue 16)


class HomeScreen:
    def __init__(
        self,
        lock: Lock,
        actuation: Actuation,
        board: Board,
        decider: Decider,
        account: Account,
        bluetooth: Callable[[], str] = lambda: BLUETOOTH,
    ) -> None:
        self.lock, self.actuation, self.board = lock, actuation, board
        self.decider, self.account, self.bluetooth = decider, account, bluetooth

    @accepts(HomeRequest)
    def on_home(self, env: Envelope[HomeRequest], peer: str) -> Home:
        battery, settings = self.board.battery, self.lock.settings
        return Home(
            bolt=self.actuation.bolt,
            door=self.board.door,
            battery_percent=battery.percent if battery else None,
            battery_volts=battery.volts if battery else None,
            external_power=bool(battery and battery.external),
            video_allowed=video_allowed(battery, self.lock.config["power"]["video_min_percent"]),
            wifi=settings.get("wifi"),
            bluetooth=self.bluetooth(),
            alarms=self.alarms(),
            locked_out=self.decider.locked_out(),
            remote_unlock=settings.get("remote_unlock"),
            claimed=self.account.claimed(),
            mode=self.decider.operating_mode(),
        )

    def alarms(self) -> list[str]:
        """The alarms whose cause is still there, by the names they were raised with."""
        battery = self.board.battery
        standing = {
            "lock-jammed": self.actuation.bolt == "jammed",
            "front-escutcheon-removed": self.board.tampered,
            "low-battery": bool(battery and battery.low),
            "door-ajar": self.board.ajar,
            "wrong-code-entry-limit": self.decider.locked_out(),  # L-20's lockout
            LOGIN_LIMIT_ALARM: self.account.logins_locked(),
            PIN_LIMIT_ALARM: self.account.pin_locked(),
        }
        return [name for name, active in standing.items() if active]
