"""Passcode rules (L-4), keyed digests (L-10) and anti-peeping matching (L-19)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.config import DEFAULTS
from services.policy.passcodes import RULES, Hasher, find, rule_broken, runs

LIMITS = DEFAULTS["passcode"]  # 6..10 digits
MAX_ENTRY = DEFAULTS["keypad"]["max_digits"]  # 20
KEY = b"k" * 32


def broken(code: str) -> str | None:
    return rule_broken(code, **LIMITS)


def codebook(codes: dict[str, str], hasher: Hasher) -> tuple[dict[bytes, str], set[int]]:
    """As policy keeps them: digest → person, and the lengths of the stored codes."""
    return {hasher.digest(c): p for c, p in codes.items()}, {len(c) for c in codes}


# -- L-4 rules ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code",
    ["135790", "1357902468", "246801", "112233", "908172", "000001", "0123456789"[::2] + "1"],
)
def test_l4_accepts_ordinary_codes(code: str) -> None:
    assert broken(code) is None


@pytest.mark.parametrize("code", ["12345", "1", "13579", ""])
def test_l4_refuses_fewer_than_6_digits(code: str) -> None:
    assert broken(code) in ("too-short", "not-digits")


def test_l4_length_limits_are_inclusive() -> None:
    assert broken("135790") is None
    assert broken("1357902468") is None
    assert broken("13579") == "too-short"
    assert broken("13579024681") == "too-long"


def test_l4_limits_come_from_configuration() -> None:
    assert rule_broken("1357", min_digits=4, max_digits=4) is None
    assert rule_broken("13579", min_digits=4, max_digits=4) == "too-long"


@pytest.mark.parametrize("digit", "0123456789")
@pytest.mark.parametrize("length", [6, 8, 10])
def test_l4_refuses_all_same_digits(digit: str, length: int) -> None:
    assert broken(digit * length) == "all-same"


@pytest.mark.parametrize("code", ["123456", "012345", "456789", "0123456789", "3456789"])
def test_l4_refuses_ascending_run(code: str) -> None:
    assert broken(code) == "sequence"


@pytest.mark.parametrize("code", ["654321", "543210", "987654", "9876543210", "8765432"])
def test_l4_refuses_descending_run(code: str) -> None:
    assert broken(code) == "sequence"


@pytest.mark.parametrize("code", ["1234576", "123465", "123321", "2345678901"[:6] + "0"])
def test_l4_only_a_whole_code_run_is_refused(code: str) -> None:
    assert broken(code) is None


@pytest.mark.parametrize(
    "code",
    [
        "12345a",
        "123 456",
        "-123456",
        "12345.6",
        "１２３４５７",
        "１３５７９０",
        "12³456",
        "135790\n",
    ],
)
def test_l4_refuses_non_digits(code: str) -> None:
    assert broken(code) == "not-digits"


def test_l4_every_refusal_has_a_prompt() -> None:
    for code in ("abc", "1", "1" * 11, "111111", "123456"):
        assert broken(code) in RULES


@settings(max_examples=300)
@given(st.text("0123456789", min_size=6, max_size=10))
def test_l4_rules_agree_with_their_definition(code: str) -> None:
    # a run steps by one, up or down, all the way; 0 follows 9 on the keypad (…8 9 0)
    steps = {(int(b) - int(a)) % 10 for a, b in zip(code, code[1:])}
    expected = "all-same" if steps == {0} else "sequence" if steps in ({1}, {9}) else None
    assert broken(code) == expected


# -- L-10 keyed digests -------------------------------------------------------------------
def test_l10_digest_is_keyed() -> None:
    code = "135790"
    assert Hasher(b"a" * 32).digest(code) != Hasher(b"b" * 32).digest(code)


def test_l10_digest_is_stable_and_never_the_code() -> None:
    digest = Hasher(KEY).digest("135790")
    assert digest == Hasher(KEY).digest("135790")
    assert len(digest) == 32
    assert b"135790" not in digest
    assert digest != Hasher(KEY).digest("135791")


@settings(max_examples=200)
@given(key=st.binary(min_size=1, max_size=80), codes=st.lists(st.text(max_size=24), max_size=4))
def test_l10_issue_12_digests_keyed_once_are_hmac_sha256_of_each_code(key, codes) -> None:
    """The stored digests do not change: one keyed HMAC copied per code gives, code after
    code, what a new HMAC-SHA256 under the same key gives (lock.db's digests still match)."""
    hasher = Hasher(key)
    for code in codes + codes:
        assert hasher.digest(code) == hmac.new(key, code.encode(), hashlib.sha256).digest()


# -- L-19 anti-peeping --------------------------------------------------------------------
HASHER = Hasher(KEY)
BOOK, LENGTHS = codebook({"135790": "001", "24681357": "002"}, HASHER)


def test_l19_exact_code_is_found() -> None:
    assert find("135790", BOOK, LENGTHS, HASHER) == "001"
    assert find("24681357", BOOK, LENGTHS, HASHER) == "002"


@pytest.mark.parametrize(
    "entry",
    ["99135790", "13579044", "0135790123", "55555135790", "1357913579013", "11111111111111135790"],
)
def test_l19_code_inside_extra_digits(entry: str) -> None:
    assert len(entry) <= MAX_ENTRY
    assert find(entry, BOOK, LENGTHS, HASHER) == "001"


def test_l19_code_at_the_end_of_a_20_digit_entry() -> None:
    entry = "00000000000000135790"
    assert len(entry) == MAX_ENTRY
    assert find(entry, BOOK, LENGTHS, HASHER) == "001"
    assert find("24681357" + "0" * 12, BOOK, LENGTHS, HASHER) == "002"


@pytest.mark.parametrize(
    "entry", ["1305790", "1357 90", "13579", "135709", "1x35790", "1315735779909", "0" * 20, ""]
)
def test_l19_code_not_contiguous_is_not_found(entry: str) -> None:
    assert find(entry, BOOK, LENGTHS, HASHER) is None


def test_l19_a_code_of_another_key_is_not_found() -> None:
    assert find("135790", BOOK, LENGTHS, Hasher(b"x" * 32)) is None


def test_l19_no_codes_find_nobody() -> None:
    assert find("135790", {}, set(), HASHER) is None


def test_l19_runs_are_every_window_of_the_stored_lengths() -> None:
    assert list(runs("12345", {2, 4})) == ["12", "23", "34", "45", "1234", "2345"]
    assert list(runs("123", {6})) == []


CODES = st.dictionaries(
    st.text("0123456789", min_size=6, max_size=10),
    st.sampled_from(["001", "002", "003", "004"]),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(codes=CODES, entry=st.text("0123456789", max_size=MAX_ENTRY), data=st.data())
def test_l19_find_matches_naive_substring_search(
    codes: dict[str, str], entry: str, data: st.DataObject
) -> None:
    if codes and data.draw(st.booleans()):  # often plant one of the codes in the entry
        code = data.draw(st.sampled_from(sorted(codes)))
        cut = data.draw(st.integers(0, len(entry)))
        entry = (entry[:cut] + code + entry[cut:])[:MAX_ENTRY] if len(code) <= MAX_ENTRY else entry
    book, lengths = codebook(codes, HASHER)
    present = {person for code, person in codes.items() if code in entry}
    found = find(entry, book, lengths, HASHER)
    if present:
        assert found in present
    else:
        assert found is None


@pytest.mark.parametrize("code", ["1234567890", "7890123", "0987654321", "321098"])
def test_l4_refuses_runs_through_zero_as_the_keypad_orders_it(code: str) -> None:
    # 0 follows 9 on the keypad (1 2 3 … 9 0): 7890 is as easy to guess as 6789
    assert rule_broken(code, min_digits=6, max_digits=10) == "sequence"
