"""dlib's serialization format: the primitives a .dat model file is made of.

Facts checked in ../shared/design/face-models.md: integers are a control byte (low 4 bits the
payload length, 0x80 negative) then the magnitude little-endian; a float is a signed 64-bit
mantissa *then* a signed 16-bit exponent; tensors are float32 raw.
"""

from __future__ import annotations

import numpy as np

INF_EXPONENTS = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}


class FormatError(ValueError):
    """The file is not what the architecture says it should be."""


class DlibReader:
    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise FormatError(f"file ends at byte {len(self.data)}, needed {n} more at {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8:
            raise FormatError(f"integer of {size} bytes at {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def uint(self) -> int:
        control = self._take(1)[0]
        if control & 0x80:
            raise FormatError(f"negative value where an unsigned one belongs at {self.pos - 1}")
        return int.from_bytes(self._take(control & 0x0F), "little")

    def bool(self) -> bool:
        byte = bytes(self._take(1))
        if byte not in (b"0", b"1"):
            raise FormatError(f"bool byte {byte!r} at {self.pos - 1}")
        return byte == b"1"

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        if exponent in INF_EXPONENTS:
            return INF_EXPONENTS[exponent]
        return float(mantissa) * 2.0**exponent

    def string(self) -> str:
        return bytes(self._take(self.uint())).decode("latin-1")

    def expect_int(self, expected: int, what: str) -> None:
        got = self.int()
        if got != expected:
            raise FormatError(f"{what}: expected {expected}, found {got} at {self.pos}")

    def tensor(self) -> np.ndarray:
        """A dlib tensor, as an (n, k, nr, nc) float32 array."""
        self.expect_int(2, "tensor version")
        shape = tuple(self.int() for _ in range(4))
        if any(d < 0 for d in shape):
            raise FormatError(f"tensor shape {shape} at {self.pos}")
        count = int(np.prod(shape))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(shape).copy()

    def at_end(self) -> bool:
        return self.pos == len(self.data)

    def finish(self) -> None:
        if not self.at_end():
            raise FormatError(f"{len(self.data) - self.pos} bytes left over at {self.pos}")
