"""The face service's worker thread: frames in, decisions and enrolments out.

Recognition takes tens of milliseconds a frame, so it runs here, off the service loop;
results reach the bus through the Mailbox. A presentation is the run of frames in which
a face is seen, ended by `presentation_gap_s` without one. Within it the face must match
an enrolled person and look live; at its end, a face that never did is a failed attempt.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hw.camera import CameraError, Frame, SimCamera
from hw.sim_face_attacks import locator
from proto.biometric import (
    EnrolDone,
    EnrolStep,
    Match,
    Templates,
    TemplateSave,
    TemplatesFetch,
    Unreadable,
)
from services.face import gallery as g
from services.face.chip import face_chip
from services.face.enrolment import Enrolment, still
from services.face.liveness import AntiSpoofModel, TrackProof
from services.face.models import build
from services.face.pipeline import Described, FaceFinder, Pipeline, largest
from services.face.track import Continuity, Observation, Track, Tracker
from services.mailbox import Mailbox

log = logging.getLogger(__name__)

# template sets of up to g.MAX_TEMPLATE_BYTES each, within one bus message (64 KB)
TEMPLATES_PER_FETCH = 4


class Cancelled(Exception):
    pass


class EnrolFailed(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass
class Presentation:
    """The frames from a face's arrival until presentation_gap_s without one. Within it
    the face is followed as tracks (services/face/track.py): a cut to another picture
    starts a new track, and liveness is proven over one track only (issue 14)."""

    proof: TrackProof
    started: float
    last_face: float
    best: g.Nearest = g.Nearest(None, 0, float("inf"))
    matched: g.Nearest | None = None  # the face that matched, not yet shown live
    track_best: dict[int, g.Nearest] = field(default_factory=dict)  # each track's best match
    decided: bool = False
    asked_to_move: bool = False
    refused_by: list[str] = field(default_factory=list)  # IR, anti-spoof model


class FaceWorker:
    def __init__(self, mail: Mailbox, settings: dict[str, Any], models_dir: Path, camera) -> None:
        self.mail, self.settings, self.models_dir, self.camera = mail, settings, models_dir, camera
        self.state = "loading models"
        self.gallery = g.Gallery()
        self.pipeline: Pipeline | None = None
        self.finder: FaceFinder | None = None  # the door camera's frames, one after another
        self.antispoof: AntiSpoofModel | None = None
        self.busy = False
        self.video_allowed = True
        self.cancel = threading.Event()
        self.stats = {"frames": 0, "presentations": 0, "matches": 0, "not_live": 0,
                      "track_breaks": 0}  # fmt: skip
        self.timing_ms: list[float] = []  # the last frames' detect..match times
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue()
        self._presentation: Presentation | None = None
        self.tracker = Tracker(Continuity.from_settings(settings["track"]))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="face", daemon=True)

    # -- from the service loop ------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.cancel.set()
        self._thread.join(timeout=5)

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    @property
    def ready(self) -> bool:
        return self.pipeline is not None and self.state == "ready"

    @property
    def _loaded(self) -> Pipeline:
        """The pipeline: frames and jobs run on the thread only after _load() has made it."""
        if self.pipeline is None:
            raise RuntimeError("the face models are not loaded")
        return self.pipeline

    @property
    def _finder(self) -> FaceFinder:
        if self.finder is None:
            raise RuntimeError("the face models are not loaded")
        return self.finder

    @property
    def presenting(self) -> bool:
        """A face is at the camera, or was within presentation_gap_s: a face shown now
        belongs to that presentation, not to a new attempt."""
        return self._presentation is not None

    # -- the thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._load()
        except Exception as e:  # a model that cannot be built: the lock works without faces
            log.exception("face models unusable")
            self.state = f"degraded: face models unusable: {e}"
            return
        while not self._stop.is_set():
            try:
                self._jobs.get_nowait()()
                continue
            except queue.Empty:
                pass
            except Exception:
                log.exception("a face job failed")
                continue
            try:
                self._verify_next()
            except CameraError as e:
                self.state = f"degraded: camera: {e}"
                self._stop.wait(1.0)
            except Exception:
                log.exception("a frame failed")

    def _load(self) -> None:
        started = time.monotonic()
        models = build.ensure(self.models_dir)
        s = self.settings
        self.pipeline = Pipeline(
            models, min_face=s["min_face"], threads=s["threads"], embedder=s["embedder"]
        )
        self.finder = self.pipeline.finder()
        if s["antispoof_model"]:
            self.antispoof = AntiSpoofModel(s["antispoof_model"], s["antispoof_threshold"])
        self._load_gallery()
        if isinstance(self.camera, SimCamera):  # its attacks line photos up by their faces
            self.camera.locate = locator(self.pipeline.detect)
        self.state = "ready" if self.camera is not None else "degraded: no camera"
        log.info("face models ready in %.1fs; %d faces enrolled", time.monotonic() - started,
                 len(self.gallery))  # fmt: skip

    def _load_gallery(self) -> None:
        """Policy's sealed templates are the truth (L-10): the gallery is rebuilt from them."""
        fresh, offset = self._empty_gallery(), 0
        while True:
            fetch = TemplatesFetch(kind="face", offset=offset, limit=TEMPLATES_PER_FETCH)
            answer = self.mail.request("policy", fetch)
            if answer is None or not isinstance(answer.body, Templates):
                raise RuntimeError("policy did not give the face templates")
            for item in answer.body.items:
                try:
                    fresh.add(item["person"], item["slot"], g.from_template(item["template"]))
                except g.TemplateError as e:
                    log.error("face template of %s unusable: %s", item["person"], e)
            if not answer.body.more:
                break
            offset += len(answer.body.items)
        self.gallery = fresh

    def _empty_gallery(self) -> g.Gallery:
        return g.Gallery(self._loaded.dims)

    def _frame(self, timeout: float) -> Frame | None:
        if self.camera is None:
            self._stop.wait(timeout)
            return None
        frame = self.camera.read(timeout)
        if frame is not None and not self.video_allowed:
            return None  # L-28: no video below 20 %; the frame is dropped unseen
        return frame

    # -- at the door ----------------------------------------------------------------------
    def _verify_next(self) -> None:
        frame = self._frame(0.2)
        now = time.monotonic()
        p = self._presentation
        if p is not None and now - p.last_face > self.settings["presentation_gap_s"]:
            self._end(p)
            self._presentation = p = None
            self._finder.lost()
        if frame is None:
            return
        started = time.perf_counter()
        # round the last frame's face when there was one (a tenth of the work), else whole
        faces = self._finder(frame.rgb)
        self.stats["frames"] += 1
        face = largest(faces)
        if face is None:
            self.tracker.lost()
            return
        if p is None:
            self.stats["presentations"] += 1
            p = self._presentation = Presentation(
                TrackProof.from_settings(self.settings),
                started=now, last_face=now,
            )  # fmt: skip
        p.last_face = now
        if p.decided:
            return
        described = self._loaded.describe(frame.rgb, [face])[0]
        track = self._follow(frame, described)
        live = p.proof.add(track.id, track.first.landmarks, face.landmarks, described.chip)
        near = self.gallery.nearest(described.descriptor)
        self.timing_ms = (self.timing_ms + [(time.perf_counter() - started) * 1000])[-100:]
        if near.distance < p.best.distance:
            p.best = near
        best = p.track_best.get(track.id)
        if best is None or near.distance < best.distance:
            p.track_best[track.id] = best = near
        near = best  # the track's best frame decides, with that track's proof
        if near.distance > self.settings["threshold"]:
            return
        p.matched = near
        live = live or self.settings["liveness"] == "none"
        spoofed = self._spoof_checks(frame, described)
        if spoofed:
            p.refused_by = spoofed
            return
        if live:
            p.decided = True
            self.stats["matches"] += 1
            self._decide(near, live=True)
        elif not p.asked_to_move:
            p.asked_to_move = True  # "turn your head slightly": a flat picture cannot
            self.mail.publish(Unreadable(modality="face", step="face-move"))

    def _follow(self, frame: Frame, described: Described) -> Track:
        """The track this frame's face continues, or a new one (a cut, a gap, a jump)."""
        t = frame.t or time.monotonic()
        obs = Observation.of(t, frame.rgb, described.face.box, described.face.landmarks,
                             described.descriptor, described.chip)  # fmt: skip
        step = self.tracker.follow(obs)
        if step.broken:
            self.stats["track_breaks"] += 1
            log.info("face track broken (%s): liveness starts over", step.broken)
        return step.track

    def _spoof_checks(self, frame: Frame, described: Described) -> list[str]:
        refused = []
        if self.settings["ir_check"] and not self._face_in_ir(frame, described):
            refused.append("no face in the IR frame")
        if self.antispoof is not None:
            ok, score = self.antispoof.live(face_chip(frame.rgb, described.points))
            if not ok:
                refused.append(f"anti-spoofing model {score:.2f}")
        return refused

    def _face_in_ir(self, frame: Frame, described: Described) -> bool:
        """Screens emit no near-infrared: a face on a phone is dark in the IR frame."""
        if frame.ir is None:
            return False
        ir = np.repeat(frame.ir[:, :, None], 3, axis=2)
        x1, y1, x2, y2 = described.face.box
        for f in self._loaded.detect(ir):
            cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
            if x1 <= cx <= x2 and y1 <= cy <= y2:
                return True
        return False

    def _end(self, p: Presentation) -> None:
        """A presentation that never unlocked: a stranger, or a picture of someone."""
        if p.decided:
            return
        if p.matched is not None:
            self.stats["not_live"] += 1
            why = ", ".join(p.refused_by) or (
                f"parallax {p.proof.best:.3f} within one track, "
                f"{p.proof.ridges} frames off it a ridge, not a face (bent print?)"
            )
            log.info("face of %s matched but not live (%s)", p.matched.person, why)
            self._decide(p.matched, live=False)
        else:
            self._decide(g.Nearest(None, 0, p.best.distance), live=False)

    def _decide(self, near: g.Nearest, *, live: bool) -> None:
        """Tell policy who is at the door (the face and slot that matched), or nobody."""
        if self.busy:  # an enrolment was asked while this frame was read: the face is for it
            log.info("a face read as an enrolment began: not an attempt (issue 15)")
            return
        score = near.distance if np.isfinite(near.distance) else -1.0
        match = Match(method="face", person=near.person, slot=near.slot,
                      score=round(score, 4), live=live)  # fmt: skip
        answer = self.mail.request("policy", match)
        if answer is None:
            log.warning("policy did not answer a face match: the door stays shut")

    # -- enrolment (L-15) -----------------------------------------------------------------
    def enrol(self, person: str, ticket: str, cause: str | None) -> None:
        """The capture policy opened (issue 11): saved under its ticket, which names whose
        template it is; person is only for the steps shown."""
        self.busy = True  # the cancel was cleared as the job was queued (service.on_enrol)
        self._presentation = None
        try:
            enrolment = Enrolment(self.settings["enrol_poses"], self.settings["threshold"])
            while not enrolment.done:
                self._pose(person, enrolment, cause)
            for d in enrolment.descriptors():  # L-5: a face that already matches someone else
                other = self.gallery.nearest(d)
                if other.distance <= self.settings["threshold"] and other.person != person:
                    raise EnrolFailed("already-added", "that face is already enrolled")
            self._save(person, ticket, enrolment.descriptors(), cause)  # one row per pose
        except Cancelled:
            self._done(person, False, "cancelled", "back was pressed", cause)
        except EnrolFailed as e:
            self._done(person, False, e.reason, e.detail, cause)
        finally:
            self.busy = False
            self._presentation = self._after_enrolment()

    def _after_enrolment(self) -> Presentation:
        """The face just enrolled is still at the camera: not an attempt until it leaves."""
        now = time.monotonic()
        settled = Presentation(TrackProof(1.0, 1), started=now, last_face=now)
        settled.decided = True
        return settled

    def _pose(self, person: str, enrolment: Enrolment, cause: str | None) -> None:
        """Frames until one shows a single, near, still face in the asked pose, of the
        person of the first capture (issue 14)."""
        pose = enrolment.asked
        said = None
        deadline = time.monotonic() + self.settings["enrol_timeout_s"]
        last = None

        def say(step: str) -> None:
            nonlocal said
            if step != said:
                said = step
                self.mail.publish(EnrolStep(modality="face", step=step, person=person), cause)

        say(f"face-{pose}")
        while True:
            if self.cancel.is_set() or self._stop.is_set():
                raise Cancelled()
            if time.monotonic() > deadline:
                raise EnrolFailed("timeout", f"no face in the {pose} pose was seen")
            frame = self._frame(0.2)
            if frame is None:
                continue
            faces = self._loaded.detect(frame.rgb)
            if not faces:
                last = None
                say("face-none")
                continue
            # faces too far to enrol are not the one enrolling: people passing behind
            near = [f for f in faces if f.width >= self.settings["enrol_min_px"]]
            if len(near) != 1:
                last = None
                say("face-too-far" if not near else "face-several")
                continue
            face = near[0]
            before, last = last, face.landmarks
            if before is None:
                continue  # a still face is one seen twice in the same place
            if not still(before, face.landmarks):
                say("face-moving")
                continue
            if not enrolment.shows_asked(face.landmarks):
                say(f"face-{pose}")
                continue
            descriptor = self._loaded.describe(frame.rgb, [face])[0].descriptor
            taken = enrolment.offer(descriptor, face.landmarks)
            if taken == "taken":
                return
            if taken == "not-same":  # said once per face, then the pose is asked again
                say("face-not-same")
                said = None
                say(f"face-{pose}")

    def _save(self, person: str, ticket: str, poses: np.ndarray, cause: str | None) -> None:
        save = TemplateSave(kind="face", ticket=ticket, template=g.to_template(poses))
        answer = self.mail.request("policy", save, cause)
        if answer is None or not answer.body.ok:
            reason = "policy-silent" if answer is None else answer.body.reason
            raise EnrolFailed(reason, "" if answer is None else answer.body.detail)
        number, _, slot = answer.body.detail.partition(":")
        self.gallery.add(number, int(slot), poses)
        self._done(number, True, "", slot, cause, new_person=not person)

    def _done(
        self, person: str, ok: bool, reason: str, detail: str, cause: str | None,
        *, new_person: bool = False,
    ) -> None:  # fmt: skip
        log.info("face enrolment of %s: %s", person or "a new person", "stored" if ok else reason)
        done = EnrolDone(modality="face", person=person, ok=ok, reason=reason, detail=detail,
                         new_person=new_person)  # fmt: skip
        self.mail.publish(done, cause)

    def forget(self, person: str) -> None:
        self.gallery.forget(person)

    def wipe(self) -> None:
        self.gallery = self._empty_gallery()
