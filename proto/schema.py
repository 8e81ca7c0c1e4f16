"""Typed, frozen message records and the registry that decodes them by type name."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar

REGISTRY: dict[str, type["Message"]] = {}

MAX_TEXT = 4096  # longest string or bytes field accepted in a body
MAX_ITEMS = 256  # longest list or dict accepted in a body


class SchemaError(ValueError):
    """A body that does not fit its message type."""


def secret(default: Any = dataclasses.MISSING) -> Any:
    """A field the tap and the logs must never show in clear (passcodes)."""
    return dataclasses.field(default=default, metadata={"secret": True})


def one_of(*choices: Any, default: Any = dataclasses.MISSING) -> Any:
    """A field that takes only the listed values."""
    return dataclasses.field(default=default, metadata={"choices": choices})


def between(low: float, high: float, default: Any = dataclasses.MISSING) -> Any:
    """A number field that must lie in [low, high]."""
    return dataclasses.field(default=default, metadata={"range": (low, high)})


@dataclasses.dataclass(frozen=True)
class Message:
    """Base of every message: subclasses declare family and event, fields are the body.

    The type name is ``family.event``; the topic is ``family.<sender>.event`` so that a
    prefix filter selects a family, then a service.
    """

    FAMILY: ClassVar[str] = ""
    EVENT: ClassVar[str] = ""
    TYPE: ClassVar[str] = ""

    def __init_subclass__(cls, family: str = "", event: str = "", **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if not (family and event):
            raise TypeError(f"{cls.__name__} needs family= and event=")
        cls.FAMILY, cls.EVENT, cls.TYPE = family, event, f"{family}.{event}"
        if cls.TYPE in REGISTRY:
            raise TypeError(f"message type {cls.TYPE} declared twice")
        REGISTRY[cls.TYPE] = cls

    def topic(self, sender: str) -> str:
        return f"{self.FAMILY}.{sender}.{self.EVENT}"

    def to_body(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def redacted(self) -> dict[str, Any]:
        """The body with secret fields masked, for the tap and the logs."""
        body = self.to_body()
        for f in dataclasses.fields(self):
            if f.metadata.get("secret"):
                body[f.name] = "***"
        return body

    @classmethod
    def from_body(cls, body: Any) -> "Message":
        if not isinstance(body, dict):
            raise SchemaError("body is not a map")
        hints = _hints(cls)
        unknown = set(body) - set(hints)
        if unknown:
            raise SchemaError(f"unknown fields {sorted(map(str, unknown))}")
        for f in dataclasses.fields(cls):
            if f.name in body:
                _check(f.name, body[f.name], hints[f.name])
                _check_meta(f, body[f.name])
        try:
            return cls(**body)
        except TypeError as e:  # a required field is missing
            raise SchemaError(str(e)) from None


def _check_meta(f: dataclasses.Field, value: Any) -> None:
    choices = f.metadata.get("choices")
    if choices is not None and value not in choices:
        raise SchemaError(f"{f.name}: {str(value)[:40]!r} is not one of {choices}")
    bounds = f.metadata.get("range")
    if bounds is not None and value is not None and not bounds[0] <= value <= bounds[1]:
        raise SchemaError(f"{f.name}: {value} outside {bounds[0]}..{bounds[1]}")


def _hints(cls: type) -> dict[str, Any]:
    cached = cls.__dict__.get("_hints_cache")
    if cached is None:
        all_hints = typing.get_type_hints(cls)
        cached = {f.name: all_hints[f.name] for f in dataclasses.fields(cls)}
        cls._hints_cache = cached  # type: ignore[attr-defined]
    return cached


def _check(name: str, value: Any, hint: Any) -> None:
    """Raise SchemaError unless value is of the annotated type (recursively)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arm in args:
            try:
                return _check(name, value, arm)
            except SchemaError as e:
                errors.append(str(e))
        raise SchemaError(f"{name}: {type(value).__name__} is none of {hint}")
    if hint is type(None):
        if value is not None:
            raise SchemaError(f"{name}: expected nothing, got {type(value).__name__}")
        return
    if origin is list:
        _expect(name, value, list)
        if len(value) > MAX_ITEMS:
            raise SchemaError(f"{name}: {len(value)} items, at most {MAX_ITEMS}")
        for i, item in enumerate(value):
            _check(f"{name}[{i}]", item, args[0])
        return
    if origin is dict:
        _expect(name, value, dict)
        if len(value) > MAX_ITEMS:
            raise SchemaError(f"{name}: {len(value)} entries, at most {MAX_ITEMS}")
        for k, v in value.items():
            _check(f"{name} key", k, args[0])
            _check(f"{name}[{k!r}]", v, args[1])
        return
    if hint is Any:
        return
    _expect(name, value, hint)
    if isinstance(value, (str, bytes)) and len(value) > MAX_TEXT:
        raise SchemaError(f"{name}: {len(value)} long, at most {MAX_TEXT}")


def _expect(name: str, value: Any, kind: type) -> None:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return
    if isinstance(value, bool) and kind is not bool:
        raise SchemaError(f"{name}: expected {kind.__name__}, got bool")
    if not isinstance(value, kind):
        raise SchemaError(f"{name}: expected {kind.__name__}, got {type(value).__name__}")
