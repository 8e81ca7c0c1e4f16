"""Cameras: the Pi camera (picamera2), a V4L2 camera (OpenCV), and the simulated one.
The first two are optional: neither package is a dependency, and neither ran here.

A frame is an HxWx3 uint8 RGB array, with an optional HxW IR frame from an IR camera.
Frames stay in the face process: nothing here publishes them. Each camera has two kinds
of reader: the recogniser takes frames one after another (read), the live view and the
doorbell's snapshot take whatever the camera shows now (view), at their own pace.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

log = logging.getLogger(__name__)

LONG_SIDE = 640  # the lock's camera: 640x480
FRAME_SIZE = (640, 480)  # width, height of the simulated camera's own frames
HAND_JITTER = 0.02  # a photo held up moves its corners by up to this much of its size
RETRY_S = 1.0  # a real camera that failed is read again after this
IMAGE_TYPES = (".jpg", ".jpeg", ".png")


class CameraError(OSError):
    pass


@dataclass(frozen=True, eq=False)
class Frame:
    rgb: np.ndarray
    ir: np.ndarray | None = None
    source: str = ""
    t: float = 0.0  # when it was captured (time.monotonic()); the tracker bounds motion by it


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


class Camera(Protocol):
    def read(self, timeout: float) -> Frame | None: ...

    def view(self) -> Frame | None: ...

    def close(self) -> None: ...


@lru_cache(maxsize=1)
def _doorstep() -> np.ndarray:
    """The simulated camera's empty scene: light above, a dark doorstep below, and a
    little sensor noise, so a JPEG of it costs what a real frame's does."""
    w, h = FRAME_SIZE
    y = np.linspace(0.0, 1.0, h)[:, None, None]
    x = np.linspace(0.0, 1.0, w)[None, :, None]
    scene = np.array([150, 160, 175]) * (1 - y) + np.array([70, 60, 50]) * y + 20 * x
    noise = np.random.default_rng(0).normal(0.0, 4.0, (h, w, 3))
    return np.clip(scene + noise, 0, 255).astype(np.uint8)


def doorstep() -> np.ndarray:
    """The simulated camera's empty scene (read-only: it is cached)."""
    return _doorstep()


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=24)


def idle_frame(now: float) -> Frame:
    """The empty doorstep with the time on it, as a camera's overlay: a live view of it is
    seen to be live, and each frame is a new picture to encode."""
    image = Image.fromarray(_doorstep())
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 10) % 10}"
    ImageDraw.Draw(image).text((16, 12), f"sim camera {stamp}", fill=(255, 255, 255), font=_font())
    return Frame(np.asarray(image), source="idle")


class SimCamera:
    """Shows what `lockmesh sim face` was given, frame by frame; nothing otherwise.

    What it shows now (view) is the photo the recogniser last read, until the next read
    finds nothing more to show: then the empty doorstep again. There is always a frame.
    Frames are stamped at the camera's rate, FPS, as a real camera's would be, however
    slowly the recogniser reads them. `locate` (set once the face models are loaded)
    finds a photo's face for the attacks that line photos up (hw/sim_face_attacks.py)."""

    FPS = 30.0

    def __init__(self, hold_frames: int, clock: Callable[[], float] = time.time) -> None:
        self.hold_frames = hold_frames
        self.clock = clock
        self.locate: Callable[[np.ndarray], Any] | None = None
        self._frames: queue.Queue[Frame] = queue.Queue()
        self._showing: Frame | None = None  # None: nobody at the door
        self._stamp = 0.0  # the last queued frame's capture time
        self._queuing = threading.Lock()

    def show(
        self, images: list[str], ir: list[str], hold: bool, attack: str = "", video: bool = False
    ) -> int:
        """Queue the photos (read now, so a bad path is refused at once); the frame count.
        attack: one of hw.sim_face_attacks.ATTACKS made of the photos; video: images is
        one folder of consecutive frames, shown in order, once each."""
        if video:
            return self._video(video_paths(images))
        if attack:
            return self._attack(images, attack)
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
        return self._queue(frames)

    def _attack(self, images: list[str], attack: str) -> int:
        """Checked here (the photos read, their faces found); made and queued by a thread
        of its own, since making two seconds of frames takes seconds of CPU."""
        from hw import sim_face_attacks as attacks

        if self.locate is None:
            raise CameraError("the face models are not loaded yet: try again in a moment")
        if attack not in attacks.ATTACKS:
            raise CameraError(f"no attack {attack!r}: one of {', '.join(attacks.ATTACKS)}")
        photos = [load_photo(path) for path in images]
        found = [self.locate(photo) for photo in photos]
        if None in found:
            raise CameraError(f"no face in {images[found.index(None)]}")
        known = dict(zip(map(id, photos), found))

        def locate(rgb: np.ndarray) -> Any:
            return known[id(rgb)] if id(rgb) in known else self.locate(rgb)  # type: ignore[misc]

        def make() -> None:
            seed = "|".join(images)
            if attack == "bent":
                made = attacks.bent_attack(photos[0], locate, attacks.BENT_FRAMES, seed)
            else:
                build = attacks.photos_attack if attack == "photos" else attacks.screen_attack
                made = build(photos, locate, self.hold_frames, seed)
            self._queue([Frame(rgb, source=f"{attack}#{k}") for k, rgb in enumerate(made)])

        threading.Thread(target=make, name=f"sim-{attack}", daemon=True).start()
        return attacks.BENT_FRAMES if attack == "bent" else len(photos) * self.hold_frames

    def _video(self, paths: list[Path]) -> int:
        """Read and queued by a thread of its own: a few seconds of frames take longer to
        read under load than the bus waits for an answer. An unreadable frame is skipped
        (a real camera drops frames too) and logged."""

        def read() -> None:
            frames = []
            for path in paths:
                try:
                    frames.append(Frame(load_photo(path), source=str(path)))
                except CameraError as e:
                    log.warning("video frame skipped: %s", e)
            self._queue(frames)

        threading.Thread(target=read, name="sim-video", daemon=True).start()
        return len(paths)

    def _queue(self, frames: list[Frame]) -> int:
        """Stamped one camera period apart, after anything already queued."""
        with self._queuing:  # the loop and the attack and video threads all queue
            stamp = max(time.monotonic(), self._stamp + 1.0 / self.FPS)
            for k, frame in enumerate(frames):
                self._stamp = stamp + k / self.FPS
                self._frames.put(replace(frame, t=self._stamp))
        return len(frames)

    def read(self, timeout: float) -> Frame | None:
        try:
            frame: Frame | None = self._frames.get(timeout=timeout)
        except queue.Empty:
            frame = None
        self._showing = frame
        return frame

    def view(self) -> Frame:
        showing = self._showing
        return showing if showing is not None else idle_frame(self.clock())

    def close(self) -> None:
        pass


VIDEO_FRAMES = 3000  # a folder of frames: at most 100 s at 30 fps


def video_paths(folder: list[str]) -> list[Path]:
    """The frames of a video folder (NNNN.jpg or .png), in name order."""
    if len(folder) != 1 or not Path(folder[0]).is_dir():
        raise CameraError("a video is one folder of frames")
    paths = sorted(p for p in Path(folder[0]).iterdir() if p.suffix.lower() in IMAGE_TYPES)
    if not paths or len(paths) > VIDEO_FRAMES:
        raise CameraError(f"{folder[0]}: 1 to {VIDEO_FRAMES} frames (.jpg, .png) expected")
    return paths


class Grabbed:
    """A real camera read by a thread of its own, at the camera's pace, keeping the newest
    frame: the recogniser takes the newest it has not had yet (waiting for one), the live
    view and snapshots take the newest at once. One reader of the device, so a slow
    recogniser (a face takes ~200 ms) never slows the live view, nor the reverse."""

    def __init__(self, camera: Camera) -> None:
        self.camera = camera
        self._newest: Frame | None = None
        self._taken: Frame | None = None
        self._error: CameraError | None = None
        self._fresh = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._grab, name="camera", daemon=True)
        self._thread.start()

    def _grab(self) -> None:
        while not self._stop.is_set():
            try:
                frame, error = self.camera.read(0.5), None
            except CameraError as e:
                frame, error = None, e
            with self._fresh:
                self._error = error
                if frame is not None:
                    self._newest = frame
                self._fresh.notify_all()
            if error is not None:
                self._stop.wait(RETRY_S)

    def read(self, timeout: float) -> Frame | None:
        """The newest frame not read yet; None after timeout; the camera's error raised."""
        with self._fresh:
            self._fresh.wait_for(
                lambda: self._error is not None or self._newest is not self._taken, timeout
            )
            if self._error is not None:
                raise self._error
            if self._newest is self._taken:
                return None
            self._taken = self._newest
            return self._taken

    def view(self) -> Frame | None:
        return None if self._error is not None else self._newest

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.camera.close()


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
        return Frame(np.ascontiguousarray(bgr[:, :, ::-1]), t=time.monotonic())

    def view(self) -> Frame | None:
        return None  # read only through Grabbed

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
        rgb = np.ascontiguousarray(self._camera.capture_array()[:, :, ::-1])
        return Frame(rgb, t=time.monotonic())

    def view(self) -> Frame | None:
        return None  # read only through Grabbed

    def close(self) -> None:
        self._camera.stop()
        self._camera.close()


def open_camera(kind: str, hold_frames: int) -> SimCamera | Grabbed | None:
    """The configured camera; a real one behind its grabbing thread."""
    if kind == "sim":
        return SimCamera(hold_frames)
    if kind == "none":
        return None
    if kind == "picamera2":
        return Grabbed(PiCamera())
    if kind.startswith("v4l2:"):
        return Grabbed(OpenCvCamera(kind.removeprefix("v4l2:")))
    raise CameraError(f"camera {kind!r}: one of sim, none, picamera2, v4l2:/dev/videoN")
