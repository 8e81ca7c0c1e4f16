"""Face unlock and enrolment (issue 6, L-15, L-18): the camera, the models, the matching;
the doorbell's snapshot (L-23) and the app's live view (issue 13).

The work happens in a worker thread (services/face/worker.py); the loop answers
requests, relays the worker's messages, and hears the panel, policy and power. The live
view has a thread and a socket of its own (services/face/video.py).
"""

from __future__ import annotations

import os
import time
from typing import Any

import zmq

from hw.camera import CameraError, Frame, SimCamera, open_camera
from proto.biometric import EnrolCancel, FaceEnrol, FaceVerify, SimFace, Snapshot
from proto.control import OK, Done, refused
from proto.policy import Audit
from proto.power import Battery, video_off
from proto.trust import VIEWERS
from proto.wire import Envelope
from services.base import Service, accepts, hears
from services.face import video
from services.face.snapshots import SnapshotFolder
from services.face.worker import FaceWorker
from services.mailbox import Mailbox


class FaceService(Service):
    NAME = "face"
    LISTENS = ("policy", "power")
    TICK_S = 0.25  # only the state is looked at; the worker and the video have threads

    def setup(self) -> None:
        self.settings = self.config["face"]
        os.nice(self.settings["nice"])  # recognition may wait; a key's beep may not
        self.mail = Mailbox(wait_s=self.mesh["request_timeout_s"] + 1.0)
        self.watch(self.mail.fd, lambda: self.mail.deliver(self.publish, self._ask))
        self.camera_error = ""
        try:
            camera = open_camera(self.settings["camera"], self.settings["sim_hold_frames"])
        except CameraError as e:
            camera, self.camera_error = None, str(e)
        self.worker = FaceWorker(self.mail, self.settings, self.layout.data / "models", camera)
        self.worker.start()
        self.battery: Battery | None = None
        self.snapshot_ms: float | None = None
        self.snapshots = SnapshotFolder(self.layout, self.settings["snapshots_kept"])
        self.snapshots.prepare()
        self._view()  # the simulated scene and its font made now, not at the first bell
        sock = self.bus.bind_restricted(
            zmq.XPUB, self.layout.video(self.NAME), video.DOMAIN, VIEWERS
        )
        self.live = video.LiveVideo(sock, self._view, self._why_no_video,
                                    fps=self.settings["live_fps"],
                                    quality=self.settings["live_quality"])  # fmt: skip
        self.live.start()
        self._update_state()

    def _ask(self, peer: str, body: Any, cause: str | None) -> Envelope | None:
        return self.request(peer, body, cause=cause)

    def teardown(self) -> None:
        if hasattr(self, "live"):
            self.live.stop()  # before the bus closes its socket
        if hasattr(self, "worker"):
            self.worker.stop()
            if self.worker.camera is not None:
                self.worker.camera.close()
        if hasattr(self, "mail"):
            self.mail.close()

    def tick(self, now: float) -> None:
        self._update_state()

    def _update_state(self) -> None:
        if self.camera_error:
            self.state = f"degraded: camera: {self.camera_error}"
        elif not self.worker.video_allowed:
            self.state = "degraded: battery too low for video"
        else:
            self.state = self.worker.state

    def status_detail(self) -> dict[str, Any]:
        w = self.worker
        timing = sorted(w.timing_ms)
        return {
            "enrolled": len(w.gallery),
            "busy": w.busy,
            "presenting": w.presenting,
            **w.stats,
            "frame_ms_p50": round(timing[len(timing) // 2], 1) if timing else None,
            "live": self.live.status(),
            "snapshot_ms": self.snapshot_ms,  # the last one's, from the frame to the file
            "video_off": self._why_no_video(),
        }

    def _refusal(self) -> Done | None:
        if not self.worker.ready:
            return refused("not-available", f"face recognition is not ready: {self.state}")
        if not self.worker.video_allowed:
            return refused("battery-low", "the battery is too low for the camera (L-28)")
        return None

    # -- enrolment ------------------------------------------------------------------------
    @accepts(FaceEnrol)
    def on_enrol(self, env: Envelope, peer: str) -> Done:
        """Policy opened an enrolment (issue 11): capture, and save under its ticket."""
        b = env.body
        why = self._refusal()
        if why is not None:
            return why
        if self.worker.busy:
            return refused("busy", "a face enrolment is already under way")
        self.worker.busy = True  # at once: a second request is refused before the job runs
        self.worker.cancel.clear()  # here, not in the job: a cancel before it starts must hold
        self.worker.submit(lambda: self.worker.enrol(b.person, b.ticket, env.trace))
        return Done(ok=True, detail="started")

    @accepts(EnrolCancel)
    def on_cancel(self, env: Envelope, peer: str) -> Done:
        if self.worker.busy:
            self.worker.cancel.set()
        return OK

    @hears(Audit)
    def on_audit(self, env: Envelope) -> None:
        if env.body.kind == "person-deleted" and env.body.person:
            person = env.body.person
            self.worker.submit(lambda: self.worker.forget(person))
        elif env.body.kind == "factory-reset":
            self.worker.submit(self.worker.wipe)

    @hears(Battery)
    def on_battery(self, env: Envelope) -> None:
        self.battery = env.body
        self.worker.video_allowed = not video_off(
            env.body, self.config["power"]["video_min_percent"]
        )

    # -- the camera for the app: live view and the doorbell's snapshot (issue 13) ---------
    def _view(self) -> Frame | None:
        camera = self.worker.camera
        return None if camera is None else camera.view()

    def _why_no_video(self) -> str:
        """Why the live view and snapshots may not use the camera now; "" when they may."""
        if self.worker.camera is None:
            return f"no camera ({self.camera_error or 'face.camera is none'})"
        return video_off(self.battery, self.config["power"]["video_min_percent"])

    @accepts(Snapshot)
    def on_snapshot(self, env: Envelope[Snapshot], peer: str) -> Done:
        """The doorbell's picture (L-23), from policy: the camera's frame now, kept as a
        JPEG the gateway serves; or why not."""
        why = self._why_no_video()
        if why:
            reason = "no-camera" if self.worker.camera is None else "battery-low"
            return refused(reason, why)
        started = time.perf_counter()
        frame = self._view()
        if frame is None:
            return refused("no-frame", "the camera has given no frame yet")
        done = self.snapshots.take(env.body.name, frame.rgb)
        self.snapshot_ms = round((time.perf_counter() - started) * 1000, 1)
        return done

    # -- at the door ----------------------------------------------------------------------
    @accepts(FaceVerify)
    def on_verify(self, env: Envelope, peer: str) -> Done:
        why = self._refusal()
        return why if why is not None else OK  # the camera is always looked at

    @accepts(SimFace)
    def on_sim_face(self, env: Envelope, peer: str) -> Done:
        camera = self.worker.camera
        if not isinstance(camera, SimCamera):
            return refused("not-simulated", "this camera is real: stand in front of it")
        b = env.body
        if not b.images:
            return refused("bad-value", "no image to show")
        try:
            frames = camera.show(b.images, b.ir, b.hold, b.attack, b.video)
        except CameraError as e:
            return refused("bad-value", str(e))
        return Done(ok=True, detail=f"{frames} frames")
