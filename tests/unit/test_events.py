from __future__ import annotations

import asyncio

import pytest

from avatar_agent.core.bus import EventBus


async def test_fan_out_to_two_subscribers() -> None:
    bus = EventBus()
    with bus.subscribe() as a, bus.subscribe() as b:
        assert bus.subscribers == 2
        for i in range(3):
            bus.publish({"type": "affect", "i": i})
        async with asyncio.timeout(1):
            got_a = [(await a.get())["i"] for _ in range(3)]
            got_b = [(await b.get())["i"] for _ in range(3)]
    assert got_a == got_b == [0, 1, 2]
    assert a.dropped == b.dropped == 0


async def test_slow_subscriber_drops_oldest_and_counts() -> None:
    bus = EventBus()
    fast = bus.subscribe()
    slow = bus.subscribe(maxsize=3)
    for i in range(10):
        bus.publish({"i": i})  # nobody reads in between: publish must not wait
    assert slow.dropped == 7 and len(slow) == 3
    assert fast.dropped == 0 and len(fast) == 10
    slow.close()
    got = [e["i"] async for e in slow]  # a closed subscription yields what it kept, then stops
    assert got == [7, 8, 9]


async def test_unsubscribe_on_exit() -> None:
    bus = EventBus()
    async with bus.subscribe() as sub:
        assert bus.subscribers == 1
    assert bus.subscribers == 0 and sub.closed
    bus.publish({"i": 1})
    assert len(sub) == 0 and sub.get_nowait() is None
    with pytest.raises(StopAsyncIteration):
        await sub.get()


async def test_waiting_reader_wakes_on_publish_and_on_close() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    got: list[int] = []

    async def reader() -> None:
        async for e in sub:
            got.append(e["i"])

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)
    bus.publish({"i": 1})
    await asyncio.sleep(0)
    bus.publish({"i": 2})
    await asyncio.sleep(0)
    assert got == [1, 2]
    bus.close()
    async with asyncio.timeout(1):
        await task
    assert bus.subscribers == 0 and sub.delivered == 2


def test_bad_maxsize() -> None:
    with pytest.raises(ValueError):
        EventBus().subscribe(maxsize=0)
