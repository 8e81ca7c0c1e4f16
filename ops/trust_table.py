"""`lockmesh trust`: the trust table of proto/trust.py, as the bus enforces it."""

from __future__ import annotations

import argparse
import json

from proto import trust
from proto.layout import IDENTITIES, SERVICES, Layout


def add_parser(c: argparse.ArgumentParser) -> None:
    c.add_argument("--json", action="store_true", help="one object per message type")


def run(layout: Layout, args: argparse.Namespace) -> int:
    rows = trust.rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'message type':<26} {'kind':<13} {'who may send it':<36} who takes it")
    for row in rows:
        print(f"{row['type']:<26} {row['kind']:<13} {_names(row['senders']):<36} {_takers(row)}")
    return 0


def _names(names: list[str]) -> str:
    if set(names) == set(IDENTITIES):
        return "anyone"
    if set(names) == set(SERVICES):
        return "every service"
    return ", ".join(names)


def _takers(row: dict) -> str:
    if row["kind"] == "reply":
        return "the peer that asked"
    return _names(row["receivers"]) if row["receivers"] else "(the tap)"
