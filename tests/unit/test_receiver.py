from __future__ import annotations

import asyncio

from avatar_agent.transport.receiver import LatestSlot, Receiver


def test_latest_wins_and_drops_counted() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.take() is None
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.take() == 3
    assert slot.take() is None
    assert slot.put(4) is False
    assert (slot.received, slot.dropped) == (4, 2)


async def test_receiver_drains_until_track_ends() -> None:
    frames = list(range(10))

    async def recv() -> int:
        await asyncio.sleep(0)
        if not frames:
            raise ConnectionError("ended")
        return frames.pop(0)

    seen: list[int] = []
    drops: list[int] = []
    rx: Receiver[int] = Receiver(
        "video", recv, on_frame=seen.append, on_drop=lambda: drops.append(1)
    )
    slot = rx.subscribe()
    await asyncio.wait_for(rx.run(), 5)
    assert seen == list(range(10))
    assert rx.frames == 10
    assert slot.take() == 9  # nobody read: only the newest is kept
    assert len(drops) == 9 == slot.dropped


def test_bounded_queue_keeps_order_and_counts_overflow() -> None:
    from avatar_agent.transport.receiver import BoundedQueue

    q: BoundedQueue[int] = BoundedQueue(3)
    assert [q.put(i) for i in range(5)] == [False, False, False, True, True]
    assert q.drain() == [2, 3, 4]
    assert q.drain() == []
    assert (q.received, q.dropped) == (5, 2)
