"""The owner's commands for Matter's access rules (issue 15): `people disable|enable|rule`,
`mode`, and `events --matter`; hooked into ops/owner.py's parsers, requests and answers."""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable

from proto.matter import EVENT_IDS, matter_event
from proto.owner import (
    OPERATING_MODES,
    CredentialRuleSet,
    Listing,
    OperatingMode,
    OperatingModeRequest,
    OperatingModeSet,
    PersonStatus,
)
from proto.schema import Message

Verb = Callable[..., argparse.ArgumentParser]


def add_people_verbs(verb: Verb) -> None:
    verb("disable", "refuse every credential of a person, keeping them (Matter's UserStatus)"
         ).add_argument("number")  # fmt: skip
    verb("enable", "let a disabled person in again").add_argument("number")
    rule = verb("rule", "how many different credentials a person shows (CredentialRule)")
    rule.add_argument("number")
    rule.add_argument("rule", choices=("single", "dual", "tri"))


def add_mode_command(command: Verb) -> None:
    mode = command("mode", "show or set the operating mode (Matter's OperatingMode)")
    mode.add_argument("mode", nargs="?", choices=OPERATING_MODES)
    mode.add_argument("--slot", action="append", default=[],
                      help="passage only in these weekly slots: mon-fri@08:00-18:00")  # fmt: skip
    mode.add_argument("--pin", nargs="?", const="", default="",
                      help="passage: the app PIN (asked for unless given)")  # fmt: skip
    mode.add_argument("--code-stdin", action="store_true", help="read the PIN from stdin")


def add_events_option(events: argparse.ArgumentParser) -> None:
    events.add_argument("--matter", action="store_true",
                        help="as Matter's Door Lock events, with Matter's numbers")  # fmt: skip


def message_for(
    args: argparse.Namespace, parse_slot: Callable[[str], list[int]], read_pin: Callable[..., str]
) -> Message | None:
    """The request for one of these command lines, or None when it is another's."""
    cmd, verb = args.command, getattr(args, "verb", None)
    if cmd == "people" and verb in ("disable", "enable"):
        return PersonStatus(number=args.number, enabled=verb == "enable")
    if cmd == "people" and verb == "rule":
        return CredentialRuleSet(number=args.number, rule=args.rule)
    if cmd != "mode":
        return None
    if args.mode is None:
        return OperatingModeRequest()
    slots = [parse_slot(s) for s in args.slot]
    pin = read_pin(args) if args.mode == "passage" else ""  # passage unlocks: the PIN
    return OperatingModeSet(mode=args.mode, slots=slots, pin=pin)


def show(body: Any, args: argparse.Namespace, slot_text: Callable[[list[int]], str]) -> bool:
    """Print an answer these commands shape; False when it is another's to print."""
    if isinstance(body, OperatingMode) and not args.json:
        slots = ",".join(slot_text(s) for s in body.slots)
        print(f"mode: {body.mode}" + (f" ({slots})" if slots else ""))
        print(f"in force: {body.effective}")
        return True
    if isinstance(body, Listing) and getattr(args, "matter", False):
        show_matter(body.items, args.json)
        return True
    return False


def show_matter(rows: list[dict[str, Any]], as_json: bool) -> None:
    """The log's rows that are Matter events, newest first, with Matter's numbers."""
    events = []
    for row in rows:
        found = matter_event(row)
        if found is not None:
            name, fields = found
            events.append({"seq": row["seq"], "wall": row["wall"], "event": name,
                           "event_id": EVENT_IDS[name], "fields": fields})  # fmt: skip
    if as_json:
        print(json.dumps(events, indent=2))
        return
    for e in events:
        said = " ".join(f"{k}={json.dumps(v)}" for k, v in e["fields"].items() if v is not None)
        print(f"{e['seq']}  {e['event']}(0x{e['event_id']:02x})  {said}")
