"""Requests to the recognition services (face, fingerprint, palm vein)."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from proto.schema import Message, between, checked, one_of, secret

NEW_PERSON_ROLES = ("", "admin", "user")  # person "" with a role: create them with it (L-14)
MODALITIES = ("finger", "palm")
ENROLMENTS = ("face", *MODALITIES)  # what `lockmesh enrol` and the menu can capture
KIND_OF = {"finger": "fingerprint", "palm": "palm-vein", "face": "face"}  # Matter's names


class EnrolOpen(Message, family="policy", event="enrol_open"):
    """The owner or the menu asks policy for an enrolment (L-14, issue 11).

    Policy checks who asks (the owner, or a live menu session: token), makes a ticket and
    itself asks the recogniser to capture. person "" with a role: a new person, created
    by policy with this credential as their first, only when it is stored.
    """

    modality: str = one_of(*ENROLMENTS)
    person: str = ""
    role: str = one_of(*NEW_PERSON_ROLES, default="")
    token: str = secret("")  # the panel's live menu session (L-13); the owner needs none


def snapshot_name(name: str) -> str | None:
    """A snapshot's name is a file name and nothing more: no path, no dot-dot."""
    if not (0 < len(name) <= 64 and name[0].isascii() and name[0].isalnum()):
        return "a snapshot name starts with a letter or digit and has 1 to 64 characters"
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in name):
        return "a snapshot name has only letters, digits, '-' and '_'"
    return None


class FaceEnrol(Message, family="face", event="enrol"):
    """From policy only: capture a face under this ticket, and save it with the ticket."""

    ticket: str = secret()
    person: str = ""  # for the steps the panel and the CLI show; "" for a new person


class FaceVerify(Message, family="face", event="verify"):
    """Look for a face now (the manual trigger after a keypad touch, L-18)."""


class Snapshot(Message, family="face", event="snapshot"):
    """From policy only, for the doorbell (L-23): keep the camera's frame now as a JPEG
    named `name` (a letter or digit, then letters, digits, '-' or '_') in the face
    service's snapshot folder, where the gateway reads it. The pixels never travel on the
    bus; the answer says done or why not (battery too low for video, no camera)."""

    name: str = checked(snapshot_name)


FACE_ATTACKS = ("photos", "bent", "screen")  # hw/sim_face_attacks.py


class SimFace(Message, family="face", event="sim"):
    """`lockmesh sim face IMAGE…`: photos shown to the simulated camera, one per frame.

    Paths, not pixels: frames never travel on the bus. Each photo is held up for a few
    frames, moving a little as a hand would (hold), or shown for one frame; ir gives the
    IR camera's frames. attack makes a presentation attack of the photos (issue 14); video
    shows a folder of consecutive frames at the camera's rate.
    """

    images: list[str] = field(default_factory=list)
    ir: list[str] = field(default_factory=list)  # "" where the IR frame is dark
    hold: bool = True  # each photo held up for several frames
    attack: str = one_of("", *FACE_ATTACKS, default="")  # issue 14: made of the photos
    video: bool = False  # images is one folder of a video's frames, shown once each, in order


MODULE_FAULTS = ("unplug", "replug", "garbage", "truncate", "bad-checksum", "silent", "clear")


class BioEnrol(Message, family="biometric", event="enrol"):
    """From policy only: capture a finger or palm under this ticket; progress and the end
    come as events."""

    ticket: str = secret()
    modality: str = one_of(*MODALITIES)
    person: str = ""  # for the steps the panel and the CLI show; "" for a new person


class BioVerify(Message, family="biometric", event="verify"):
    modality: str = one_of(*MODALITIES)


class EnrolCancel(Message, family="biometric", event="cancel"):
    """Back pressed during an enrolment: the capture stops, nothing is stored."""


class EnrolStep(Message, family="biometric", event="enrol_step"):
    """What the person enrolling must do now, for the panel to say (L-15)."""

    modality: str = one_of(*MODALITIES, "face")
    step: str = ""  # a prompt id of the panel: place-finger, lift-finger, palm-too-far …
    person: str = ""
    params: dict[str, str] = field(default_factory=dict)


class Unreadable(Message, family="biometric", event="unreadable"):
    """A finger or palm at the door that could not be read: not an attempt; asked again."""

    modality: str = one_of(*MODALITIES, "face")
    step: str = ""  # the panel's prompt: finger-poor, finger-partial …


class EnrolDone(Message, family="biometric", event="enrolled"):
    """The end of an enrolment: stored (slot), or why not (already-added, full, …).
    new_person: the enrolment made the person (the menu's create); else a credential was
    added to one who was there (the owner's `enrol`, the app), which the panel says apart."""

    modality: str = one_of(*MODALITIES, "face")
    person: str = ""
    ok: bool = False
    reason: str = ""
    detail: str = ""
    new_person: bool = False


class SimPresent(Message, family="biometric", event="sim"):
    """`lockmesh sim finger|palm WHO`: present a simulated finger or palm to its module."""

    modality: str = one_of(*MODALITIES)
    who: str = ""  # the simulated finger's or palm's identity; empty lifts it away
    qualities: list[str] = field(default_factory=list)  # per capture: good, partial, far …
    distance_cm: float = between(0.0, 100.0, default=0.0)  # palm only; 0: use qualities
    child: bool = False


TEMPLATE_KINDS = ("face", "fingerprint", "palm-vein")


class TemplateSave(Message, family="biometric", event="template_save"):
    """A captured template; policy seals it at rest (L-10). Whose it is, and in which slot,
    comes from the enrolment's ticket, never from the recogniser; the answer's detail is
    "person:slot"."""

    kind: str = one_of(*TEMPLATE_KINDS)
    ticket: str = secret("")
    template: bytes = secret(b"")


class TemplatesFetch(Message, family="biometric", event="templates"):
    """The sealed templates of a kind, opened, for the one service that matches them."""

    kind: str = one_of(*TEMPLATE_KINDS)
    offset: int = between(0, 10_000, default=0)
    limit: int = between(1, 32, default=32)


class Templates(Message, family="biometric", event="templates_reply"):
    items: list[dict[str, Any]] = secret()  # person, slot, template: never in the tap
    more: bool = False


class SimModule(Message, family="biometric", event="sim_module"):
    """`lockmesh sim module finger|palm FAULT`: what goes wrong with a simulated module."""

    modality: str = one_of(*MODALITIES)
    fault: str = one_of(*MODULE_FAULTS)


class Match(Message, family="policy", event="match"):
    """A recogniser's verdict at the door: a person, or None for no match (L-18, L-20)."""

    method: str = one_of(*TEMPLATE_KINDS)
    person: str | None = None
    score: float = 0.0  # the module's score or the face distance, for the log
    live: bool = False  # absent is not live: a photo or a screen matches too (L-20)
    slot: int = between(0, 1000, default=0)  # the person's template that matched (issue 11)
