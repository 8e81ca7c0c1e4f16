"""`lockmesh people|codes|settings|lockout|unlock|lock|home|events|audit|pair`: the owner's
commands.

They travel as the CLI's CURVE identity, one of the owner's (the app's gateway is the
other). Passcodes, the app password and the app PIN are asked for on the terminal (or
read from stdin with --code-stdin, the password from --password-file), never taken as
arguments by default, so that they stay out of the shell history.
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from ops import audit, owner_rules
from ops.words import decision_line
from proto.bus import Bus
from proto.control import Done
from proto.layout import Layout
from proto.owner import (
    DuressSet,
    EventsRequest,
    Home,
    HomeRequest,
    Listing,
    LockoutRelease,
    PairClaim,
    PeopleRequest,
    PersonAdd,
    PersonDelete,
    PersonRename,
    RemoteLock,
    RemoteUnlock,
    SettingSet,
    SettingsRequest,
    ValiditySet,
    VisitorAdd,
    VisitorDelete,
    VisitorsRequest,
    password_shape,
    pin_shape,
    weekly_slots,
)
from proto.policy import Decision
from proto.schema import Message

_json = argparse.ArgumentParser(add_help=False)
_json.add_argument("--json", action="store_true", default=argparse.SUPPRESS)

SWITCHES = ("wifi", "remote_unlock")  # Home's settings, shown on or off
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # Matter's DaysMask bit order


class UsageError(ValueError):
    pass


class Refused(UsageError):
    """What the lock would refuse, said before asking it: a refusal (exit 1), not a
    usage error (exit 2), like every other refusal (issue 15)."""

    def __init__(self, reason: str, sentence: str) -> None:
        super().__init__(f"{reason}: {sentence}")
        self.reason = reason


def parse_time(text: str | None) -> float | None:
    """ISO 8601 (local time unless it says otherwise) or epoch seconds."""
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):  # policy refuses NaN and infinity at decode
            return seconds
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(f"{text!r} is not a time: use 2026-12-24T18:00 or epoch seconds") from None


def parse_slot(text: str) -> list[int]:
    """'mon-fri@08:00-18:00' or 'sat,sun@10:00-12:00' as [days mask, start min, end min]."""
    try:
        days, hours = text.split("@")
        start, end = (_minutes(h) for h in hours.split("-"))
        mask = 0
        for part in days.split(","):
            first, _, last = part.partition("-")
            a, b = DAYS.index(first), DAYS.index(last or first)
            for day in range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]:
                mask |= 1 << day
    except ValueError:
        raise UsageError(f"{text!r} is not a slot like mon-fri@08:00-18:00") from None
    why = weekly_slots([[mask, start, end]])  # what policy would refuse at decode
    if why:
        raise UsageError(f"{text!r}: {why.removeprefix('slot 0: ')}")
    return [mask, start, end]


def slot_text(slot: list[int]) -> str:
    """[days mask, start min, end min] as parse_slot reads it: 'mon-fri@08:00-18:00'."""
    mask, start, end = slot
    days = [d for i, d in enumerate(DAYS) if mask >> i & 1]
    runs: list[list[str]] = []
    for day in days:  # consecutive days as one run, in Matter's Sunday-first order
        if runs and DAYS.index(day) == DAYS.index(runs[-1][-1]) + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    named = ",".join(r[0] if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)
    return f"{named}@{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def read_code(args: argparse.Namespace) -> str:
    if args.code_stdin:
        return sys.stdin.readline().strip()
    first = getpass.getpass("passcode: ")
    if getpass.getpass("again: ") != first:
        raise Refused("mismatch", "the two entries do not match (L-4)")
    return first


def read_verification_code(args: argparse.Namespace) -> str:
    """The code system information announces (L-16): typed once, it is checked by the lock."""
    if args.code_stdin:
        return sys.stdin.readline().strip()
    return getpass.getpass("verification code: ")


def read_new_secret(label: str, args: argparse.Namespace) -> str:
    """A new app password or PIN: from stdin's next line, or typed twice."""
    if args.code_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"{label}: ")
    if getpass.getpass(f"{label} again: ") != first:
        raise Refused("mismatch", f"the two {label}s do not match")
    return first


def read_password_file(path: Path) -> str:
    """The first line of a file (a password manager's export, a test's fixture)."""
    try:
        return next(iter(path.read_text().splitlines()), "")
    except OSError as e:
        raise UsageError(f"cannot read the password file: {e.strerror}: {path}") from None


def claim(args: argparse.Namespace) -> PairClaim:
    """L-17, issue 13: stdin's lines, with --code-stdin, are the verification code, then
    the password (unless --password-file), then the PIN (unless --pin)."""
    code = read_verification_code(args)
    if args.password_file is not None:
        password = read_password_file(args.password_file)
    else:
        password = read_new_secret("app password", args)
    pin = args.pin if args.pin is not None else read_new_secret("app PIN", args)
    for why in (password_shape(password), pin_shape(pin)):
        if why:
            raise UsageError(why)
    return PairClaim(serial=args.serial, code=code, password=password, pin=pin)


def read_pin(args: argparse.Namespace) -> str:
    """The app PIN for a remote unlock: --pin PIN, stdin's line, or typed once."""
    if args.pin:
        pin = str(args.pin)
    elif args.code_stdin:
        pin = sys.stdin.readline().strip()
    else:
        pin = getpass.getpass("app PIN: ")
    why = pin_shape(pin)
    if why:
        raise UsageError(why)
    return pin


def add_parsers(
    command: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """The owner's commands; every verb takes --data and --json too."""

    def verbs_of(parser: argparse.ArgumentParser) -> Callable[..., argparse.ArgumentParser]:
        sub = parser.add_subparsers(dest="verb", metavar="VERB")
        return lambda name, help=None: sub.add_parser(name, parents=[common, _json], help=help)

    verb = verbs_of(command("people", "list, add, rename, delete people; validity (L-33, L-7)"))
    add = verb("add", "a new person with a passcode")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true")
    add.add_argument("--code-stdin", action="store_true")
    rename = verb("rename", "give a person a name")
    rename.add_argument("number")
    rename.add_argument("name")
    verb("delete", "delete a person and all their credentials (L-6)").add_argument("number")
    valid = verb("validity", "when their credentials work")
    valid.add_argument("number")
    valid.add_argument("--start")
    valid.add_argument("--end")
    valid.add_argument("--slot", action="append", default=[], help="mon-fri@08:00-18:00")
    duress = verb("duress", "set the person's duress passcode (L-8)")
    duress.add_argument("number")
    duress.add_argument("--code-stdin", action="store_true")
    owner_rules.add_people_verbs(verb)  # issue 15: disable, enable, rule
    verb = verbs_of(command("codes", "visitor passcodes (L-9)"))
    add = verb("add", "a visitor code with a window and a use limit")
    add.add_argument("label")
    add.add_argument("--start")
    add.add_argument("--end")
    add.add_argument("--uses", type=int, help="how many times (default: unlimited)")
    add.add_argument("--code-stdin", action="store_true")
    verb("delete", "delete a visitor code").add_argument("label")
    setting = command("settings", "show or change the owner's settings (L-36)")
    setting.add_argument("name", nargs="?")
    setting.add_argument("value", nargs="?")
    command("lockout", "release a lockout (L-20)").add_argument("action", choices=("release",))
    unlock = command("unlock", "remote unlock with the app PIN, when enabled (L-18, L-32)")
    unlock.add_argument(
        "--pin", nargs="?", const="", default="", help="asked for unless given (it shows in ps)"
    )
    unlock.add_argument("--code-stdin", action="store_true", help="read the PIN from stdin")
    command("lock", "throw the bolt (L-32)")
    command("home", "the lock now: bolt, door, battery, alarms (L-31)")
    events = command("events", "the event log, newest first (L-35)")
    events.add_argument("--since")
    events.add_argument("--person")
    events.add_argument("--kind")
    events.add_argument("--limit", type=int, default=50)
    events.add_argument("--before", type=int, metavar="SEQ", help="older rows than SEQ only")
    owner_rules.add_events_option(events)  # issue 15: --matter
    owner_rules.add_mode_command(command)  # issue 15: mode
    audit_parser = command("audit", "re-check the event log from the database, running or not")
    audit_parser.add_argument("action", choices=("verify",))
    audit_parser.add_argument("--db", type=Path, metavar="FILE", help="a copy of lock.db")
    audit_parser.add_argument("--secret", type=Path, metavar="FILE", help="its device.secret")
    audit_parser.set_defaults(run=audit.cmd_verify)
    pair = command("pair", "claim the lock while its pairing mode is open (L-17)")
    pair.add_argument("--serial", required=True, help="the serial number system info announces")
    pair.add_argument(
        "--code-stdin",
        action="store_true",
        help="read the verification code, then the app password and PIN, from stdin",
    )
    pair.add_argument(
        "--password-file", type=Path, metavar="FILE", help="the new app password's file"
    )
    pair.add_argument("--pin", help="the new app PIN, 4 to 8 digits (else asked for)")


def message_for(args: argparse.Namespace) -> Message:
    """The request a command line stands for."""
    cmd, verb = args.command, getattr(args, "verb", None)
    rules = owner_rules.message_for(args, parse_slot, read_pin)  # issue 15
    if rules is not None:
        return rules
    if cmd == "people":
        if verb is None:
            return PeopleRequest()
        if verb == "add":
            return PersonAdd(
                name=args.name, code=read_code(args), role="admin" if args.admin else "user"
            )
        if verb == "rename":
            return PersonRename(number=args.number, name=args.name)
        if verb == "delete":
            return PersonDelete(number=args.number)
        if verb == "validity":
            return ValiditySet(
                number=args.number,
                start=parse_time(args.start),
                end=parse_time(args.end),
                slots=[parse_slot(s) for s in args.slot],
            )
        return DuressSet(number=args.number, code=read_code(args))
    if cmd == "codes":
        if verb is None:
            return VisitorsRequest()
        if verb == "add":
            start, end = parse_time(args.start), parse_time(args.end)
            if end is not None and end <= time.time():  # before the code is typed twice
                when = datetime.fromtimestamp(end).isoformat(timespec="minutes")
                raise Refused("bad-value", f"the window ended at {when}: give a later --end")
            if start is not None and end is not None and end <= start:
                raise Refused("bad-value", "the window ends before it starts")
            return VisitorAdd(
                label=args.label, code=read_code(args), start=start, end=end, uses=args.uses
            )
        return VisitorDelete(label=args.label)
    if cmd == "settings":
        if args.name is None:
            return SettingsRequest()
        if args.value is None:
            raise UsageError("settings NAME VALUE changes a setting; plain `settings` lists them")
        return SettingSet(name=args.name, value=args.value)
    if cmd == "lockout":
        return LockoutRelease()
    if cmd == "unlock":
        return RemoteUnlock(pin=read_pin(args))
    if cmd == "lock":
        return RemoteLock()
    if cmd == "home":
        return HomeRequest()
    if cmd == "pair":
        return claim(args)
    return EventsRequest(  # `audit` reads the store itself (ops/audit.py)
        since=parse_time(args.since),
        person=args.person,
        kind=args.kind,
        limit=args.limit,
        before=args.before,
    )


def run(layout: Layout, args: argparse.Namespace) -> int:
    with Bus(layout, "cli") as bus:  # a lock to talk to, before anyone types a secret
        try:
            message = message_for(args)
        except Refused as e:
            print(f"refused: {e}", file=sys.stderr)
            return 1
        except UsageError as e:
            print(f"lockmesh: {e}", file=sys.stderr)
            return 2
        answer = bus.client("policy").request(message, timeout=5.0)
        if answer is None:
            print("lockmesh: policy did not answer (is the lock up?)", file=sys.stderr)
            return 1
        shown = (
            0 if owner_rules.show(answer.body, args, slot_text) else show(answer.body, args.json)
        )
        if isinstance(message, EventsRequest) and audit.warn_if_rolled_back(bus):
            return 1
    return shown


def show(body: Any, as_json: bool) -> int:
    """Print an answer; the exit code says whether it was a yes."""
    if as_json:
        print(json.dumps(body.to_body(), indent=2, default=str))
    elif isinstance(body, Listing):
        for item in body.items:
            shown = (f"{k}={_shown(v, k)}" for k, v in item.items() if v not in (None, [], ""))
            print("  ".join(shown))
    elif isinstance(body, Home):
        for name, value in body.to_body().items():
            print(f"{name}: {_home_value(name, value)}")
    elif isinstance(body, Decision):
        print(decision_line(body.granted, body.reason))
    elif isinstance(body, Done):
        print(
            "ok" + (f": {body.detail}" if body.detail else "")
            if body.ok
            else f"refused: {body.reason}: {body.detail}"
        )
    ok = getattr(body, "ok", getattr(body, "granted", True))
    return 0 if ok else 1


def _shown(value: Any, name: str = "") -> str:
    if name == "slots" and isinstance(value, list):  # L-7's weekly slots, as typed
        try:
            return ",".join(slot_text(slot) for slot in value)
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and value > 1e9:
        return datetime.fromtimestamp(value).isoformat(timespec="seconds")
    return str(value)


def _home_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return ("on" if value else "off") if name in SWITCHES else ("yes" if value else "no")
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return "unknown" if value is None else str(value)
