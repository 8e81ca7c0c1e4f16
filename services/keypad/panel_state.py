"""What every mode of the panel's state machine stands on: its state and the steps they share."""

from __future__ import annotations

from typing import Callable, TypeVar

from proto.schema import Message
from services.keypad.effects import DIGITS, Ask, Effect, Light, Say

R = TypeVar("R", bound=Message)


class PanelState:
    """The panel's mode, what is typed and what is awaited; the Menu and AdminMenu build on it."""

    def __init__(self, *, sleep_after_s: float, max_digits: int) -> None:
        self.sleep_after_s, self.max_digits = sleep_after_s, max_digits
        self.home = "entry"
        self.mode = "asleep"
        self.buffer = ""
        self.new_code = ""
        self.waiting: str | None = None
        self._pending: Message | None = None  # the request whose answer is awaited
        self._last_key = 0.0
        self.battery_low = False  # the service keeps it from power's reports (L-28)

    def _sleep(self) -> list[Effect]:
        self.mode, self.buffer, self.new_code = "asleep", "", ""
        return [Light([])]

    def _to(self, mode: str, prompt: str, keys: list[str], **params: str) -> list[Effect]:
        self.mode, self.buffer = mode, ""
        return [Say(prompt, params), Light(keys)]

    def _ask(
        self, purpose: str, request: Message, digits: int = 0, to: str = "policy"
    ) -> list[Effect]:
        self.waiting, self._pending = purpose, request
        return [Ask(purpose, request, digits, to)]

    def _asked(self, kind: type[R]) -> R:
        """The request just answered, as the type its step sent."""
        if not isinstance(self._pending, kind):
            raise TypeError(f"awaited {type(self._pending).__name__}, not {kind.__name__}")
        return self._pending

    def _typing(self, key: str, submit: Callable[[str], list[Effect]]) -> list[Effect]:
        if key in DIGITS:
            if len(self.buffer) >= self.max_digits:
                return [Say("too-many-digits", {"max": str(self.max_digits)})]
            self.buffer += key
            return []
        if key == "ok" and self.buffer:
            code, self.buffer = self.buffer, ""
            return submit(code)
        return []
