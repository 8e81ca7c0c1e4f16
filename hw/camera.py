"""Cameras: the Pi camera (picamera2), a V4L2 camera (OpenCV), and the simulated one.
The first two are optional: neither package is a dependency, and neither ran here.

A frame is an HxWx3 uint8 RGB array, with an optional HxW IR frame from an IR camera.
Frames stay in the face process: nothing here publishes them.
"""

from __future__ import annotations

import hashlib
import queue
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

LONG_SIDE = 640  # the lock's camera: 640x480
HAND_JITTER = 0.02  # a photo held up moves its corners by up to this much of its size


class CameraError(OSError):
    pass


@dataclass(frozen=True, eq=False)
class Frame:
    rgb: np.ndarray
    ir: np.ndarray | None = None
    source: str = ""


def load_photo(path: str | Path, long_side: int = LONG_SIDE, mode: str = "RGB") -> np.ndarray:
    """A photo as the camera would see it: upright (EXIF orientation applied: several test
    photos are stored sideways), scaled to the camera's size."""
    try:
        with Image.open(path) as image:
            upright = ImageOps.exif_transpose(image).convert(mode)
    except (OSError, ValueError) as e:
        raise CameraError(f"cannot read {path}: {e}") from e
    upright.thumbnail((long_side, long_side), Image.Resampling.BILINEAR)
    return np.asarray(upright)


def held(rgb: np.ndarray, frames: int, seed: str) -> list[np.ndarray]:
    """One photo held up to the camera for some frames: a hand moves and tilts it a little
    (a small perspective change each frame), as a printed photo or a phone would move."""
    rng = np.random.default_rng(int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16))
    image = Image.fromarray(rgb)
    w, h = image.size
    out = [rgb]
    for _ in range(frames - 1):
        d = HAND_JITTER * min(w, h)
        corners = [(0, 0), (w, 0), (w, h), (0, h)]
        moved = [(x + rng.uniform(-d, d), y + rng.uniform(-d, d)) for x, y in corners]
        out.append(np.asarray(image.transform(image.size, Image.Transform.PERSPECTIVE,
                                              _coefficients(moved, corners),
                                              Image.Resampling.BILINEAR)))  # fmt: skip
    return out


def _coefficients(dst: list, src: list) -> list[float]:
    """PIL's perspective coefficients: output pixel (dst) to input pixel (src)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return list(np.linalg.solve(np.asarray(rows, float), np.asarray(rhs, float)))


class SimCamera:
    """Shows what `lockmesh sim face` was given, frame by frame; nothing otherwise."""

    def __init__(self, hold_frames: int) -> None:
        self.hold_frames = hold_frames
        self._frames: queue.Queue[Frame] = queue.Queue()

    def show(self, images: list[str], ir: list[str], hold: bool) -> int:
        """Queue the photos (read now, so a bad path is refused at once); the frame count."""
        frames: list[Frame] = []
        for i, path in enumerate(images):
            rgb = load_photo(path)
            ir_path = ir[i] if i < len(ir) else None
            ir_frame = (
                None
                if ir_path is None
                else np.zeros(rgb.shape[:2], np.uint8)
                if ir_path == ""  # a dark IR frame: what a screen shows in infrared
                else load_photo(ir_path, mode="L")
            )
            count = self.hold_frames if hold else 1
            for k, moved in enumerate(held(rgb, count, f"{path}:{i}")):
                frames.append(Frame(moved, ir_frame, f"{path}#{k}"))
        for frame in frames:
            self._frames.put(frame)
        return len(frames)

    def read(self, timeout: float) -> Frame | None:
        try:
            return self._frames.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        pass


class OpenCvCamera:
    """A V4L2 camera through OpenCV, when OpenCV is installed (it is not a dependency)."""

    def __init__(self, device: str) -> None:
        try:
            import cv2
        except ImportError as e:
            raise CameraError("OpenCV is not installed: pip install opencv-python-headless") from e
        self._cv2 = cv2
        self._capture = cv2.VideoCapture(device)
        if not self._capture.isOpened():
            raise CameraError(f"cannot open the camera {device}")

    def read(self, timeout: float) -> Frame | None:
        ok, bgr = self._capture.read()
        if not ok:
            raise CameraError("the camera gave no frame")
        return Frame(np.ascontiguousarray(bgr[:, :, ::-1]))

    def close(self) -> None:
        self._capture.release()


class PiCamera:
    """The Raspberry Pi camera through picamera2 (on the Pi: apt install python3-picamera2).
    Not run here: no Pi camera on this machine."""

    def __init__(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as e:
            raise CameraError("picamera2 is not installed (apt install python3-picamera2)") from e
        self._camera = Picamera2()
        config = self._camera.create_video_configuration(
            main={"size": (640, 480), "format": "RGB888"}
        )
        self._camera.configure(config)
        self._camera.start()

    def read(self, timeout: float) -> Frame | None:
        # picamera2's "RGB888" is laid out B, G, R in memory: turned round to RGB
        return Frame(np.ascontiguousarray(self._camera.capture_array()[:, :, ::-1]))

    def close(self) -> None:
        self._camera.stop()
        self._camera.close()


def open_camera(kind: str, hold_frames: int) -> SimCamera | OpenCvCamera | PiCamera | None:
    if kind == "sim":
        return SimCamera(hold_frames)
    if kind == "none":
        return None
    if kind == "picamera2":
        return PiCamera()
    if kind.startswith("v4l2:"):
        return OpenCvCamera(kind.removeprefix("v4l2:"))
    raise CameraError(f"camera {kind!r}: one of sim, none, picamera2, v4l2:/dev/videoN")
