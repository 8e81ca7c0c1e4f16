"""The template a module gives us, wrapped with the module slot it lives in.

Policy keeps this blob sealed (L-10). With the slot inside, a restarted service knows
whose template each module slot holds, and a replaced module is re-loaded slot by slot.
"""

from __future__ import annotations

import struct

MAGIC = b"LM1"
HEAD = struct.Struct(">3sH")


class BlobError(ValueError):
    pass


def wrap(slot: int, template: bytes) -> bytes:
    if not template:
        raise BlobError("an empty template")
    return HEAD.pack(MAGIC, slot) + template


def unwrap(blob: bytes) -> tuple[int, bytes]:
    if len(blob) <= HEAD.size or blob[:3] != MAGIC:
        raise BlobError(f"not a module template ({len(blob)} bytes)")
    _, slot = HEAD.unpack_from(blob)
    return slot, blob[HEAD.size :]
