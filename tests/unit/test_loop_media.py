"""A looped customer clip keeps sending past the clip's end, paced like a camera."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from avatar_agent.testing.loop_media import AUDIO_FRAME, LoopedClip

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def clip() -> LoopedClip:
    paths = sorted((DATA / "talking_face" / "grid").glob("*.mpg"))
    if not paths:
        pytest.skip("GRID clips missing")
    return LoopedClip(paths[0])


async def test_video_and_audio_loop_past_the_end(clip: LoopedClip) -> None:
    n = len(clip.pictures)
    video = clip.video()
    video._t0 = -1e9  # far in the past: every frame is due at once (no real waiting)
    frames = [await video.recv() for _ in range(n + 3)]
    assert frames[n].to_ndarray(format="yuv420p").tobytes() == \
        clip.pictures[0].tobytes()  # frame n is the first picture again
    assert [f.pts for f in frames[:3]] == [0, round(90000 / clip.fps), round(2 * 90000 / clip.fps)]
    audio = clip.audio()
    audio._t0 = -1e9
    loops = len(clip.pcm) // AUDIO_FRAME
    got = [await audio.recv() for _ in range(loops + 2)]
    assert got[loops].to_ndarray().tobytes() == got[0].to_ndarray().tobytes()
    assert got[-1].pts == (loops + 1) * AUDIO_FRAME


async def test_tracks_pace_on_the_wall_clock(clip: LoopedClip) -> None:
    video = clip.video()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for _ in range(6):
        await video.recv()
    # 6 frames at 25 fps: the 6th is due 5 periods after the first
    assert loop.time() - t0 >= 5 / clip.fps - 0.01
