"""Two workers on one PostgreSQL and one Redis, as real `avatar-agent serve` processes
with a real aiortc customer: an operator signed in on worker A sees the call held by
worker B live (its curve and its escalation on A's WebSocket), and A's `say` is spoken
in B's call; then B is killed with SIGKILL and A ends its call with `worker_lost`
within 30 s, its curve kept in PostgreSQL. After PostgreSQL crashes and comes back and
A restarts, the ended call's curve, transcript, takeover and escalation are all there."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import create_engine, text

from avatar_agent.core.store import engine_url
from avatar_agent.testing.client import CustomerClient
from tests.integration.test_operators_api import (
    PASSWORD,
    SCRIPT,
    Events,
    bearer,
    collect,
    login,
    wait_until,
)
from tests.support.server import spawn_server, stop_server
from tests.support.services import postgres, redis, restart_postgres

REPO = Path(__file__).resolve().parents[2]
SECRET = "cluster-test-secret-0123456789abcdef-xyz"


@dataclass
class Cluster:
    pg: str
    urls: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]]
    workdir: Path
    extras: dict[str, str]  # each worker's config past `storage`
    ended: list[str]  # calls the first test ended, for the restart test


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with postgres() as pg, redis() as bus:
        tmp = tmp_path_factory.mktemp("cluster")
        (tmp / "script.yaml").write_text(SCRIPT)
        procs: dict[str, subprocess.Popen[bytes]] = {}
        urls: dict[str, str] = {}
        extras: dict[str, str] = {}
        try:
            for name in ("a", "b"):
                work = tmp / name
                work.mkdir()
                extras[name] = extra = (f"affect:\n  script: {tmp / 'script.yaml'}\n"
                         f"operators:\n  token_secret: {SECRET}\n"
                         "escalation:\n  rule: hold\n  anger_threshold: 70\n  hold_s: 2\n"
                         "  on_unanswered: false\n"
                         f"bus:\n  url: {bus}\n"
                         f"cluster:\n  worker_id: {name}\n  heartbeat_s: 1\n"
                         "  lost_after_s: 4\n")
                try:
                    procs[name], urls[name] = spawn_server(work, REPO, config_yaml=extra,
                                                           storage_url=pg)
                except RuntimeError as exc:
                    pytest.fail(str(exc))
            res = subprocess.run(
                [sys.executable, "-m", "avatar_agent.cli", "operators", "add", "alice",
                 "--config", str(tmp / "a" / "config.yaml")],
                input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, cwd=REPO)
            assert res.returncode == 0, res.stderr
            yield Cluster(pg, urls, procs, tmp, extras, [])
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    stop_server(proc)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def call_row(pg: str, call_id: str) -> tuple[object, ...] | None:
    engine = create_engine(engine_url(pg))
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT worker, end_reason, ended_at IS NOT NULL, "
                                    "(SELECT count(*) FROM affect_points p WHERE "
                                    "p.call_id = c.id) FROM calls c WHERE id = :id"),
                               {"id": call_id}).first()
            return tuple(row) if row is not None else None
    finally:
        engine.dispose()


async def test_an_operator_on_a_sees_and_drives_a_call_held_by_b(
        cluster: Cluster, http: aiohttp.ClientSession, grid_clip: Path) -> None:
    a, b = cluster.urls["a"], cluster.urls["b"]
    token = await login(http, a)
    ws = await http.ws_connect(a.replace("http", "ws") + "/api/events", headers=bearer(token))
    seen = Events()
    reader = asyncio.ensure_future(collect(ws, seen))
    client = CustomerClient(b, grid_clip, consent=True)
    try:
        call_id = await client.connect(http)
        assert call_row(cluster.pg, call_id)[0] == "b"  # type: ignore[index]
        # B's call, live on A: its start, its curve, then the scripted anger's escalation
        await wait_until(lambda: seen.of("call", call_id), 10, "B's call on A's WebSocket")
        await wait_until(lambda: len(seen.of("affect", call_id)) >= 8, 20, "B's curve on A")
        await wait_until(lambda: seen.of("escalation", call_id), 30, "B's escalation on A")
        # A's call list has it too (a dashboard opened now), and B's does not twice
        for url in (a, b):
            async with http.get(f"{url}/api/calls", headers=bearer(token)) as r:
                listed = [c["call_id"] for c in (await r.json())["calls"]]
            assert listed.count(call_id) == 1, (url, listed)
        assert seen.of("escalation", call_id)[0]["t"] >= 5.0

        # A's `say` is spoken in B's call
        words = "A colleague on another desk is speaking to you now."
        async with http.post(f"{a}/api/calls/{call_id}/say", json={"text": words},
                             headers=bearer(token)) as r:
            assert r.status == 202, await r.text()
            assert (await r.json())["call_id"] == call_id
        assert await client.wait_for(
            lambda: any("another desk" in s for s in client.rx.speech("start")), 20
        ), client.rx.speech("start")
        await wait_until(lambda: seen.of("takeover", call_id), 5, "the takeover on A")
        async with http.post(f"{a}/api/calls/no-such-call/say", json={"text": "hi"},
                             headers=bearer(token)) as r:
            assert r.status == 404

        # B dies mid-call: A notices from the heartbeats and ends the call
        os.kill(cluster.procs["b"].pid, signal.SIGKILL)
        killed = time.monotonic()
        cluster.procs["b"].wait()
        await wait_until(lambda: (call_row(cluster.pg, call_id) or ())[1:3]
                         == ("worker_lost", True), 30, "worker_lost in PostgreSQL")
        print(f"worker_lost recorded {time.monotonic() - killed:.1f} s after SIGKILL")
        row = call_row(cluster.pg, call_id)
        assert row is not None and int(row[3]) >= 8  # type: ignore[call-overload]
        await wait_until(lambda: any(e.get("reason") == "worker_lost"
                                     for e in seen.of("call", call_id)), 5,
                         "the end on A's WebSocket")
        # the operator on A can no longer drive it
        async with http.post(f"{a}/api/calls/{call_id}/say", json={"text": "hi"},
                             headers=bearer(token)) as r:
            assert r.status == 404
        cluster.ended.append(call_id)
    finally:
        await client.close()
        reader.cancel()
        await ws.close()


async def test_after_a_restart_of_every_process_the_ended_call_is_all_there(
        cluster: Cluster, http: aiohttp.ClientSession) -> None:
    assert cluster.ended, "runs after the two-worker call"
    call_id = cluster.ended[0]
    a = cluster.urls["a"]
    token = await login(http, a)
    # PostgreSQL crashes and comes back: the running worker reconnects on its own
    restart_postgres(cluster.pg)
    async with http.get(f"{a}/api/calls/{call_id}/timeline", headers=bearer(token)) as r:
        assert r.status == 200, await r.text()
    # and the worker itself restarts (B stays dead: its call stays worker_lost)
    stop_server(cluster.procs["a"])
    work = cluster.workdir / "a"
    proc, url = spawn_server(work, REPO, config_yaml=cluster.extras["a"],
                             storage_url=cluster.pg)
    cluster.procs["a"] = proc
    token = await login(http, url)  # operators and the login secret are shared
    async with http.get(f"{url}/api/calls/{call_id}/timeline", headers=bearer(token)) as r:
        assert r.status == 200, await r.text()
        tl = await r.json()
    assert tl["call"]["end_reason"] == "worker_lost"
    assert len(tl["points"]) >= 8
    assert tl["escalations"] and tl["escalations"][0]["call_id"] == call_id
    assert any(e["kind"] == "takeover" for e in tl["events"])
    assert any("another desk" in line["text"] for line in tl["transcript"])
