"""The owner's app in a real browser (issue 13; L-16, L-17, L-31 to L-36): Debian's
Chromium, driven by Playwright at a phone's size, against a real mesh. Each walkthrough
keeps screenshots in tests/artifacts/ (app-*.png) for a person to look at."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Iterator

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    expect,
    sync_playwright,
)

from proto.board import Bolt
from proto.bus import Bus
from proto.owner import SettingSet
from tests.browserkit import (
    CHROMIUM,
    DESKTOP,
    PASSWORD,
    PHONE,
    PIN,
    app_url,
    claim_by_cli,
    error_line,
    launch,
    log_in,
    note_line,
    open_pairing,
    running_app,
    session_info,
    shoot,
    who,
)
from tests.meshkit import ADMIN_CODE, Lock, is_type

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"Debian's chromium is not at {CHROMIUM}: ./run-tests installs it with apt-get, "
        "which could not run here",
    ),
]

LIVE_S = 10_000  # ms: what the stream brings shows within this


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def lock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lock]:
    """One lock for the module's walkthroughs, set up with administrator 001."""
    with running_app(tmp_path_factory.mktemp("app") / "data") as lock:
        yield lock


@pytest.fixture(scope="module")
def url(lock: Lock) -> str:
    return app_url(lock)


@pytest.fixture(scope="module")
def other_lock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lock]:
    """A second lock, in its own data folder, claimed with its own password; its login
    throttle is the default one."""
    config = "[motor]\nlong_press_s = 0.5\n[gateway]\nport = 0\n"
    with running_app(tmp_path_factory.mktemp("other") / "data", config) as lock:
        claim_by_cli(lock, password="another lock's password", pin="2580")
        yield lock


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile: no cookies; a phone's screen, British dates, UTC."""
    ctx = browser.new_context(
        viewport=PHONE, locale="en-GB", timezone_id="UTC", device_scale_factor=2
    )
    yield ctx
    ctx.close()


def complaint(message: ConsoleMessage) -> str | None:
    """What the browser's console says went wrong: a script's error, a refusal of the
    lock's Content-Security-Policy; not the refusals the API answers (4xx), which the
    walkthroughs cause on purpose."""
    if message.type != "error" or message.text.startswith("Failed to load resource"):
        return None
    return message.text


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page whose script errors, and whatever its console complains of, fail the test."""
    page = context.new_page()
    failures: list[str] = []
    page.on("pageerror", lambda e: failures.append(str(e)))
    page.on("console", lambda m: failures.extend(filter(None, [complaint(m)])))
    yield page
    assert not failures, f"the page's script failed: {failures}"


@pytest.fixture
def owner(page: Page, lock: Lock, url: str) -> Page:
    """A page logged in as the owner (the lock claimed first if no test claimed it yet)."""
    if not session_info(url)["claimed"]:
        claim_by_cli(lock)
    log_in(page, url)
    return page


def go(page: Page, screen: str, heading: str) -> None:
    """To a screen by its tab."""
    page.locator("#tabs").get_by_role("link", name=heading, exact=True).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    assert page.url.endswith(f"#/{screen}")


def events_of(lock: Lock, kind: str) -> list[dict]:
    return json.loads(lock.cli("events", "--json", f"--kind={kind}").stdout)["items"]


def people_of(lock: Lock) -> dict[str, dict]:
    return {p["name"]: p for p in json.loads(lock.cli("people", "--json").stdout)["items"]}


def bolt_reached(lock: Lock, watch, state: str) -> None:
    watch.wait_for(lambda e: is_type(Bolt, state=state)(e) and e.sender == "motor")


def ensure_locked(lock: Lock, watch) -> None:
    """The bolt thrown (by the inside button) if an earlier walkthrough left it open."""
    if lock.status()["lock"]["bolt"] != "locked":
        lock.cli("sim", "button", "lock")
        bolt_reached(lock, watch, "locked")


# -- claiming, logging in ---------------------------------------------------------------------
def test_l17_the_app_claims_the_lock_in_pairing_mode_and_sets_the_password(
    page: Page, lock: Lock, url: str
) -> None:
    page.goto(url)
    if session_info(url)["claimed"]:  # claimed already by another walkthrough: claim again
        page.get_by_role("link", name="Claim the lock").click()
    expect(page.get_by_role("heading", name="Claim this lock")).to_be_visible()
    expect(page.locator("#tabs")).to_be_hidden()  # nothing else without a session
    open_pairing(lock)
    serial, code = who(lock)
    wrong = "000000" if code != "000000" else "111111"
    page.get_by_label("Serial number").fill(serial)
    page.get_by_label("Verification code").fill(wrong)
    for label, secret in (("Password", PASSWORD), ("App PIN", PIN)):
        page.get_by_label(label, exact=True).fill(secret)
        page.get_by_label(f"{label} again").fill(secret)
    page.get_by_role("button", name="Claim the lock").click()
    expect(error_line(page)).to_contain_text("wrong-code")  # the API's refusal, one line
    shoot(page, "claim-refused", whole=True)

    page.get_by_label("Verification code").fill(code)
    page.get_by_role("button", name="Claim the lock").click()
    expect(page.get_by_role("heading", name="Lock claimed")).to_be_visible()
    expect(error_line(page)).to_be_hidden()
    expect(page.locator("#cert-fingerprint")).to_have_count(0)  # no TLS on this lock
    shoot(page, "claimed")
    page.get_by_role("link", name="Go to Home").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    expect(page.locator("#tabs")).to_be_visible()
    assert events_of(lock, "paired")[0]["detail"] == f"serial {serial}"


def test_the_owner_logs_in_with_the_password_and_out_again(
    page: Page, lock: Lock, url: str
) -> None:
    if not session_info(url)["claimed"]:
        claim_by_cli(lock)
    page.goto(url)
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(error_line(page)).to_contain_text("wrong-password")
    shoot(page, "login-refused")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    expect(page.locator("#live")).to_have_text("live", timeout=LIVE_S)

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto(f"{url}/#/people")  # the screens stay shut without a session
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert page.evaluate("fetch('/api/home').then(r => r.status)") == 401


# -- Home, Unlock -----------------------------------------------------------------------------
def test_l31_home_updates_by_itself_when_the_door_opens(owner: Page, lock: Lock) -> None:
    page = owner
    expect(page.locator("#home-door")).to_have_text("Closed")
    # the power service reports every 10 s: a policy started after its first report waits
    expect(page.locator("#home-battery")).to_contain_text("%", timeout=2 * LIVE_S)
    expect(page.locator("#home-battery")).to_contain_text("V")
    expect(page.locator("#home-bluetooth")).not_to_be_empty()
    page.evaluate("window.notReloaded = true")
    lock.cli("sim", "door", "open")
    expect(page.locator("#home-door")).to_have_text("Open", timeout=LIVE_S)
    shoot(page, "home-door-open")
    lock.cli("sim", "door", "close")
    expect(page.locator("#home-door")).to_have_text("Closed", timeout=LIVE_S)
    lock.cli("sim", "battery", "10")  # L-28: below 25 % the low-battery alarm is raised
    expect(page.locator("#home-battery")).to_contain_text("10 %", timeout=LIVE_S)
    expect(page.locator("#home-alarms")).to_contain_text("Low battery", timeout=LIVE_S)
    expect(page.locator("#live-why")).to_contain_text("battery", timeout=LIVE_S)  # no video
    shoot(page, "home-battery-low")
    assert page.evaluate("window.notReloaded") is True  # the stream did it, not a reload
    lock.cli("sim", "battery", "80")
    expect(page.locator("img.live")).to_be_visible(timeout=LIVE_S)
    # L-31: the camera's frames are decoded in the page, not just asked for
    live = page.locator("img.live").element_handle()  # a function: the page's CSP forbids eval
    page.wait_for_function("img => img.naturalWidth > 0", arg=live, timeout=LIVE_S)
    shoot(page, "home", whole=True)
    page.set_viewport_size(DESKTOP)  # fine on a desktop too: tabs on top, two columns
    expect(page.locator("#tabs a").first).to_be_in_viewport()
    shoot(page, "home-desktop")


def test_l31_l27_a_jammed_bolt_shows_on_home_with_its_alarm(owner: Page, lock: Lock) -> None:
    page, watch = owner, lock.watcher()
    ensure_locked(lock, watch)
    expect(page.locator("#home-bolt")).to_have_text("Locked", timeout=LIVE_S)
    lock.cli("sim", "jam")  # the bolt blocked: the drive stops after travel_timeout_s
    try:
        lock.press("touch", *ADMIN_CODE, "ok")
        expect(page.locator("#home-bolt")).to_have_text("Jammed", timeout=LIVE_S)
        expect(page.locator("#home-alarms")).to_contain_text("Lock jammed", timeout=LIVE_S)
        shoot(page, "home-jammed")
    finally:
        lock.cli("sim", "free")
    lock.cli("sim", "button", "lock")
    bolt_reached(lock, watch, "locked")
    expect(page.locator("#home-bolt")).to_have_text("Locked", timeout=LIVE_S)
    expect(page.locator("#home-alarms")).to_have_text("No alarms", timeout=LIVE_S)
    watch.close()


def test_l32_remote_unlock_is_refused_while_off_then_done_with_the_pin(
    owner: Page, lock: Lock
) -> None:
    page, watch = owner, lock.watcher()
    ensure_locked(lock, watch)
    go(page, "settings", "Settings")
    switch = page.get_by_role("switch", name="Remote unlock from this app")
    if switch.is_checked():  # another walkthrough left it on: this one starts from off
        switch.click()
        expect(note_line(page)).to_contain_text("saved")
    go(page, "unlock", "Unlock")
    expect(page.locator("#remote-off")).to_be_visible()
    page.get_by_label("App PIN").fill(PIN)
    page.get_by_role("button", name="Unlock", exact=True).click()
    expect(error_line(page)).to_contain_text("remote-unlock-off: remote unlock is off")
    expect(page.locator("#unlock-bolt")).to_have_text("Locked")
    shoot(page, "unlock-refused")

    go(page, "settings", "Settings")
    page.get_by_role("switch", name="Remote unlock from this app").click()
    expect(note_line(page)).to_contain_text("saved")
    go(page, "unlock", "Unlock")
    expect(page.locator("#remote-off")).to_be_hidden()
    page.get_by_label("App PIN").fill("9999")
    page.get_by_role("button", name="Unlock", exact=True).click()
    expect(error_line(page)).to_contain_text("wrong-pin")
    page.get_by_label("App PIN").fill(PIN)
    page.get_by_role("button", name="Unlock", exact=True).click()
    expect(note_line(page)).to_contain_text("Unlock granted")
    bolt_reached(lock, watch, "unlocked")
    expect(page.locator("#unlock-bolt")).to_have_text("Unlocked", timeout=LIVE_S)
    shoot(page, "unlock-granted")
    page.get_by_role("button", name="Lock now").click()
    expect(page.locator("#unlock-bolt")).to_have_text("Locked", timeout=LIVE_S)
    granted = events_of(lock, "granted")[0]
    assert (granted["source"], granted["person"]) == ("app", "owner")
    watch.close()


# -- People, Visitors -------------------------------------------------------------------------
def person_card(page: Page, name: str):
    return page.locator("article.person").filter(has=page.get_by_role("heading", name=name))


def test_l33_a_person_is_added_with_a_validity_window_and_weekly_slots(
    owner: Page, lock: Lock
) -> None:
    page = owner
    go(page, "people", "People")
    expect(page.locator("article.person").first).to_be_visible()  # 001, made at the keypad
    page.get_by_label("Name", exact=True).fill("Bob")
    page.get_by_label("Passcode", exact=True).fill("135792")
    page.get_by_label("Passcode again").fill("135791")
    page.get_by_role("button", name="Add person").click()
    expect(error_line(page)).to_contain_text("differ")  # caught before it is sent
    page.get_by_label("Passcode again").fill("135792")
    page.get_by_role("button", name="Add person").click()
    expect(note_line(page)).to_contain_text("Added")
    bob = person_card(page, "Bob")
    expect(bob).to_contain_text("1 passcode")
    expect(bob).to_contain_text("Valid always")

    bob.get_by_role("button", name="Validity").click()
    bob.get_by_label("Valid from").fill("2030-01-01T08:00")
    bob.get_by_label("Valid until").fill("2029-12-31T08:00")
    bob.get_by_role("button", name="Add a weekly slot").click()  # Monday to Friday, 08-18
    slot = bob.locator("fieldset.slot").first
    slot.get_by_role("checkbox", name="Saturday").check()
    slot.get_by_label("From").fill("07:30")
    slot.get_by_label("Until").fill("19:00")
    shoot(page, "people-validity-editor")
    bob.get_by_role("button", name="Save validity").click()
    expect(error_line(page)).to_contain_text("must end after it starts")
    bob.get_by_label("Valid until").fill("2030-07-01T20:00")
    bob.get_by_role("button", name="Save validity").click()
    expect(note_line(page)).to_contain_text("Validity saved")
    expect(bob.locator(".validity")).to_contain_text("Mon–Sat 07:30–19:00")
    shoot(page, "people", whole=True)

    stored = people_of(lock)["Bob"]
    start = datetime(2030, 1, 1, 8, 0, tzinfo=timezone.utc).timestamp()
    end = datetime(2030, 7, 1, 20, 0, tzinfo=timezone.utc).timestamp()
    assert (stored["valid_start"], stored["valid_end"]) == (start, end)
    assert stored["slots"] == [[0b1111110, 7 * 60 + 30, 19 * 60]]  # DaysMask: bit 0 Sunday

    bob.get_by_role("button", name="Rename").click()
    bob.get_by_label("Name", exact=True).fill("Robert")
    bob.get_by_role("button", name="Save name").click()
    robert = person_card(page, "Robert")
    expect(robert).to_be_visible()
    robert.get_by_role("button", name="Delete").click()
    robert.get_by_role("button", name="Delete", exact=True).last.click()
    expect(person_card(page, "Robert")).to_have_count(0)
    assert "Robert" not in people_of(lock)


def test_l33_an_enrolment_at_the_door_is_followed_live(owner: Page, lock: Lock) -> None:
    page = owner
    lock.cli("people", "add", "Carol", "--code-stdin", input="864213\n")
    go(page, "people", "People")
    carol = person_card(page, "Carol")
    expect(carol).not_to_contain_text("fingerprint")
    carol.get_by_role("button", name="Enrol").click()
    carol.get_by_role("button", name="Fingerprint").click()
    steps = carol.get_by_role("log", name="Enrolment steps")
    expect(steps).to_contain_text("Place the finger on the sensor (capture 1)", timeout=LIVE_S)
    lock.cli("sim", "finger", "carol-thumb")
    expect(steps).to_contain_text("Lift the finger", timeout=LIVE_S)
    expect(steps).to_contain_text("(capture 2)", timeout=LIVE_S)
    lock.cli("sim", "finger", "carol-thumb")
    expect(steps).to_contain_text("Done: Fingerprint added", timeout=15_000)
    expect(carol).to_contain_text("1 fingerprint")
    shoot(page, "people-enrolled", whole=True)
    lock.cli("sim", "finger", "")  # the finger taken away
    assert people_of(lock)["Carol"]["fingerprints"] == 1


def test_l34_a_visitor_code_made_in_the_app_opens_at_the_keypad(owner: Page, lock: Lock) -> None:
    page, watch = owner, lock.watcher()
    ensure_locked(lock, watch)
    go(page, "visitors", "Visitors")
    page.get_by_label("Label").fill("cleaner")
    page.get_by_label("Passcode", exact=True).fill("583920")
    page.get_by_label("Passcode again").fill("583920")
    page.get_by_label("Valid until").fill("2099-01-01T18:00")
    page.get_by_label("Uses").fill("2")
    page.get_by_role("button", name="Make code").click()
    expect(note_line(page)).to_contain_text('Code "cleaner" made')
    cleaner = page.locator("article.visitor").filter(has_text="cleaner")
    expect(cleaner).to_contain_text("2 uses left")
    expect(cleaner).to_contain_text("until")

    lock.press("touch", *"583920", "ok")
    bolt_reached(lock, watch, "unlocked")
    page.reload()
    expect(cleaner).to_contain_text("1 use left")
    shoot(page, "visitors", whole=True)
    assert events_of(lock, "granted")[0]["detail"] == "visitor cleaner"
    lock.cli("sim", "button", "lock")
    bolt_reached(lock, watch, "locked")

    cleaner.get_by_role("button", name="Delete").click()
    cleaner.get_by_role("button", name="Delete", exact=True).last.click()
    expect(page.locator("article.visitor").filter(has_text="cleaner")).to_have_count(0)
    watch.close()


def shown_rows(page: Page, field: str) -> list[str]:
    """A data- attribute of each event row the page shows, top to bottom."""
    return page.eval_on_selector_all("li.event", f"rows => rows.map(r => r.dataset.{field})")


# -- Events -----------------------------------------------------------------------------------
def test_l23_l35_the_doorbell_shows_live_in_events_with_its_snapshot(
    owner: Page, lock: Lock
) -> None:
    page = owner
    lock.cli("sim", "battery", "80")  # enough for video (L-28): a snapshot is taken
    go(page, "events", "Events")
    expect(page.locator("li.event").first).to_be_visible()
    lock.press("touch", "bell")
    rung = page.locator("li.event[data-kind=doorbell]").first
    expect(rung).to_be_visible(timeout=LIVE_S)
    snapshot = rung.locator("img.snapshot")
    expect(snapshot).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=snapshot.element_handle()
    )
    assert page.locator("li.event").first.get_attribute("data-kind") == "doorbell"  # newest
    shoot(page, "events-doorbell")


def test_l35_events_are_filtered_and_paged_back_over_a_thousand_rows(
    owner: Page, lock: Lock
) -> None:
    page = owner
    with Bus(lock.layout, "cli") as bus:  # the owner's key: a thousand changes, a row each
        policy = bus.client("policy")
        for i in range(1000):
            answer = policy.request(SettingSet(name="volume", value=str(i % 4)), timeout=5.0)
            assert answer is not None and answer.body.ok
    newest = json.loads(lock.cli("events", "--json", "--limit=1").stdout)["items"][0]["seq"]
    go(page, "events", "Events")
    rows = page.locator("li.event")
    expect(rows).to_have_count(50)  # one page
    while page.locator("#older").is_visible():  # scrolled to the end, the next page comes
        shown = rows.count()
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function(
            "n => document.querySelectorAll('li.event').length > n"
            " || document.getElementById('older').hidden",
            arg=shown,
            timeout=LIVE_S,
        )
    expect(rows).to_have_count(newest)
    seqs = [int(seq) for seq in shown_rows(page, "seq")]
    assert seqs == list(range(newest, 0, -1))  # newest first, each row once, none missing
    shoot(page, "events-paged")

    page.locator("details.filter-card summary").click()
    page.get_by_label("Kind").fill("person-added")
    page.get_by_role("button", name="Filter").click()
    expect(rows.first).to_have_attribute("data-kind", "person-added")
    assert set(shown_rows(page, "kind")) == {"person-added"}
    page.get_by_label("Kind").fill("")
    page.get_by_label("Person").select_option("001")
    page.get_by_role("button", name="Filter").click()
    expect(rows.first).to_have_attribute("data-person", "001")
    assert set(shown_rows(page, "person")) == {"001"}
    shoot(page, "events-filtered")
    page.get_by_label("Person").select_option("")
    page.get_by_label("Since").fill("2099-01-01T00:00")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No events match.")).to_be_visible()


# -- Settings ---------------------------------------------------------------------------------
def test_l36_a_setting_is_changed_and_the_audit_is_shown(owner: Page, lock: Lock) -> None:
    page = owner
    go(page, "settings", "Settings")
    expect(page.locator("#audit-result")).to_contain_text("intact", timeout=LIVE_S)
    page.get_by_label("Volume").select_option(label="Low")
    expect(note_line(page)).to_contain_text("Volume: saved")
    delay = page.get_by_label("Auto-lock delay")
    delay.fill("0")
    delay.press("Tab")  # the change is saved as the field is left
    expect(error_line(page)).to_contain_text("bad-value")  # the lock's refusal, one line
    expect(delay).to_have_value("30")  # back to what the lock keeps
    page.get_by_role("button", name="Release the lockout").click()
    expect(note_line(page)).to_contain_text("Lockout released")
    shoot(page, "settings", whole=True)
    items = json.loads(lock.cli("settings", "--json").stdout)["items"]
    settings = {s["name"]: s["value"] for s in items}
    assert settings["volume"] == 1 and settings["auto_lock_delay_s"] == 30


# -- what the app refuses ---------------------------------------------------------------------
def test_wrong_passwords_lock_the_login(page: Page, other_lock: Lock) -> None:
    url = app_url(other_lock)
    page.goto(url)
    button = page.get_by_role("button", name="Log in")
    for _ in range(5):
        page.get_by_label("Password").fill("guessing again")
        button.click()
        expect(button).to_be_enabled()  # answered
        expect(error_line(page)).to_contain_text("wrong-password")
    page.get_by_label("Password").fill("another lock's password")  # the right one, too late
    button.click()
    expect(error_line(page)).to_contain_text("locked-out")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    shoot(page, "login-locked-out")
    assert events_of(other_lock, "app-login-locked")


def test_a_session_from_another_locks_data_folder_is_refused(
    owner: Page, lock: Lock, other_lock: Lock
) -> None:
    page = owner  # logged in to the first lock: its cookie is in this browser
    other = app_url(other_lock)
    assert other != page.url.split("/#")[0]
    page.goto(other)  # the same host, another port: the browser sends the cookie there too
    assert page.context.cookies(other), "the first lock's cookie is not offered"
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.locator("#tabs")).to_be_hidden()
    assert page.evaluate("fetch('/api/home').then(r => r.status)") == 401
    shoot(page, "other-lock-refused")
    page.goto(app_url(lock))  # and the first lock still knows it
    expect(page.get_by_role("heading", name="Home")).to_be_visible()


SCREENS = [("home", "Home"), ("unlock", "Unlock"), ("people", "People"),
           ("visitors", "Visitors"), ("events", "Events"), ("settings", "Settings")]  # fmt: skip
UNLABELLED = """() => [...document.querySelectorAll("input, select, button, a[href], img")]
    .filter(e => e.tagName === "IMG" ? !e.hasAttribute("alt") :
                 !(e.labels?.length || e.getAttribute("aria-label") ||
                   e.getAttribute("aria-labelledby") || e.textContent.trim()))
    .map(e => e.outerHTML.slice(0, 80))"""


def test_every_control_of_every_screen_has_a_name(owner: Page, url: str) -> None:
    """Accessible markup: each field has its label, each button and link its words, and
    the screens are reached from the tabs (on a desktop too)."""
    page = owner
    for width in (PHONE, DESKTOP):
        page.set_viewport_size(width)
        for screen, heading in SCREENS:
            go(page, screen, heading)
            page.wait_for_load_state()
            assert page.evaluate(UNLABELLED) == [], screen
            expect(page.locator(f'#tabs a[aria-current="page"][href="#/{screen}"]')).to_be_visible()
            if width == DESKTOP:
                shoot(page, f"{screen}-desktop")
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{url}/#/claim")
    assert page.evaluate(UNLABELLED) == []


def test_the_app_is_served_by_the_lock_alone(page: Page, url: str) -> None:
    """Offline: every file the page loads comes from the lock itself."""
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(url) else outside.append(r.url))
    page.goto(url)
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert not outside, outside
