"""Past its CPU budget the server turns a new customer away kindly, in a real Chromium.

A server budgeted for one call (one core, one core per call): the first customer's
call runs; a second customer's page gets 503 with Retry-After and says the lines are
busy and when to try again, with the Start button ready; once the first call ends,
the second customer's retry connects.
"""

from __future__ import annotations

import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.integration.test_browser import (  # noqa: F401 (fixtures)
    VIDEO_PLAYING,
    _hang_up,
    _start_call,
    browser,
    fake_capture,
    open_tab,
)
from tests.support.server import spawn_server, stop_server

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
ONE_CALL = ("server:\n  call_cores: 1.0\n  cores: 1.0\n  utilisation: 1.0\n"
            "  joins_per_client_per_min: 600\n  max_calls_per_client: 20\n"
            "  max_half_open_per_client: 8\n")


@pytest.fixture(scope="module")
def one_line() -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory() as d:
        proc, url = spawn_server(Path(d), REPO, config_yaml=ONE_CALL)
        try:
            yield url, Path(d) / "server.log"
        finally:
            stop_server(proc)


def _metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    raise AssertionError(f"{name} missing from /metrics")


def test_over_capacity_customer_is_told_the_lines_are_busy(
    browser: Browser, one_line: tuple[str, Path],  # noqa: F811
) -> None:
    url, log = one_line
    assert _metric(url, "avatar_agent_call_capacity") == 1
    assert _metric(url, "avatar_agent_call_headroom") == 1
    first, second = open_tab(browser, url, log), open_tab(browser, url, log)
    try:
        _start_call(first, "yes")
        first.wait_js(VIDEO_PLAYING, "the first customer's avatar", 15)
        assert _metric(url, "avatar_agent_call_headroom") == 0

        # The API says so with a status a front or a script can act on...
        req = urllib.request.Request(url + "/api/join", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=5)
        assert refused.value.code == 503
        retry_after = int(refused.value.headers["Retry-After"])
        assert retry_after >= 1

        # ...and the page says it in words, as busy rather than broken.
        _start_call(second, "yes")
        second.wait_js("() => window.avatarCall.state === 'busy'", "the busy state", 15)
        status = second.page.inner_text("#status")
        assert "lines are busy" in status, second.diagnose("no busy message")
        assert re.search(rf"in about {retry_after} seconds", status), status
        assert second.page.get_attribute("#status", "data-state") == "busy"
        assert second.page.is_enabled("#start")  # they can try again
        assert not second.errors

        # A line frees up: the retry gets a call.
        _hang_up(first)
        second.page.wait_for_timeout(1500)  # the server lets the ended call go
        second.page.click("#start")
        second.wait_js(VIDEO_PLAYING, "the second customer's avatar after the retry", 20)
        _hang_up(second)
    finally:
        for t in (first, second):
            t.page.context.close()

