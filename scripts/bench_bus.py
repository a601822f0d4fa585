"""Latency of the event bus between workers: an affect message published by one worker
process until a dashboard subscriber in another process has it, through a real Redis
(a throwaway redis-server), against the in-process bus of a single server.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_bus.py [--calls 20] [--seconds 15]

`--calls` consenting calls publish affect at 4 Hz each (the affect rate), as one worker
would. Prints p50/p95/max in milliseconds. Both processes run on this machine and read
the same clock (time.time_ns). The dashboard's WebSocket hop after the bus is the same
with or without Redis and is not part of this figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avatar_agent.core.bus import EventBus  # noqa: E402
from avatar_agent.core.events import AffectUpdate  # noqa: E402
from avatar_agent.core.redisbus import RedisEventBus  # noqa: E402
from tests.support.services import redis  # noqa: E402

RATE_HZ = 4.0


def event(call: int, sent_ns: int) -> AffectUpdate:
    # `t` carries the send time (ns) so the receiver can tell the latency
    return AffectUpdate(call_id=f"call-{call}", t=float(sent_ns), arousal=0.4, valence=-0.2,
                        anger_index=40.0, level="calm", emotion="neutral")


async def publish(bus: EventBus, calls: int, seconds: float) -> int:
    sent, start = 0, time.monotonic()
    period = 1.0 / (RATE_HZ * calls)
    while time.monotonic() - start < seconds:
        bus.publish(event(sent % calls, time.time_ns()))
        sent += 1
        await asyncio.sleep(period)
    return sent


async def _publish_from_worker(url: str, calls: int, seconds: float, ready: Any) -> None:
    bus = RedisEventBus(url, "bench", origin="worker-b")
    await bus.start()
    ready.wait()
    await publish(bus, calls, seconds)
    await asyncio.sleep(0.5)
    await bus.aclose()


def publisher(url: str, calls: int, seconds: float, ready: Any) -> None:
    asyncio.run(_publish_from_worker(url, calls, seconds, ready))


async def receive(bus: EventBus, idle_s: float = 2.0, first_within_s: float = 30.0
                  ) -> list[float]:
    """Latencies (ms) of what arrives, until the bus has been quiet for `idle_s`."""
    out: list[float] = []
    with bus.subscribe(maxsize=100000) as sub:
        while True:
            try:
                ev = await asyncio.wait_for(sub.get(), idle_s if out else first_within_s)
            except TimeoutError:
                return out
            assert isinstance(ev, AffectUpdate)
            out.append((time.time_ns() - ev.t) / 1e6)


async def in_process(calls: int, seconds: float) -> list[float]:
    bus = EventBus()
    got = asyncio.create_task(receive(bus))
    await asyncio.sleep(0.05)
    await publish(bus, calls, seconds)
    return await got


async def across(url: str, calls: int, seconds: float) -> list[float]:
    bus = RedisEventBus(url, "bench", origin="worker-a")
    await bus.start()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=publisher, args=(url, calls, seconds, ready))
    proc.start()
    got = asyncio.create_task(receive(bus))
    await asyncio.sleep(0.1)
    ready.set()
    ms = await got
    await asyncio.get_running_loop().run_in_executor(None, proc.join)
    await bus.aclose()
    return ms


def summary(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=100)
    return {"n": len(ms), "p50_ms": round(q[49], 3), "p95_ms": round(q[94], 3),
            "max_ms": round(max(ms), 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=15.0)
    args = ap.parse_args()
    local = asyncio.run(in_process(args.calls, args.seconds))
    with redis() as url:
        remote = asyncio.run(across(url, args.calls, args.seconds))
    print(json.dumps({"calls": args.calls, "rate_hz_per_call": RATE_HZ,
                      "in_process": summary(local),
                      "redis_between_processes": summary(remote)}, indent=1))


if __name__ == "__main__":
    main()
