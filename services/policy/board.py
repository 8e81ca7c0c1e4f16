"""What the board reports beside the bolt: the door, the buttons, the escutcheon, the
battery; auto-lock (L-26), the door left ajar, and the factory-reset gesture (L-30)."""

from __future__ import annotations

from typing import Any

from proto.board import Button, Door, Siren, Tamper, reset_gesture
from proto.control import StatusReply, StatusRequest
from proto.power import Battery
from proto.wire import Envelope
from services.base import hears
from services.policy.actuation import Actuation
from services.policy.decider import Decider
from services.policy.lock import Lock
from services.policy.pairing import PairingMode

PROBE_EVERY_S = 1.0  # while the bolt is unknown


class Board:
    """The door and battery as last reported, and the timers they start."""

    def __init__(
        self, lock: Lock, actuation: Actuation, decider: Decider, pairing: PairingMode
    ) -> None:
        self.lock, self.actuation, self.decider, self.pairing = lock, actuation, decider, pairing
        self.door = "unknown"
        self.battery: Battery | None = None  # whether the doorbell's snapshot may use video
        self.tampered = False  # the front escutcheon is off (L-29), as the motor last said
        self.ajar = False  # the door-ajar alarm was raised and the door is still open
        self._battery_low = False
        self._relock_at: tuple[float, str] | None = None  # (when, the door event's id)
        self._lock_on_close: str | None = None  # passage's end, waiting for the door to close
        self._open_since: tuple[float, str] | None = None
        self._reset_gesture: tuple[str, float] | None = None  # its Button's id, and when
        # the gesture a reset has already spent: kept in the reset's log entry, as the motor
        # still tells of it for a while to a policy restarted since
        self._reset_used = lock.store.spent_reset_gesture()
        self._next_probe = 0.0

    @hears(Door)
    def on_door(self, env: Envelope[Door]) -> None:
        lock, now = self.lock, self.lock.clock()
        self.door = "open" if env.body.open else "closed"
        self._relock_at, self.ajar = None, False
        self._open_since = (now, env.id) if self.door == "open" else None
        if self.door == "closed" and lock.settings.get("auto_lock"):  # L-26
            self._relock_at = (now + lock.settings.get("auto_lock_delay_s"), env.id)
        if self.door == "closed" and self._lock_on_close is not None:
            ended, self._lock_on_close = self._lock_on_close, None
            if self.decider.operating_mode() != "passage":  # not back in force meanwhile
                self._passage_lock(cause=env.id, log_cause=ended)
        if self.door == "open" and self.actuation.bolt == "locked":  # opened with it thrown
            lock.alarm("door-forced-open", "the door opened while locked", cause=env.id)
        if self.door == "open" and self.decider.mode("leaving-home"):  # no outside unlock (L-22)
            lock.alarm("inside-opening-while-away", "opened from inside", cause=env.id)

    def lock_when_closed(self, cause: str) -> None:
        """Passage's end (issue 15): the bolt thrown now, or, while the door stands open,
        as soon as it closes: a bolt thrown into an open door stops it from closing."""
        if self.door == "open":
            self._lock_on_close = cause
        else:
            self._lock_on_close = None
            self._passage_lock(cause=cause)

    def _passage_lock(self, cause: str, log_cause: str | None = None) -> None:
        self.actuation.actuate(
            "lock", source="schedule", cause=cause, log_cause=log_cause, method="passage"
        )

    @hears(Button)
    def on_button(self, env: Envelope[Button]) -> None:
        button = env.body.button
        if button == "lock":  # the inside lock button (L-25)
            self.actuation.lock_bolt(source="button", cause=env.id)
        elif button == "key":  # the mechanical key (L-18): logged, nothing to decide
            self.lock.store.log("unlock", method="mechanical-key", source="manual", cause=env.id)
            self.decider.outside_success("manual", env.id)
        elif button == "set-long":  # L-17: pairing mode
            self.pairing.open(env.id)
        elif button == "factory-reset":  # L-30: only ✓ on the panel is missing
            self._gesture_seen(env.id)

    def take_reset_gesture(self) -> str | None:
        """The reset gesture just made, used up now; None if there is none. Its one event
        is missed by a policy that started after it: then the motor is asked."""
        now, window = self.lock.clock(), self.lock.config["motor"]["reset_confirm_s"]
        heard = self._reset_gesture
        gesture = heard[0] if heard is not None and now - heard[1] <= window else None
        if gesture is None:
            gesture = self._ask_motor_for_reset_gesture()
        if gesture is None or gesture == self._reset_used:
            return None
        self._reset_gesture, self._reset_used = None, gesture
        return gesture

    def _ask_motor_for_reset_gesture(self) -> str | None:
        detail = self._motor_detail(timeout=0.5)
        gesture = reset_gesture(detail) if detail is not None else None
        if gesture is None:
            return None
        self._gesture_seen(gesture.id, gesture.age_s)
        return gesture.id

    def _gesture_seen(self, gesture: str, age_s: float = 0.0) -> None:
        """Logged once, whether its event or the motor's status told of it first. ✓'s
        window runs from the gesture, not from when policy came to know of it."""
        heard = self._reset_gesture[0] if self._reset_gesture is not None else None
        if gesture not in (self._reset_used, heard):
            self._reset_gesture = (gesture, self.lock.clock() - age_s)
            self.lock.store.log("factory-reset-offered", source="button", cause=gesture)

    @hears(Tamper)
    def on_tamper(self, env: Envelope[Tamper]) -> None:
        self.tampered = env.body.removed
        if env.body.removed:  # L-29: the siren for about a minute, and the owner told
            self.lock.alarm("front-escutcheon-removed", "the front panel was removed",
                            cause=env.id)  # fmt: skip
            seconds = self.lock.config["alarms"]["tamper_siren_s"]
            self.lock.request("motor", Siren(seconds=seconds), cause=env.id)

    @hears(Battery)
    def on_battery(self, env: Envelope[Battery]) -> None:
        """Low battery is an alarm once per crossing of the threshold (L-28, L-29)."""
        b = env.body
        if b.low and not self._battery_low:
            self.lock.alarm("low-battery", f"{b.percent:.0f} %", cause=env.id)
        self._battery_low = b.low
        self.battery = b

    def tick(self, now: float) -> None:
        if self.actuation.bolt == "unknown" and now >= self._next_probe:
            self._probe_motor(now)
        if self._relock_at is not None and now >= self._relock_at[0]:
            cause, self._relock_at = self._relock_at[1], None
            passage = self.decider.operating_mode() == "passage"  # held open (issue 15)
            if self.door == "closed" and self.actuation.bolt == "unlocked" and not passage:
                self.actuation.lock_bolt(source="auto", cause=cause)
        ajar = self.lock.config["alarms"]["door_ajar_s"]
        if self._open_since is not None and now - self._open_since[0] >= ajar:
            self.lock.alarm("door-ajar", f"open for {ajar:.0f} s", cause=self._open_since[1])
            self._open_since, self.ajar = None, True  # once per opening

    def _probe_motor(self, now: float) -> None:
        """Ask the motor where bolt and door are: its events at start may have been missed."""
        self._next_probe = now + PROBE_EVERY_S
        detail = self._motor_detail(timeout=0.3)
        if detail is not None:
            self.actuation.bolt = detail.get("bolt", "unknown")
            self.door = detail.get("door", "unknown")
            self.tampered = detail.get("tamper") == "removed"  # for Home (L-31)
            gesture = reset_gesture(detail)
            if gesture is not None:  # made before policy was up to hear it (L-30)
                self._gesture_seen(gesture.id, gesture.age_s)

    def _motor_detail(self, timeout: float) -> dict[str, Any] | None:
        """The motor's status detail, or None if it did not answer in time."""
        answer = self.lock.request("motor", StatusRequest(), timeout=timeout)
        if answer is None or not isinstance(answer.body, StatusReply):
            return None
        return answer.body.detail
