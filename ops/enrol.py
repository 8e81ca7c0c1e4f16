"""`lockmesh enrol face|finger|palm NUMBER`: the owner adds a credential to a person (L-14).

The capture happens on the lock: this asks policy to open the enrolment (policy has the
face or biometric service start it, issue 11), then prints each step that service publishes
(place the finger, lift it, hold the palm nearer …) until it ends.
"""

from __future__ import annotations

import argparse
import sys
import time

import zmq

from proto.biometric import ENROLMENTS, EnrolCancel, EnrolDone, EnrolOpen, EnrolStep
from proto.bus import Bus
from proto.control import Done
from proto.layout import Layout


def add_parser(c: argparse.ArgumentParser) -> None:
    c.add_argument("modality", choices=ENROLMENTS)
    c.add_argument("number", help="the person's number, e.g. 002")
    c.add_argument("--timeout", type=float, default=120.0, help="give up after S seconds")


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
            print(f"refused: {answer.body.reason}: {answer.body.detail}", file=sys.stderr)
            return 1
        try:
            return follow(bus, events, service, args.number, args.timeout)
        except KeyboardInterrupt:
            bus.client(service).request(EnrolCancel(), timeout=5.0)
            print("cancelled", file=sys.stderr)
            return 1


def follow(bus: Bus, events: zmq.Socket, service: str, person: str, timeout: float) -> int:
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
            print(f"{body.step}{' ' + extra if extra else ''}", flush=True)
        elif isinstance(body, EnrolDone):
            if body.ok:
                print(f"enrolled: {body.modality} slot {body.detail}")
                return 0
            print(f"refused: {body.reason}: {body.detail}", file=sys.stderr)
            return 1
    print("lockmesh: the enrolment did not finish in time", file=sys.stderr)
    return 1
