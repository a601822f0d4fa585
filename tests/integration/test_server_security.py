"""What a server on the internet must hold, against a real server process: operator
sessions that logout and revocation end, no token in any log, login throttling,
security headers, CSRF on cookie requests, and /metrics behind a token."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.support.server import spawn_server, stop_server

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
METRICS_TOKEN = "metrics-token-0123456789"


@dataclass
class Server:
    url: str
    config: Path
    log: Path


def _add_operator(config: Path, name: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "avatar_agent.cli", "operators", "add", name,
         "--config", str(config)],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, cwd=REPO)
    assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("sec")
    # a scripted affect sequence: the server starts without loading the affect model
    (tmp / "script.yaml").write_text("- {at: 0, anger_index: 10}\n")
    try:
        proc, url = spawn_server(tmp, REPO, config_yaml=(
            f"affect:\n  script: {tmp / 'script.yaml'}\n"
            f"server:\n  metrics_token: {METRICS_TOKEN}\n"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        for name in ("alice", "carol", "dave"):
            _add_operator(tmp / "config.yaml", name)
        yield Server(url, tmp / "config.yaml", tmp / "server.log")
    finally:
        stop_server(proc)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _login(http: aiohttp.ClientSession, url: str, name: str = "alice") -> str:
    async with http.post(url + "/api/login", json={"name": name, "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["token"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _me(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> int:
    async with http.get(url + "/api/me", headers=headers) as r:
        return r.status


async def test_logout_ends_the_token_and_no_token_reaches_the_log(
    server: Server, http: aiohttp.ClientSession
) -> None:
    token = await _login(http, server.url)
    assert await _me(http, server.url, _bearer(token)) == 200
    assert await _me(http, server.url, {"Cookie": f"avatar_operator={token}"}) == 200
    ws_url = server.url.replace("http", "ws") + "/api/events"
    # the WebSocket: its first message carries the token ...
    async with http.ws_connect(ws_url) as ws:
        await ws.send_json({"type": "auth", "token": token})
        hello = await ws.receive_json(timeout=5)
        assert hello == {"type": "hello", "operator": "alice"}
    # ... or its handshake carries the cookie; a token in the URL counts for nothing
    async with http.ws_connect(ws_url, headers={"Cookie": f"avatar_operator={token}"}) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
    async with http.ws_connect(ws_url + f"?token={token}") as ws:
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001

    async with http.post(server.url + "/api/logout", headers=_bearer(token), json={}) as r:
        assert r.status == 200
    assert await _me(http, server.url, _bearer(token)) == 401
    assert await _me(http, server.url, {"Cookie": f"avatar_operator={token}"}) == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await http.ws_connect(ws_url, headers=_bearer(token))
    assert exc.value.status == 401
    async with http.ws_connect(ws_url) as ws:
        await ws.send_json({"type": "auth", "token": token})
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001

    await asyncio.sleep(0.5)  # the access log is written after each response
    text = server.log.read_text()
    assert '"GET /api/me" 200' in text  # the access log is on ...
    assert token not in text and token.split(".")[1] not in text  # ... and holds no token
    assert not re.search(r"127\.0\.0\.1 .*\"GET /api/me", text)  # nor the client's address


def test_an_admin_revokes_every_session_of_an_operator(server: Server) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            tokens = [await _login(http, server.url, "carol") for _ in range(2)]
            other = await _login(http, server.url, "dave")
            res = await asyncio.to_thread(subprocess.run, [
                sys.executable, "-m", "avatar_agent.cli", "operators", "revoke", "carol",
                "--config", str(server.config)], capture_output=True, text=True, timeout=60,
                cwd=REPO)
            assert res.returncode == 0, res.stderr
            assert "2 session(s) ended" in res.stdout
            for t in tokens:
                assert await _me(http, server.url, _bearer(t)) == 401
            assert await _me(http, server.url, _bearer(other)) == 200
            assert await _me(http, server.url, _bearer(await _login(http, server.url, "carol"))) \
                == 200
    asyncio.run(scenario())


async def test_security_headers_on_every_page(server: Server,
                                             http: aiohttp.ClientSession) -> None:
    for path in ("/", "/operator", "/static/customer.js", "/api/me", "/healthz", "/nothing"):
        async with http.get(server.url + path) as r:
            h = r.headers
            csp = h.get("Content-Security-Policy", "")
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split(
                "script-src")[1].split(";")[0], (path, csp)
            assert "frame-ancestors 'none'" in csp, path
            assert h.get("X-Frame-Options") == "DENY", path
            assert h.get("X-Content-Type-Options") == "nosniff", path
            assert h.get("Referrer-Policy") == "no-referrer", path
            assert "aiohttp" not in h.get("Server", "") and "Python" not in h.get("Server", "")
    for page in ("/", "/operator"):  # no script in the page itself: CSP would block it
        async with http.get(server.url + page) as r:
            html = await r.text()
        for attrs in re.findall(r"<script([^>]*)>", html):
            assert "src=" in attrs or 'type="application/json"' in attrs, (page, attrs)


async def test_cookie_requests_need_our_origin_and_json(
    server: Server, http: aiohttp.ClientSession
) -> None:
    token = await _login(http, server.url)
    cookie = {"Cookie": f"avatar_operator={token}"}
    url = server.url + "/api/calls/nope/say"
    body = json.dumps({"text": "hello"})
    for headers in ({"Origin": "https://evil.example", "Content-Type": "application/json"},
                    {"Origin": server.url, "Content-Type": "text/plain"},
                    {"Content-Type": "application/json"}):  # no Origin at all
        async with http.post(url, data=body, headers={**cookie, **headers}) as r:
            assert r.status == 403, headers
            assert "error" in await r.json()
    # from the page itself it goes through (404: there is no such call)
    async with http.post(url, data=body, headers={
            **cookie, "Origin": server.url, "Content-Type": "application/json"}) as r:
        assert r.status == 404
    # a bearer token is not sent by browsers on their own: no Origin needed
    async with http.post(url, json={"text": "hello"}, headers=_bearer(token)) as r:
        assert r.status == 404


async def test_metrics_need_the_token(server: Server, http: aiohttp.ClientSession) -> None:
    async with http.get(server.url + "/metrics") as r:
        assert r.status == 401
    async with http.get(server.url + "/metrics", headers=_bearer("x" * 24)) as r:
        assert r.status == 401
    async with http.get(server.url + "/metrics", headers=_bearer(METRICS_TOKEN)) as r:
        assert r.status == 200
        assert "calls_live" in await r.text()


async def test_failed_logins_back_off_then_lock_out(
    server: Server, http: aiohttp.ClientSession
) -> None:
    url = server.url + "/api/login"
    statuses = []
    for _ in range(5):
        async with http.post(url, json={"name": "alice", "password": "wrong password"}) as r:
            statuses.append(r.status)
            retry = r.headers.get("Retry-After")
    # three free tries, then the name waits: the right password is refused too
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429], statuses
    assert retry is not None and int(retry) >= 1
    async with http.post(url, json={"name": "alice", "password": PASSWORD}) as r:
        assert r.status == 429
    # other operators are not locked out by alice's guesser ...
    await _login(http, server.url, "dave")
    # ... but one client guessing many names is: it is slowed down whatever the name
    statuses = []
    for i in range(12):
        async with http.post(url, json={"name": f"nobody{i}", "password": "wrong pass"}) as r:
            statuses.append(r.status)
    assert 429 in statuses, statuses
