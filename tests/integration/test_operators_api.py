"""Operator API against a real server process, real aiortc customers and a real SQLite file.

The server runs with a scripted affect sequence (calm, then angry from 5 s), so the
escalation policy fires at a known point of every consenting call.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import av
import cv2
import numpy as np
import pytest

from avatar_agent.operators.auth import TokenSigner
from avatar_agent.testing.client import CustomerClient
from media import make_long_video
from tests.support.server import spawn_server, stop_server

REPO = Path(__file__).resolve().parents[2]
SECRET = "integration-test-secret-0123456789abcdef"
PASSWORD = "correct horse battery"
SCRIPT = """\
- {at: 0, anger_index: 10}
- {at: 5, anger_index: 92, arousal: 0.85, valence: -0.7, emotion: angry}
- {at: 60, anger_index: 15}
"""


@dataclass
class OpsServer:
    url: str
    db: Path
    config: Path
    log: Path


def add_operator(config: Path, name: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "avatar_agent.cli", "operators", "add", name,
         "--config", str(config)],
        input=password + "\n", capture_output=True, text=True, timeout=60, cwd=REPO,
    )


@pytest.fixture(scope="module")
def ops_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsServer]:
    tmp = tmp_path_factory.mktemp("ops")
    (tmp / "script.yaml").write_text(SCRIPT)
    extra = (
        f"affect:\n  script: {tmp / 'script.yaml'}\n"
        f"operators:\n  token_secret: {SECRET}\n  max_say_chars: 200\n"
        "  show_customer_video: true\n"
        "escalation:\n  rule: hold\n  anger_threshold: 70\n  hold_s: 2\n"
        "  on_unanswered: false\n"  # the clips' words are not what this tests
        "privacy:\n  retention_days: 30\n  purge_interval_h: 0.001\n"  # every 3.6 s
    )
    for url, db in serve_with_operator(tmp, extra):
        yield OpsServer(url, db, tmp / "config.yaml", tmp / "server.log")


def serve_with_operator(tmp: Path, extra: str) -> Iterator[tuple[str, Path]]:
    """A server with operator alice; yields its URL and database, then stops it."""
    try:
        proc, url = spawn_server(tmp, REPO, config_yaml=extra)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        res = add_operator(tmp / "config.yaml", "alice", PASSWORD)
        assert res.returncode == 0, res.stderr
        yield url, tmp / "calls.db"
    finally:
        stop_server(proc)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def login(http: aiohttp.ClientSession, url: str) -> str:
    async with http.post(url + "/api/login", json={"name": "alice", "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def db_rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


class Events:
    """What an operator's WebSocket received, collected in the background."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def of(self, type_: str, call_id: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.items
                if e.get("type") == type_ and (call_id is None or e.get("call_id") == call_id)]


async def collect(ws: aiohttp.ClientWebSocketResponse, into: Events) -> None:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            into.items.append(json.loads(msg.data))


async def wait_until(pred: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


OPERATOR_ROUTES = [
    ("GET", "/api/calls"), ("GET", "/api/history"), ("GET", "/api/me"),
    ("GET", "/api/escalations"), ("GET", "/api/calls/x/timeline"),
    ("GET", "/api/calls/x/export.csv"), ("GET", "/api/calls/x/export.json"),
    ("GET", "/api/calls/x/plot.png"), ("POST", "/api/calls/x/say"),
    ("POST", "/api/calls/x/end"), ("POST", "/api/escalations/1/ack"),
    ("GET", "/api/calls/x/video.mjpeg"),
]


async def read_mjpeg(http: aiohttp.ClientSession, url: str, token: str, n: int) -> list[bytes]:
    """The first `n` JPEG parts of a multipart/x-mixed-replace stream."""
    parts: list[bytes] = []
    async with http.get(url, headers=bearer(token)) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
        assert r.headers["Cache-Control"] == "no-store"
        while len(parts) < n:
            assert (await r.content.readline()).strip() == b"--frame"
            headers = {}
            while line := (await r.content.readline()).strip():
                key, _, value = line.decode().partition(":")
                headers[key.lower()] = value.strip()
            assert headers["content-type"] == "image/jpeg"
            parts.append(await r.content.readexactly(int(headers["content-length"])))
            assert await r.content.readexactly(2) == b"\r\n"
    return parts


async def test_login_bad_input(ops_server: OpsServer, http: aiohttp.ClientSession) -> None:
    url = ops_server.url + "/api/login"
    for body, status in (({"name": "alice", "password": "wrong password"}, 401),
                         ({"name": "nobody", "password": PASSWORD}, 401),
                         ({"name": "alice"}, 400), ({"name": 3, "password": PASSWORD}, 400)):
        async with http.post(url, json=body) as r:
            assert r.status == status, body
            assert "error" in await r.json()
            assert "avatar_operator" not in r.cookies
    async with http.post(url, data=b"{not json") as r:
        assert r.status == 400
    async with http.post(url, json={"name": "alice", "password": PASSWORD}) as r:
        assert r.status == 200
        token = (await r.json())["token"]
        assert r.cookies["avatar_operator"].value == token
        assert r.cookies["avatar_operator"]["httponly"]


async def test_every_operator_route_needs_a_valid_token(
    ops_server: OpsServer, http: aiohttp.ClientSession
) -> None:
    signer = TokenSigner(SECRET.encode(), 12 * 3600)
    expired = signer.issue("alice", time.time() - 13 * 3600)
    forged = TokenSigner(b"another-secret-another-secret-xx", 3600).issue("alice", time.time())
    # signed with the server's own key but with no session behind it: refused too
    no_session = signer.issue("alice", time.time(), sid="made-up")
    good = await login(http, ops_server.url)
    tampered = good.split(".")[0][:-2] + "xx." + good.split(".")[1]
    for method, path in OPERATOR_ROUTES:
        for headers in ({}, bearer(expired), bearer(forged), bearer(tampered),
                        bearer("not-a-token"), bearer(no_session)):
            async with http.request(method, ops_server.url + path, headers=headers,
                                    json={"text": "hi"}) as r:
                assert r.status == 401, (method, path, headers)
                assert "error" in await r.json()
    for token in (expired, forged, no_session):
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await http.ws_connect(ops_server.url.replace("http", "ws") + "/api/events",
                                  headers=bearer(token))
        assert exc.value.status == 401
    async with http.get(ops_server.url + "/api/me", headers=bearer(good)) as r:
        assert r.status == 200 and (await r.json())["name"] == "alice"


async def test_unknown_call_and_escalation_are_404(
    ops_server: OpsServer, http: aiohttp.ClientSession
) -> None:
    token = await login(http, ops_server.url)
    for method, path in (("GET", "/api/calls/nope/timeline"), ("GET", "/api/calls/nope/export.csv"),
                         ("GET", "/api/calls/nope/plot.png"), ("POST", "/api/calls/nope/end"),
                         ("GET", "/api/calls/nope/video.mjpeg"),
                         ("POST", "/api/escalations/999999/ack"),
                         ("POST", "/api/escalations/abc/ack")):
        async with http.request(method, ops_server.url + path, headers=bearer(token)) as r:
            assert r.status == 404, path
    async with http.post(ops_server.url + "/api/calls/nope/say", headers=bearer(token),
                         json={"text": "hello"}) as r:
        assert r.status == 404


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory, grid_clip: Path) -> Path:
    """12 s on camera (four GRID clips), speaking only in the first 3 s."""
    clips = sorted(grid_clip.parent.glob("*.mpg"))[:4]
    return make_long_video(clips, tmp_path_factory.mktemp("long") / "long.mp4")


async def test_live_call_escalates_and_operator_takes_over(
    ops_server: OpsServer, http: aiohttp.ClientSession, long_clip: Path
) -> None:
    token = await login(http, ops_server.url)
    ws = await http.ws_connect(ops_server.url.replace("http", "ws") + "/api/events",
                               headers=bearer(token))
    seen = Events()
    reader = asyncio.ensure_future(collect(ws, seen))
    client = CustomerClient(ops_server.url, long_clip, consent=True)
    try:
        call_id = await client.connect(http)
        await wait_until(lambda: seen.of("call", call_id), 10, "the call-started event")
        await _camera_is_live(http, ops_server.url, call_id, token, long_clip)
        await wait_until(lambda: seen.of("escalation", call_id), 30, "an escalation")
        esc = seen.of("escalation", call_id)[0]
        assert esc["reason"] in ("sustained_anger", "furious")
        assert esc["t"] >= 5.0  # the script turns angry at 5 s, not before
        ctx = esc["context"]
        assert len(ctx["curve"]) >= 20 and max(p["anger_index"] for p in ctx["curve"]) >= 70
        assert any("virtual support assistant" in c["text"] for c in ctx["transcript"])
        affect = seen.of("affect", call_id)
        assert affect and affect[-1]["level"] in ("dissatisfied", "furious")

        async with http.get(ops_server.url + "/api/calls", headers=bearer(token)) as r:
            calls = {c["call_id"]: c for c in (await r.json())["calls"]}
        assert calls[call_id]["consent_analysis"] is True
        assert calls[call_id]["anger_index"] >= 70 and len(calls[call_id]["spark"]) >= 20
        assert calls[call_id]["open_escalation"]["id"] == esc["id"]

        async with http.post(f"{ops_server.url}/api/escalations/{esc['id']}/ack",
                             headers=bearer(token)) as r:
            assert r.status == 200
            assert (await r.json())["acknowledged_by"] == "alice"
        rows = db_rows(ops_server.db, "SELECT call_id, reason, acknowledged_by, acknowledged_at "
                       "FROM escalations WHERE id = ?", esc["id"])
        assert rows[0][:3] == (call_id, esc["reason"], "alice") and rows[0][3] is not None
        await wait_until(lambda: seen.of("escalation_ack", call_id), 5, "the ack event")

        # Bad takeover input is refused and changes nothing.
        say = f"{ops_server.url}/api/calls/{call_id}/say"
        for body, status in (({"text": ""}, 400), ({"text": "   \n "}, 400), ({}, 400),
                             ({"text": 5}, 400), ({"text": "x" * 201}, 413)):
            async with http.post(say, json=body, headers=bearer(token)) as r:
                assert r.status == status, body
        async with http.post(say, data=b"[", headers=bearer(token)) as r:
            assert r.status == 400
        text = "I am a colleague from support, and I will sort this out for you now."
        async with http.post(say, json={"text": f"  {text} "}, headers=bearer(token)) as r:
            assert r.status == 202, await r.text()
        # The customer hears it: the speech events come with the audio it is played in.
        assert await client.wait_for(
            lambda: any("colleague from support" in s for s in client.rx.speech("start")), 20
        ), client.rx.speech("start")
        takeovers = db_rows(ops_server.db, "SELECT data FROM call_events WHERE call_id = ? "
                            "AND kind = 'takeover'", call_id)
        assert [json.loads(d) for (d,) in takeovers] == [{"operator": "alice", "text": text}]

        async with http.post(f"{ops_server.url}/api/calls/{call_id}/end",
                             headers=bearer(token)) as r:
            assert r.status == 200
        await wait_until(lambda: seen.of("call", call_id)[-1]["event"] == "ended", 10,
                         "the call to end")
    finally:
        await client.close()
        reader.cancel()
        await ws.close()

    async with http.get(f"{ops_server.url}/api/calls/{call_id}/timeline",
                        headers=bearer(token)) as r:
        tl = await r.json()
    assert tl["call"]["end_reason"] == "operator" and not tl["call"]["live"]
    assert len(tl["points"]) >= 20
    kinds = {e["kind"] for e in tl["events"]}
    assert {"caption", "takeover", "escalation", "level"} <= kinds
    assert any(line["who"] == "operator" and line["text"] == text for line in tl["transcript"])
    assert tl["escalations"][0]["acknowledged_by"] == "alice"

    async with http.get(f"{ops_server.url}/api/calls/{call_id}/export.csv",
                        headers=bearer(token)) as r:
        assert r.status == 200 and "attachment" in r.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(await r.text())))
    assert sum(1 for row in rows if row["record"] == "affect") == len(tl["points"])
    assert any(row["kind"] == "takeover" for row in rows)
    async with http.get(f"{ops_server.url}/api/calls/{call_id}/export.json",
                        headers=bearer(token)) as r:
        assert json.loads(await r.text())["points"] == tl["points"]
    async with http.get(f"{ops_server.url}/api/calls/{call_id}/plot.png",
                        headers=bearer(token)) as r:
        png = await r.read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


async def _camera_is_live(http: aiohttp.ClientSession, url: str, call_id: str, token: str,
                          clip: Path) -> None:
    """This server shows the camera of customers who agreed: live frames of the clip."""
    t0 = time.monotonic()
    frames = await read_mjpeg(http, f"{url}/api/calls/{call_id}/video.mjpeg", token, 4)
    took = time.monotonic() - t0
    with av.open(str(clip)) as media:
        size = (media.streams.video[0].height, media.streams.video[0].width)
    images = [cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR) for f in frames]
    assert all(img is not None and img.shape[:2] == size for img in images)
    assert float(np.abs(images[0].astype(int) - images[-1].astype(int)).mean()) > 0.1
    assert 0.4 < took < 5, took  # capped near operators.customer_video_fps (5)


async def test_call_without_consent_has_no_affect_and_can_ask_for_a_person(
    ops_server: OpsServer, http: aiohttp.ClientSession, grid_clip: Path
) -> None:
    token = await login(http, ops_server.url)
    ws = await http.ws_connect(ops_server.url.replace("http", "ws") + "/api/events")
    await ws.send_json({"type": "auth", "token": token})  # the first message, not the URL
    seen = Events()
    reader = asyncio.ensure_future(collect(ws, seen))
    client = CustomerClient(ops_server.url, grid_clip, consent=False)
    try:
        call_id = await client.connect(http)
        assert await client.wait_for(lambda: client.channel.readyState == "open", 10)
        assert await client.wait_for(lambda: client.rx.speech("start"), 15)
        client.channel.send(json.dumps({"type": "human"}))
        await wait_until(lambda: seen.of("escalation", call_id), 10, "the customer's request")
        esc = seen.of("escalation", call_id)[0]
        assert esc["reason"] == "customer_request"
        assert esc["context"]["curve"] == [] and esc["anger_index"] is None
        # The call's media clock (every call's cues carry it) 4 s past the script's angry
        # step at 5 s: its level change and escalation hold, had there been analysis.
        await wait_until(lambda: any(c["t"] >= 9.0 for c in client.rx.events
                                     if c.get("type") == "cues"), 20, "the call to pass 9 s")
        async with http.get(f"{ops_server.url}/api/calls/{call_id}/timeline",
                            headers=bearer(token)) as r:
            tl = await r.json()
        assert tl["call"]["live"] and tl["call"]["consent_analysis"] is False
        assert tl["points"] == []
        assert not {"level", "micro_expression"} & {e["kind"] for e in tl["events"]}
        assert {"human_request", "escalation", "caption"} <= {e["kind"] for e in tl["events"]}
        assert seen.of("affect", call_id) == []
        assert not [e for e in client.rx.events if e.get("type") == "affect"]
        async with http.get(ops_server.url + "/api/calls", headers=bearer(token)) as r:
            summary = {c["call_id"]: c for c in (await r.json())["calls"]}[call_id]
        assert summary["anger_index"] is None and summary["spark"] == []
        # The camera is shown only for customers who agreed.
        async with http.get(f"{ops_server.url}/api/calls/{call_id}/video.mjpeg",
                            headers=bearer(token)) as r:
            assert r.status == 403 and "agree" in (await r.json())["error"]
        assert await client.hangup(http) == 200
    finally:
        await client.close()
        reader.cancel()
        await ws.close()
    rows = db_rows(ops_server.db, "SELECT count(*) FROM affect_points WHERE call_id = ?", call_id)
    assert rows == [(0,)]


async def test_retention_purges_old_rows(ops_server: OpsServer) -> None:
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=31)).strftime("%Y-%m-%d %H:%M:%S.%f")
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(days=29)).strftime("%Y-%m-%d %H:%M:%S.%f")
    con = sqlite3.connect(ops_server.db, timeout=10)
    try:
        with con:
            for cid, when in (("old-call", old), ("recent-call", recent)):
                con.execute("INSERT INTO calls (id, started_at, ended_at, end_reason, "
                            "consent_analysis) VALUES (?, ?, ?, 'hangup', 1)", (cid, when, when))
                con.execute("INSERT INTO affect_points (call_id, created_at, t, arousal, valence, "
                            "anger_index, level, emotion) VALUES (?, ?, 1, .5, 0, 20, 'calm', "
                            "'neutral')", (cid, when))
                con.execute("INSERT INTO call_events (call_id, created_at, t, kind, data) VALUES "
                            "(?, ?, 1, 'caption', '{\"text\": \"hi\"}')", (cid, when))
    finally:
        con.close()
    deadline = time.monotonic() + 15
    while db_rows(ops_server.db, "SELECT count(*) FROM calls WHERE id = 'old-call'") != [(0,)]:
        assert time.monotonic() < deadline, "old rows were not purged"
        await asyncio.sleep(0.5)
    for table in ("affect_points", "call_events"):
        assert db_rows(ops_server.db, f"SELECT count(*) FROM {table} WHERE call_id = 'old-call'"
                       ) == [(0,)]
        assert db_rows(ops_server.db, f"SELECT count(*) FROM {table} WHERE "
                       "call_id = 'recent-call'") == [(1,)]


def test_operators_add_cli_refuses_duplicates_and_short_passwords(ops_server: OpsServer) -> None:
    res = add_operator(ops_server.config, "alice", "another password")
    assert res.returncode == 1 and "exists" in res.stderr
    res = add_operator(ops_server.config, "bob", "short")
    assert res.returncode == 2 and "8 to" in res.stderr
    res = add_operator(ops_server.config, "bad name!", "long enough password")
    assert res.returncode == 2
    assert db_rows(ops_server.db, "SELECT name FROM operators") == [("alice",)]
