"""`scripts/cluster.sh` end to end: PostgreSQL, Redis, two workers and nginx in front
(HTTPS with its self-signed certificate, as `up` starts it for a demo), all from the
Debian packages; every request of the customers and the operator goes through TLS.
Each worker takes one call: two real aiortc customers through the front land on
different workers (a full worker's 503 on the join sends the second to the next), a
third is refused; an operator signed in through the front sees both calls on one
WebSocket and each customer's camera, whichever worker the request reaches. Then one
worker is killed with SIGKILL: the other call goes on (its frame rate before and after
is printed), the dead worker's call is ended `worker_lost` within 30 s, and a new
customer lands on the survivor. `down` stops everything."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from sqlalchemy import create_engine, text

from avatar_agent.core.store import engine_url
from avatar_agent.testing.client import CustomerClient
from tests.integration.test_operators_api import SCRIPT, Events, bearer, collect, wait_until
from tests.support.services import free_port

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "front door password"


@pytest.fixture(scope="module")
def front() -> Iterator[tuple[str, Path]]:
    # not under pytest's 0700 temp dirs: PostgreSQL's and nginx's own users read it
    root = Path(tempfile.mkdtemp(prefix="aa-cluster-"))
    root.chmod(0o755)
    (root / "script.yaml").write_text(SCRIPT)
    (root / "extra.yaml").write_text("server:\n  max_calls: 1\n"
                                     f"affect:\n  script: {root / 'script.yaml'}\n"
                                     "operators:\n  show_customer_video: true\n")
    env = {**os.environ, "AVATAR_CLUSTER_DIR": str(root / "c"), "OMP_NUM_THREADS": "1"}
    script = str(REPO / "scripts" / "cluster.sh")
    try:
        up = subprocess.run([script, "up", "--workers", "2", "--port", str(free_port()),
                             "--extra", str(root / "extra.yaml")],
                            capture_output=True, text=True, timeout=400, env=env)
        assert up.returncode == 0, up.stderr[-3000:]
        url = up.stdout.strip().splitlines()[-1]
        assert url.startswith("https://127.0.0.1:")
        add = subprocess.run(
            [sys.executable, "-m", "avatar_agent.cli", "operators", "add", "ann", "--config",
             str(root / "c" / "config.yaml")],
            input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, cwd=REPO)
        assert add.returncode == 0, add.stderr
        yield url, root / "c"
    finally:
        down = subprocess.run([script, "down"], capture_output=True, text=True, timeout=120,
                              env=env)
        pids = list((root / "c").glob("**/*.pid"))
        shutil.rmtree(root, ignore_errors=True)
        assert down.returncode == 0, down.stderr
        assert pids == [], f"down left {pids}"


def browser() -> aiohttp.ClientSession:
    """A client that accepts the front's self-signed certificate and keeps cookies
    for an IP address (as a browser would, once told to trust the certificate)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 connector=aiohttp.TCPConnector(ssl=False))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with browser() as s:
        yield s


def owners(cluster_dir: Path) -> dict[str, str]:
    cfg = yaml.safe_load((cluster_dir / "config.yaml").read_text())
    engine = create_engine(engine_url(cfg["storage"]["url"]))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, worker FROM calls WHERE ended_at IS NULL"))
            return {str(r[0]): str(r[1]) for r in rows}
    finally:
        engine.dispose()


def ended_reason(cluster_dir: Path, call_id: str) -> str | None:
    cfg = yaml.safe_load((cluster_dir / "config.yaml").read_text())
    engine = create_engine(engine_url(cfg["storage"]["url"]))
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT end_reason FROM calls WHERE id = :id"),
                                {"id": call_id}).scalar()
    finally:
        engine.dispose()


def worker_address(cluster_dir: Path, worker: str) -> str:
    cfg = yaml.safe_load((cluster_dir / f"{worker}.yaml").read_text())
    return str(cfg["cluster"]["address"])


async def first_jpeg(http: aiohttp.ClientSession, base: str, call_id: str,
                     token: str) -> bytes:
    """The first frame of a call's camera view (a multipart JPEG stream)."""
    async with asyncio.timeout(10):
        async with http.get(f"{base}/api/calls/{call_id}/video.mjpeg",
                            headers=bearer(token)) as r:
            assert r.status == 200, await r.text()
            assert r.content_type == "multipart/x-mixed-replace"
            reader = aiohttp.MultipartReader.from_response(r)
            part = await reader.next()
            assert isinstance(part, aiohttp.BodyPartReader)
            return bytes(await part.read())


async def test_customers_spread_over_workers_and_one_operator_sees_both(
        front: tuple[str, Path], http: aiohttp.ClientSession, grid_clip: Path) -> None:
    url, cluster_dir = front
    async with http.post(url + "/api/login", json={"name": "ann", "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
        token = (await r.json())["token"]
    ws = await http.ws_connect(url.replace("http", "ws") + "/api/events", headers=bearer(token))
    seen = Events()
    reader = asyncio.ensure_future(collect(ws, seen))
    # each customer has its own browser: its own cookie for the worker of its call
    jars = [browser() for _ in range(3)]
    clients = [CustomerClient(url, grid_clip, consent=True) for _ in range(2)]
    try:
        ids = [await c.connect(s) for c, s in zip(clients, jars, strict=False)]
        placed = owners(cluster_dir)
        assert sorted(placed[i] for i in ids) == ["w1", "w2"], placed
        # both calls on the one operator WebSocket, whichever worker it landed on
        await wait_until(lambda: all(seen.of("call", i) for i in ids), 15, "both calls")
        await wait_until(lambda: all(seen.of("affect", i) for i in ids), 20, "both curves")
        async with jars[2].post(url + "/api/join") as r:
            assert r.status == 503  # both workers full: refused at the door

        # the camera view of each call, asked of each worker directly (so one of the two
        # is passed on to the call's owner) and through the front; the owner still
        # checks the operator
        addresses = {w: worker_address(cluster_dir, w) for w in ("w1", "w2")}
        viewed = time.monotonic()
        for call_id in ids:
            for base in (*addresses.values(), url):
                assert (await first_jpeg(http, base, call_id, token))[:2] == b"\xff\xd8"
            other = next(a for w, a in addresses.items() if w != placed[call_id])
            async with http.get(f"{other}/api/calls/{call_id}/video.mjpeg",
                                headers=bearer(token + "x")) as r:
                assert r.status == 401
        print(f"camera views: {time.monotonic() - viewed:.1f} s")

        # the first call's worker dies: the other call goes on at full rate, the dead
        # worker's call is ended worker_lost within 30 s, a new customer goes to the
        # survivor
        lost, survivor = placed[ids[0]], placed[ids[1]]
        await asyncio.sleep(3.0)
        killed = time.monotonic()
        before = clients[1].rx.fps(killed - 3.0, killed)
        os.kill(int((cluster_dir / f"{lost}.pid").read_text()), signal.SIGKILL)
        await asyncio.sleep(3.0)
        after = clients[1].rx.fps(killed, killed + 3.0)
        print(f"surviving call: {before:.1f} fps before the kill, {after:.1f} after")
        # it goes on: still connected, still receiving the avatar. Its frame rate is
        # printed, not asserted: with two workers and two decoding customers on one
        # shared 2-core machine it is far below 30 fps before any kill.
        assert after > 0 and clients[1].pc.connectionState == "connected"
        assert ended_reason(cluster_dir, ids[1]) is None
        while ended_reason(cluster_dir, ids[0]) != "worker_lost":
            assert time.monotonic() - killed < 30, "no worker_lost within 30 s"
            await asyncio.sleep(0.5)
        print(f"worker_lost recorded {time.monotonic() - killed:.1f} s after SIGKILL")
        assert await clients[1].hangup(jars[1]) == 200  # routed to the call's own worker
        late = CustomerClient(url, grid_clip, consent=True)
        clients.append(late)
        late_id = await late.connect(jars[2])
        assert owners(cluster_dir)[late_id] == survivor
        assert await late.hangup(jars[2]) == 200
    finally:
        for c in clients:
            await c.close()
        for s in jars:
            await s.close()
        reader.cancel()
        await ws.close()
