"""The owner's settings (L-36): names, types, defaults and allowed values, kept in the store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from services.policy.people import Refusal
from services.policy.store import Store


@dataclass(frozen=True)
class Setting:
    kind: type
    default: Any
    allowed: tuple[Any, ...] | range | None = None


SETTINGS = {
    "direction": Setting(str, None, ("right", "left")),  # L-12
    "auto_lock": Setting(bool, False),  # L-26
    "auto_lock_delay_s": Setting(int, 30, range(1, 3601)),
    "lockout_protection": Setting(bool, True),  # L-20
    "remote_unlock": Setting(bool, False),  # L-18
    "wifi": Setting(bool, True),
    "volume": Setting(int, 2, range(0, 4)),
    # issue 15, Matter's names: L-20's lockout within safe bounds (never fewer than 3
    # tries nor shorter than a minute: each try may test 15 codes, L-19)
    "wrong_code_entry_limit": Setting(int, 5, range(3, 11)),
    "user_code_temporary_disable_time_s": Setting(int, 180, range(60, 3601)),
    # RequirePINforRemoteOperation: a remote unlock needs the app PIN (off: only from the CLI)
    "require_pin_for_remote": Setting(bool, True),
}


def parse(name: str, text: str) -> Any:
    """A value typed as the CLI gives it ("on", "30", "left") checked against the setting."""
    setting = SETTINGS.get(name)
    if setting is None:
        raise Refusal("unknown-setting", f"no setting {name!r}; there are {', '.join(SETTINGS)}")
    if setting.kind is bool:
        words = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
        if text.lower() not in words:
            raise Refusal("bad-value", f"{name} is on or off")
        return words[text.lower()]
    try:
        value = setting.kind(text)
    except ValueError:
        raise Refusal("bad-value", f"{name} takes a {setting.kind.__name__}") from None
    if setting.allowed is not None and value not in setting.allowed:
        raise Refusal("bad-value", f"{name} must be in {_shown(setting.allowed)}")
    return value


def _shown(allowed: tuple[Any, ...] | range) -> str:
    return f"{allowed.start}..{allowed.stop - 1}" if isinstance(allowed, range) else str(allowed)


class Settings:
    def __init__(self, store: Store, defaults: dict[str, Any]) -> None:
        self.store, self.defaults = store, defaults

    def get(self, name: str) -> Any:
        raw = self.store.setting(name)
        if raw is None:
            return self.defaults.get(name, SETTINGS[name].default)
        return raw if name == "direction" else json.loads(raw)  # direction predates JSON

    def all(self) -> dict[str, Any]:
        return {name: self.get(name) for name in SETTINGS}

    def set(self, name: str, value: Any, **event: Any) -> None:
        stored = value if name == "direction" else json.dumps(value)
        self.store.set_setting(name, stored, **event)
