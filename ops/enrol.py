"""`lockmesh enrol face|finger|palm NUMBER`: the owner adds a credential to a person (L-14).

The capture happens on the lock: this asks policy to open the enrolment (policy has the
face or biometric service start it, issue 11), then prints each step that service publishes
(place the finger, lift it, hold the palm nearer …) until it ends.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import zmq

from proto.biometric import ENROLMENTS, EnrolCancel, EnrolDone, EnrolOpen, EnrolStep
from proto.bus import Bus
from proto.control import Done
from proto.layout import Layout


def add_parser(c: argparse.ArgumentParser) -> None:
    c.add_argument("modality", choices=ENROLMENTS)
    c.add_argument("number", help="the person's number, e.g. 002")
    c.add_argument(
        "--timeout", type=float, default=120.0,
        help="give up after S seconds: the enrolment is cancelled on the lock too",
    )  # fmt: skip
    c.add_argument("--json", action="store_true", help="each step, then the end, as JSON lines")


def say(as_json: bool, text: str, record: dict[str, Any], *, error: bool = False) -> None:
    """A line for a person, or the same as a JSON object for a program (issue 15)."""
    if as_json:
        print(json.dumps(record), flush=True)
    else:
        print(text, file=sys.stderr if error else sys.stdout, flush=True)


def run(layout: Layout, args: argparse.Namespace) -> int:
    service = "face" if args.modality == "face" else "biometric"
    with Bus(layout, "cli") as bus:
        events = bus.subscribe(service)  # before asking, so no step is missed
        time.sleep(0.2)  # a SUB socket needs a moment to be heard by its publisher
        request = EnrolOpen(modality=args.modality, person=args.number)
        answer = bus.client("policy").request(request, timeout=5.0)
        if answer is None:
            print("lockmesh: policy did not answer (is the lock up?)", file=sys.stderr)
            return 1
        if not isinstance(answer.body, Done):
            print(f"lockmesh: policy answered {answer.type}, not done", file=sys.stderr)
            return 1
        if not answer.body.ok:
            b = answer.body
            say(args.json, f"refused: {b.reason}: {b.detail}",
                {"ok": False, "reason": b.reason, "detail": b.detail}, error=True)  # fmt: skip
            return 1
        try:
            ended = follow(bus, events, service, args.number, args.timeout, args.json)
        except KeyboardInterrupt:
            ended = None
            why = "cancelled"
        else:
            why = "timeout"
        if ended is None:  # the lock stops too: its capture no longer blocks the door (issue 15)
            cancel = bus.client(service).request(EnrolCancel(), timeout=5.0)
            done = cancel is not None and getattr(cancel.body, "ok", False)
            text = "the enrolment did not finish in time" if why == "timeout" else "cancelled"
            text += ": cancelled on the lock" if done else ": the lock did not confirm the cancel"
            say(args.json, f"lockmesh: {text}",
                {"ok": False, "reason": why, "detail": text}, error=True)  # fmt: skip
            return 1
        return ended


def follow(
    bus: Bus, events: zmq.Socket, service: str, person: str, timeout: float, as_json: bool
) -> int | None:
    """Print each step until the end: 0 stored, 1 refused; None when timeout passed first."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not events.poll(int(left * 1000) + 1):
            break
        env = bus.receive_event(events, service)
        if env is None or getattr(env.body, "person", None) != person:
            continue
        body = env.body
        if isinstance(body, EnrolStep):
            extra = " ".join(f"{k}={v}" for k, v in body.params.items())
            say(as_json, f"{body.step}{' ' + extra if extra else ''}",
                {"step": body.step, "params": body.params})  # fmt: skip
        elif isinstance(body, EnrolDone):
            if body.ok:
                say(as_json, f"enrolled: {body.modality} slot {body.detail}",
                    {"ok": True, "modality": body.modality, "slot": body.detail})  # fmt: skip
                return 0
            why = {"ok": False, "reason": body.reason, "detail": body.detail}
            say(as_json, f"refused: {body.reason}: {body.detail}", why, error=True)
            return 1
    return None
