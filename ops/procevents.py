"""A supervisord event listener that republishes process state changes on the bus.

It speaks supervisord's listener protocol on stdin/stdout (READY, a header, a payload,
RESULT) and publishes each change as process.procevents.state, so a restart shows in
the tap beside the traffic that caused it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TextIO

from proto.bus import Bus
from proto.layout import Layout
from proto.process import ProcessState

log = logging.getLogger("lockmesh.procevents")


def parse_tokens(line: str) -> dict[str, str]:
    return dict(token.split(":", 1) for token in line.split() if ":" in token)


def read_event(stdin: TextIO) -> tuple[dict[str, str], dict[str, str]] | None:
    header_line = stdin.readline()
    if not header_line:
        return None
    header = parse_tokens(header_line)
    payload = stdin.read(int(header.get("len", "0")))
    first_line = payload.split("\n", 1)[0]
    return header, parse_tokens(first_line)


def to_message(header: dict[str, str], payload: dict[str, str]) -> ProcessState | None:
    event = header.get("eventname", "")
    if not event.startswith("PROCESS_STATE_"):
        return None
    pid = payload.get("pid", "0")
    return ProcessState(
        name=payload.get("processname", "?"),
        state=event.removeprefix("PROCESS_STATE_"),
        from_state=payload.get("from_state", "?"),
        pid=int(pid) if pid.isdigit() else 0,
    )


def serve(bus: Bus, stdin: TextIO, stdout: TextIO) -> None:
    pub = bus.bind_publisher()
    while True:
        stdout.write("READY\n")
        stdout.flush()
        event = read_event(stdin)
        if event is None:
            return
        try:
            message = to_message(*event)
            if message is not None:
                bus.publish(pub, message)
        except (ValueError, KeyError) as e:  # a malformed event must not stop the listener
            log.warning("unreadable supervisor event %r: %s", event, e)
        stdout.write("RESULT 2\nOK")
        stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(prog="lockmesh-procevents")
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    bus = Bus(Layout.at(args.data), "procevents")
    try:
        serve(bus, sys.stdin, sys.stdout)
    finally:
        bus.close()


if __name__ == "__main__":
    main()
