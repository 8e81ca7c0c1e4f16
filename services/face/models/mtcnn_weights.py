"""The MTCNN weights shipped in the `mtcnn` package, read without TensorFlow and without joblib.

Each `{pnet,rnet,onet}.lz4` is an lz4 frame around a joblib pickle of a list of float32 arrays
in Keras weight order. joblib stores an array as a `NumpyArrayWrapper` object (shape, dtype,
order) followed, outside the pickle opcodes, by one padding-length byte, the padding and the
raw array bytes. A plain `pickle.load` would run any code the file names, so the unpickler
below resolves only three globals and reads the raw bytes itself.
"""

from __future__ import annotations

import importlib.util
import io
import pickle
from pathlib import Path
from typing import Any

import lz4.frame
import numpy as np

NETS = ("pnet", "rnet", "onet")
# the largest MTCNN layer is ~1.2 MB: anything much bigger is not an MTCNN weight file
MAX_ARRAY_BYTES = 16 * 1024 * 1024


def weights_dir() -> Path:
    """The folder holding the .lz4 files, found without importing mtcnn (it imports TensorFlow)."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the mtcnn package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"


def read_net_weights(net: str) -> list[np.ndarray]:
    """The weights of one net ("pnet", "rnet" or "onet") from the installed package."""
    if net not in NETS:
        raise ValueError(f"unknown net {net!r}; expected one of {NETS}")
    return load_weights((weights_dir() / f"{net}.lz4").read_bytes())


def load_weights(data: bytes) -> list[np.ndarray]:
    """Decompress an MTCNN weight file and unpickle its list of arrays, refusing anything else."""
    stream = _ExactStream(lz4.frame.decompress(data))
    result = _WeightsUnpickler(stream).load()
    if not isinstance(result, list):
        raise pickle.UnpicklingError(f"expected a list of arrays, found {type(result).__name__}")
    arrays = [_array_of(item) for item in result]
    if stream.remaining():
        raise pickle.UnpicklingError(f"{stream.remaining()} bytes left after the pickle")
    return arrays


class _ExactStream:
    """A byte stream without `peek`, so the C unpickler reads exactly what each opcode needs.

    With `peek` it would prefetch past a BUILD opcode into the raw array bytes that follow it.
    """

    def __init__(self, data: bytes):
        self._buffer = io.BytesIO(data)
        self._size = len(data)

    def read(self, size: int = -1) -> bytes:
        return self._buffer.read(size)

    def readline(self) -> bytes:
        return self._buffer.readline()

    def readinto(self, target: Any) -> int:
        return self._buffer.readinto(target)

    def read_exactly(self, size: int, what: str) -> bytes:
        chunk = self._buffer.read(size)
        if len(chunk) != size:
            raise pickle.UnpicklingError(f"file ends inside {what}: {len(chunk)} of {size} bytes")
        return chunk

    def remaining(self) -> int:
        return self._size - self._buffer.tell()


class _NdarrayMarker:
    """Stands for `numpy.ndarray` where joblib names it as the array's class: never callable."""


NDARRAY_MARKER = _NdarrayMarker()


class _StreamedArray:
    """Replaces joblib's NumpyArrayWrapper: BUILD hands it the state, it reads the raw bytes."""

    stream: _ExactStream  # set on the per-load subclass made by _WeightsUnpickler

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("array header is not a dict")
        self.array = _read_array(self.stream, state)


class _WeightsUnpickler(pickle.Unpickler):
    """Resolves only the globals an MTCNN weight file needs; everything else is refused."""

    def __init__(self, stream: _ExactStream):
        super().__init__(stream)
        self._streamed_array = type("StreamedArray", (_StreamedArray,), {"stream": stream})

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
            return self._streamed_array
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if (module, name) == ("numpy", "ndarray"):
            return NDARRAY_MARKER
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a weight file")


def _read_array(stream: _ExactStream, header: dict) -> np.ndarray:
    """Check a joblib array header and read the array bytes that follow its BUILD opcode."""
    dtype, shape, order = header.get("dtype"), header.get("shape"), header.get("order")
    if header.get("subclass") is not NDARRAY_MARKER:
        raise pickle.UnpicklingError("only plain numpy arrays are allowed")
    if not isinstance(dtype, np.dtype) or dtype.kind != "f":
        raise pickle.UnpicklingError(f"only float arrays are allowed, not {dtype!r}")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise pickle.UnpicklingError(f"bad array shape {shape!r}")
    if order not in ("C", "F"):
        raise pickle.UnpicklingError(f"bad array order {order!r}")
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size > MAX_ARRAY_BYTES:
        raise pickle.UnpicklingError(f"array of {size} bytes is too large for a weight file")
    if header.get("numpy_array_alignment_bytes") is not None:
        padding = stream.read_exactly(1, "alignment byte")[0]
        stream.read_exactly(padding, "alignment padding")
    raw = stream.read_exactly(size, "array data")
    flat = np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
    if order == "F":
        return flat.reshape(shape[::-1]).T.copy()
    return flat.reshape(shape)


def _array_of(item: Any) -> np.ndarray:
    if not isinstance(item, _StreamedArray) or not hasattr(item, "array"):
        raise pickle.UnpicklingError(f"list item is {type(item).__name__}, not an array")
    return item.array
