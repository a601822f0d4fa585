"""Churn: many short consenting calls against a running server, a few in flight at
once, each hung up as soon as it is set up; then the server's threads and memory are
read back, to show that calls ending early leave nothing behind.

Used by `scripts/soak.py` and the churn test. The server's threads and RSS are read
from /proc (Linux), so the server must run on this machine.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from avatar_agent.testing.client import CustomerClient


@dataclass(frozen=True)
class ProcessSample:
    threads: int
    rss_mb: float


def sample(pid: int) -> ProcessSample:
    """Threads and resident memory of process `pid`."""
    threads, rss_kb = 0, 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
        elif line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return ProcessSample(threads, rss_kb / 1024.0)


async def _one_call(url: str, media: Path, http: aiohttp.ClientSession,
                    consent: bool = True) -> None:
    client = CustomerClient(url, media, consent=consent)
    try:
        await client.connect(http)
        await client.hangup(http)  # at once: the case that leaked face analysis
    finally:
        await client.close()


async def churn(url: str, media: Path, calls: int, in_flight: int = 4,
                consent: bool = True) -> int:
    """Open and close `calls` calls (consenting to analysis unless told otherwise),
    `in_flight` at a time; returns how many the server refused or failed (0 when all
    went through)."""
    gate = asyncio.Semaphore(in_flight)
    failed = 0

    async def run(http: aiohttp.ClientSession) -> None:
        nonlocal failed
        async with gate:
            try:
                await _one_call(url, media, http, consent)
            except (RuntimeError, OSError, aiohttp.ClientError):
                failed += 1

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(run(http) for _ in range(calls)))
    return failed


async def face_analyzers(url: str) -> int:
    """The face analysers the server keeps alive (in use or idle), from /healthz."""
    async with aiohttp.ClientSession() as http, http.get(url + "/healthz") as r:
        return int((await r.json()).get("face_analyzers", 0))


async def settle(url: str, pid: int, baseline: ProcessSample, within_s: float = 60.0,
                 slack_threads: int = 0, mesh_threads: int = 0,
                 base_analyzers: int = 0) -> ProcessSample:
    """Wait (up to `within_s`) until the server has no call left and its threads are
    back at `baseline` (+ slack, + `mesh_threads` for each face analyser it keeps
    beyond `base_analyzers`); returns the last sample either way."""
    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(url + "/healthz") as r:
                health = await r.json()
            kept = max(0, int(health.get("face_analyzers", 0)) - base_analyzers)
            now = sample(pid)
            allowed = baseline.threads + slack_threads + mesh_threads * kept
            if (int(health["calls"]) == 0 and now.threads <= allowed) \
                    or time.monotonic() > deadline:
                return now
            await asyncio.sleep(0.5)
