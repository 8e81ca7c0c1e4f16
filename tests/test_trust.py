"""The trust table (issue 11, item 1): complete, consistent with the services' handlers."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from proto import trust
from proto.layout import IDENTITIES, PUBLISHERS, SERVICES
from proto.messages import REGISTRY
from proto.trust import TRUST
from services.base import Service


def service_class(name: str) -> type[Service]:
    module = importlib.import_module(f"services.{name}.service")
    return next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Service) and v.NAME == name
    )


def test_every_message_type_has_a_row_and_every_row_a_type() -> None:
    """A new message type is refused by every receiver until it has its row."""
    assert sorted(set(REGISTRY) - set(TRUST)) == [], "add a row to proto/trust.py"
    assert sorted(set(TRUST) - set(REGISTRY)) == [], "a row for a type that does not exist"


def test_rows_name_only_identities_of_the_mesh() -> None:
    for name, rule in TRUST.items():
        assert rule.senders and rule.senders <= set(IDENTITIES), name
        assert set(rule.receivers) <= set(SERVICES), name
        assert rule.answered_by <= set(SERVICES), name
        if rule.kind == "reply":
            assert rule.answered_by == rule.senders, name
        else:
            assert rule.answered_by <= rule.senders, name


@pytest.mark.parametrize("name", SERVICES)
def test_the_table_and_a_services_handlers_agree(name: str) -> None:
    cls = service_class(name)
    takes = {t for t, r in TRUST.items() if name in r.receivers and r.kind == "request"}
    hears = {t for t, r in TRUST.items() if name in r.receivers and r.kind == "event"}
    assert set(cls._requests) | {"ctl.status"} == takes  # the base answers ctl.status
    assert set(cls._events) == hears


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_subscribes_to_every_publisher_of_what_it_hears(name: str) -> None:
    cls = service_class(name)
    for type_name in cls._events:
        others = TRUST[type_name].senders - {name}  # its own events do not come back
        assert others <= set(cls.LISTENS) & set(PUBLISHERS), type_name


def test_the_motor_obeys_only_policy() -> None:
    """DESIGN.md: motor obeys only policy; what moves or sounds the board is policy's."""
    for type_name in ("motor.actuate", "motor.siren", "motor.chime"):
        assert TRUST[type_name].senders == {"policy"}


def test_board_events_come_only_from_the_motor() -> None:
    """Issue 11: policy believed Bolt, Door, Button and Tamper from any publisher."""
    for type_name in ("motor.bolt", "motor.door", "motor.button", "motor.tamper"):
        assert TRUST[type_name].senders == {"motor"}


def test_refusal_names_what_is_wrong() -> None:
    assert trust.refusal("motor.actuate", "request", "policy") is None
    assert "only policy" in trust.refusal("motor.actuate", "request", "keypad")
    assert "not a request" in trust.refusal("motor.bolt", "request", "motor")
    assert trust.refusal("policy.decision", "reply", "policy") is None  # event and answer
    assert trust.refusal("policy.decision", "reply", "face") is not None
    assert trust.refusal("ctl.done", "reply", "motor") is None
    assert trust.refusal("ctl.done", "event", "motor") is not None
    assert "no row" in trust.refusal("nope.nothing", "event", "motor")


def test_forbidden_lists_what_the_adversary_suite_tries() -> None:
    assert "motor.actuate" in trust.forbidden("keypad", "request")
    assert "motor.actuate" not in trust.forbidden("policy", "request")
    assert "ctl.status" not in trust.forbidden("face", "request")
    assert "motor.button" in trust.forbidden("power", "event")
    assert set(trust.forbidden("policy", "event")) == {
        t for t, r in TRUST.items() if r.kind == "event" and "policy" not in r.senders
    }


def test_rows_print_every_type_once() -> None:
    rows = trust.rows()
    assert [r["type"] for r in rows] == sorted(TRUST)
    decision = next(r for r in rows if r["type"] == "policy.decision")
    assert decision["kind"] == "event+reply" and decision["senders"] == ["policy"]


def test_lockmesh_trust_prints_the_table_without_a_lock(tmp_path) -> None:
    run = [sys.executable, "-m", "ops.cli", "trust", "--data", str(tmp_path / "none")]
    listed = subprocess.run([*run, "--json"], capture_output=True, text=True, check=True)
    assert json.loads(listed.stdout) == json.loads(json.dumps(trust.rows()))
    table = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    assert len(table.splitlines()) == len(TRUST) + 1
    assert "motor.actuate              request       policy" in table
