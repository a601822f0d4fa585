"""The call's clock: virtual time wakes sleepers in order, the ticker keeps its rate."""

from __future__ import annotations

import asyncio

import pytest

from avatar_agent.core.aio import InlineExecutor
from avatar_agent.core.clock import LoopClock, MediaClock, Ticker, VirtualClock


async def test_virtual_clock_wakes_sleepers_in_deadline_order() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, t: float) -> None:
        await clock.sleep_until(t)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, t)) for n, t in (("c", 0.3), ("a", 0.1), ("b", 0.2))]
    await clock.advance(0.15)
    assert woke == [("a", 0.1)]
    await clock.advance(1.0)
    assert woke == [("a", 0.1), ("b", 0.2), ("c", 0.3)]
    assert clock.now() == pytest.approx(1.15)
    await asyncio.gather(*tasks)


async def test_sleeping_until_the_past_returns_at_once() -> None:
    clock = VirtualClock(start=5.0)
    await asyncio.wait_for(clock.sleep_until(4.0), timeout=1.0)
    assert clock.now() == 5.0


async def test_ticker_keeps_its_rate_and_never_bursts_after_an_overrun() -> None:
    clock = VirtualClock()
    ticker = Ticker(clock, 0.25)
    ticks: list[float] = []

    async def loop() -> None:
        while True:
            ticks.append(await ticker.tick())
            if len(ticks) == 3:
                clock._now += 1.0  # the work of one tick overran four periods

    task = asyncio.create_task(loop())
    await clock.advance(2.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert ticks[:3] == pytest.approx([0.25, 0.5, 0.75])
    # after the overrun: the next tick at once, then the rate again, no catch-up burst
    assert ticks[3] == pytest.approx(1.75)
    assert ticks[4] == pytest.approx(2.0)
    with pytest.raises(ValueError):
        Ticker(clock, 0.0)


async def test_media_clock_starts_at_the_first_frame_and_sleeps_in_media_time() -> None:
    clock = VirtualClock(start=100.0)
    media = MediaClock(clock)
    assert media.peek() == 0.0
    await clock.advance(2.0)
    assert media.elapsed() == 0.0  # the first frame starts it
    await clock.advance(0.5)
    assert media.peek() == pytest.approx(0.5)
    done = asyncio.create_task(media.sleep_until(1.25))
    await clock.advance(0.5)
    assert not done.done()
    await clock.advance(0.3)
    assert done.done() and media.peek() == pytest.approx(1.3)


async def test_loop_clock_is_the_event_loop_clock() -> None:
    clock = LoopClock()
    start = clock.now()
    await clock.sleep_until(start + 0.01)
    assert clock.now() >= start + 0.01
    assert abs(clock.now() - asyncio.get_running_loop().time()) < 0.01


async def test_inline_executor_runs_work_at_once_and_passes_errors_on() -> None:
    loop = asyncio.get_running_loop()
    pool = InlineExecutor()
    assert await loop.run_in_executor(pool, sum, [1, 2, 3]) == 6
    with pytest.raises(ZeroDivisionError):
        await loop.run_in_executor(pool, divmod, 1, 0)
