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


async def test_arrival_wakes_every_waiter_for_each_frame_without_polling() -> None:
    feed: asyncio.Queue[int] = asyncio.Queue()
    rx: Receiver[int] = Receiver("audio", feed.get)
    queue = rx.subscribe_queue(10)
    runner = asyncio.create_task(rx.run())
    woke: list[tuple[str, list[int]]] = []

    async def consumer(name: str) -> None:
        while True:
            await rx.arrival()
            woke.append((name, queue.drain() if name == "a" else []))

    waiters = [asyncio.create_task(consumer(n)) for n in ("a", "b")]
    await asyncio.sleep(0.01)
    assert woke == []  # nothing arrived: nobody is woken
    await feed.put(7)
    await asyncio.sleep(0.01)
    assert sorted(n for n, _ in woke) == ["a", "b"]
    assert ("a", [7]) in woke
    await feed.put(8)
    await asyncio.sleep(0.01)
    assert len(woke) == 4 and ("a", [8]) in woke
    for t in (runner, *waiters):
        t.cancel()
    await asyncio.gather(runner, *waiters, return_exceptions=True)


async def test_an_ended_track_wakes_its_waiters_and_a_viewer_can_leave() -> None:
    frames = iter([1, 2])

    async def recv() -> int:
        await asyncio.sleep(0)
        try:
            return next(frames)
        except StopIteration:
            raise ConnectionError("track ended") from None

    rx: Receiver[int] = Receiver("video", recv)
    kept = rx.subscribe()
    gone = rx.subscribe()
    rx.unsubscribe(gone)
    rx.unsubscribe(gone)  # twice is harmless
    waiter = asyncio.create_task(rx.arrival())
    await asyncio.wait_for(rx.run(), 1)
    assert rx.ended and rx.frames == 2
    await asyncio.wait_for(waiter, 1)  # woken, not left waiting for a frame that never comes
    assert kept.take() == 2 and gone.take() is None
    await asyncio.wait_for(rx.arrival(), 1)  # after the end, nothing to wait for


async def test_only_analysis_skips_count_as_drops() -> None:
    frames = iter(range(5))

    async def recv() -> int:
        await asyncio.sleep(0)
        try:
            return next(frames)
        except StopIteration:
            raise ConnectionError("track ended") from None

    drops: list[None] = []
    rx: Receiver[int] = Receiver("video", recv, on_drop=lambda: drops.append(None))
    viewer = rx.subscribe(sampled=True)
    analysis = rx.subscribe()
    await asyncio.wait_for(rx.run(), 1)
    assert viewer.take() == 4 and viewer.dropped == 4  # it saw only the newest
    assert analysis.dropped == 4
    assert len(drops) == 4  # only the analysis slot's skips are the call's drops


def test_voice_activity_scores_frames_in_pairs_and_returns_when_the_track_ends() -> None:
    """Once the track has ended, the VAD loop must finish rather than spin on arrival().

    Run in a daemon thread: a loop that spins never yields, so no asyncio timeout could
    fire, and the test must fail instead of hanging the suite.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import av
    import numpy as np

    from avatar_agent.perception.live import run_voice_activity

    def frame(i: int) -> av.AudioFrame:
        pcm = np.zeros((1, 960 * 2), dtype=np.int16)  # 20 ms of 48 kHz stereo silence
        f = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        f.sample_rate = 48000
        f.pts = i * 960
        return f

    batches: list[int] = []

    class Counting(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            if len(args) > 2 and isinstance(args[2], list):  # _vad_step(.., frames, ..)
                batches.append(len(args[2]))
            return super().submit(fn, *args, **kwargs)

    async def call() -> str:
        frames = [frame(i) for i in range(25)]

        async def recv() -> av.AudioFrame:
            await asyncio.sleep(0.005)
            if not frames:
                raise ConnectionError("ended")
            return frames.pop(0)

        rx: Receiver[av.AudioFrame] = Receiver("audio", recv)
        with Counting(1) as pool:
            vad = asyncio.create_task(run_voice_activity(rx, pool, lambda: 0.0, lambda e: None))
            await rx.run()
            await asyncio.wait_for(vad, 10)
        return "returned"

    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(call())), daemon=True)
    worker.start()
    worker.join(20)
    assert result == ["returned"], "the VAD loop did not finish after the track ended"
    # every frame scored, in pairs at least (a trip to the pool wakes the loop); the
    # odd one out is scored when the track ends
    assert sum(batches) == 25 and min(batches[:-1]) >= 2


def test_onset_fires_within_frames_of_a_sound_and_ends_with_the_track() -> None:
    """The onset task reacts on the frame that completes the sound, however busy the
    analysis pool is (it never waits on it), and returns when the track ends."""
    import threading

    import av
    import numpy as np

    from avatar_agent.perception.live import run_onset
    from avatar_agent.perception.onset import OnsetDetector

    def frame(i: int, amplitude: float) -> av.AudioFrame:
        rng = np.random.default_rng(i)
        pcm = (rng.normal(0.0, amplitude, (1, 960 * 2)) * 32767).clip(-32767, 32767)
        f = av.AudioFrame.from_ndarray(pcm.astype(np.int16), format="s16", layout="stereo")
        f.sample_rate = 48000
        f.pts = i * 960
        return f

    loud_from = 40  # 0.8 s of room noise, then a voice 40 dB louder
    frames = [frame(i, 0.001 if i < loud_from else 0.1) for i in range(60)]

    async def call() -> list[int]:
        pending = list(frames)

        async def recv() -> av.AudioFrame:
            await asyncio.sleep(0.002)
            if not pending:
                raise ConnectionError("ended")
            return pending.pop(0)

        rx: Receiver[av.AudioFrame] = Receiver("audio", recv)
        fired: list[int] = []
        task = asyncio.create_task(run_onset(rx, OnsetDetector(frames=2), lambda: fired.append(
            rx.frames)))
        await rx.run()
        await asyncio.wait_for(task, 10)
        return fired

    result: list[list[int]] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(call())), daemon=True)
    worker.start()
    worker.join(20)
    assert result, "the onset task did not finish after the track ended"
    assert len(result[0]) == 1, result  # one sound, one onset
    assert loud_from + 2 <= result[0][0] <= loud_from + 3, result  # its second loud frame
