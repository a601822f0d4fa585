"""Benchmark whole calls: set-up time, first avatar frame, outgoing fps, server CPU per call.

Starts `avatar-agent serve` on a free port (its own SQLite file in a temp dir), then
runs 1 and then N simultaneous aiortc customers streaming a real GRID clip.

    .venv/bin/python scripts/bench_call.py [--calls 1 3] [--seconds 10] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from avatar_agent.core.threadcpu import process_cpu_seconds as cpu_seconds
from avatar_agent.testing.client import CustomerClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the server spawner is test support, not the product

from tests.support.server import spawn_server, stop_server  # noqa: E402


async def frames_sent(http: aiohttp.ClientSession, url: str) -> float:
    """Avatar video frames the server has sent, from its own Prometheus counter."""
    async with http.get(url + "/metrics") as r:
        for line in (await r.text()).splitlines():
            if line.startswith('avatar_agent_frames_out_total{kind="video"}'):
                return float(line.split()[-1])
    raise SystemExit("frames_out metric missing")


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    try:
        return spawn_server(tmp, REPO)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


async def run_calls(url: str, pid: int, clip: Path, n: int, seconds: float) -> dict[str, float]:
    async with aiohttp.ClientSession() as http:
        clients = [CustomerClient(url, clip) for _ in range(n)]
        try:
            await asyncio.gather(*(c.connect(http) for c in clients))
            ok = await asyncio.gather(
                *(c.wait_for(lambda c=c: c.rx.video_times, 15) for c in clients)
            )
            if not all(ok):
                raise SystemExit("a call never received video")
            await asyncio.sleep(1.0)  # past start-up transients
            sent0, cpu0, t0 = await frames_sent(http, url), cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(seconds)
            sent1, cpu1, t1 = await frames_sent(http, url), cpu_seconds(pid), time.monotonic()
            result = {
                "setup_ms": statistics.mean((c.t_answer - c.t_offer) * 1000 for c in clients),
                "first_frame_ms": statistics.mean(
                    (c.rx.video_times[0] - c.t_offer) * 1000 for c in clients
                ),
                "sent_fps": (sent1 - sent0) / (t1 - t0) / n,
                "fps": statistics.mean(c.rx.fps(t0, t1) for c in clients),
                "min_fps": min(c.rx.fps(t0, t1) for c in clients),
                "server_cpu_pct": (cpu1 - cpu0) / (t1 - t0) * 100,
            }
            result["cpu_pct_per_call"] = result["server_cpu_pct"] / n
            await asyncio.gather(*(c.hangup(http) for c in clients))
            return result
        finally:
            await asyncio.gather(*(c.close() for c in clients))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()
    clip = sorted((args.data / "talking_face" / "grid").glob("*.mpg"))[0]
    with tempfile.TemporaryDirectory() as d:
        proc, url = start_server(Path(d))
        try:
            print(
                f"{'calls':>5} {'setup ms':>9} {'1st frame ms':>12} {'sent fps':>8} "
                f"{'recv fps':>8} {'min recv':>8} {'server CPU %':>12} {'CPU %/call':>10}"
            )
            for n in args.calls:
                r = asyncio.run(run_calls(url, proc.pid, clip, n, args.seconds))
                print(
                    f"{n:>5} {r['setup_ms']:>9.0f} {r['first_frame_ms']:>12.0f} "
                    f"{r['sent_fps']:>8.1f} {r['fps']:>8.1f} {r['min_fps']:>8.1f} "
                    f"{r['server_cpu_pct']:>12.0f} "
                    f"{r['cpu_pct_per_call']:>10.0f}"
                )
        finally:
            stop_server(proc)
    print(
        f"({os.cpu_count()} CPU cores; CPU % is of one core; sent fps = server's own counter "
        "per call, recv fps = decoded by the clients, which share the machine)"
    )


if __name__ == "__main__":
    main()
