"""The owner's word to the MQTT bridge (issue 17): take the lock off MQTT, or put it back;
and the fleet's messages: a console's sealed push relayed to policy, its signed answer."""

from __future__ import annotations

from proto.schema import Message, secret


class MqttRemove(Message, family="bridge", event="remove"):
    """Take the lock off MQTT: its discovery configs and retained states are cleared (HA
    removes its entities), it disconnects and stays off, across restarts, until MqttAdd."""


class MqttAdd(Message, family="bridge", event="add"):
    """Put the lock back on MQTT after MqttRemove: it connects and announces itself again."""


# -- the fleet (issue 17): a building manager's console, over MQTT --------------------------
class FleetPush(Message, family="fleet", event="push"):
    """A console's sealed push as it came off the broker, not parsed: policy's to open and
    check (proto/fleet.py), as it does a phone's answer; the bridge holds no fleet key.
    Answered with FleetAck."""

    payload: bytes


class FleetAck(Message, family="fleet", event="ack"):
    """Policy's acknowledgement, signed with the fleet key: the bridge publishes it as is."""

    payload: bytes


class FleetKeySet(Message, family="fleet", event="key_set"):
    """The owner lets a building's console push visitor codes to this door: the fleet key
    (64 hex digits), or "" to stop taking pushes."""

    key: str = secret()
