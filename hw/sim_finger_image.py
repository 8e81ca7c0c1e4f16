"""The simulated fingerprint module's image buffer as UpImage sends it: a plausible grey print.

A finger's pattern (core, ridge period, whorl or loop, warp) follows from its identity;
a capture shows the part of it that touched (the placement's coverage and shift) with
its noise (dry, smudged). Pixels are 8-bit grey, ridges dark on a white background,
and travel as the R503 sends them: only the high four bits, two pixels a byte, the
left pixel in the high nibble, rows top to bottom.

The image is a picture for clients, not the matcher's input: features come from the
simulator's model. The simulator remembers the images it rendered, so an image
downloaded back (DownImage) is the capture it was; any other image has no features
the model can read.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import OrderedDict
from typing import Protocol

import numpy as np

R503_IMAGE_SIZE = (192, 192)  # width, height: the R503's sensing array
R30X_IMAGE_SIZE = (256, 288)  # the optical R30x/AS608 modules' images
REMEMBERED = 16  # rendered images recognised when downloaded back


class Capture(Protocol):
    @property
    def finger(self) -> str: ...
    @property
    def noise(self) -> float: ...
    @property
    def start(self) -> int: ...
    @property
    def width(self) -> int: ...


def image_bytes(size: tuple[int, int]) -> int:
    return size[0] * size[1] // 2


def render(capture: Capture, dims: int, seed: int, size: tuple[int, int]) -> np.ndarray:
    """The capture as 8-bit grey pixels, shape (height, width)."""
    width, height = size
    finger = random.Random(f"print:{seed}:{capture.finger}")
    cx = width * finger.uniform(0.4, 0.6)
    cy = height * finger.uniform(0.4, 0.6)
    period = finger.uniform(7.0, 10.0)  # pixels between ridges at 508 dpi
    arms = finger.choice((0, 1, 2))  # 0 whorl, 1 loop-like spiral, 2 double loop
    warp = [(finger.uniform(0.01, 0.04), finger.uniform(0, 2 * math.pi)) for _ in range(3)]
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    dx, dy = x - cx, y - cy
    for freq, phase in warp:
        dx += 3.0 * np.sin(freq * y + phase)
        dy += 3.0 * np.sin(freq * x + phase)
    ridge = np.cos(2 * math.pi * np.hypot(dx, dy) / period + arms * np.arctan2(dy, dx))
    # what touched: an ellipse as large as the coverage, moved by where it started
    coverage = capture.width / dims
    shift = math.cos(2 * math.pi * capture.start / dims) * 0.25 * width * (1 - coverage)
    rx, ry = 0.5 * width * max(coverage, 0.1), 0.5 * height * max(coverage, 0.1) * 1.2
    touched = ((x - width / 2 - shift) / rx) ** 2 + ((y - height / 2) / ry) ** 2 <= 1.0
    noise_rng = np.random.default_rng(list(_digest_seed(capture, seed)))
    grey = 150 + 90 * ridge + noise_rng.normal(0.0, 40.0 * capture.noise, ridge.shape)
    grey = np.where(touched, grey, 255.0)
    return np.clip(grey, 0, 255).astype(np.uint8)


def _digest_seed(capture: Capture, seed: int) -> bytes:
    key = f"{seed}:{capture.finger}:{capture.noise!r}:{capture.start}:{capture.width}"
    return hashlib.sha256(key.encode()).digest()[:8]


def pack_nibbles(pixels: np.ndarray) -> bytes:
    """Two pixels a byte, high nibble first: the UART image format."""
    flat = pixels.reshape(-1) >> 4
    return bytes((flat[0::2] << 4 | flat[1::2]).astype(np.uint8))


def unpack_nibbles(data: bytes, size: tuple[int, int]) -> np.ndarray:
    raw = np.frombuffer(data, dtype=np.uint8)
    pixels = np.empty(raw.size * 2, dtype=np.uint8)
    pixels[0::2], pixels[1::2] = raw & 0xF0, (raw & 0x0F) << 4
    return pixels.reshape(size[1], size[0])


class ImageMemory:
    """The last rendered images by digest: a downloaded image is known if it is one of them."""

    def __init__(self) -> None:
        self._seen: OrderedDict[bytes, object] = OrderedDict()

    def remember(self, data: bytes, capture: object) -> None:
        self._seen[hashlib.sha256(data).digest()] = capture
        while len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)

    def recall(self, data: bytes) -> object | None:
        return self._seen.get(hashlib.sha256(data).digest())
