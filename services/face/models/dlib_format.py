"""dlib's serialization format: the primitives a .dat model file is made of.

Facts checked in ../shared/design/face-models.md: integers are a control byte (low 4 bits the
payload length, 0x80 negative) then the magnitude little-endian; a float is a signed 64-bit
mantissa *then* a signed 16-bit exponent; tensors are float32 raw.
"""

from __future__ import annotations

import builtins
import importlib.util
from pathlib import Path

import numpy as np

RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
INF_EXPONENTS = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}


class FormatError(ValueError):
    """The file is not what the architecture says it should be."""


class DlibReader:
    """Reads a .dat file's primitives in order. Its methods int(), bool() and float() hide
    the builtins in this class's annotations, which therefore say builtins.int and .bool."""

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

    def uint(self) -> builtins.int:
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

    def expect_int(self, expected: builtins.int, what: str) -> None:
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

    def at_end(self) -> builtins.bool:
        return self.pos == len(self.data)

    def finish(self) -> None:
        if not self.at_end():
            raise FormatError(f"{len(self.data) - self.pos} bytes left over at {self.pos}")

    # Bulk readers: a model is mostly long runs of numbers, and reading them one call at a
    # time costs seconds; these decode a run in one tight loop.

    def ints(self, count: builtins.int) -> np.ndarray:
        """`count` integers in a row, as int64."""
        data, pos, end_of_data = self.data, self.pos, len(self.data)
        values = [0] * count
        from_bytes = int.from_bytes
        for i in range(count):
            if pos >= end_of_data:
                raise FormatError(f"file ends at byte {end_of_data} inside a run of integers")
            control = data[pos]
            size = control & 0x0F
            if size > 8:
                raise FormatError(f"integer of {size} bytes at {pos}")
            end = pos + 1 + size
            if end > end_of_data:
                raise FormatError(f"file ends at byte {end_of_data} inside an integer at {pos}")
            magnitude = from_bytes(data[pos + 1 : end], "little")
            values[i] = -magnitude if control & 0x80 else magnitude
            pos = end
        self.pos = pos
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError as error:
            raise FormatError(f"integer beyond 64 bits before byte {pos}") from error

    def floats(self, count: builtins.int) -> np.ndarray:
        """`count` floats in a row (each a mantissa then an exponent), as float64."""
        return decode_floats(self.ints(2 * count))

    def float_matrix(
        self, rows: builtins.int | None, cols: builtins.int | None, what: str
    ) -> np.ndarray:
        """A dlib matrix of floats, as float32; a size given here must match the file's.

        dlib writes the sizes negated (its newer format); older files wrote them as they are.
        """
        nr, nc = self.int(), self.int()
        if nr < 0 or nc < 0:
            nr, nc = -nr, -nc
        if (rows is not None and nr != rows) or (cols is not None and nc != cols):
            raise FormatError(f"{what}: expected a {rows}x{cols} matrix, found {nr}x{nc}")
        return exact_float32(self.floats(nr * nc), what).reshape(nr, nc)


def decode_floats(pairs: np.ndarray) -> np.ndarray:
    """Floats from their (mantissa, exponent) integer pairs, flattened in file order."""
    pairs = pairs.reshape(-1, 2)
    mantissa, exponent = pairs[:, 0], pairs[:, 1]
    scale = np.clip(exponent, -2000, 2000).astype(np.int32)  # specials are fixed up below
    values = np.ldexp(mantissa.astype(np.float64), scale)
    for code, special in INF_EXPONENTS.items():
        values[exponent == code] = special
    return values


def exact_float32(values: np.ndarray, what: str) -> np.ndarray:
    """Values a float32 model wrote: anything float32 cannot hold exactly means a bad file."""
    narrowed = values.astype(np.float32)
    finite = np.isfinite(values)
    if not np.array_equal(narrowed[finite].astype(np.float64), values[finite]):
        raise FormatError(f"{what}: values that are not float32")
    return narrowed


def weights_path(name: str = RESNET_FILE) -> Path:
    """A .dat file of the face_recognition_models package, found without importing it."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the face_recognition_models package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / name
