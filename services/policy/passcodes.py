"""Passcode rules (L-4), keyed hashes (L-10) and anti-peeping matching (L-19)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Iterator, TypeVar

Owner = TypeVar("Owner")  # whatever the caller keeps per digest (people.py: a CodeRef)

# Refusal reasons, with what the panel says for each (one prompt per refusal, L-4).
RULES = {
    "not-digits": "a passcode is made of digits only",
    "too-short": "the passcode is too short",
    "too-long": "the passcode is too long",
    "all-same": "all digits the same is too easy to guess",
    "sequence": "consecutive digits are too easy to guess",
    "mismatch": "the two entries do not match",
}


def entry_flaw(entry: str, max_digits: int) -> str | None:
    """Why an entry typed on the panel cannot be one (L-19: at most max_digits digits), or
    None. The panel stops typing there, so anything else was not typed."""
    if not entry.isdigit() or not entry.isascii():
        return "not-digits"
    if len(entry) > max_digits:
        return "too-long"
    return None


def rule_broken(code: str, *, min_digits: int, max_digits: int) -> str | None:
    """The first rule of L-4 that code breaks, or None."""
    if not code.isdigit() or not code.isascii():
        return "not-digits"
    if len(code) < min_digits:
        return "too-short"
    if len(code) > max_digits:
        return "too-long"
    if len(set(code)) == 1:
        return "all-same"
    # 0 follows 9 on the keypad (1 2 3 … 9 0), so 7890 and 0987 are runs too
    steps = {(int(b) - int(a)) % 10 for a, b in zip(code, code[1:])}
    if steps in ({1}, {9}):
        return "sequence"
    return None


class Hasher:
    """HMAC-SHA256 under the device secret: a stolen database alone gives no passcode.

    Keyed once and copied for each code (L-19 hashes every run of an entry): the same
    digests as hmac.new(key, code, sha256), for a third fewer instructions each."""

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def digest(self, code: str) -> bytes:
        mac = self._keyed.copy()
        mac.update(code.encode())
        return mac.digest()


def runs(entry: str, lengths: set[int]) -> Iterator[str]:
    """Every contiguous run of the entry with a length some stored code has (L-19)."""
    for length in sorted(lengths):
        for start in range(len(entry) - length + 1):
            yield entry[start : start + length]


def tried(entry: str, lengths: set[int]) -> int:
    """How many codes of the shortest stored length a wrong entry tested (L-19): what the
    long-window guard counts (issue 15)."""
    return max(1, len(entry) - min(lengths) + 1) if lengths else 1


def find(entry: str, codes: dict[bytes, Owner], lengths: set[int], hasher: Hasher) -> Owner | None:
    """Whose code stands in the entry as a contiguous run, or None."""
    for run in runs(entry, lengths):
        person = codes.get(hasher.digest(run))
        if person is not None:
            return person
    return None
