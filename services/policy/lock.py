"""What every part of policy shares: the store and what is kept in it, the clocks, the
configuration, and the service's way onto the bus."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol
from zoneinfo import ZoneInfo

from hw.rtc import SimRtc, SystemClock, WallClock
from proto.control import Done
from proto.policy import Alarm
from proto.schema import Message
from proto.wire import Envelope
from services.policy import passcodes
from services.policy.people import CodeRef, People
from services.policy.secrets import subkey
from services.policy.settings import Settings
from services.policy.store import Store
from services.policy.vault import Vault


class Outlet(Protocol):
    """The service's way onto the bus (services/base.py's Service, and a drop counted)."""

    def publish(self, body: Message, cause: str | None = None) -> Envelope[Message]: ...

    def stamp_event(self, body: Message, cause: str | None = None) -> Envelope[Message]: ...

    def publish_stamped(self, env: Envelope[Message]) -> Envelope[Message]: ...

    def request(
        self,
        peer: str,
        body: Message,
        *,
        cause: str | None = None,
        timeout: float | None = None,
        sent: Callable[[], object] | None = None,
    ) -> Envelope[Message] | None: ...

    def counted_drop(self, reason: str, detail: str, where: str) -> None: ...


def owner_source(peer: str) -> str:
    """How the log names who acted for the owner (issue 13): "app" for the app's gateway,
    "remote" for the CLI (the owner's key); any other sender by its own name."""
    return {"gateway": "app", "cli": "remote"}.get(peer, peer)


def answered(answer: Envelope[Message] | None) -> Done | None:
    """A peer's plain answer; None when it gave none (it did not answer in time)."""
    return answer.body if answer is not None and isinstance(answer.body, Done) else None


class Lock:
    """The lock's state on disk and the means every capability uses; none of their own
    state lives here. wall is read at each use, so a test may replace it."""

    def __init__(
        self,
        data: Path,
        config: dict[str, dict[str, Any]],
        secret: bytes,
        *,
        clock: Callable[[], float],
        outlet: Outlet,
    ) -> None:
        self.config, self.clock = config, clock
        self.publish, self.request = outlet.publish, outlet.request
        self.stamp_event, self.publish_stamped = outlet.stamp_event, outlet.publish_stamped
        self.drop = outlet.counted_drop  # (reason, detail, where)
        self.store = Store(data / "lock.db", chain_key=subkey(secret, "audit-chain"))
        self.hasher = passcodes.Hasher(subkey(secret, "passcodes"))
        self.vault = Vault(subkey(secret, "templates"))
        self.people = People(self.store, config["capacity"], self._now_or_zero)
        lockout = config["lockout"]
        self.settings = Settings(
            self.store,
            {
                "lockout_protection": lockout["enabled"],
                "wrong_code_entry_limit": lockout["failures"],
                "user_code_temporary_disable_time_s": int(lockout["duration_s"]),
            },
        )
        self.wall: WallClock = (
            SimRtc(data / "sim-rtc.json") if config["board"]["kind"] == "sim" else SystemClock()
        )
        self.tz = ZoneInfo(config["clock"]["timezone"])
        self.codes: dict[bytes, CodeRef] = {}  # every passcode's digest, read once per change
        self.lengths: set[int] = set()
        self.reload_codes()

    def _now_or_zero(self) -> float:
        return self.wall.now() or 0.0

    def reload_codes(self) -> None:
        self.codes, self.lengths = self.people.codes(), self.people.lengths()

    @property
    def initial(self) -> bool:
        """No administrator yet: the panel's first start (L-12, L-13)."""
        return self.people.count("admin") == 0

    def alarm(
        self, code: str, detail: str, *, person: str | None = None, cause: str | None = None
    ) -> None:
        """Logged, then published; the duress alarm goes to the owner only, never the panel."""
        self.store.log("alarm", reason=code, person=person, detail=detail, cause=cause)
        self.publish(Alarm(code=code, detail=detail, person=person), cause)
