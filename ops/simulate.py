"""`lockmesh sim …`: acts on the simulated board as a person at the door would."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hw.rtc import SimRtc
from hw.sim_fingerprint import QUALITIES as FINGER_QUALITY_MODEL
from hw.sim_palm import QUALITIES as PALM_QUALITIES
from ops import mesh
from proto import config as configuration
from proto import supervisor_rpc
from proto.biometric import (
    FACE_ATTACKS,
    MODALITIES,
    MODULE_FAULTS,
    SimFace,
    SimModule,
    SimPresent,
)
from proto.board import SimBoard
from proto.bus import Bus
from proto.control import Done
from proto.keypad import INPUTS, SimKeys
from proto.layout import Layout
from proto.schema import Message

FINGER_QUALITIES = (*FINGER_QUALITY_MODEL, "none")
RELEASE_GRACE_S = 15.0  # past the hold, for the motor to see SET go and the panel to ask
NOT_REFUSALS = ("", "no-answer", "not-running", "unhealthy", "bad-value")  # said as lockmesh: …
_json = argparse.ArgumentParser(add_help=False)
_json.add_argument("--json", action="store_true", help="the answer as a JSON object")


def answer(args: argparse.Namespace, ok: bool, reason: str = "", detail: str = "") -> int:
    """`ok`, or `refused: REASON: sentence` (exit 1); with --json the same as an object."""
    if getattr(args, "json", False):
        print(json.dumps({"ok": ok, "reason": reason, "detail": detail} if not ok else {"ok": ok}))
    elif ok:
        print("ok")
    else:
        said = f"lockmesh: {detail}" if reason in NOT_REFUSALS else f"refused: {reason}: {detail}"
        print(said, file=sys.stderr)
    return 0 if ok else 1


def add_parser(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(required=True, metavar="VERB")

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common, _json], help=help)  # --data, --json

    verb("touch", help="touch the keypad (wakes it)").set_defaults(
        make=lambda a: ("keypad", SimKeys(keys=["touch"]))
    )
    press = verb("press", help="press keys: 0-9 back ok home bell")
    press.add_argument("keys", nargs="+", choices=INPUTS, metavar="KEY")
    press.set_defaults(make=lambda a: ("keypad", SimKeys(keys=list(a.keys))))
    button = verb("button", help="press SET briefly or long, or the inside lock button")
    button.add_argument("which", choices=("set", "set-long", "lock"))
    button.set_defaults(make=lambda a: ("motor", SimBoard(action="button", arg=a.which)))
    door = verb("door", help="open or close the door")
    door.add_argument("how", choices=("open", "close"))
    door.set_defaults(make=lambda a: ("motor", SimBoard(action="door", arg=a.how)))
    for name, arg, help in (("jam", "jam", "block the bolt"), ("free", "free", "unblock it")):
        verb(name, help=help).set_defaults(
            make=lambda a, arg=arg: ("motor", SimBoard(action="state", arg=arg))
        )
    tamper = verb("tamper", help="remove or replace the front panel (L-29)")
    tamper.add_argument("how", choices=("remove", "replace"))
    tamper.set_defaults(make=lambda a: ("motor", SimBoard(action="tamper", arg=a.how)))
    verb("key", help="turn the mechanical key in the cylinder (L-18)").set_defaults(
        make=lambda a: ("motor", SimBoard(action="key"))
    )
    clock = verb("clock", help="the simulated real-time clock: lost, or moved by seconds")
    clock.add_argument("how", choices=("lost", "system", "offset"))
    clock.add_argument("seconds", nargs="?", type=float, default=0.0)
    clock.set_defaults(local=set_clock)
    finger = verb("finger", help="put a simulated finger on the sensor (for sim_touch_s)")
    finger.add_argument("who", help="the finger's identity, e.g. alice-thumb; '' lifts it")
    finger.add_argument(
        "--quality",
        action="append",
        default=[],
        choices=FINGER_QUALITIES,
        help="per image taken, in order; the last stays (default good)",
    )
    finger.set_defaults(
        make=lambda a: ("biometric", SimPresent(modality="finger", who=a.who, qualities=a.quality))
    )
    palm = verb("palm", help="hold a simulated palm over the palm-vein camera")
    palm.add_argument("who", help="the palm's identity; '' takes it away")
    palm.add_argument("--quality", action="append", default=[], choices=PALM_QUALITIES)
    palm.add_argument("--distance", type=float, default=0.0, metavar="CM")
    palm.add_argument("--child", action="store_true", help="a child's hand (about 10 cm)")
    palm.set_defaults(
        make=lambda a: (
            "biometric",
            SimPresent(
                modality="palm",
                who=a.who,
                qualities=a.quality,
                distance_cm=a.distance,
                child=a.child,
            ),
        )
    )
    face = verb("face", help="show photos to the simulated camera, one per frame")
    face.add_argument("images", nargs="*", metavar="IMAGE")
    face.add_argument(
        "--attack", choices=FACE_ATTACKS, default="",
        help="a presentation attack made of the photos: photos (held up and switched, "
        "lined up), bent (the first photo's print curved round a cylinder and turned), "
        "screen (the photos on a display: gamma, moire)",
    )  # fmt: skip
    face.add_argument(
        "--video", metavar="DIR", help="a folder of a video's frames, shown once each in order"
    )
    face.add_argument(
        "--ir", action="append", default=[], metavar="IMAGE",
        help="the IR camera's frame for each image, in order ('' for a dark one)",
    )  # fmt: skip
    face.add_argument(
        "--still", action="store_true", help="one frame per photo, not a few moving ones"
    )
    face.set_defaults(
        make=lambda a: (
            "face",
            SimFace(
                images=[str(Path(i).resolve()) for i in ([a.video] if a.video else a.images)],
                ir=[str(Path(i).resolve()) if i else "" for i in a.ir],
                hold=not a.still,
                attack=a.attack,
                video=bool(a.video),
            ),
        )  # fmt: skip
    )
    module = verb("module", help="break or mend a simulated fingerprint or palm module")
    module.add_argument("modality", choices=MODALITIES)
    module.add_argument("fault", choices=MODULE_FAULTS)
    module.set_defaults(make=lambda a: ("biometric", SimModule(modality=a.modality, fault=a.fault)))
    cycle = verb("power-cycle", help="battery out and back in; --hold-set S for a factory reset")
    cycle.add_argument(
        "--hold-set", type=float, default=0.0, metavar="S",
        help="hold SET for S seconds as the power returns (5 or more: L-30's gesture)",
    )  # fmt: skip
    cycle.add_argument(
        "--timeout", type=float, metavar="S",
        help="seconds for the mesh to be healthy again (default: mesh.up_timeout_s, 20)",
    )  # fmt: skip
    cycle.set_defaults(local=power_cycle)
    battery = verb("battery", help="set the simulated battery level")
    battery.add_argument("percent", type=float)
    battery.add_argument("--usb-c", action="store_true", help="emergency supply plugged in")
    battery.set_defaults(local=set_battery)


def run(layout: Layout, args: argparse.Namespace) -> int:
    if hasattr(args, "local"):  # parts of the simulated world that are files, not services
        return args.local(layout, args)
    peer, message = args.make(args)
    return send(layout, peer, message, args)


def send(layout: Layout, peer: str, message: Message, args: argparse.Namespace) -> int:
    with Bus(layout, "cli") as bus:
        reply = bus.client(peer).request(message, timeout=5.0)
    if reply is None:
        return answer(args, False, "no-answer", f"{peer} did not answer (is the lock up?)")
    body = reply.body
    if isinstance(body, Done) and not body.ok:
        return answer(args, False, body.reason, body.detail)
    return answer(args, True)


def set_clock(layout: Layout, args: argparse.Namespace) -> int:
    SimRtc(layout.data / "sim-rtc.json").set(offset_s=args.seconds, lost=args.how == "lost")
    return answer(args, True)


def power_cycle(layout: Layout, args: argparse.Namespace) -> int:
    """Every process stops, as with the battery out; SET is held (or not) as it returns.
    Returns once SET is let go, and after L-30's gesture once the panel asks for ok: an
    ok typed at once then resets, as it would at the door (issue 15)."""
    rpc = supervisor_rpc.proxy(layout.run)
    try:
        rpc.supervisor.stopAllProcesses()
    except OSError:
        return answer(args, False, "not-running", f"no lock is running at {layout.data}")
    board = layout.data / "sim-board.json"
    world = json.loads(board.read_text()) if board.exists() else {}
    world["set_held_s"] = args.hold_set
    tmp = board.with_suffix(".tmp")
    tmp.write_text(json.dumps(world))
    tmp.replace(board)
    rpc.supervisor.startAllProcesses()
    powered = time.monotonic()
    limit = args.timeout or configuration.load(layout.config_file)["mesh"]["up_timeout_s"]
    unhealthy = mesh.wait_healthy(layout, limit)
    if unhealthy:
        why = f"not healthy after the power came back: {unhealthy}"
        return answer(args, False, "unhealthy", why)
    if args.hold_set > 0:
        why = wait_for_release(layout, args.hold_set, powered)
        if why:
            return answer(args, False, "unhealthy", why)
    return answer(args, True)


def wait_for_release(layout: Layout, hold_s: float, powered: float) -> str:
    """Until SET is let go and the panel has taken the gesture (or its lack); "" or why not.
    The panel's mode is asked, not its prompt heard: a slow start may be past the prompt."""
    reset_hold_s = configuration.load(layout.config_file)["motor"]["reset_hold_s"]
    deadline = max(powered + hold_s, time.monotonic()) + RELEASE_GRACE_S  # a slow start too
    with Bus(layout, "cli") as bus:
        while time.monotonic() < deadline:
            motor = mesh.service_status(bus, "motor", timeout=0.5)
            released = motor is not None and motor.detail.get("set_button") == "released"
            if released and hold_s < reset_hold_s:
                return ""
            keypad = mesh.service_status(bus, "keypad", timeout=0.5)
            if released and keypad is not None and keypad.detail.get("mode") == "factory-reset":
                return ""
            time.sleep(0.05)
    return f"SET was held {hold_s:g} s, but the panel did not ask for ok in time"


def set_battery(layout: Layout, args: argparse.Namespace) -> int:
    percent, usb_c = args.percent, args.usb_c
    if not 0 <= percent <= 100:
        answer(args, False, "bad-value", "battery percent must be 0 to 100")
        return 2
    path = layout.data / "sim-power.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"battery_percent": percent, "usb_c": usb_c}))
    tmp.replace(path)
    return answer(args, True)
