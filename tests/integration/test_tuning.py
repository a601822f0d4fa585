"""The tuning page against a real server process, in a real Chromium, with a real aiortc
customer in a live call: a tuner moves a slider and sees the avatar change, saves, the
call's cues follow within 2 s, a bad value is refused, undo restores the file exactly.
An operator without the role is refused everywhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from playwright.sync_api import Browser, Page
from test_operator_browser import Customer, browser  # noqa: F401  (fixture)

from avatar_agent.core.store import Store
from avatar_agent.operators.auth import hash_password
from tests.support.server import spawn_server, stop_server

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
LEAN = "#ctl-states-idle-lean"


@dataclass
class TuningServer:
    url: str
    persona: Path  # the persona file live calls use, a copy of the shipped one
    config: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TuningServer]:
    tmp = tmp_path_factory.mktemp("tuning")
    behaviors = tmp / "behaviors"
    shutil.copytree(REPO / "configs" / "behaviors", behaviors)
    extra = (f"avatar:\n  behavior: {behaviors / 'support.yaml'}\n"
             "operators:\n  token_secret: tuning-test-secret-0123456789abcdefghij\n")
    try:
        proc, url = spawn_server(tmp, REPO, config_yaml=extra)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        cfg = tmp / "config.yaml"
        res = subprocess.run(
            [sys.executable, "-m", "avatar_agent.cli", "operators", "add", "tina",
             "--role", "tuner", "--config", str(cfg)],
            input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, cwd=REPO)
        assert res.returncode == 0 and "(tuner)" in res.stdout, res.stderr
        # a plain operator, as `operators add` without --role makes one (straight into
        # the store: one CLI start is enough for the test)
        store = Store(f"sqlite:///{tmp / 'calls.db'}")
        try:
            assert store.add_operator("olly", hash_password(PASSWORD))
        finally:
            store.close()
        yield TuningServer(url, behaviors / "support.yaml", cfg)
    finally:
        stop_server(proc)


def login_cookie(url: str, name: str) -> str:
    req = urllib.request.Request(url + "/api/login", method="POST",
                                 data=json.dumps({"name": name, "password": PASSWORD}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        cookie = r.headers["Set-Cookie"]
    return str(cookie).split(";", 1)[0]


def call(url: str, method: str, path: str, cookie: str | None) -> tuple[int, str]:
    """Status and body of a request as the page would make it (same Origin, JSON body)."""
    headers = {"Content-Type": "application/json", "Origin": url}
    if cookie:
        headers["Cookie"] = cookie
    data = json.dumps({"changes": [{"path": "states.idle.lean", "value": 0.5}]}).encode() \
        if method == "POST" else None
    req = urllib.request.Request(url + path, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read() if r.headers.get_content_type() == "application/json" else b""
            return int(r.status), body.decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", "replace")


ROUTES = [("GET", "/api/tuning/sample.wav"), ("GET", "/api/tuning/personas"),
          ("GET", "/api/tuning/personas/support"),
          ("POST", "/api/tuning/personas/support/draft"),
          ("GET", "/api/tuning/personas/support/preview.mjpeg"),
          ("GET", "/api/tuning/personas/support/sheet.png"),
          ("POST", "/api/tuning/personas/support/save"),
          ("GET", "/api/tuning/personas/support/history"),
          ("POST", "/api/tuning/personas/support/undo")]


def test_an_operator_without_the_tuner_role_is_refused_everywhere(server: TuningServer) -> None:
    before = server.persona.read_bytes()
    olly = login_cookie(server.url, "olly")
    status, body = call(server.url, "GET", "/tuning", olly)
    assert status == 403 and "tuner" in body
    for method, path in ROUTES:
        status, body = call(server.url, method, path, olly)
        assert status == 403 and "needs the role" in body, (path, status, body)
        assert call(server.url, method, path, None)[0] == 401, path
    assert server.persona.read_bytes() == before
    # the dashboard itself still works for them, and offers no tuning link
    assert call(server.url, "GET", "/api/calls", olly)[0] == 200
    status, body = call(server.url, "GET", "/api/me", olly)
    assert status == 200 and json.loads(body) == {"name": "olly", "role": "operator"}
    status, body = call(server.url, "GET", "/api/me", login_cookie(server.url, "tina"))
    assert status == 200 and json.loads(body)["role"] == "tuner"


def preview_shot(page: Page) -> np.ndarray:
    png = page.locator("#preview").screenshot()
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA)


def head(img: np.ndarray) -> np.ndarray:
    return img[20:320, 170:470].astype(np.int16)  # hair, face and neck at any lean


def hair_area(img: np.ndarray) -> int:
    return int((head(img).sum(axis=2) < 180).sum())


def cues_lean(customer: Customer) -> float | None:
    cues = customer.events("cues")
    return float(cues[-1]["lean"]) if cues else None


def test_a_tuner_moves_the_lean_slider_saves_and_the_live_call_follows(
        browser: Browser, server: TuningServer) -> None:  # noqa: F811
    original = server.persona.read_bytes()
    customer = Customer(server.url, None, consent=False)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        customer.connect()
        deadline = time.monotonic() + 15
        while cues_lean(customer) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cues_lean(customer) == pytest.approx(0.1), customer.events("cues")[-1:]

        page.goto(server.url + "/tuning")
        page.fill("#login-name", "tina")
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_selector(LEAN, timeout=15_000)
        assert page.input_value("#persona-select") == "support"
        assert page.get_attribute(LEAN, "min") == "0" and page.get_attribute(LEAN, "max") == "1"
        assert "leaning in" in page.inner_text('.group[data-path="states.idle"]')
        # the preview streams the avatar, pinned to calm / idle
        page.wait_for_function("() => document.querySelector('#preview').naturalWidth === 640",
                               timeout=15_000)
        page.wait_for_timeout(800)
        a, b = preview_shot(page), None
        page.wait_for_timeout(400)
        b = preview_shot(page)
        idle_diff = float(np.abs(head(a) - head(b)).mean())

        page.fill(LEAN, "1")
        page.wait_for_timeout(1500)  # the draft reaches the stream; the spring settles
        c = preview_shot(page)
        lean_diff = float(np.abs(head(c) - head(b)).mean())
        print(f"head region mean |diff|: idle {idle_diff:.2f}, after lean 1.0 {lean_diff:.2f}; "
              f"hair pixels {hair_area(b)} -> {hair_area(c)}")
        assert lean_diff > max(3.0 * idle_diff, 2.0), (idle_diff, lean_diff)
        assert hair_area(c) > 1.1 * hair_area(b)
        assert server.persona.read_bytes() == original  # a draft is not a save

        page.click("#save")
        t_saved = time.monotonic()
        page.wait_for_function("() => document.querySelector('#status').textContent"
                               ".startsWith('Saved')", timeout=5000)
        while cues_lean(customer) != pytest.approx(1.0) and time.monotonic() < t_saved + 5:
            time.sleep(0.05)
        took = time.monotonic() - t_saved
        print(f"save -> live call's cues carry lean 1.0: {took:.2f} s")
        assert cues_lean(customer) == pytest.approx(1.0)
        assert took <= 2.0, took
        saved = server.persona.read_text()
        assert "    lean: 1\n" in saved and saved.startswith("# Support agent")
        assert saved.count("#") == original.decode().count("#")  # every comment kept
        check = subprocess.run([sys.executable, "-m", "avatar_agent.cli", "check-config",
                                str(server.persona)], capture_output=True, text=True,
                               timeout=60, cwd=REPO)
        assert check.returncode == 0, check.stdout + check.stderr

        refused = page.evaluate(
            """async () => {
                 const r = await fetch('/api/tuning/personas/support/save', {method: 'POST',
                   headers: {'Content-Type': 'application/json'},
                   body: JSON.stringify({changes: [{path: 'states.idle.lean', value: 5}]})});
                 return {status: r.status, body: await r.json()}; }""")
        assert refused["status"] == 400
        assert refused["body"]["field"] == "states.idle.lean"
        assert "between 0 and 1" in refused["body"]["error"]
        assert server.persona.read_text() == saved

        page.click("#undo")
        page.wait_for_function("() => document.querySelector('#status').textContent"
                               ".startsWith('Undid')", timeout=5000)
        assert server.persona.read_bytes() == original
        assert page.input_value(LEAN) == "0.1"
        history = page.inner_text("#history")
        assert "tina" in history and "states.idle.lean = 1" in history and "undid" in history

        # sound: the sample line the apologising mouth follows, played from the new
        # stream's first frame
        page.select_option("#state-select", "apologising")
        with page.expect_response("**/api/tuning/sample.wav") as wav:
            page.check("#sound")
        assert wav.value.status == 200 and wav.value.headers["content-type"] == "audio/wav"
        page.wait_for_function("() => document.querySelector('#preview').src"
                               ".includes('state=apologising')")
    finally:
        context.close()
        customer.close()
    assert not errors, errors


def test_the_pages_contact_sheet_is_what_the_cli_preview_writes(
        server: TuningServer, tmp_path: Path) -> None:
    tina = login_cookie(server.url, "tina")
    req = urllib.request.Request(server.url + "/api/tuning/personas/support/sheet.png",
                                 headers={"Cookie": tina})
    with urllib.request.urlopen(req, timeout=60) as r:
        page_png = r.read()
    out = tmp_path / "sheet.png"
    res = subprocess.run([sys.executable, "-m", "avatar_agent.cli", "preview", "--behavior",
                          str(server.persona), "--out", str(out)],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr
    from_page = cv2.imdecode(np.frombuffer(page_png, np.uint8), cv2.IMREAD_COLOR)
    from_cli = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert from_page is not None and from_page.shape == from_cli.shape
    assert np.array_equal(from_page, from_cli)
