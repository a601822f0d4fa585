from __future__ import annotations

import asyncio

import pytest

from avatar_agent.core.bus import EventBus
from avatar_agent.core.events import CallEnded, HumanRequested


def ev(i: int) -> HumanRequested:
    """A distinct event per i (its media time), to follow order and drops."""
    return HumanRequested(call_id="c1", t=float(i))


async def test_fan_out_to_two_subscribers() -> None:
    bus = EventBus()
    with bus.subscribe() as a, bus.subscribe() as b:
        assert bus.subscribers == 2
        for i in range(3):
            bus.publish(ev(i))
        async with asyncio.timeout(1):
            got_a = [await a.get() for _ in range(3)]
            got_b = [await b.get() for _ in range(3)]
    assert got_a == got_b == [ev(0), ev(1), ev(2)]
    assert got_a[0] is got_b[0]  # shared as published: events are frozen
    assert a.dropped == b.dropped == 0


async def test_slow_subscriber_drops_oldest_and_counts() -> None:
    bus = EventBus()
    fast = bus.subscribe()
    slow = bus.subscribe(maxsize=3)
    for i in range(10):
        bus.publish(ev(i))  # nobody reads in between: publish must not wait
    assert slow.dropped == 7 and len(slow) == 3
    assert fast.dropped == 0 and len(fast) == 10
    slow.close()
    # a closed subscription yields what it kept, then stops
    got = [e.t async for e in slow if isinstance(e, HumanRequested)]
    assert got == [7, 8, 9]


async def test_unsubscribe_on_exit() -> None:
    bus = EventBus()
    async with bus.subscribe() as sub:
        assert bus.subscribers == 1
    assert bus.subscribers == 0 and sub.closed
    bus.publish(CallEnded(call_id="c1", reason="hangup"))
    assert len(sub) == 0 and sub.get_nowait() is None
    with pytest.raises(StopAsyncIteration):
        await sub.get()


async def test_waiting_reader_wakes_on_publish_and_on_close() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    got: list[float] = []

    async def reader() -> None:
        async for e in sub:
            assert isinstance(e, HumanRequested)
            got.append(e.t)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)
    bus.publish(ev(1))
    await asyncio.sleep(0)
    bus.publish(ev(2))
    await asyncio.sleep(0)
    assert got == [1, 2]
    bus.close()
    async with asyncio.timeout(1):
        await task
    assert bus.subscribers == 0 and sub.delivered == 2


def test_bad_maxsize() -> None:
    with pytest.raises(ValueError):
        EventBus().subscribe(maxsize=0)
