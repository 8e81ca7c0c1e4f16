"""Message schemas: every registered type builds, round-trips as a body, refuses bad bodies.

The hypothesis strategies here are derived from each dataclass's type hints and from the
field metadata of proto/schema.py ("choices", "range", "secret"); test_proto_wire.py
imports them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.biometric import snapshot_name
from proto.messages import REGISTRY
from proto.owner import (
    MINUTES_A_DAY,
    PASSWORD_CHARS,
    PIN_DIGITS,
    ValiditySet,
    password_shape,
    pin_shape,
    weekly_slots,
)
from proto.policy import CheckPasscode, CreateFirstAdmin, VerifyPasscode
from proto.schema import MAX_ITEMS, MAX_TEXT, Message, SchemaError

TYPES = sorted(REGISTRY)

# -- strategies ---------------------------------------------------------------------------
TEXT = st.text(max_size=30)
INT64 = st.integers(-(2**63), 2**63 - 1)
FLOAT = st.floats(allow_nan=False, allow_infinity=False)  # a float field takes finite ones only
# What a field checked by a function of proto/ (schema.checked) takes, by that function.
SLOT = st.integers(1, 127).flatmap(
    lambda mask: st.integers(0, MINUTES_A_DAY - 1).flatmap(
        lambda start: st.integers(start + 1, MINUTES_A_DAY).map(lambda end: [mask, start, end])
    )
)
SHAPED = {
    weekly_slots: st.lists(SLOT, max_size=4),
    snapshot_name: st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", fullmatch=True),
    password_shape: st.text(min_size=PASSWORD_CHARS[0], max_size=PASSWORD_CHARS[1]),
    pin_shape: st.text("0123456789", min_size=PIN_DIGITS[0], max_size=PIN_DIGITS[1]),
}
# ... and the simplest value each takes
SIMPLEST = {weekly_slots: [], snapshot_name: "a", password_shape: "p" * 8, pin_shape: "0000"}
# What msgpack gives back unchanged: no tuples, no NaN, str keys.
ANY = st.recursive(
    st.none() | st.booleans() | INT64 | FLOAT | TEXT | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
DIGITS = st.text("0123456789", max_size=20)


def hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def for_hint(hint: Any) -> st.SearchStrategy[Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(for_hint(arm) for arm in args))
    if hint is type(None):
        return st.none()
    if origin is list:
        return st.lists(for_hint(args[0]), max_size=5)
    if origin is dict:
        return st.dictionaries(for_hint(args[0]), for_hint(args[1]), max_size=4)
    if hint is Any:
        return ANY
    return {
        str: TEXT,
        int: INT64,
        float: FLOAT,
        bool: st.booleans(),
        bytes: st.binary(max_size=40),
    }[hint]


def for_field(f: dataclasses.Field, hint: Any) -> st.SearchStrategy[Any]:
    if "check" in f.metadata:
        return SHAPED[f.metadata["check"]]
    if "choices" in f.metadata:
        return st.sampled_from(f.metadata["choices"])
    if "range" in f.metadata:
        low, high = f.metadata["range"]
        return st.integers(low, high) if hint is int else st.floats(low, high)
    if f.metadata.get("secret") and hint is str:
        return DIGITS | TEXT
    return for_hint(hint)


def messages(cls: type[Message]) -> st.SearchStrategy[Message]:
    h = hints(cls)
    return st.builds(cls, **{f.name: for_field(f, h[f.name]) for f in dataclasses.fields(cls)})


ANY_MESSAGE = st.sampled_from(TYPES).flatmap(lambda t: messages(REGISTRY[t]))


# -- fixed valid and invalid values -------------------------------------------------------
def minimal_value(f: dataclasses.Field, hint: Any) -> Any:
    """A valid value for the field, the simplest one."""
    if "check" in f.metadata:
        return SIMPLEST[f.metadata["check"]]
    if "choices" in f.metadata:
        return f.metadata["choices"][0]
    if "range" in f.metadata:
        return f.metadata["range"][0]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return minimal_value(dataclasses.field(), args[0])
    if origin is list:
        return []
    if origin is dict:
        return {}
    return {str: "", int: 0, float: 0.0, bool: False, bytes: b"", type(None): None}.get(hint)


def minimal_body(cls: type[Message]) -> dict[str, Any]:
    h = hints(cls)
    return {f.name: minimal_value(f, h[f.name]) for f in dataclasses.fields(cls)}


def wrong_value(hint: Any) -> Any:
    """A value that is not of the annotated type, or None when every value fits (Any)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return None
    if origin is list:
        return "not a list"
    if origin is dict:
        return ["not", "a", "map"]
    if origin in (typing.Union, types.UnionType):
        return 12345 if str in typing.get_args(hint) else "12"  # X | None: fits neither arm
    if hint is str:
        return 12345
    if hint is bool:
        return "yes"
    return "12"  # int, float


def _fields() -> list[tuple[str, str]]:
    return [(t, f.name) for t in TYPES for f in dataclasses.fields(REGISTRY[t])]


FIELDS = _fields()
TYPED_FIELDS = [(t, n) for t, n in FIELDS if wrong_value(hints(REGISTRY[t])[n]) is not None]
REQUIRED_FIELDS = [
    (t, f.name)
    for t in TYPES
    for f in dataclasses.fields(REGISTRY[t])
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
]
CHOICE_FIELDS = [
    (t, f.name) for t in TYPES for f in dataclasses.fields(REGISTRY[t]) if "choices" in f.metadata
]
RANGE_FIELDS = [
    (t, f.name) for t in TYPES for f in dataclasses.fields(REGISTRY[t]) if "range" in f.metadata
]
FLOAT_FIELDS = [
    (t, n)
    for t, n in FIELDS
    if hints(REGISTRY[t])[n] is float or float in typing.get_args(hints(REGISTRY[t])[n])
]


def field_of(type_name: str, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(REGISTRY[type_name]) if f.name == name)


# -- the registry -------------------------------------------------------------------------
def test_registry_knows_every_family() -> None:
    families = {REGISTRY[t].FAMILY for t in TYPES}
    assert families >= {
        "biometric",
        "ctl",
        "face",
        "health",
        "keypad",
        "motor",
        "policy",
        "power",
        "process",
    }


@pytest.mark.parametrize("type_name", TYPES)
def test_type_name_is_family_dot_event(type_name: str) -> None:
    cls = REGISTRY[type_name]
    assert cls.TYPE == type_name == f"{cls.FAMILY}.{cls.EVENT}"


def test_topic_puts_the_sender_between_family_and_event() -> None:
    assert VerifyPasscode(entry="1").topic("keypad") == "policy.keypad.verify_code"


def test_declaring_a_type_twice_is_refused() -> None:
    with pytest.raises(TypeError):

        class Again(Message, family="policy", event="verify_code"):
            pass


# -- valid bodies -------------------------------------------------------------------------
@pytest.mark.parametrize("type_name", TYPES)
def test_minimal_body_is_accepted(type_name: str) -> None:
    cls = REGISTRY[type_name]
    body = minimal_body(cls)
    assert cls.from_body(body).to_body() == body


@pytest.mark.parametrize("type_name", TYPES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_body_round_trip(type_name: str, data: st.DataObject) -> None:
    message = data.draw(messages(REGISTRY[type_name]))
    again = REGISTRY[type_name].from_body(message.to_body())
    assert again == message
    assert type(again) is type(message)


def test_optional_fields_may_be_left_out() -> None:
    from proto.control import Done

    assert Done.from_body({"ok": True}) == Done(ok=True, reason="", detail="")


def test_int_is_accepted_where_float_is_declared() -> None:
    from proto.power import Battery

    assert Battery.from_body({"percent": 50, "volts": 4}).percent == 50


# -- bad bodies ---------------------------------------------------------------------------
def test_body_that_is_not_a_map_is_refused() -> None:
    with pytest.raises(SchemaError):
        VerifyPasscode.from_body(["123456"])


@pytest.mark.parametrize("type_name,name", TYPED_FIELDS)
def test_wrong_field_type_is_refused(type_name: str, name: str) -> None:
    cls = REGISTRY[type_name]
    body = minimal_body(cls) | {name: wrong_value(hints(cls)[name])}
    with pytest.raises(SchemaError):
        cls.from_body(body)


@pytest.mark.parametrize(
    "type_name,name",
    [(t, n) for t, n in TYPED_FIELDS if hints(REGISTRY[t])[n] in (int, float, str)],
)
def test_bool_is_not_a_number_or_text(type_name: str, name: str) -> None:
    cls = REGISTRY[type_name]
    with pytest.raises(SchemaError):
        cls.from_body(minimal_body(cls) | {name: True})


@pytest.mark.parametrize("type_name,name", REQUIRED_FIELDS)
def test_missing_required_field_is_refused(type_name: str, name: str) -> None:
    cls = REGISTRY[type_name]
    body = minimal_body(cls)
    del body[name]
    with pytest.raises(SchemaError):
        cls.from_body(body)


@pytest.mark.parametrize("type_name", TYPES)
def test_unknown_field_is_refused(type_name: str) -> None:
    cls = REGISTRY[type_name]
    with pytest.raises(SchemaError, match="unknown"):
        cls.from_body(minimal_body(cls) | {"surprise": 1})


@pytest.mark.parametrize("type_name,name", CHOICE_FIELDS)
def test_value_not_in_choices_is_refused(type_name: str, name: str) -> None:
    cls = REGISTRY[type_name]
    with pytest.raises(SchemaError, match="not one of"):
        cls.from_body(minimal_body(cls) | {name: "no-such-choice"})


@pytest.mark.parametrize("type_name,name", RANGE_FIELDS)
@pytest.mark.parametrize("side", ["below", "above"])
def test_value_out_of_range_is_refused(type_name: str, name: str, side: str) -> None:
    cls = REGISTRY[type_name]
    low, high = field_of(type_name, name).metadata["range"]
    value = low - 1 if side == "below" else high + 1
    with pytest.raises(SchemaError, match="outside"):
        cls.from_body(minimal_body(cls) | {name: value})


@pytest.mark.parametrize("type_name,name", RANGE_FIELDS)
def test_range_bounds_are_inclusive(type_name: str, name: str) -> None:
    cls = REGISTRY[type_name]
    low, high = field_of(type_name, name).metadata["range"]
    for value in (low, high):
        assert getattr(cls.from_body(minimal_body(cls) | {name: value}), name) == value


@pytest.mark.parametrize("type_name,name", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_float_field_refuses_nan_and_infinity(type_name: str, name: str, value: float) -> None:
    """Issue 11: NaN slips past every comparison (a validity bound that never ends)."""
    cls = REGISTRY[type_name]
    with pytest.raises(SchemaError, match="not a finite number"):
        cls.from_body(minimal_body(cls) | {name: value})


def test_every_float_field_is_covered() -> None:
    assert ("owner.validity", "start") in FLOAT_FIELDS and (
        "power.battery",
        "volts",
    ) in FLOAT_FIELDS


@pytest.mark.parametrize(
    "slots",
    [
        [[1]],  # issue 11: it raised in policy's handler; now a bad field at decode
        [[]],
        [[1, 2, 3, 4]],
        [[0, 60, 120]],  # no day
        [[128, 60, 120]],
        [[-1, 60, 120]],
        [[1, 120, 60]],  # ends before it starts
        [[1, 60, 60]],
        [[1, -5, 60]],
        [[1, 0, MINUTES_A_DAY + 1]],
        [[1, 0, 60], [1]],  # the second is bad
    ],
)
def test_a_malformed_weekly_slot_is_refused_at_decode(slots: list) -> None:
    body = {"number": "002", "slots": slots}
    with pytest.raises(SchemaError, match="slots: slot"):
        ValiditySet.from_body(body)


def test_well_formed_weekly_slots_are_taken() -> None:
    slots = [[0b0111110, 8 * 60, 18 * 60], [1, 0, MINUTES_A_DAY]]
    assert ValiditySet.from_body({"number": "002", "slots": slots}).slots == slots


def test_every_checked_field_has_a_strategy() -> None:
    for t in TYPES:
        for f in dataclasses.fields(REGISTRY[t]):
            assert f.metadata.get("check", weekly_slots) in SHAPED, (t, f.name)


def test_nested_items_are_checked() -> None:
    from proto.keypad import Lit, Prompt

    with pytest.raises(SchemaError):
        Lit.from_body({"keys": ["ok", 1]})
    with pytest.raises(SchemaError):
        Prompt.from_body({"prompt": "p", "text": "t", "params": {"a": 1}})
    with pytest.raises(SchemaError):
        Prompt.from_body({"prompt": "p", "text": "t", "params": {b"a": "x"}})


def test_text_and_lists_have_a_limit() -> None:
    from proto.keypad import Lit

    VerifyPasscode.from_body({"entry": "1" * MAX_TEXT})
    with pytest.raises(SchemaError):
        VerifyPasscode.from_body({"entry": "1" * (MAX_TEXT + 1)})
    Lit.from_body({"keys": ["ok"] * MAX_ITEMS})
    with pytest.raises(SchemaError):
        Lit.from_body({"keys": ["ok"] * (MAX_ITEMS + 1)})


# -- secrets ------------------------------------------------------------------------------
def test_redacted_masks_the_passcode_entry() -> None:
    message = VerifyPasscode(entry="0012345600")
    assert message.redacted() == {"entry": "***"}
    assert "12345" not in str(message.redacted())
    assert message.to_body() == {"entry": "0012345600"}  # the wire still carries it


def test_redacted_masks_both_codes_of_a_new_admin() -> None:
    assert CreateFirstAdmin(code="135790", repeat="135790").redacted() == {
        "code": "***",
        "repeat": "***",
    }
    assert CheckPasscode(code="135790").redacted() == {"code": "***"}


@settings(max_examples=100, deadline=None)
@given(ANY_MESSAGE)
def test_redacted_masks_secret_fields_and_only_them(message: Message) -> None:
    body, shown = message.to_body(), message.redacted()
    assert shown.keys() == body.keys()
    for f in dataclasses.fields(message):
        if f.metadata.get("secret"):
            assert shown[f.name] == "***"
        else:
            assert shown[f.name] == body[f.name]
