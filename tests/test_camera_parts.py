"""What the camera shows now (issue 13: the live view and the doorbell's snapshot, L-23):
the simulated camera always has a frame, and a real one is read by one grabbing thread
whatever the pace of the recogniser and of the viewers."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hw.camera import FRAME_SIZE, CameraError, Frame, Grabbed, SimCamera, idle_frame
from proto.power import Battery, video_off


def test_issue13_the_simulated_camera_shows_its_empty_doorstep_with_the_time(tmp_path):
    camera = SimCamera(hold_frames=2, clock=lambda: 1_000_000.0)
    frame = camera.view()
    assert frame.source == "idle" and frame.rgb.shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3)
    later = idle_frame(1_000_000.5).rgb
    assert not np.array_equal(frame.rgb, later)  # the overlay's time moved: a new picture


def test_issue13_the_simulated_camera_shows_the_photo_being_read_then_nobody(tmp_path):
    photo = tmp_path / "visitor.png"
    Image.new("RGB", (320, 240), (200, 10, 10)).save(photo)
    camera = SimCamera(hold_frames=2)
    camera.show([str(photo)], [], hold=True)
    assert camera.view().source == "idle"  # shown, not yet in front of the lens
    read = camera.read(0.1)
    assert read is not None and camera.view() is read  # what the recogniser looks at
    camera.read(0.1)
    assert camera.read(0.01) is None  # held for its two frames, then taken away
    assert camera.view().source == "idle"


class Scripted:
    """A real camera's driver: gives the frames it is handed, as a device would."""

    def __init__(self) -> None:
        self.frames: list[Frame | CameraError] = []
        self.handed = threading.Semaphore(0)
        self.closed = False

    def hand(self, item: Frame | CameraError) -> None:
        self.frames.append(item)
        self.handed.release()

    def read(self, timeout: float) -> Frame | None:
        if not self.handed.acquire(timeout=timeout):
            return None
        item = self.frames.pop(0)
        if isinstance(item, CameraError):
            raise item
        return item

    def view(self) -> Frame | None:
        return None

    def close(self) -> None:
        self.closed = True


def frame(value: int) -> Frame:
    return Frame(np.full((4, 4, 3), value, np.uint8), source=str(value))


def test_issue13_a_real_camera_is_read_by_its_own_thread_newest_frame_first():
    device = Scripted()
    camera = Grabbed(device)
    try:
        assert camera.view() is None and camera.read(0.05) is None  # nothing yet
        device.hand(frame(1))
        device.hand(frame(2))
        got = camera.read(2.0)
        assert got is not None
        if got.source == "1":  # the recogniser may have been quick enough for both
            got = camera.read(2.0)
        assert got is not None and got.source == "2"
        assert camera.read(0.05) is None  # never the same frame twice to the recogniser
        view = camera.view()
        assert view is not None and view.source == "2"  # the live view: the newest, at once
        device.hand(CameraError("unplugged"))
        with pytest.raises(CameraError, match="unplugged"):
            camera.read(2.0)
        assert camera.view() is None
    finally:
        camera.close()
    assert device.closed


@pytest.mark.parametrize(
    "battery, why",
    [
        (None, ""),  # not heard yet: no reason to forbid
        (Battery(percent=50, volts=3.8), ""),
        (Battery(percent=20, volts=3.6), ""),
        (Battery(percent=15, volts=3.5, video_allowed=False),
         "battery too low for video (15 %, below 20 %)"),
        (Battery(percent=15, volts=3.5, video_allowed=False, external=True), ""),  # USB-C
        (Battery(percent=19.5, volts=3.5), "battery too low for video (19.5 %, below 20 %)"),
    ],
)  # fmt: skip
def test_l28_video_is_off_below_20_percent_with_the_reason_said(battery, why):
    assert video_off(battery, 20.0) == why


def test_l23_the_snapshot_folder_is_made_private_on_the_simulated_board(tmp_path: Path):
    from proto.layout import Layout
    from services.face.snapshots import SnapshotFolder

    layout = Layout.at(tmp_path / "d")
    layout.data.mkdir()
    done = SnapshotFolder(layout, kept=200).take("bell-1-1", idle_frame(0.0).rgb)
    assert done.ok
    assert layout.snapshots.stat().st_mode & 0o077 == 0  # same user: nobody else reads
    assert layout.snapshot("bell-1-1").stat().st_mode & 0o777 == 0o640
