"""A consenting call that ends while its face analysis is still being set up leaves
no MediaPipe graph (and none of its threads) behind."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import av

from avatar_agent.core.config import PerceptionConfig
from avatar_agent.core.metrics import Metrics
from avatar_agent.perception.face import FaceAnalyzer
from avatar_agent.perception.face_pool import FaceAnalyzers
from avatar_agent.perception.live import CallPerception
from avatar_agent.transport.receiver import Receiver


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


async def _never() -> av.VideoFrame:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def test_face_analysis_cancelled_during_setup_closes_its_analyzer() -> None:
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="analysis")
    loop = asyncio.get_running_loop()
    # warm: the first graphs load MediaPipe's shared state (it stays for the process)
    # and start both pool workers
    await asyncio.gather(*(loop.run_in_executor(pool, lambda: FaceAnalyzer().close())
                           for _ in range(2)))
    before = _threads()
    for _ in range(4):
        perception = CallPerception(PerceptionConfig(), pool, Metrics(), lambda: 0.0)
        task = asyncio.ensure_future(perception.run_face(Receiver("video", _never)))
        await asyncio.sleep(0.01)  # the analyzer is being built in the pool
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # the pool may still be finishing a build and then its close
    for _ in range(50):
        if _threads() <= before:
            break
        await asyncio.sleep(0.1)
    try:
        assert _threads() <= before, f"{_threads() - before} threads left behind"
    finally:
        pool.shutdown(wait=True)


async def test_face_analysis_cancelled_during_setup_gives_its_analyzer_back() -> None:
    """With the server's kept analysers: each cancelled call's one goes back (reset) to
    be reused, and closing them leaves no graph behind."""
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="analysis")
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(pool, lambda: FaceAnalyzer().close())
                           for _ in range(2)))
    before = _threads()
    analyzers = FaceAnalyzers(FaceAnalyzer, keep=1)
    try:
        for _ in range(4):
            perception = CallPerception(PerceptionConfig(), pool, Metrics(), lambda: 0.0,
                                        analyzers=analyzers)
            task = asyncio.ensure_future(perception.run_face(Receiver("video", _never)))
            await asyncio.sleep(0.01)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # A cancelled call's analyser may still be built, then given back and closed,
        # on either pool worker: wait for both counts (a leak never gets there).
        for _ in range(100):
            if analyzers.idle == 1 and analyzers.alive == 1:
                break
            await asyncio.sleep(0.1)
        assert analyzers.idle == 1  # kept for the next call (keep=1)...
        assert analyzers.alive == 1  # ...and every other one closed
    finally:
        await loop.run_in_executor(pool, analyzers.close)
        pool.shutdown(wait=True)
    for _ in range(50):
        if _threads() <= before:
            break
        await asyncio.sleep(0.1)
    assert _threads() <= before, f"{_threads() - before} threads left behind"
