"""The owner's word to the MQTT bridge (issue 17): take the lock off MQTT, or put it back."""

from __future__ import annotations

from dataclasses import dataclass

from proto.schema import Message


@dataclass(frozen=True)
class MqttRemove(Message, family="bridge", event="remove"):
    """Take the lock off MQTT: its discovery configs and retained states are cleared (HA
    removes its entities), it disconnects and stays off, across restarts, until MqttAdd."""


@dataclass(frozen=True)
class MqttAdd(Message, family="bridge", event="add"):
    """Put the lock back on MQTT after MqttRemove: it connects and announces itself again."""
