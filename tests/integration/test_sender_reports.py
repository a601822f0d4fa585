"""Sender reports on the media clock: two real aiortc peers on loopback.

The sending peer's video frames all leave 150 ms after their place on the media
clock (a slow render pool), its audio on time. A receiver lines the tracks up through
the sender reports, as a browser does: with reports stamped from the media clock both
tracks' media time 0 falls on the same wall-clock instant; aiortc's own reports
(stamped when each packet left) put the video 150 ms late.
"""

from __future__ import annotations

import asyncio
import fractions
import math

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection

from avatar_agent.core.clock import LoopClock, MediaClock
from avatar_agent.testing.measure import MediaRecorder
from avatar_agent.transport.reports import use_media_clock
from avatar_agent.transport.webrtc import close_peer

LATE_S = 0.150
SECONDS = 5.0


class _Video(MediaStreamTrack):
    kind = "video"

    def __init__(self, clock: MediaClock) -> None:
        super().__init__()
        self._clock, self._i = clock, 0

    async def recv(self) -> av.VideoFrame:
        t = self._i / 30
        self._clock.elapsed()
        await self._clock.sleep_until(t + LATE_S)  # drawn late, stamped on time
        img = np.full((120, 160, 3), (self._i * 7) % 255, np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = round(t * 90000), fractions.Fraction(1, 90000)
        self._i += 1
        return frame


class _Audio(MediaStreamTrack):
    kind = "audio"

    def __init__(self, clock: MediaClock, rate: int) -> None:
        super().__init__()
        self._clock, self._rate, self._i = clock, rate, 0

    async def recv(self) -> av.AudioFrame:
        n = self._rate // 50
        self._clock.elapsed()
        await self._clock.sleep_until(self._i * 0.02)
        t = np.arange(self._i * n, (self._i + 1) * n) / self._rate
        pcm = (3000 * np.sin(2 * math.pi * 440 * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._rate
        frame.pts, frame.time_base = self._i * n, fractions.Fraction(1, self._rate)
        self._i += 1
        return frame


async def _offsets(stamped: bool, rate: int) -> float:
    """Video's NTP time of media time 0 minus audio's, as the receiver reads them."""
    clock = MediaClock(LoopClock())
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    recorder = MediaRecorder()
    tracks = [_Video(clock), _Audio(clock, rate)]
    try:
        receiver.addTransceiver("video", direction="recvonly")
        receiver.addTransceiver("audio", direction="recvonly")
        await receiver.setLocalDescription(await receiver.createOffer())
        await sender.setRemoteDescription(receiver.localDescription)
        for track in tracks:
            sender.addTrack(track)
        await sender.setLocalDescription(await sender.createAnswer())
        if stamped:
            assert use_media_clock(sender, tracks, clock.peek) == {
                "video": "avatar_vp8", "audio": "aiortc"}
        pulls: list[asyncio.Task[None]] = []
        receiver.on("track", lambda t: pulls.append(asyncio.ensure_future(_pull(t, recorder))))
        await receiver.setRemoteDescription(sender.localDescription)
        recorder.attach(receiver)
        await asyncio.sleep(SECONDS)
        for task in pulls:
            task.cancel()
        assert len(recorder.video.reports) >= 2 and len(recorder.audio.reports) >= 2
        return recorder.video.ntp_offset() - recorder.audio.ntp_offset()
    finally:
        for track in tracks:
            track.stop()
        await close_peer(sender)
        await close_peer(receiver)


async def _pull(track: MediaStreamTrack, recorder: MediaRecorder) -> None:
    while True:
        recorder.add(await track.recv())


@pytest.mark.parametrize("rate", [22050])  # Piper's rate: Opus holds the first frame back
async def test_reports_place_late_video_where_the_media_clock_put_it(rate: int) -> None:
    skew = await _offsets(stamped=True, rate=rate)
    assert abs(skew) < 0.010, f"video {skew * 1000:+.0f} ms from audio with media-clock reports"


async def test_send_time_reports_put_late_video_late() -> None:
    """What the media-clock reports mend: aiortc's own pairing follows the late frames."""
    skew = await _offsets(stamped=False, rate=48000)
    assert skew > LATE_S - 0.03, f"video {skew * 1000:+.0f} ms from audio with aiortc's reports"
