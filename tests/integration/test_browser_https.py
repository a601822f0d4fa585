"""The customer page over HTTPS through nginx, in a real Chromium: nginx (Debian's) with
the local cluster's front configuration and a self-signed certificate (accepted by this
test's browser context) in front of a real server; the call connects, the avatar plays
and speaks, and the hang-up goes through the front too."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser

from tests.integration.test_browser import (  # noqa: F401 (fixtures)
    Tab,
    _assert_call_works,
    _hang_up,
    _start_call,
    _wait_ended_row,
    browser,
    fake_capture,
    open_tab,
)
from tests.support.server import wait_healthy
from tests.support.services import free_port

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def https_front(live_server: Any) -> Iterator[str]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx not found (Debian package nginx)")
    root = Path(tempfile.mkdtemp(prefix="aa-front-"))
    root.chmod(0o755)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o777)  # nginx's workers run as nobody when started as root
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")],
                   check=True, capture_output=True)
    port = free_port()
    conf = (REPO / "scripts" / "cluster-nginx.conf.in").read_text()
    for key, value in (("@DIR@", str(root)), ("@LISTEN@", f"127.0.0.1:{port} ssl"),
                       ("@UPSTREAM@", f"        server {urlsplit(live_server.url).netloc};"),
                       ("@ROUTES@", ""),
                       ("@TLS@", f"        ssl_certificate {root}/cert.pem;\n"
                                 f"        ssl_certificate_key {root}/key.pem;")):
        conf = conf.replace(key, value)
    (root / "nginx.conf").write_text(conf)
    args = [nginx, "-c", str(root / "nginx.conf"), "-p", str(root), "-g", f"pid {root}/nginx.pid;"]
    subprocess.run(args, check=True, capture_output=True)
    url = f"https://127.0.0.1:{port}"
    try:
        # the self-signed certificate
        assert wait_healthy(url, 15, context=ssl._create_unverified_context()), "no front"
        yield url
    finally:
        subprocess.run([*args, "-s", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def https_tab(browser: Browser, https_front: str, live_server: Any  # noqa: F811
              ) -> Iterator[Tab]:
    t = open_tab(browser, https_front, live_server.log,
                 ignore_https_errors=True)  # the self-signed certificate
    yield t
    t.page.context.close()


def test_a_call_over_https_through_nginx(https_tab: Tab, live_server: Any) -> None:
    assert https_tab.page.evaluate("location.protocol") == "https:"
    assert https_tab.page.evaluate("window.isSecureContext") is True
    _start_call(https_tab, "yes")
    call_id = _assert_call_works(https_tab)
    _hang_up(https_tab)
    row = _wait_ended_row(live_server.db, call_id, 10)
    assert row[3] == "hangup"
    assert not https_tab.errors
