"""The avatar as two media tracks, paced by ONE media clock.

A video frame's pts and an audio frame's pts are both positions on the call's
`MediaClock`, and the mouth drawn on a frame is read from the same timeline the audio
comes from. aiortc maps pts to RTP timestamps and RTCP sender reports, so the browser
lines the two streams up exactly as they were produced. The session builds these
tracks and hands them to the transport, which only carries them.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack

from avatar_agent.avatar.animator import Pose
from avatar_agent.avatar.stream import AvatarStream
from avatar_agent.core.clock import MediaClock
from avatar_agent.core.faults import StageFaults
from avatar_agent.core.metrics import Metrics
from avatar_agent.speech.playout import PlayoutEvent
from avatar_agent.transport.pacing import pace

VIDEO_CLOCK = 90000
AUDIO_FRAME = 0.020


class AvatarVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(
        self, stream: AvatarStream, clock: MediaClock, fps: int, pool: Executor, metrics: Metrics,
        faults: StageFaults | None = None,
    ) -> None:
        super().__init__()
        self._faults = faults or StageFaults("?", metrics)
        self._stream = stream
        self._clock = clock
        self._period = 1.0 / fps
        self._pool = pool
        # label lookups take a lock; done once, not per frame
        self._render_s = metrics.stage_seconds.labels("render")
        self._sent = metrics.frames_out.labels("video")
        self._dropped = metrics.frames_dropped.labels("video", "send")
        self._next: int | None = None
        self._last: np.ndarray[Any, Any] | None = None
        self.skipped = 0  # frames given up because rendering fell behind the clock

    async def recv(self) -> av.VideoFrame:
        elapsed = self._clock.elapsed()
        if self._next is None:
            self._next = math.ceil(elapsed / self._period)
        # Video never catches up by sending stale frames: anything late is skipped.
        p = pace(elapsed, self._next, self._period, max_late_frames=0)
        if p.skipped:
            self._dropped.inc(p.skipped)
            self.skipped += p.skipped
        t = p.index * self._period
        if p.wait > 0:
            await self._clock.sleep_until(t)
        pose = self._stream.pose_at(t)
        started = time.perf_counter()
        try:
            # Drawn and wrapped as a frame on the render thread: copying the picture
            # into the frame holds the interpreter, and the event loop is shared by all calls.
            frame = await asyncio.get_running_loop().run_in_executor(
                self._pool, self._render_frame, pose
            )
        except Exception as exc:
            # A broken frame degrades this call only: repeat the last good picture
            # (counted; logged with its traceback once per kind, not 30 times a second).
            self._faults.failed("render", exc)
            if self._last is None:
                raise
            frame = av.VideoFrame.from_ndarray(self._last, format="yuv420p")
        self._render_s.observe(time.perf_counter() - started)
        frame.pts = round(t * VIDEO_CLOCK)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._next = p.index + 1
        self._sent.inc()
        return frame

    def _render_frame(self, pose: Pose) -> av.VideoFrame:
        img = self._stream.render_i420(pose)
        self._last = img
        return av.VideoFrame.from_ndarray(img, format="yuv420p")


class AvatarAudioTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(
        self,
        stream: AvatarStream,
        clock: MediaClock,
        metrics: Metrics,
        on_speech: Callable[[PlayoutEvent], None],
    ) -> None:
        super().__init__()
        self._stream = stream
        self._clock = clock
        self._sent = metrics.frames_out.labels("audio")
        self._dropped = metrics.frames_dropped.labels("audio", "send")
        self._on_speech = on_speech
        self._samples = round(stream.rate * AUDIO_FRAME)
        self._next: int | None = None

    async def recv(self) -> av.AudioFrame:
        elapsed = self._clock.elapsed()
        if self._next is None:
            self._next = math.ceil(elapsed / AUDIO_FRAME)
        # A short stall is caught up (gaps click); a long one skips ahead to stay in sync.
        p = pace(elapsed, self._next, AUDIO_FRAME, max_late_frames=5)
        if p.skipped:
            self._dropped.inc(p.skipped)
        if p.wait > 0:
            await self._clock.sleep_until(p.index * AUDIO_FRAME)
        n = self._samples
        # Read skipped audio too, so speech that fell into a stall still ends properly.
        first = self._next * n
        start = p.index * n
        pcm, events = self._stream.audio(first, start + n - first)
        pcm = pcm[-n:]
        for ev in events:
            self._on_speech(ev)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._stream.rate
        frame.pts = start
        frame.time_base = fractions.Fraction(1, self._stream.rate)
        self._next = p.index + 1
        self._sent.inc()
        return frame
