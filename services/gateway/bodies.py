"""What the API takes: strict JSON, checked field by field, into the messages for policy.

A route's body is some fields of a message of proto/owner.py (the others come from the
path or are the gateway's to fill). Their JSON Schema (for the OpenAPI document) and their
checks both come from the message's own declaration, and a body becomes a message only
through Message.from_body, so the rules on a field live in one place, proto/.

Before that, the JSON itself is held to what a message can carry: no NaN or infinity, no
integer beyond 64 bits, no unpaired surrogate, no nesting deeper than MAX_DEPTH. Anything
else is a Refused(400) with a reason code and one line, never an exception further up.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from proto.schema import MAX_ITEMS, MAX_TEXT, Message, SchemaError

MAX_BODY_BYTES = 16 * 1024  # APP.md: larger bodies are refused 413
MAX_DEPTH = 8  # no message nests deeper than a list of lists
INT_RANGE = (-(2**63), 2**63 - 1)  # what msgpack carries as a signed integer


class Refused(Exception):
    """A request refused before policy is asked: HTTP status, reason code, one line."""

    def __init__(
        self, status: int, error: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail
        self.headers = headers or {}


def bad(error: str, detail: str) -> Refused:
    return Refused(400, error, detail)


# -- JSON -------------------------------------------------------------------------------
def parse_json(raw: bytes) -> Any:
    """A JSON document as Python values, or Refused 400: strict about what JSON allows
    that a message cannot carry."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise bad("bad-json", f"the body is not UTF-8 (byte {e.start})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise bad("bad-json", "the body nests too deep") from None
    except ValueError as e:  # JSONDecodeError, and _no_constant's
        raise bad("bad-json", f"the body is not JSON: {str(e)[:80]}") from None
    plain(value, "body")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def plain(value: Any, where: str, depth: int = 0) -> None:
    """Refuses what JSON parsing let through that no message may hold."""
    if depth > MAX_DEPTH:
        raise bad("bad-json", f"{where}: nested deeper than {MAX_DEPTH}")
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise bad("bad-field", f"{where}: integer out of range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise bad("bad-field", f"{where}: not a finite number")
    elif isinstance(value, str):
        text(value, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            plain(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            plain(item, f"{where}.{text(key, where)[:40]}", depth + 1)


def text(value: str, where: str) -> str:
    """A string that UTF-8 (and so msgpack) can carry: no unpaired surrogate."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad("bad-field", f"{where}: not valid Unicode text") from None
    return value


# -- bodies ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Body:
    """The JSON body of a route: `message`'s fields but those of the path (`from_path`)
    and those the gateway fills (`fixed`). `schema` and `convert` replace the derived
    schema and the identity mapping where the app's words differ from the message's."""

    message: type[Message]
    from_path: tuple[str, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)
    schema: Mapping[str, dict[str, Any]] | None = None  # field: JSON Schema
    required: tuple[str, ...] | None = None
    convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def fields(self) -> dict[str, dict[str, Any]]:
        if self.schema is not None:
            return dict(self.schema)
        return {
            f.name: field_schema(self.message, f)
            for f in dataclasses.fields(self.message)
            if f.name not in self.from_path and f.name not in self.fixed
        }

    def required_fields(self) -> tuple[str, ...]:
        if self.required is not None:
            return self.required
        return tuple(
            f.name
            for f in dataclasses.fields(self.message)
            if f.name in self.fields() and _required(f)
        )

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": self.fields(),
            "additionalProperties": False,
        }
        if self.required_fields():
            schema["required"] = list(self.required_fields())
        return schema

    def message_of(self, body: Any, path: Mapping[str, str]) -> Message:
        """The message for policy, or Refused 400 naming the field."""
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise bad("not-an-object", f"the body must be a JSON object, not {_kind(body)}")
        allowed = self.fields()
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise bad("unknown-field", f"unknown fields: {', '.join(unknown)[:120]}")
        missing = [name for name in self.required_fields() if name not in body]
        if missing:
            raise bad("missing-field", f"missing fields: {', '.join(missing)}")
        fields = self.convert(body) if self.convert is not None else dict(body)
        for name in self.from_path:
            fields[name] = text(path[name], name)
        fields.update(self.fixed)
        try:
            return self.message.from_body(fields)
        except SchemaError as e:
            raise bad("bad-field", str(e)[:200]) from None


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def field_schema(message: type[Message], f: dataclasses.Field[Any]) -> dict[str, Any]:
    """The JSON Schema of a message's field, from its type and its one_of/between marks."""
    schema = type_schema(typing.get_type_hints(message)[f.name])
    if (choices := f.metadata.get("choices")) is not None:
        schema["enum"] = list(choices)
    if (bounds := f.metadata.get("range")) is not None:
        schema["minimum"], schema["maximum"] = bounds
    if f.metadata.get("secret"):
        schema["writeOnly"] = True
    return schema


def type_schema(hint: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [type_schema(a) for a in args if a is not type(None)]
        if len(arms) == 1 and type(None) in args:
            arm = arms[0]
            return {**arm, "type": [arm["type"], "null"]}
        return {"anyOf": arms + ([{"type": "null"}] if type(None) in args else [])}
    if origin is list:
        return {"type": "array", "items": type_schema(args[0]), "maxItems": MAX_ITEMS}
    if origin is dict:
        return {"type": "object", "additionalProperties": type_schema(args[1])}
    scalar = {str: "string", int: "integer", float: "number", bool: "boolean"}[hint]
    return {"type": scalar, "maxLength": MAX_TEXT} if hint is str else {"type": scalar}


# -- query strings -----------------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    """A query string's parameters, each a message field parsed from text."""

    message: type[Message]

    def parameters(self) -> dict[str, dict[str, Any]]:
        return {
            f.name: _nonnull(field_schema(self.message, f))
            for f in dataclasses.fields(self.message)
        }

    def message_of(self, pairs: list[tuple[str, str]]) -> Message:
        """The message of a query string's (name, value) pairs, or Refused 400."""
        known = self.parameters()
        fields: dict[str, Any] = {}
        for name, raw in pairs:
            if name not in known:
                raise bad("unknown-field", f"unknown parameter: {text(name, 'query')[:40]}")
            if name in fields:
                raise bad("bad-field", f"{name} is given more than once")
            fields[name] = _from_text(name, text(raw, name), known[name]["type"])
        try:
            return self.message.from_body(fields)
        except SchemaError as e:
            raise bad("bad-field", str(e)[:200]) from None


def _nonnull(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, list):
        schema = {**schema, "type": next(k for k in kind if k != "null")}
    return schema


NUMERALS = {
    "integer": re.compile(r"-?[0-9]{1,19}"),
    "number": re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?"),
}


def _from_text(name: str, raw: str, kind: str) -> Any:
    """A parameter's value: its text as is, or an ASCII decimal number (no exponent)."""
    if kind == "string":
        return raw
    if not NUMERALS[kind].fullmatch(raw):
        raise bad("bad-field", f"{name}: {raw[:20]!r} is not an {kind}")
    value: Any = int(raw) if kind == "integer" else float(raw)
    plain(value, name)
    return value
