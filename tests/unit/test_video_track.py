"""The avatar's video track draws each frame for its own time; late, it skips to the newest."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from avatar_agent.avatar.tracks import VIDEO_CLOCK, AvatarVideoTrack
from avatar_agent.core.clock import MediaClock, VirtualClock
from avatar_agent.core.faults import StageFaults
from avatar_agent.core.metrics import Metrics

FPS = 30


class DrawnAt:
    """Stands in for the avatar: the pose is the time, the picture encodes it."""

    def __init__(self) -> None:
        self.posed: list[float] = []
        self.drawn: list[float] = []

    def pose_at(self, t: float) -> float:
        self.posed.append(t)
        return t

    def render_i420(self, pose: Any) -> np.ndarray:
        self.drawn.append(pose)
        img = np.zeros((480 * 3 // 2, 640), np.uint8)
        img[0, :4] = np.frombuffer(np.float32(pose).tobytes(), np.uint8)
        return img


def _time_of(frame: Any) -> float:
    y = frame.to_ndarray(format="yuv420p")
    return float(np.frombuffer(y[0, :4].tobytes(), np.float32)[0])


async def test_each_frame_shows_its_own_time() -> None:
    clock, stream = VirtualClock(), DrawnAt()
    with ThreadPoolExecutor(1) as pool:
        track = AvatarVideoTrack(stream, MediaClock(clock), FPS, pool, Metrics())  # type: ignore[arg-type]  # noqa: E501
        for n in range(5):
            got = asyncio.ensure_future(track.recv())
            await clock.advance(1 / FPS)
            frame = await asyncio.wait_for(got, 5)
            t = frame.pts / VIDEO_CLOCK
            assert abs(t - n / FPS) < 1e-9
            assert abs(_time_of(frame) - t) < 1e-6  # the picture is the pose of its own time
            assert abs(stream.posed[-1] - t) < 1e-9
        track.stop()
    assert track.skipped == 0


async def test_a_late_consumer_gets_the_latest_frame() -> None:
    clock, stream = VirtualClock(), DrawnAt()
    with ThreadPoolExecutor(1) as pool:
        track = AvatarVideoTrack(stream, MediaClock(clock), FPS, pool, Metrics())  # type: ignore[arg-type]  # noqa: E501
        first = asyncio.ensure_future(track.recv())
        await clock.advance(1 / FPS)
        await asyncio.wait_for(first, 5)
        # the sender stalled: the clock reads 4.5 frames, frames 1 to 3 are past
        await clock.advance(3.5 / FPS)
        frame = await asyncio.wait_for(track.recv(), 5)
        t = frame.pts / VIDEO_CLOCK
        assert abs(t - 4 / FPS) < 1e-9 and abs(_time_of(frame) - t) < 1e-6
        assert track.skipped == 3
        track.stop()


class BreaksAfterFirst(DrawnAt):
    def render_i420(self, pose: Any) -> np.ndarray:
        if self.drawn:
            raise RuntimeError("broken layer")
        return super().render_i420(pose)


async def test_a_broken_frame_repeats_the_last_picture_and_is_counted_once(
    caplog: Any,
) -> None:
    clock, stream, metrics = VirtualClock(), BreaksAfterFirst(), Metrics()
    faults = StageFaults("c1", metrics)
    with ThreadPoolExecutor(1) as pool:
        track = AvatarVideoTrack(stream, MediaClock(clock), FPS, pool, metrics,  # type: ignore[arg-type]
                                 faults=faults)
        frames = []
        for _ in range(4):
            got = asyncio.ensure_future(track.recv())
            await clock.advance(1 / FPS)
            frames.append(await asyncio.wait_for(got, 5))
        track.stop()
    # frames 1-3 repeat frame 0's picture, on their own times
    assert [round(f.pts / VIDEO_CLOCK * FPS) for f in frames] == [0, 1, 2, 3]
    assert all(abs(_time_of(f) - 0.0) < 1e-6 for f in frames)
    assert faults.counts[("render", "RuntimeError")] == 3
    assert sum("render failed" in r.getMessage() for r in caplog.records) == 1
    text = metrics.render().decode()
    assert 'avatar_agent_stage_failures_total{stage="render"} 3.0' in text
