"""The trust table: for every message type, who may send it and who takes it (issue 11).

One row per type in REGISTRY (a test checks that none is missing). The bus enforces the
table on receipt, for events, requests and replies alike, so no handler can forget: a
message from anyone else is dropped and counted `unauthorized`, and a request is
answered with that refusal. Handlers keep no peer lists of their own; what a handler
still checks is the content (a recogniser's match of its own kind only, say).

To add a message type, add one row here, in its family's block:

    "family.event": request("who", "may", "send", to="the service that serves it"),
    "family.event": event("publisher", to=("the", "services", "that", "hear", "it")),
    "family.event": reply("who", "answers", "with", "it"),

`to` is documentation (`lockmesh trust` prints it) and what the adversary suite aims at;
a test checks it against the services' handlers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from proto.layout import IDENTITIES, SERVICES

Kind = Literal["event", "request", "reply"]

OWNER = ("cli", "gateway")  # the owner: the CLI and the app's gateway (issue 13)
APP = ("gateway",)  # hears what the app shows live
# Home Assistant over MQTT (issue 17): sends only the owner's remote requests (lock, unlock
# with the app PIN, Home), never people or settings; hears the lock's state and events
BRIDGE = ("bridge",)
# Bluetooth (issue 16): the ble service relays a phone's bytes to policy, which verifies
# the phone key's signature over its own nonce; it sends nothing else and moves nothing
BLE = ("ble",)
# Who may connect to the face service's live video socket, off the bus (services/face/video.py)
VIEWERS = APP
PANEL = ("keypad",)
RECOGNISERS = ("face", "biometric")
TOOLS = ("cli", "bench")  # the simulator's and the bench's controls
ANYONE = IDENTITIES
# Identities that may run in several processes at once (each opens its own session);
# every other identity is one process, so its newest session is the only live one.
MANY = ("cli", "bench")


@dataclass(frozen=True)
class Rule:
    kind: Kind
    senders: frozenset[str]
    receivers: tuple[str, ...] = ()
    answered_by: frozenset[str] = frozenset()  # who may also send it as an answer


def event(*by: str, to: tuple[str, ...] = (), answer: bool = False) -> Rule:
    """Published by `by`, heard by `to` (and the tap); answer: `by` also replies with it."""
    return Rule("event", frozenset(by), to, frozenset(by) if answer else frozenset())


def request(*by: str, to: str | tuple[str, ...]) -> Rule:
    """Sent by `by` to the command socket of `to`, which answers."""
    return Rule("request", frozenset(by), (to,) if isinstance(to, str) else to)


def reply(*by: str) -> Rule:
    """An answer, from the peer that was asked: only these may answer with it."""
    return Rule("reply", frozenset(by), (), frozenset(by))


TRUST: dict[str, Rule] = {
    # -- every service -----------------------------------------------------------------
    "ctl.status": request(*ANYONE, to=SERVICES),
    "ctl.status_reply": reply(*SERVICES),
    "ctl.done": reply(*SERVICES),
    "health.beat": event(*SERVICES, to=("watchdog",)),
    "health.mesh": request(*TOOLS, to="watchdog"),
    "health.mesh_reply": reply("watchdog"),
    "process.state": event("procevents", to=("watchdog",)),
    # -- motor: the board ------------------------------------------------------------------
    "motor.actuate": request("policy", to="motor"),
    "motor.siren": request("policy", to="motor"),
    "motor.chime": request("policy", to="motor"),
    "motor.sim": request(*TOOLS, to="motor"),
    "motor.interrupted": request("motor", to="policy"),  # a drive cut short by a restart
    "motor.bolt": event("motor", to=("policy", "keypad", *APP, *BRIDGE)),
    "motor.door": event("motor", to=("policy", "keypad", *APP, *BRIDGE)),
    "motor.button": event("motor", to=("policy", "keypad", *BRIDGE)),  # the key: an unlock
    "motor.tamper": event("motor", to=("policy", *BRIDGE)),
    # -- power -------------------------------------------------------------------------------
    "power.battery": event("power", to=("policy", "motor", "keypad", "face", *APP, *BRIDGE)),
    # -- keypad: the panel ---------------------------------------------------------------
    "keypad.sim_keys": request(*TOOLS, to="keypad"),
    "keypad.key": event("keypad", to=("biometric",)),
    "keypad.code": event("keypad"),  # digits masked: the code itself goes by request
    "keypad.prompt": event("keypad"),
    "keypad.lit": event("keypad"),
    # -- recognisers -------------------------------------------------------------------------
    "face.enrol": request("policy", to="face"),  # only policy opens an enrolment (issue 11)
    "face.verify": request(*PANEL, "policy", to="face"),
    "face.sim": request(*TOOLS, to="face"),
    "face.snapshot": request("policy", to="face"),  # the doorbell's picture (L-23)
    "biometric.enrol": request("policy", to="biometric"),
    "biometric.verify": request(*PANEL, "policy", to="biometric"),
    "biometric.cancel": request(*PANEL, *OWNER, to=RECOGNISERS),
    "biometric.sim": request(*TOOLS, to="biometric"),
    "biometric.sim_module": request(*TOOLS, to="biometric"),
    "biometric.enrol_step": event(*RECOGNISERS, to=("keypad", *APP)),
    "biometric.unreadable": event(*RECOGNISERS, to=("keypad", *APP)),
    "biometric.enrolled": event(*RECOGNISERS, to=("keypad", *APP)),
    "biometric.template_save": request(*RECOGNISERS, to="policy"),
    "biometric.templates": request(*RECOGNISERS, to="policy"),
    "biometric.templates_reply": reply("policy"),
    # -- policy: the panel's requests -------------------------------------------------------
    "policy.info": request(*PANEL, *TOOLS, to="policy"),
    "policy.info_reply": reply("policy"),
    "policy.set_direction": request(*PANEL, to="policy"),
    "policy.check_code": request(*PANEL, to="policy"),
    "policy.create_admin": request(*PANEL, to="policy"),
    "policy.verify_code": request(*PANEL, to="policy"),
    "policy.lock": request(*PANEL, to="policy"),
    "policy.mute": request(*PANEL, to="policy"),
    "policy.leaving_home": request(*PANEL, to="policy"),
    "policy.doorbell": request(*PANEL, to="policy"),
    "policy.factory_reset": request(*PANEL, to="policy"),
    "policy.menu_arm": request(*PANEL, to="policy"),
    "policy.menu_open": request(*PANEL, to="policy"),
    "policy.menu_open_bio": request(*PANEL, to="policy"),
    "policy.menu_add": request(*PANEL, to="policy"),
    "policy.menu_delete": request(*PANEL, to="policy"),
    "policy.menu_direction": request(*PANEL, to="policy"),
    "policy.menu_info": request(*PANEL, to="policy"),
    "policy.system_info": reply("policy"),
    "policy.enrol_open": request(*PANEL, *OWNER, to="policy"),
    # -- policy: the recognisers' requests --------------------------------------------------
    "policy.match": request(*RECOGNISERS, to="policy"),
    # -- policy: what it says ------------------------------------------------------------------
    "policy.decision": event("policy", to=BRIDGE, answer=True),  # also a credential's answer
    "policy.alarm": event("policy", to=APP),
    "policy.actuation_failed": event("policy", to=("keypad",)),
    "policy.audit": event("policy", to=("keypad", "face", "biometric", *APP, *BRIDGE)),
    "policy.menu_verified": event("policy", to=("keypad",)),
    "policy.pairing": event("policy", to=("keypad", *APP)),
    "policy.lockout": event("policy", to=("keypad",)),  # issue 15: L-20 at the door
    "policy.factors": event("policy", to=("keypad",)),  # issue 15: what is still needed
    # -- the owner's commands --------------------------------------------------------------
    "owner.people": request(*OWNER, to="policy"),
    "owner.person_add": request(*OWNER, to="policy"),
    "owner.person_rename": request(*OWNER, to="policy"),
    "owner.person_delete": request(*OWNER, to="policy"),
    "owner.validity": request(*OWNER, to="policy"),
    "owner.duress": request(*OWNER, to="policy"),
    "owner.visitor_add": request(*OWNER, to="policy"),
    "owner.visitor_delete": request(*OWNER, to="policy"),
    "owner.visitors": request(*OWNER, to="policy"),
    "owner.settings": request(*OWNER, to="policy"),
    "owner.setting_set": request(*OWNER, to="policy"),
    "owner.lockout_release": request(*OWNER, to="policy"),
    "owner.remote_unlock": request(*OWNER, *BRIDGE, to="policy"),
    "owner.remote_lock": request(*OWNER, *BRIDGE, to="policy"),
    "owner.app_login": request(*OWNER, to="policy"),
    "owner.home": request(*OWNER, *BRIDGE, to="policy"),
    "owner.home_reply": reply("policy"),
    "owner.events": request(*OWNER, to="policy"),
    "owner.audit_verify": request(*OWNER, to="policy"),
    "owner.pair": request(*OWNER, to="policy"),
    "owner.person_status": request(*OWNER, to="policy"),  # issue 15: UserStatus
    "owner.credential_rule": request(*OWNER, to="policy"),  # issue 15: CredentialRule
    "owner.operating_mode": request(*OWNER, to="policy"),  # issue 15: passage needs the PIN
    "owner.operating_mode_get": request(*OWNER, to="policy"),
    "owner.operating_mode_reply": reply("policy"),
    "owner.listing": reply("policy"),
    "owner.audit_report": reply("policy"),
    # -- Bluetooth keys (issue 16): the ble service relays, policy verifies and decides ------
    "policy.ble_challenge": request(*BLE, to="policy"),
    "policy.ble_nonce": reply("policy"),
    "policy.ble_answer": request(*BLE, to="policy"),  # answered with a decision or done
    "ble.state": event(*BLE, to=("policy",)),
    "ble.sim": request(*TOOLS, to="ble"),  # the simulated air: the phone CLI, the bench
    "ble.sim_reply": reply(*BLE),
    "owner.phone_key_set": request(*OWNER, to="policy"),  # at the lock, with the app PIN
    "owner.phone_key": reply("policy"),
    "owner.phone_revoke": request(*OWNER, to="policy"),
    # -- the MQTT bridge: the owner takes the lock off MQTT, or puts it back (issue 17) ------
    "bridge.remove": request(*OWNER, to="bridge"),
    "bridge.add": request(*OWNER, to="bridge"),
    # -- the fleet (issue 17): a building's console pushes sealed visitor codes over MQTT; the
    # bridge relays the bytes, policy opens them with the door's fleet key and decides. The
    # owner alone gives the door that key (at the lock: the CLI, or the app)
    "fleet.push": request(*BRIDGE, to="policy"),
    "fleet.ack": reply("policy"),
    "fleet.key_set": request(*OWNER, to="policy"),
}


def refusal(type_name: str, kind: Kind, sender: str) -> str | None:
    """Why `sender` may not send this type as this kind, or None when it may."""
    rule = TRUST.get(type_name)
    if rule is None:
        return f"{type_name} is in no row of the trust table"
    if kind == "reply":
        if sender not in rule.answered_by:
            return f"{type_name} from {sender}: not an answer {sender} may give"
        return None
    if rule.kind != kind:
        return f"{type_name} from {sender}: it is a {rule.kind}, not a {kind}"
    if sender not in rule.senders:
        return f"{type_name} from {sender}: only {', '.join(sorted(rule.senders))} may send it"
    return None


def forbidden(sender: str, kind: Kind) -> list[str]:
    """The types of one kind that `sender` may not send: what the adversary suite tries."""
    return sorted(t for t, r in TRUST.items() if r.kind == kind and sender not in r.senders)


def rows() -> list[dict[str, Any]]:
    """The table as printed by `lockmesh trust`."""
    return [
        {
            "type": name,
            "kind": rule.kind
            if rule.kind == "reply" or not rule.answered_by
            else f"{rule.kind}+reply",
            "senders": sorted(rule.senders),
            "receivers": list(rule.receivers),
        }
        for name, rule in sorted(TRUST.items())
    ]
