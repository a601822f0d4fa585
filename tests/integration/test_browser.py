"""The customer page in a real Chromium against a real server process.

Chromium's fake capture devices play a real talking-face clip as the customer's camera
and microphone, so the whole path (consent, getUserMedia, SDP offer/answer, ICE, DTLS,
the data channel, avatar media) runs as it does for a customer, and the stored call
rows are checked in the server's SQLite file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from avatar_agent.core.config import Config
from media import make_wav, make_y4m

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("AVATAR_AGENT_CHROMIUM", "/usr/bin/chromium"))
GREETING = Config().tts.greeting
GREETING_FIRST_S = 4.0  # "Hello, I am the virtual support assistant." takes under 3 s

# Counts getUserMedia calls, so a test can prove the camera stays closed before "Start".
COUNT_GUM = """
window.__gumCalls = 0;
const md = navigator.mediaDevices;
if (md && md.getUserMedia) {
  const original = md.getUserMedia.bind(md);
  md.getUserMedia = (constraints) => {
    window.__gumCalls += 1;
    return original(constraints);
  };
}
"""

# Standard deviation of the luma of the avatar's current frame, drawn on a canvas.
PICTURE_SPREAD = """() => {
  const v = document.getElementById("avatar");
  const c = document.createElement("canvas");
  c.width = 160; c.height = 120;
  const g = c.getContext("2d");
  g.drawImage(v, 0, 0, c.width, c.height);
  const px = g.getImageData(0, 0, c.width, c.height).data;
  let n = 0, sum = 0, sq = 0;
  for (let i = 0; i < px.length; i += 4) {
    const y = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
    n += 1; sum += y; sq += y * y;
  }
  const mean = sum / n;
  return Math.sqrt(Math.max(0, sq / n - mean * mean));
}"""

VIDEO_PLAYING = """() => {
  const v = document.getElementById("avatar");
  return v.videoWidth > 0 && v.currentTime > 0 && !v.paused;
}"""


def _norm(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Tab:
    page: Page
    server_url: str
    server_log: Path
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def call_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.page.evaluate("() => ({...window.avatarCall})")
        return state

    def diagnose(self, what: str) -> str:
        try:
            state: object = self.call_state()
            status = self.page.inner_text("#status")
        except Exception as exc:  # the page may be gone; the log still helps
            state, status = f"<unavailable: {exc}>", "<unavailable>"
        log = ""
        if self.server_log.exists():
            log = self.server_log.read_text(errors="replace")[-3000:]
        return (
            f"{what}\nstatus: {status!r}\navatarCall: {state}\n"
            f"page errors: {self.errors}\nconsole (last 20): {self.console[-20:]}\n"
            f"server log tail:\n{log}"
        )

    def wait_js(self, expression: str, what: str, timeout_s: float, arg: Any = None) -> None:
        try:
            self.page.wait_for_function(expression, arg=arg, timeout=timeout_s * 1000)
        except PlaywrightTimeout:
            pytest.fail(self.diagnose(f"timed out after {timeout_s:.0f} s waiting for {what}"))


@pytest.fixture(scope="session")
def fake_capture(tmp_path_factory: pytest.TempPathFactory, grid_clip: Path) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("capture")
    # The customer listens to the greeting's first sentence before talking (the file
    # loops, so they then talk every few seconds and barge in on the avatar).
    return (make_y4m(grid_clip, tmp / "camera.y4m"),
            make_wav(grid_clip, tmp / "mic.wav", lead_s=GREETING_FIRST_S))


@pytest.fixture(scope="module")
def browser(fake_capture: tuple[Path, Path]) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM} (set AVATAR_AGENT_CHROMIUM)")
    video, audio = fake_capture
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
        f"--use-file-for-fake-video-capture={video}",
        f"--use-file-for-fake-audio-capture={audio}",
    ]
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        yield b
        b.close()


def open_tab(browser: Browser, url: str, log: Path, **context: Any) -> Tab:
    """The customer page of the server at `url` in a fresh browser context (close it
    with `tab.page.context.close()`); getUserMedia calls, console and page errors are
    recorded. `context`: more options for the context (e.g. ignore_https_errors)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, **context)
    ctx.add_init_script(COUNT_GUM)
    page = ctx.new_page()
    t = Tab(page, url, log)

    def on_console(msg: ConsoleMessage) -> None:
        t.console.append(f"{msg.type}: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: t.errors.append(str(exc)))
    page.goto(url + "/")
    return t


@pytest.fixture
def tab(browser: Browser, live_server: Any) -> Iterator[Tab]:
    t = open_tab(browser, live_server.url, live_server.log)
    yield t
    t.page.context.close()


def _call_row(db: Path, call_id: str) -> tuple[Any, ...] | None:
    # Read-only, so the test can never lock or alter the server's database.
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        row: tuple[Any, ...] | None = con.execute(
            "SELECT id, started_at, ended_at, end_reason, consent_analysis FROM calls WHERE id = ?",
            (call_id,),
        ).fetchone()
        return row
    finally:
        con.close()


def _wait_ended_row(db: Path, call_id: str, timeout_s: float) -> tuple[Any, ...]:
    deadline = time.monotonic() + timeout_s
    row = None
    while time.monotonic() < deadline:
        row = _call_row(db, call_id)
        if row is not None and row[2] is not None:
            return row
        time.sleep(0.5)
    pytest.fail(f"call {call_id} not ended in the database after {timeout_s:.0f} s: {row}")


def _start_call(tab: Tab, consent: str) -> None:
    page = tab.page
    page.check(f'input[name="consent"][value="{consent}"]')
    assert page.is_enabled("#start")
    page.click("#start")


def _assert_call_works(tab: Tab) -> str:
    """Avatar video plays, the greeting is captioned; returns the call id."""
    page = tab.page
    tab.wait_js(VIDEO_PLAYING, "the avatar video to play", 10)
    before = float(page.evaluate("document.getElementById('avatar').currentTime"))
    page.wait_for_timeout(1200)
    after = float(page.evaluate("document.getElementById('avatar').currentTime"))
    assert after - before > 0.5, tab.diagnose(f"avatar video stalled: {before} -> {after}")
    width = page.evaluate("document.getElementById('avatar').videoWidth")
    assert width > 0
    # Chromium decodes the avatar's VP8 into a picture, not a blank or grey frame: the
    # drawn avatar against its room has strong contrast (a solid frame has none).
    spread = float(page.evaluate(PICTURE_SPREAD))
    assert spread > 20, tab.diagnose(f"the avatar video looks blank (luma spread {spread:.1f})")

    # The greeting is spoken, and captioned, sentence by sentence.
    first_words = _norm(GREETING).split(" ")[0]
    tab.wait_js(
        "(w) => window.avatarCall.captions.some((c) => c.includes(w))",
        "the first greeting caption", 10, first_words,
    )
    # The fake microphone starts talking after the first sentence and barges in, so only
    # that sentence is sure to be heard.
    tab.wait_js(
        """(g) => window.avatarCall.captions.join(" ").split(/\\s+/).join(" ").includes(g)""",
        "the greeting's first sentence to be captioned", 20, _norm(GREETING.split(". ")[0]),
    )
    transcript = _norm(page.inner_text("#transcript"))
    assert first_words in transcript
    state = tab.call_state()
    assert state["state"] == "in-call", tab.diagnose("call not in the in-call state")
    assert isinstance(state["callId"], str) and state["callId"]
    assert page.is_enabled("#hangup")
    return state["callId"]


def _hang_up(tab: Tab) -> None:
    page = tab.page
    page.click("#hangup")
    tab.wait_js("() => window.avatarCall.state === 'ended'", "the call to end", 10)
    assert "call ended" in page.inner_text("#status").lower()
    assert page.is_disabled("#hangup")
    # The page released the customer's camera and microphone.
    assert page.evaluate("document.getElementById('self-view').srcObject") is None


def test_disclosure_and_consent_gate_before_call(tab: Tab) -> None:
    page = tab.page
    title = page.locator("#disclosure-title")
    assert title.is_visible()
    assert "AI agent" in title.inner_text()
    text = _norm(page.inner_text(".disclosure"))
    for phrase in ("not a human", "facial expressions", "voice", "Nothing is recorded",
                   "say no", "What you say is transcribed"):
        assert phrase in text, f"disclosure lacks {phrase!r}"

    # The server substituted its config into the page.
    cfg = page.evaluate("JSON.parse(document.getElementById('agent-config').textContent)")
    assert cfg["greeting"] == GREETING
    assert cfg["iceServers"] == []

    assert page.is_disabled("#start")
    assert page.is_disabled("#hangup")
    assert page.evaluate("window.avatarCall.state") == "idle"
    assert page.evaluate("window.__gumCalls") == 0

    page.check('input[name="consent"][value="no"]')
    assert page.is_enabled("#start")
    page.check('input[name="consent"][value="yes"]')
    assert page.is_enabled("#start")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__gumCalls") == 0, "camera requested before Start"
    assert not tab.errors


def test_call_with_consent(tab: Tab, live_server: Any) -> None:
    _start_call(tab, "yes")
    assert tab.page.evaluate("window.__gumCalls") >= 1
    call_id = _assert_call_works(tab)
    # Our own camera is shown back to us.
    assert tab.page.is_visible("#self-view")
    _hang_up(tab)

    row = _wait_ended_row(live_server.db, call_id, 10)
    _, started_at, ended_at, reason, consent = row
    assert started_at is not None and ended_at is not None
    assert reason == "hangup"
    assert consent == 1
    assert not tab.errors


def test_call_without_consent(tab: Tab, live_server: Any) -> None:
    _start_call(tab, "no")
    call_id = _assert_call_works(tab)
    # Without consent the customer is still heard: their words join the transcript,
    # a list the keyboard can reach and scroll.
    tab.wait_js("() => document.querySelector('#transcript li.customer p') !== null",
                "the customer's words in the transcript", 25)
    mine = tab.page.locator("#transcript li.customer").first
    assert mine.locator(".who").inner_text().startswith("You")
    assert mine.locator("p").inner_text().strip()
    assert tab.page.get_attribute("#transcript", "tabindex") == "0"
    _hang_up(tab)

    row = _wait_ended_row(live_server.db, call_id, 10)
    assert row[3] == "hangup"
    assert row[4] == 0
    assert not tab.errors


def test_closing_the_tab_ends_the_call(tab: Tab, live_server: Any) -> None:
    _start_call(tab, "yes")
    tab.wait_js(
        "() => window.avatarCall.state === 'in-call'", "the call to connect", 10,
    )
    call_id = tab.call_state()["callId"]
    row = _call_row(live_server.db, call_id)
    assert row is not None and row[2] is None, f"call should be open: {row}"

    tab.page.close()
    row = _wait_ended_row(live_server.db, call_id, 35)
    assert row[3] != "hangup", "closing the tab is not a hang-up"


def test_crashed_tab_ends_the_call(tab: Tab, live_server: Any) -> None:
    """A page that vanishes without a goodbye (crash, lost network) still ends the call."""
    _start_call(tab, "no")
    tab.wait_js(
        "() => window.avatarCall.state === 'in-call'", "the call to connect", 10,
    )
    call_id = tab.call_state()["callId"]
    # A renderer crash skips pagehide, so nothing tells the server the customer left.
    # Chromium aborts the navigation to its crash URL; the crash event is what counts.
    with tab.page.expect_event("crash", timeout=10_000), contextlib.suppress(PlaywrightError):
        tab.page.goto("chrome://crash", timeout=5_000)
    row = _wait_ended_row(live_server.db, call_id, 35)
    assert row[3] != "hangup", "a crashed tab is not a hang-up"
