"""A customer's camera and microphone playing a real clip over and over, for load tests.

aiortc's `MediaPlayer(loop=True)` does not loop with PyAV 18, and a 3-second GRID clip
played once leaves the server nothing to analyse after 3 s. The clip is decoded once
into memory and shared by any number of customers; each track paces itself on the
wall clock like a camera would.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack

VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
AUDIO_FRAME = 960  # 20 ms


class LoopedClip:
    """A clip's video (yuv420p pictures) and audio (48 kHz mono s16), decoded once."""

    def __init__(self, path: Path) -> None:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or 25
            self.fps = float(rate)
            self.pictures = [np.asarray(f.to_ndarray(format="yuv420p"), np.uint8)
                             for f in container.decode(video=0)]
        if not self.pictures:
            raise ValueError(f"{path}: no video frames")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
        parts: list[npt.NDArray[np.int16]] = []
        with av.open(str(path)) as container:
            if container.streams.audio:
                for frame in container.decode(audio=0):
                    parts.extend(np.asarray(out.to_ndarray(), np.int16).reshape(-1)
                                 for out in resampler.resample(frame))
        pcm = np.concatenate(parts).astype(np.int16) if parts else np.zeros(AUDIO_FRAME, np.int16)
        n = max(1, len(pcm) // AUDIO_FRAME) * AUDIO_FRAME
        self.pcm = np.resize(pcm, n)  # whole 20 ms frames, so the loop has no seam to pad

    def video(self) -> LoopVideoTrack:
        return LoopVideoTrack(self.pictures, self.fps)

    def audio(self) -> LoopAudioTrack:
        return LoopAudioTrack(self.pcm)


class _Paced(MediaStreamTrack):
    def __init__(self, period: float) -> None:
        super().__init__()
        self._period = period
        self._t0: float | None = None
        self._index = 0

    async def _next_index(self) -> int:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + self._index * self._period
        if due > now:
            await asyncio.sleep(due - now)
        index = self._index
        self._index += 1
        return index


class LoopVideoTrack(_Paced):
    """yuv420p `pictures` at `fps`, over and over."""

    kind = "video"

    def __init__(self, pictures: list[npt.NDArray[np.uint8]], fps: float) -> None:
        super().__init__(1.0 / fps)
        self._pictures = pictures
        self._fps = fps

    async def recv(self) -> av.VideoFrame:
        i = await self._next_index()
        pictures = self._pictures
        frame = av.VideoFrame.from_ndarray(pictures[i % len(pictures)], format="yuv420p")
        frame.pts = round(i * VIDEO_CLOCK / self._fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame


class LoopAudioTrack(_Paced):
    """48 kHz mono s16 `pcm` (whole 20 ms frames) over and over."""

    kind = "audio"

    def __init__(self, pcm: npt.NDArray[np.int16]) -> None:
        if len(pcm) == 0 or len(pcm) % AUDIO_FRAME:
            raise ValueError(f"pcm must be whole {AUDIO_FRAME}-sample frames, got {len(pcm)}")
        super().__init__(AUDIO_FRAME / AUDIO_RATE)
        self._pcm = pcm

    async def recv(self) -> av.AudioFrame:
        i = await self._next_index()
        pcm = self._pcm
        at = (i * AUDIO_FRAME) % len(pcm)
        frame = av.AudioFrame.from_ndarray(
            pcm[at:at + AUDIO_FRAME].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = i * AUDIO_FRAME
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame
