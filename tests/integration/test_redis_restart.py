"""Redis restarts under running workers (killed with SIGKILL, started again empty on
the same port, as a crash and a supervisor's restart would): the bus and the command
link of each worker reconnect on their own; once Redis is back, an event published on
one worker reaches the other again and a command reaches its worker, within seconds;
nothing crashed, and what could not be sent meanwhile is counted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from avatar_agent.core.commands import CommandLink
from avatar_agent.core.events import Transcript
from avatar_agent.core.redisbus import RedisEventBus, register_bus_metrics
from tests.support.services import kill_redis, redis

BACK_WITHIN_S = 5.0


@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis() as url:
        yield url


def line(n: int) -> Transcript:
    return Transcript(call_id="call-b", role="customer", text=f"line {n}", t_start=n,
                      t_end=n + 0.5)


async def test_bus_and_commands_come_back_after_redis_restarts(
        redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    a = RedisEventBus(redis_url, "aa", origin="worker-a")
    b = RedisEventBus(redis_url, "aa", origin="worker-b")
    links = [CommandLink(redis_url, "aa", w, timeout_s=2.0) for w in ("a", "b")]

    async def echo(cmd: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, {"echo": cmd["n"]}

    await a.start()
    await b.start()
    for link in links:
        await link.start(echo)
    try:
        with a.subscribe(remote=True) as on_a:
            b.publish(line(0))
            async with asyncio.timeout(3):
                assert await on_a.get() == line(0)
            assert await links[0].send("b", {"n": 0}) == (200, {"echo": 0})

            caplog.set_level(logging.WARNING)
            restart = kill_redis(redis_url)
            status, _ = await links[0].send("b", {"n": 1})
            assert status == 503  # the operator is told at once
            for n in range(1, 21):  # 2 s of events published while Redis is down
                b.publish(line(n))
                await asyncio.sleep(0.1)
            restart()
            back = time.monotonic()

            # keep publishing until one gets through: pub/sub keeps nothing for a
            # subscriber that is reconnecting, so the first few may be gone
            got: list[Transcript] = []
            n = 100
            while not got:
                assert time.monotonic() - back < BACK_WITHIN_S, (a.received, b.sent, b.lost)
                b.publish(line(n))
                n += 1
                await asyncio.sleep(0.1)
                while (ev := on_a.get_nowait()) is not None:
                    got.append(ev)
            print(f"events flow again {time.monotonic() - back:.2f} s after Redis is back")
            while time.monotonic() - back < BACK_WITHIN_S:
                if await links[0].send("b", {"n": 2}) == (200, {"echo": 2}):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("commands did not come back")
            print(f"commands flow again {time.monotonic() - back:.2f} s after Redis is back")
            for task in [*a._tasks, *b._tasks, *(link._task for link in links)]:
                assert task is not None and not task.done(), task
            print(f"sent {b.sent}, lost {b.lost}, received on a {a.received}")
            # one warning per connection lost and one when it is back, not one per retry
            said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            print("\n".join(said))
            for what in ("event bus (listening)", "commands"):
                assert sum(m.startswith(f"{what}: lost Redis") for m in said) == 2, said
                assert sum(m.startswith(f"{what}: Redis is back") for m in said) == 2, said
            assert sum(m.startswith("event bus (publishing): lost") for m in said) == 1, said
            registry = CollectorRegistry()
            register_bus_metrics(b, registry)
            scraped = generate_latest(registry).decode()
            assert "avatar_agent_bus_outages_total 2.0" in scraped, scraped  # out and in
            assert f"avatar_agent_bus_events_sent_total {float(b.sent)}" in scraped
    finally:
        for link in links:
            await link.aclose()
        await a.aclose()
        await b.aclose()
