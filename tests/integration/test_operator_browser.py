"""The operator dashboard in a real Chromium, against real server processes and real
aiortc customers streaming real clips from ../shared/data.

One server plays a scripted affect sequence (calm, then angry from 5 s); the other
runs the shipped affect model on a real angry performance.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from test_operators_api import PASSWORD, SCRIPT, serve_with_operator

from avatar_agent.testing.client import CustomerClient

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")


class Customer:
    """An aiortc customer on its own event loop thread, so the sync playwright test can
    drive the dashboard while the call runs."""

    def __init__(self, url: str, media: Path, consent: bool) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = CustomerClient(url, media, consent=consent)
        self.http: aiohttp.ClientSession | None = None

    def _run(self, coro: Any, timeout: float = 30) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def connect(self) -> str:
        async def go() -> str:
            self.http = aiohttp.ClientSession()
            return await self.client.connect(self.http)
        return str(self._run(go()))

    def events(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in list(self.client.rx.events) if e.get("type") == type_]

    def close(self) -> None:
        async def go() -> None:
            await self.client.close()
            if self.http is not None:
                await self.http.close()
        try:
            self._run(go())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


@pytest.fixture(scope="module")
def scripted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("ops-scripted")
    (tmp / "script.yaml").write_text(SCRIPT)
    yield from serve_with_operator(tmp, f"affect:\n  script: {tmp / 'script.yaml'}\n"
                            "escalation:\n  rule: hold\n  anger_threshold: 70\n  hold_s: 2\n"
                            "  on_unanswered: false\n")  # affect alerts, not words


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    # Thresholds from what the shipped model reaches on ANGRY_CLIP streamed live (see
    # test_a_real_angry_clip_escalates, which prints every 4th value): at most about 11
    # in the neutral part, 48-80 in the angry part; so >= 40 held 1 s fires on the
    # anger and only there.
    tmp = tmp_path_factory.mktemp("ops-model")
    yield from serve_with_operator(tmp, "escalation:\n  rule: hold\n"
                            "  anger_threshold: 40\n  hold_s: 1\n"
                            "  on_unanswered: false\n"  # affect alerts, not words
                            "operators:\n  show_customer_video: true\n")


@pytest.fixture(scope="module")
def angry_clip(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """W009 (MEAD, video only) neutral then angry, with RAVDESS actor 02 (held out from the
    shipped weights) speaking neutral then angry: 7.2 s neutral speech, then anger."""
    mead = data_dir / "face_video" / "mead"
    voice = data_dir / "speech_emotion" / "ravdess" / "Actor_02"
    video = [mead / "W009_front_neutral_level1_001.mp4"] * 2 + \
        [mead / "W009_front_angry_level3_001.mp4"] * 4
    audio = sorted(voice.glob("03-01-01-01-*.flac"))[:3] + \
        sorted(voice.glob("03-01-05-02-*.flac")) * 2
    out = tmp_path_factory.mktemp("angry") / "angry.mp4"
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    for f in video + audio:
        args += ["-i", str(f)]
    nv, na = len(video), len(audio)
    graph = "".join(f"[{i}:v]scale=256:256,fps=25,setsar=1[v{i}];" for i in range(nv))
    graph += "".join(f"[v{i}]" for i in range(nv)) + f"concat=n={nv}:v=1:a=0[v];"
    graph += "".join(f"[{nv + i}:a]aresample=48000[a{i}];" for i in range(na))
    graph += "".join(f"[a{i}]" for i in range(na)) + f"concat=n={na}:v=0:a=1[a]"
    args += ["-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-c:v", "libx264",
             "-pix_fmt", "yuv420p", "-c:a", "aac", str(out)]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}")
    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--autoplay-policy=no-user-gesture-required"]
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    context.close()
    assert not errors, errors


def wait_js(page: Page, expr: str, what: str, timeout_s: float, arg: Any = None) -> None:
    try:
        page.wait_for_function(expr, arg=arg, timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        state = page.evaluate("() => JSON.stringify({...window.operatorView, calls: "
                              "Object.keys(window.operatorView.calls), alerts: "
                              "window.operatorView.alerts.map((a) => a.reason)})")
        pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}; view: {state}")


def log_in(page: Page, url: str) -> None:
    page.goto(url + "/operator")
    assert page.is_visible("#login") and not page.is_visible("#app")
    page.fill("#login-name", "alice")
    page.fill("#login-password", "not the password")
    page.click("#login-submit")
    page.wait_for_selector("#login-error", state="visible")
    assert "wrong name or password" in page.inner_text("#login-error")
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#app", state="visible")
    wait_js(page, "() => window.operatorView.wsOpen", "the live event socket", 10)


def open_call(page: Page, call_id: str) -> str:
    """Wait for the call's card in the live list and open the call; returns the card."""
    card = f'li.call[data-call-id="{call_id}"]'
    page.wait_for_selector(card, timeout=10_000)
    page.click(card)
    wait_js(page, "(id) => window.operatorView.selected === id", "the call to open", 5, call_id)
    return card


def test_operator_sees_a_live_call_its_chart_and_a_scripted_escalation(
    page: Page, scripted_server: tuple[str, Path], grid_clip: Path
) -> None:
    url, db = scripted_server
    log_in(page, url)
    customer = Customer(url, grid_clip, consent=True)
    try:
        call_id = customer.connect()
        card = open_call(page, call_id)
        assert "consented" in page.inner_text(card)
        # The chart grows with the live affect events (4 Hz), with no reload.
        wait_js(page, "() => window.operatorView.chartUpdates >= 4", "chart updates", 15)
        before = page.evaluate("window.operatorView.chartPoints")
        page.wait_for_timeout(1500)
        after = page.evaluate("window.operatorView.chartPoints")
        assert after >= before + 3, (before, after)
        assert page.locator("#chart canvas").count() >= 1
        assert page.evaluate("document.querySelector('#chart .u-over') !== null")
        # This server's config keeps the camera off the dashboard, whatever the consent.
        assert page.locator("video").count() == 0 and page.is_hidden("#camera")
        assert "not shown" in page.inner_text("#camera-note")
        assert page.evaluate("(h) => fetch(h).then((r) => r.status)",
                             f"/api/calls/{call_id}/video.mjpeg") == 404
        wait_js(page, "() => document.querySelector('#transcript li') !== null",
                "the greeting in the transcript", 15)
        assert "virtual support assistant" in page.inner_text("#transcript")

        # The script turns angry at 5 s: the policy fires, the alert shows and sounds.
        wait_js(page, "() => window.operatorView.alerts.length > 0", "the escalation alert", 30)
        alert = page.locator(f'.alert[data-call-id="{call_id}"]')
        assert alert.is_visible()
        assert page.evaluate("window.operatorView.beeps") >= 1
        assert page.evaluate("window.operatorView.alerts[0].context.curve.length") >= 10
        badge = page.inner_text(f"{card} .badge")
        assert badge in ("dissatisfied", "furious"), badge
        alert.locator("button.ack").click()
        wait_js(page, "() => window.operatorView.alerts.length === 0", "the alert to clear", 5)
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute("SELECT acknowledged_by, acknowledged_at FROM escalations "
                               "WHERE call_id = ?", (call_id,)).fetchall()
        finally:
            con.close()
        assert rows and rows[0][0] == "alice" and rows[0][1] is not None
        wait_js(page, "() => [...document.querySelectorAll('#events li')].some("
                "(li) => li.textContent.includes('escalation'))", "the escalation event", 5)

        # Takeover: the typed reply reaches the customer as speech.
        text = "A colleague here: I have your order in front of me and will fix it now."
        page.fill("#say-text", text)
        page.click("#say-send")
        wait_js(page, "() => document.getElementById('say-status').textContent.includes('will')",
                "the reply to be accepted", 5)
        deadline = time.monotonic() + 25
        while not any("colleague here" in e["text"] for e in customer.events("speech")
                      if e.get("event") == "start"):
            assert time.monotonic() < deadline, customer.events("speech")
            time.sleep(0.2)

        page.click("#end-call")
        page.wait_for_selector(card, state="detached", timeout=10_000)
    finally:
        customer.close()

    # Review: the ended call, its chart, plot and exports.
    page.click("#tab-review")
    item = f'#history li[data-call-id="{call_id}"]'
    page.wait_for_selector(item, timeout=5_000)
    page.click(item)
    wait_js(page, "() => window.operatorView.review && window.operatorView.review.points > 10",
            "the stored curve", 5)
    wait_js(page, "() => document.getElementById('review-plot').naturalWidth > 0", "the plot", 15)
    href = page.get_attribute("#export-csv", "href")
    assert href == f"/api/calls/{call_id}/export.csv"
    body = page.evaluate("(h) => fetch(h).then((r) => r.text())", href)
    assert body.startswith("record,t,arousal") and "takeover" in body
    doc = json.loads(page.evaluate(
        "(h) => fetch(h).then((r) => r.text())", f"/api/calls/{call_id}/export.json"))
    assert doc["call"]["end_reason"] == "operator" and len(doc["points"]) > 10


def test_a_real_angry_clip_escalates(
    page: Page, model_server: tuple[str, Path], angry_clip: Path
) -> None:
    url, _ = model_server
    log_in(page, url)
    customer = Customer(url, angry_clip, consent=True)
    try:
        call_id = customer.connect()
        open_call(page, call_id)
        # This server shows the camera of customers who agreed: the clip's 256x256 frames.
        wait_js(page, "() => document.getElementById('customer-video').naturalWidth === 256",
                "the customer's camera", 10)
        assert page.evaluate("window.operatorView.cameraShown")
        wait_js(page, "(id) => window.operatorView.alerts.some((a) => a.call_id === id)",
                "the escalation alert on the angry clip", 40, call_id)
        affect = customer.events("affect")
        curve = [(round(e["t"], 1), round(e["anger_index"], 1)) for e in affect]
        print(f"anger index over the call (t, index), every 4th: {curve[::4]}")
        print(f"peak anger index {max(i for _, i in curve):.1f}")
        alert = page.evaluate("(id) => window.operatorView.alerts.find((a) => a.call_id === id)"
                              ".reason", call_id)
        assert alert in ("sustained_anger", "furious")
        assert page.locator(f'.alert[data-call-id="{call_id}"]').is_visible()
        assert page.evaluate("window.operatorView.beeps") >= 1
        # It fired on the angry part, not on the neutral start (anger begins at 7.2 s).
        ctx_t = page.evaluate("(id) => { const a = window.operatorView.alerts.find("
                              "(x) => x.call_id === id); return a.context.curve.at(-1).t; }",
                              call_id)
        assert ctx_t >= 7.0, ctx_t
        # The speech embedding ran live, once a second of speech, in the analysis pool.
        metrics = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
        line = next(m for m in metrics.splitlines() if m.startswith(
            'avatar_agent_stage_seconds_count{stage="speech_embedding"}'))
        print(line)
        assert float(line.split()[-1]) >= 5
    finally:
        customer.close()
