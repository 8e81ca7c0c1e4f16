"""Typed, frozen message records and the registry that decodes them by type name."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Callable, ClassVar

REGISTRY: dict[str, type["Message"]] = {}

MAX_TEXT = 4096  # longest string or bytes field accepted in a body
MAX_ITEMS = 256  # longest list or dict accepted in a body


class SchemaError(ValueError):
    """A body that does not fit its message type."""


class _WrongType(SchemaError):
    """A value of another type than the field's: a union tries its next arm."""


def secret(
    default: Any = dataclasses.MISSING, check: Callable[[Any], str | None] | None = None
) -> Any:
    """A field the tap and the logs must never show in clear (passcodes); check as for
    checked()."""
    metadata: dict[str, Any] = {"secret": True}
    if check is not None:
        metadata["check"] = check
    return dataclasses.field(default=default, repr=False, metadata=metadata)


def one_of(*choices: Any, default: Any = dataclasses.MISSING) -> Any:
    """A field that takes only the listed values."""
    return dataclasses.field(default=default, metadata={"choices": choices})


def between(low: float, high: float, default: Any = dataclasses.MISSING) -> Any:
    """A number field that must lie in [low, high]."""
    return dataclasses.field(default=default, metadata={"range": (low, high)})


def checked(
    check: Callable[[Any], str | None],
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A field whose value must also pass check (None: fine; else why not), at decode,
    so that a handler never sees a value of the right type but the wrong shape."""
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={"check": check}
    )


@typing.dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
class Message:
    """Base of every message: subclasses declare family and event, fields are the body.

    The type name is ``family.event``; the topic is ``family.<sender>.event`` so that a
    prefix filter selects a family, then a service.

    Each subclass is a frozen dataclass whose __init__, repr, equality, hash and
    immutability are these, shared: dataclass() writes and compiles six functions for
    each class, and the 107 types took 70 ms of CPU to define in every process of the mesh.
    """

    FAMILY: ClassVar[str] = ""
    EVENT: ClassVar[str] = ""
    TYPE: ClassVar[str] = ""
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]  # each subclass's

    def __init_subclass__(cls, family: str = "", event: str = "", **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if not (family and event):
            raise TypeError(f"{cls.__name__} needs family= and event=")
        cls.FAMILY, cls.EVENT, cls.TYPE = family, event, f"{family}.{event}"
        if cls.TYPE in REGISTRY:
            raise TypeError(f"message type {cls.TYPE} declared twice")
        dataclasses.dataclass(init=False, repr=False, eq=False)(cls)  # the fields, no code
        REGISTRY[cls.TYPE] = cls

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if not args and kwargs.keys() == _name_set(cls):  # every field named: decoding
            self.__dict__.update(kwargs)
            return
        fields = _fields(cls)
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__}() takes {len(fields)} fields, {len(args)} given")
        for (name, _, _), value in zip(fields, args):
            if name in kwargs:
                raise TypeError(f"{cls.__name__}() got the field {name!r} twice")
            kwargs[name] = value
        values = {}
        for name, default, factory in fields:
            if name in kwargs:
                values[name] = kwargs.pop(name)
            elif default is not dataclasses.MISSING:
                values[name] = default
            elif factory is not dataclasses.MISSING:
                values[name] = factory()
            else:
                raise TypeError(f"{cls.__name__}() is missing the field {name!r}")
        if kwargs:
            raise TypeError(f"{cls.__name__}() has no fields {sorted(kwargs)}")
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _names(type(self)))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.__dict__ == other.__dict__  # the fields, and only they

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in _shown(type(self)))
        return f"{type(self).__qualname__}({shown})"

    def topic(self, sender: str) -> str:
        return self.topic_of(sender)

    @classmethod
    def topic_of(cls, sender: str) -> str:
        """The topic this type has from sender: what a subscriber to it filters on."""
        return f"{cls.FAMILY}.{sender}.{cls.EVENT}"

    def to_body(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _names(type(self))}

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
        checks = _checks(cls)
        if not body.keys() <= checks.keys():
            unknown = body.keys() - checks.keys()
            raise SchemaError(f"unknown fields {sorted(map(str, unknown))}")
        for name, value in body.items():
            checks[name](name, value)
        try:
            return cls(**body)
        except TypeError as e:  # a required field is missing
            raise SchemaError(str(e)) from None


Check = Callable[[str, Any], None]


def _names(cls: type) -> tuple[str, ...]:
    """The fields' names, read once: encoding is on every hot path too."""
    cached: tuple[str, ...] | None = cls.__dict__.get("_names_cache")
    if cached is None:
        cached = tuple(f.name for f in dataclasses.fields(cls))
        cls._names_cache = cached  # type: ignore[attr-defined]
    return cached


def _fields(cls: type) -> tuple[tuple[str, Any, Any], ...]:
    """Each field's name, default and default factory, read once: __init__ runs on every
    message decoded."""
    cached: tuple[tuple[str, Any, Any], ...] | None = cls.__dict__.get("_fields_cache")
    if cached is None:
        cached = tuple((f.name, f.default, f.default_factory) for f in dataclasses.fields(cls))
        cls._fields_cache = cached  # type: ignore[attr-defined]
    return cached


def _name_set(cls: type) -> frozenset[str]:
    cached: frozenset[str] | None = cls.__dict__.get("_name_set_cache")
    if cached is None:
        cached = frozenset(_names(cls))
        cls._name_set_cache = cached  # type: ignore[attr-defined]
    return cached


def _shown(cls: type) -> tuple[str, ...]:
    """The fields a repr shows: not the secret ones (field(repr=False))."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.repr)


def _checks(cls: type) -> dict[str, Check]:
    """One compiled check per field, made on first use: decoding is on every hot path."""
    cached = cls.__dict__.get("_checks_cache")
    if cached is None:
        hints = typing.get_type_hints(cls)
        cached = {f.name: _with_meta(_compile(hints[f.name]), f) for f in dataclasses.fields(cls)}
        cls._checks_cache = cached  # type: ignore[attr-defined]
    return cached


def _with_meta(check: Check, f: dataclasses.Field[Any]) -> Check:
    choices, bounds = f.metadata.get("choices"), f.metadata.get("range")
    shape = f.metadata.get("check")
    if choices is None and bounds is None and shape is None:
        return check

    def with_meta(name: str, value: Any) -> None:
        check(name, value)
        if choices is not None and value not in choices:
            raise SchemaError(f"{name}: {str(value)[:40]!r} is not one of {choices}")
        if bounds is not None and value is not None and not bounds[0] <= value <= bounds[1]:
            raise SchemaError(f"{name}: {value} outside {bounds[0]}..{bounds[1]}")
        if shape is not None and value is not None and (why := shape(value)):
            raise SchemaError(f"{name}: {why}")

    return with_meta


def _compile(hint: Any) -> Check:
    """A function that raises SchemaError unless a value is of the annotated type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _union(hint, [_compile(arm) for arm in args])
    if origin is list:
        return _sequence(_compile(args[0]))
    if origin is dict:
        return _mapping(_compile(args[0]), _compile(args[1]))
    if hint is Any:
        return lambda name, value: None
    if hint is type(None):
        return _scalar(type(None))
    return _scalar(hint)


def _union(hint: Any, arms: list[Check]) -> Check:
    def check(name: str, value: Any) -> None:
        for arm in arms:
            try:
                return arm(name, value)
            except _WrongType:
                continue  # a value of this arm's type that is wrong (NaN) says why below
        raise _WrongType(f"{name}: {type(value).__name__} is none of {hint}")

    return check


def _sequence(item: Check) -> Check:
    def check(name: str, value: Any) -> None:
        _expect(name, value, list)
        if len(value) > MAX_ITEMS:
            raise SchemaError(f"{name}: {len(value)} items, at most {MAX_ITEMS}")
        for i, v in enumerate(value):
            item(f"{name}[{i}]", v)

    return check


def _mapping(key: Check, item: Check) -> Check:
    def check(name: str, value: Any) -> None:
        _expect(name, value, dict)
        if len(value) > MAX_ITEMS:
            raise SchemaError(f"{name}: {len(value)} entries, at most {MAX_ITEMS}")
        for k, v in value.items():
            key(f"{name} key", k)
            item(f"{name}[{k!r}]", v)

    return check


def _scalar(kind: type) -> Check:
    exact = kind is not float  # a float is also checked finite, and may come as an int
    text = kind in (str, bytes)

    def check(name: str, value: Any) -> None:
        if exact and type(value) is kind and not (text and _too_long(value)):
            return  # exactly the type (never a bool for an int) and not too long: fine
        _expect(name, value, kind)
        if isinstance(value, (str, bytes)) and len(value) > MAX_TEXT:
            raise SchemaError(f"{name}: {len(value)} long, at most {MAX_TEXT}")

    return check


def _too_long(text: Any) -> bool:
    return len(text) > MAX_TEXT


def _expect(name: str, value: Any, kind: type) -> None:
    if kind is float and isinstance(value, float) and not math.isfinite(value):
        raise SchemaError(f"{name}: {value} is not a finite number")  # NaN passes every bound
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return
    if isinstance(value, bool) and kind is not bool:
        raise _WrongType(f"{name}: expected {kind.__name__}, got bool")
    if not isinstance(value, kind):
        raise _WrongType(f"{name}: expected {kind.__name__}, got {type(value).__name__}")
