"""Soak and churn benchmarks against a real server process.

    python scripts/soak.py churn --calls 100 --rounds 1
    python scripts/soak.py soak --calls 4 --minutes 30
    python scripts/soak.py login-flood --seconds 20

`churn`: consenting calls opened and hung up at once, four in flight, in rounds; after
each round the server's threads and RSS (read from /proc) once it has settled.
`soak`: `--calls` calls held for `--minutes`; every minute the server's RSS, threads
and tasks, and each call's received fps; lip-sync of a further call's greeting at the
start and at the end, measured beside them.
`login-flood`: one call's received fps, first quiet, then with three wrong-password
logins always in flight.

Each mode starts its own server (`avatar-agent serve` on a free port, affect from a
script so no model loads) with a scratch database, and prints one JSON line per
sample. Media: the first GRID clip of ../shared/data (override with --media).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avatar_agent.app import RELEASE_AFTER_S  # noqa: E402
from avatar_agent.testing.churn import churn, sample, settle  # noqa: E402
from avatar_agent.testing.client import CustomerClient  # noqa: E402
from avatar_agent.testing.measure_call import measure_lipsync  # noqa: E402
from tests.support.server import spawn_server, stop_server  # noqa: E402

DEFAULT_MEDIA = REPO.parent / "shared" / "data" / "talking_face" / "grid"
PASSWORD = "correct horse battery"


def emit(**row: Any) -> None:
    print(json.dumps(row), flush=True)


def _media(arg: str | None) -> Path:
    return Path(arg) if arg else sorted(DEFAULT_MEDIA.glob("*.mpg"))[0]


async def _health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(url + "/healthz") as r:
        data: dict[str, Any] = await r.json()
        return data


async def run_churn(url: str, pid: int, media: Path, calls: int, rounds: int,
                    consent: bool = True) -> None:
    await churn(url, media, calls=4, consent=consent)  # the pools start their threads on first use
    await settle(url, pid, sample(pid), within_s=30)
    await asyncio.sleep(RELEASE_AFTER_S + 1)  # ended calls' memory goes back
    base = sample(pid)
    emit(mode="churn", round=0, threads=base.threads, rss_mb=round(base.rss_mb))
    for r in range(1, rounds + 1):
        t0 = time.monotonic()
        failed = await churn(url, media, calls=calls, consent=consent)
        await settle(url, pid, base, within_s=60)
        await asyncio.sleep(RELEASE_AFTER_S + 1)
        after = sample(pid)
        emit(mode="churn", round=r, calls=calls, failed=failed,
             seconds=round(time.monotonic() - t0, 1), threads=after.threads,
             rss_mb=round(after.rss_mb),
             rss_growth_pct=round(100 * (after.rss_mb / base.rss_mb - 1), 1),
             tasks=(await _health(url))["tasks"])


async def _fps(client: CustomerClient, since: float) -> float:
    times = [t for t in client.rx.video_times if t >= since]
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


async def _lipsync(url: str) -> float:
    """Lip-sync (ms) of a fifth call's greeting, measured beside the soaking calls."""
    return round((await measure_lipsync(url, seconds=8.0)).offset_ms, 1)


async def run_soak(url: str, pid: int, media: Path, calls: int, minutes: float) -> None:
    clients = [CustomerClient(url, media, consent=True) for _ in range(calls)]
    async with aiohttp.ClientSession() as http:
        for c in clients:
            await c.connect(http)
        t_start = time.monotonic()
        first: Any = None
        try:
            emit(mode="soak", minute=0, lipsync_ms=await _lipsync(url))
            while time.monotonic() - t_start < minutes * 60:
                t_mark = time.monotonic()
                await asyncio.sleep(min(60.0, minutes * 60))
                s = sample(pid)
                health = await _health(url)
                row = dict(mode="soak", minute=round((time.monotonic() - t_start) / 60, 1),
                           threads=s.threads, rss_mb=round(s.rss_mb), tasks=health["tasks"],
                           calls=health["calls"],
                           fps=[round(await _fps(c, t_mark), 1) for c in clients])
                first = first or row
                emit(**row)
            lip_end = await _lipsync(url)
            last = sample(pid)
            if first is not None:
                emit(mode="soak", summary=True, lipsync_ms_end=lip_end,
                     rss_growth_pct=round(100 * (last.rss_mb / first["rss_mb"] - 1), 1),
                     threads_first=first["threads"], threads_last=last.threads,
                     tasks_first=first["tasks"], tasks_last=(await _health(url))["tasks"])
        finally:
            for c in clients:
                await c.hangup(http)
                await c.close()


# Real guessers run on their own machines: here they run at the lowest CPU priority, so
# that what they cost this (shared, small) machine is not taken for the server's cost.
GUESSER = """
import asyncio, os, sys, time, aiohttp
os.nice(19)
async def main(url, seconds, i):
    end = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < end:
            async with http.post(url + "/api/login", json={
                    "name": f"flood{i}", "password": "not the password"}) as r:
                await r.read()
asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
"""


async def run_login_flood(url: str, media: Path, seconds: float) -> None:
    """The guessers run in processes of their own, as attackers would: this process
    only receives the call, so its fps is the server's."""
    client = CustomerClient(url, media, consent=True)
    async with aiohttp.ClientSession() as http:
        await client.connect(http)
        try:
            await asyncio.sleep(5)  # the call settles
            t = time.monotonic()
            await asyncio.sleep(seconds)
            emit(mode="login-flood", phase="quiet", fps=round(client.rx.fps(t, t + seconds), 1))
            guessers = [await asyncio.create_subprocess_exec(
                sys.executable, "-c", GUESSER, url, str(seconds), str(i)) for i in range(3)]
            t = time.monotonic()
            await asyncio.sleep(seconds)
            emit(mode="login-flood", phase="three logins always in flight",
                 fps=round(client.rx.fps(t, t + seconds), 1))
            for g in guessers:
                await g.wait()
        finally:
            await client.hangup(http)
            await client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["churn", "soak", "login-flood"])
    ap.add_argument("--calls", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--media", default=None)
    ap.add_argument("--no-consent", action="store_true",
                    help="churn: the customers decline analysis (no face or voice analysis)")
    args = ap.parse_args()
    media = _media(args.media)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "script.yaml").write_text("- {at: 0, anger_index: 10}\n")
        # a loop of many calls from one address: per-client limits set wide
        proc, url = spawn_server(work, REPO, config_yaml=(
            f"affect:\n  script: {work / 'script.yaml'}\n"
            "server:\n  joins_per_client_per_min: 6000\n  max_calls_per_client: 50\n"
            "  max_half_open_per_client: 50\n  max_half_open: 50\n  max_calls: 50\n"))
        try:
            if args.mode == "churn":
                asyncio.run(run_churn(url, proc.pid, media, args.calls or 100, args.rounds,
                                     consent=not args.no_consent))
            elif args.mode == "soak":
                asyncio.run(run_soak(url, proc.pid, media, args.calls or 4, args.minutes))
            else:
                subprocess.run([sys.executable, "-m", "avatar_agent.cli", "operators", "add",
                                "someone", "--config", str(work / "config.yaml")],
                               input=PASSWORD + "\n", text=True, check=True, cwd=REPO,
                               capture_output=True)
                asyncio.run(run_login_flood(url, media, args.seconds))
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
