"""Test support for the owner's app in a real browser: Debian's Chromium launched by
Playwright (never a downloaded browser), a lock whose app is claimed, and screenshots
kept in tests/artifacts/ for a person to look at."""

from __future__ import annotations

import json
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from playwright.sync_api import Browser, Page, Playwright, expect

from services.policy.secrets import identity, read_device_secret
from tests.appkit import open_pairing
from tests.meshkit import Lock, eventually, stop

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox: tests may run as root in a container; the rest keeps Chromium off the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PHONE = {"width": 390, "height": 844}  # a phone held upright, CSS pixels
DESKTOP = {"width": 1280, "height": 800}
PASSWORD, PIN = "correct horse battery", "4711"
# The lock: SET held half a second opens pairing; the app on any free port; logins and
# claims from the one address every test uses not throttled (the lockout test has its own)
CONFIG = "[motor]\nlong_press_s = 0.5\n[gateway]\nport = 0\nlogin_attempts = 1000\n"


UP_S = 60  # a mesh started beside a browser (and another mesh) on a loaded machine


@contextmanager
def running_app(data: Path, config: str = CONFIG) -> Iterator[Lock]:
    """meshkit.running's lock, set up with administrator 001, given UP_S to become healthy
    rather than the CLI's 20 s: under ./run-tests' workers a mesh beside Chromium took
    18 s just to start its processes."""
    lock = Lock(data)
    data.mkdir(parents=True, exist_ok=True)
    lock.layout.config_file.write_text(config)
    try:
        lock.cli("up", "--timeout", str(UP_S))
        lock.set_up()
        yield lock
    finally:
        stop(lock.layout)


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def app_url(lock: Lock) -> str:
    """Where the lock serves its app, as `lockmesh status` says (the gateway's detail)."""
    url = eventually(lambda: lock.status()["services"]["gateway"].get("detail", {}).get("url"))
    return str(url)


def session_info(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/api/session", timeout=10) as answer:
        return dict(json.load(answer))


def who(lock: Lock) -> tuple[str, str]:
    """Serial number and verification code, as system information announces them (L-16)."""
    found = identity(read_device_secret(lock.layout.data / "device.secret"))
    return found.serial, found.verification_code


def claim_by_cli(lock: Lock, password: str = PASSWORD, pin: str = PIN) -> None:
    """`lockmesh pair` in pairing mode, the code, password and PIN on stdin."""
    open_pairing(lock)
    serial, code = who(lock)
    typed = f"{code}\n{password}\n{pin}\n"
    lock.cli("pair", "--serial", serial, "--code-stdin", input=typed)


def shoot(page: Page, name: str, whole: bool = False) -> Path:
    """A screenshot kept as a test artefact (tests/artifacts/app-NAME.png): what the phone
    shows, or the whole screen on a phone as tall as it (the header and the tabs where
    they belong, which a full-page capture of a scrolled page does not keep)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"app-{name}.png"
    if not whole:
        page.screenshot(path=str(path))
        return path
    size = page.viewport_size or PHONE
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
    try:
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)
    return path


def log_in(page: Page, url: str, password: str = PASSWORD) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()


def error_line(page: Page):
    """The one line where the page shows a refusal."""
    return page.locator("#error")


def note_line(page: Page):
    return page.locator("#note")
