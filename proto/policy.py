"""Policy: the decisions, the lock's facts, and the requests that change them."""

from __future__ import annotations

from dataclasses import field

from proto.schema import Message, one_of, secret

DIRECTIONS = ("right", "left")


class LockInfoRequest(Message, family="policy", event="info"):
    """Asks policy for the lock's facts."""


class LockInfo(Message, family="policy", event="info_reply"):
    initial: bool  # no administrator yet (L-12)
    direction: str | None
    people: int
    bolt: str
    door: str
    muted: bool = False  # one-time mute until the next unlock from outside (L-21)
    volume: int = 2  # the owner's volume setting (L-36): the beeps' and the voice's level


class SetDirection(Message, family="policy", event="set_direction"):
    direction: str = one_of(*DIRECTIONS)


class CheckPasscode(Message, family="policy", event="check_code"):
    """Is this a passcode the rules allow (L-4)? Asked after the first entry."""

    code: str = secret()


class CreateFirstAdmin(Message, family="policy", event="create_admin"):
    """Creates the first administrator from the panel, in the initial state only (L-12)."""

    code: str = secret()
    repeat: str = secret()


class VerifyPasscode(Message, family="policy", event="verify_code"):
    """An entry typed to unlock; extra digits around the code are allowed (L-19)."""

    entry: str = secret()


class LockRequest(Message, family="policy", event="lock"):
    """Someone asks to throw the bolt (inside button, outside ✓)."""

    source: str = one_of("inside-button", "keypad", "app")


class MuteOnce(Message, family="policy", event="mute"):
    """0 held on the panel: silent until the next successful unlock from outside (L-21)."""


class ArmLeavingHome(Message, family="policy", event="leaving_home"):
    """🏡 pressed outside: alert the owner if the door is then opened from inside (L-22)."""


class Decision(Message, family="policy", event="decision"):
    """Policy's verdict on a credential; published, and the answer to the request."""

    granted: bool
    method: str
    reason: str = ""
    person: str | None = None


class Alarm(Message, family="policy", event="alarm"):
    """An alarm for the owner; code is a Matter alarm name (proto/matter.py) or ours."""

    code: str
    detail: str = ""
    person: str | None = None


class ActuationFailed(Message, family="policy", event="actuation_failed"):
    """A drive policy ordered did not end where it was going (issue 11): the panel says
    why. reason: jammed, insufficient-battery, busy, no-answer (the motor did not answer),
    no-report (it never said where the bolt ended), drive-interrupted, direction-unset."""

    action: str = one_of("lock", "unlock")
    reason: str  # type: ignore[misc]  # one_of() without a default is required too
    source: str = ""


class Audit(Message, family="policy", event="audit"):
    """A change of the lock's people or settings, as written to the audit log."""

    kind: str
    detail: str = ""
    person: str | None = None


class MenuOpen(Message, family="policy", event="menu_open"):
    """SET, then an administrator's passcode (L-13): answered with a session token."""

    entry: str = secret()


class MenuAddPerson(Message, family="policy", event="menu_add"):
    """Menu 1 or 2, then 4: a new person with a passcode entered twice (L-14)."""

    token: str = secret()
    role: str = one_of("admin", "user")
    code: str = secret()
    repeat: str = secret()


class MenuDelete(Message, family="policy", event="menu_delete"):
    """Menu 3 (L-6)."""

    token: str = secret()
    number: str = ""


class MenuDirection(Message, family="policy", event="menu_direction"):
    """Menu 4 (L-14)."""

    token: str = secret()
    direction: str = one_of(*DIRECTIONS)


class MenuInfo(Message, family="policy", event="menu_info"):
    """Menu 5: serial number, firmware version, verification code (L-16)."""

    token: str = secret()


class MenuArm(Message, family="policy", event="menu_arm"):
    """SET was pressed: for a short while a face, finger or palm verifies for the menu
    instead of unlocking (L-13: any credential of an administrator)."""


class MenuVerified(Message, family="policy", event="menu_verified"):
    """A biometric was just checked for the menu: an administrator's (person), after which
    the panel asks for the session with MenuOpenBiometric (a token never travels in an
    event), or not ("": verification failed)."""

    person: str = ""


class MenuOpenBiometric(Message, family="policy", event="menu_open_bio"):
    """The session for the administrator MenuVerified named."""


class FactoryReset(Message, family="policy", event="factory_reset"):
    """✓ after the reset gesture's prompt (L-30): policy erases only if the motor saw it."""


class SystemInfo(Message, family="policy", event="system_info"):
    serial: str
    firmware: str
    verification_code: str = secret()


class Doorbell(Message, family="policy", event="doorbell"):
    """🔔 pressed outside (L-23): policy logs it, has the chime rung, notes the snapshot."""


class Pairing(Message, family="policy", event="pairing"):
    """The pairing window (L-17) opened or closed; the panel flashes 0 while it is open."""

    open: bool
    why: str = one_of("opened", "ended", "claimed", "too-many-failures")
    seconds_left: float = 0.0


class LockoutNotice(Message, family="policy", event="lockout"):
    """L-20 at the door (issue 15): a lockout began (the panel says "system locked" and
    the siren sounds) or ended (active false)."""

    active: bool
    seconds: float = 0.0


class FactorsNeeded(Message, family="policy", event="factors"):
    """A person's credential was right and their CredentialRule asks for more (issue 15):
    the panel says how many more different credentials, within seconds; still 0 with
    timed_out: the attempt ran out of time (it counted as one failure)."""

    person: str
    still: int
    seconds: float = 0.0
    shown: list[str] = field(default_factory=list)  # the methods already shown
    timed_out: bool = False
