"""A service routes messages to its parts (services/base.py, issue 11 item 11)."""

from __future__ import annotations

import pytest

from proto import config as configuration
from proto.board import Door
from proto.control import OK, Done
from proto.layout import Layout
from proto.policy import MenuArm
from services.base import Service, accepts, hears


class Arming:
    def __init__(self) -> None:
        self.armed = 0

    @accepts(MenuArm)
    def on_arm(self, env: object, peer: str) -> Done:
        self.armed += 1
        return OK


class Doors:
    def __init__(self) -> None:
        self.heard: list[object] = []

    @hears(Door)
    def on_door(self, env: object) -> None:
        self.heard.append(env)


class Routed(Service):
    NAME = "routed"
    PARTS = (Arming, Doors)

    def setup(self) -> None:
        self.arming, self.doors = Arming(), Doors()
        self.route(self.arming, self.doors)


def service(cls: type[Service], tmp_path) -> Service:
    return cls(Layout.at(tmp_path / "data"), configuration.load(None))


def test_issue11_parts_handlers_are_in_the_class_tables_and_reach_their_object(tmp_path):
    assert set(Routed._requests) == {"policy.menu_arm"}
    assert set(Routed._events) == {"motor.door"}
    routed = service(Routed, tmp_path)
    routed.setup()
    routed._bind()
    assert routed._on_request["policy.menu_arm"]("env", "keypad") is OK
    routed._on_event["motor.door"]("event")
    assert routed.arming.armed == 1 and routed.doors.heard == ["event"]


def test_issue11_a_type_handled_twice_stops_the_class() -> None:
    class Rival:
        @accepts(MenuArm)
        def on_arm(self, env: object, peer: str) -> Done:
            return OK

    with pytest.raises(TypeError, match="policy.menu_arm is handled by both"):
        type("Twice", (Service,), {"NAME": "twice", "PARTS": (Arming, Rival)})
    with pytest.raises(TypeError, match="handled by both"):
        type("Mine", (Service,), {"NAME": "mine", "PARTS": (Arming,), "on_arm": Rival.on_arm})


def test_issue11_a_part_not_routed_stops_the_start(tmp_path):
    class Forgetful(Routed):
        def setup(self) -> None:
            self.route(Arming())

    forgetful = service(Forgetful, tmp_path)
    forgetful.setup()
    with pytest.raises(TypeError, match="no Doors was routed"):
        forgetful._bind()
    with pytest.raises(TypeError, match="not a part"):
        forgetful.route(object())
