"""The lock's configuration: embedded defaults, overridden by lockmesh.toml in the data dir."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from proto.layout import OPTIONAL, SERVICES

# Every number of the spec lives here, not in code. Override in DATA/lockmesh.toml.
DEFAULTS: dict[str, dict[str, Any]] = {
    "mesh": {
        "heartbeat_s": 0.5,
        "request_timeout_s": 2.0,
        "stuck_after_s": 3.0,  # no beat for this long: the watchdog has the service restarted
        "max_message_bytes": 65536,
        "up_timeout_s": 20.0,
        # parts this lock is made without, their services not run: "face" (no camera),
        # "biometric" (no fingerprint or palm module), "ble" (no radio), "gateway" (no
        # owner app), "bridge" (no Home Assistant). The rest are the lock: never left out.
        "without": [],
    },
    "board": {
        "kind": "sim",  # "sim": gpiozero MockFactory and simulated parts; "pi": lgpio
        # how the simulated bolt is mounted (L-12): "follow" the opening direction chosen
        # (menu 4, first start); "right" or "left" fixed, where the other choice jams (L-27)
        "sim_handing": "follow",
        "sim_travel_s": 0.3,  # how long the simulated bolt takes end to end
    },
    "pins": {  # BCM numbers
        "motor_a": 17,
        "motor_b": 27,
        "bolt_locked": 22,
        "bolt_unlocked": 23,
        "door": 24,
        "set_button": 25,
        "lock_button": 5,
        "tamper": 6,  # closed to ground while the front panel is in place
        "key_cylinder": 13,  # closed to ground while the mechanical key turns the cylinder
        "siren": 19,
        "usb_c": 26,  # high while the USB-C emergency supply is plugged in
        "led_green": 16,  # the rear panel's status LEDs (hw/leds.py)
        "led_red": 20,
    },
    "motor": {
        "travel_timeout_s": 2.0,  # a drive that takes longer is a jam (L-27)
        "long_press_s": 3.0,
        "reset_hold_s": 5.0,  # SET held this long from power-up: the factory reset (L-30)
        "reset_confirm_s": 60.0,  # ✓ must follow the gesture within this
        "min_drive_percent": 3.0,  # below this, on battery alone, the motor refuses to drive
        "chime_beeps": 2,  # the doorbell's chime on the buzzer (L-23): beeps, on and off times
        "chime_on_s": 0.15,
        "chime_off_s": 0.1,
    },
    "keypad": {
        "sleep_after_s": 20.0,  # L-11
        "max_digits": 20,  # L-19
        # prompts spoken (L-21 mutes them): "none", "espeak-ng", or a folder of PROMPT_ID.wav
        "voice": "none",
    },
    "biometric": {  # issue 7: the modules' serial ports; "sim": simulated, "none": not fitted
        "fingerprint_port": "sim",
        "palm_port": "sim",
        "finger_password": 0,  # the R503's handshake password
        "idle_poll_s": 0.1,  # how often the idle fingerprint sensor is looked at
        "retry_s": 1.0,  # a faulty module is tried again this often
        "lift_timeout_s": 10.0,
        "enrol_timeout_s": 30.0,  # per placement or palm capture (L-15)
        "enrol_retries": 4,  # poor placements re-asked before giving up
        "palm_awake_s": 10.0,  # a touch or a person at the door: palms looked for this long
        "sim_touch_s": 1.5,  # a simulated finger or palm stays this long, then goes
        "sim_seed": 0,
    },
    "face": {  # issue 6
        "camera": "sim",  # "sim" (lockmesh sim face), "picamera2", "v4l2:/dev/video0", "none"
        "min_face": 60,  # px: smaller faces are too far from the door to matter
        "threads": 1,  # onnxruntime threads: one leaves a core for the rest of the lock
        "nice": 10,  # the face process yields the CPU to the panel and the motor
        "embedder": "dlib",  # or the path of an InsightFace-style ONNX model (arcface.py)
        "threshold": 0.5,  # Euclidean descriptor distance: at most this is the same person
        "liveness": "parallax",  # or "none": the unlock needs only a match
        # eye distances the nose must leave the plane of the track's first frame (about 25
        # degrees of head turn): a print bent round a cylinder reached 0.37 (issue 14)
        "parallax_threshold": 0.25,
        "parallax_confirmations": 2,  # frames that must each show it against the first
        # eye distances the nose tip must stand out of the face in every direction, on
        # those frames (services/face/relief.py): a print bent round a cylinder is a ridge
        # and reached 0.032 in 80 simulated; a live face 0.05-0.15. null: not checked
        "relief_min_bulge": 0.05,
        # issue 14: the frames of one presentation form a track only while they stay
        # continuous (services/face/track.py); liveness is proven within one track
        "track": {
            "fps": 30.0,  # the camera's frame rate: motion is bounded per frame period
            "max_gap_s": 0.25,
            "max_move": 0.6,  # eye distances a landmark moves per frame period
            "min_iou": 0.3,
            "max_descriptor_step": 0.45,
            "min_face_correlation": 0.65,
            "min_context_correlation": 0.45,
            "max_parallax_step": 0.25,
            "max_surprise": 2.0,  # the last three as shares of their bounds, summed
        },
        "antispoof_model": "",  # an ONNX anti-spoofing model, run when set
        "antispoof_threshold": 0.5,
        "ir_check": False,  # the camera gives IR frames: a face must show there too
        "enrol_poses": ["straight", "up", "down", "left", "right"],  # L-15, in order
        "enrol_timeout_s": 30.0,  # per pose
        "enrol_min_px": 100,  # a narrower face is too far for a good template: come closer
        "presentation_gap_s": 2.0,  # frames further apart are two presentations
        "sim_hold_frames": 4,  # frames of one photo held up to the simulated camera
        "live_fps": 12.0,  # the app's live view (issue 13): frames a second while watched
        "live_quality": 70,  # its JPEG quality (a 640x480 frame: about 30-60 KB)
        "snapshots_kept": 200,  # the doorbell's snapshots (L-23): the newest kept, older deleted
    },
    "enrol": {  # issue 11: policy's ticket for one capture, from the owner or the menu
        "ticket_s": 300.0,  # long enough for five face poses of enrol_timeout_s each
    },
    "alarms": {"door_ajar_s": 60.0, "tamper_siren_s": 60.0},  # L-29
    "passcode": {"min_digits": 6, "max_digits": 10},  # L-4
    "capacity": {  # L-3
        "lock_passcodes": 50,
        "lock_faces": 50,
        "lock_palms": 50,
        "lock_fingerprints": 50,
        "person_passcodes": 1,
        "person_faces": 3,
        "person_palms": 2,
        "person_fingerprints": 5,
    },
    "lockout": {  # L-20; failures and duration_s are the owner's settings' defaults
        "enabled": True,
        "failures": 5,
        "window_s": 300.0,
        "duration_s": 180.0,
        "daily_budget": 20,  # issue 15: codes wrong entries tested in any 24 h (a 20-digit
        # entry tests 15 six-digit ones, L-19); reaching it trips a lockout
        "max_s": 86400.0,  # each trip doubles the lockout, to this, till a day without one
        "siren_s": 10.0,  # entering a lockout sounds the siren this long (L-20, L-29)
        "factor_window_s": 30.0,  # a multi-factor attempt's credentials within this (issue 15)
    },
    "clock": {"timezone": "UTC", "source": "system"},  # "sim": the simulated board's RTC
    "power": {
        "report_every_s": 10.0,
        "low_percent": 25.0,
        "video_min_percent": 20.0,
        "i2c_bus": 1,  # the MAX17048 gauge's bus on the Pi
    },
    "pairing": {  # L-17: SET held opens it; the owner's app claims the lock meanwhile
        "window_s": 180.0,
        "max_failures": 5,  # wrong serial or code this often: the window closes
    },
    "account": {  # issue 13: the owner app's password and PIN, as policy keeps them
        "failures": 5,  # wrong passwords (or, counted apart, wrong PINs) within window_s
        "window_s": 300.0,
        "duration_s": 180.0,  # ... lock app logins (or remote unlock) for this long
        "pin_lockout_max_s": 86400.0,  # each PIN lockout since a right PIN doubles, to this
        # argon2id (RFC 9106) at OWASP's minimum: 19 MiB, 2 passes, 1 lane (a Pi's budget)
        "argon2_memory_kib": 19456,
        "argon2_time_cost": 2,
    },
    "doorbell": {"snapshot_timeout_s": 1.0},  # L-23: the face service's picture, or none
    "gateway": {  # issue 13: the owner's app, served over HTTP (TLS on the Pi)
        "host": "127.0.0.1",  # the Pi deploy listens on the LAN: "0.0.0.0"
        "port": 8470,  # 0: any free port (tests); the URL served is in `lockmesh status`
        "tls": False,  # a self-signed device certificate made at first start, pinned by the app
        "names": [],  # host names the app is reached by, besides addresses and NAME.local
        "session_idle_s": 1800.0,  # a session unused this long ends
        "session_max_s": 43200.0,  # ... and any session this long after its login
        "login_attempts": 10,  # logins and claims from one address per login_window_s
        "login_window_s": 60.0,
    },
    "mqtt": {  # issue 17: Home Assistant over MQTT (services/bridge); off while url is ""
        "url": "",  # mqtt://host[:1883] or mqtts://host[:8883]
        "username": "",
        "password_file": "",  # 0600, relative to the data folder (Pi: work/lockmesh-bridge/)
        "ca_file": "",  # mqtts: the CA of the broker's certificate; "": the system's CAs
        "protocol": "3.1.1",  # or "5"
        "discovery_prefix": "homeassistant",
        "client_id": "",  # "": lockmesh-<serial>
        "device_name": "",  # HA's name of the device; "": lockmesh <serial>
        "keepalive_s": 30,  # a silent loss: the broker says the will within 1.5 x this
        "reconnect_min_s": 1,  # paho's back-off, doubled after each failed attempt
        "reconnect_max_s": 60,
        "session_expiry_s": 3600,  # MQTT 5: the broker keeps our session (queued commands)
        "command_max_age_s": 120.0,  # an unlock whose id is an older time is refused; 0: off
    },
    "ble": {  # issue 16: phone keys over Bluetooth LE (services/ble), verified by policy
        # "sim": the in-process radio the phone CLI reaches through `ble.sim`; "bluez":
        # BlueZ over D-Bus (the Pi deploy); "off": no radio
        "transport": "sim",
        "adapter": "",  # bluez: "" takes the first adapter BlueZ lists (hci0)
        "name": "lockmesh",  # the advertised local name
        "sim_mtu": 23,  # the simulated link's ATT MTU (23: before any MTU exchange)
        "answer_within_s": 10.0,  # policy: a challenge answered later is refused (late)
        "challenges_kept": 8,  # policy: nonces outstanding at once; the oldest goes first
        "state_every_s": 5.0,  # the radio's state told to policy (Home) at least this often
    },
    "keypad_hw": {  # the Pi board's keypad: MPR121 touch controllers (hw/mpr121.py)
        "i2c_bus": 1,
        "addresses": [0x5A, 0x5B],  # ADDR to ground, ADDR to VDD
        "keys": [  # per chip, in electrode order; "" for an unused electrode
            ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "back", "ok"],
            ["home", "bell"],
        ],
        "poll_s": 0.01,
        "debounce_s": 0.03,
        "hold_s": 3.0,  # 0 held this long mutes (L-21)
    },
}


class ConfigError(ValueError):
    """A lockmesh.toml entry that is unknown or of the wrong type."""


def load(path: Path | None) -> dict[str, dict[str, Any]]:
    config = copy.deepcopy(DEFAULTS)
    if path is None or not path.exists():
        return config
    with open(path, "rb") as f:
        overrides = tomllib.load(f)
    for section, values in overrides.items():
        if section not in config or not isinstance(values, dict):
            raise ConfigError(f"{path}: unknown section [{section}]")
        for key, value in values.items():
            _merge(config[section], section, key, value, path)
    left_out = config["mesh"]["without"]
    if not all(isinstance(name, str) and name in OPTIONAL for name in left_out):
        raise ConfigError(f"{path}: mesh.without may name only {', '.join(OPTIONAL)}")
    return config


def services(config: dict[str, dict[str, Any]]) -> tuple[str, ...]:
    """The services this lock runs, in SERVICES' order: all but mesh.without's."""
    return tuple(name for name in SERVICES if name not in config["mesh"]["without"])


def _merge(section: dict[str, Any], name: str, key: str, value: Any, path: Path) -> None:
    if key not in section:
        raise ConfigError(f"{path}: unknown setting {name}.{key}")
    default = section[key]
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not type(default):
        raise ConfigError(f"{path}: {name}.{key} must be {type(default).__name__}")
    section[key] = value
