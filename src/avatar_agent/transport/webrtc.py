"""WebRTC transport: aiortc answers the customer's offer and plays the avatar out.

Avatar audio and video are two aiortc tracks paced by ONE `MediaClock`: a video
frame's pts and an audio frame's pts are both positions on that clock, and the
mouth drawn on a frame is read from the same timeline the audio comes from. aiortc
maps pts to RTP timestamps and RTCP sender reports, so the browser can line the two
streams up exactly as we produced them.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from avatar_agent.avatar.stream import AvatarStream
from avatar_agent.core.aio import TaskSet
from avatar_agent.core.config import IceServer
from avatar_agent.core.metrics import Metrics
from avatar_agent.speech.playout import SpeechEvent
from avatar_agent.transport.base import CallTransport, EndCallback
from avatar_agent.transport.pacing import pace
from avatar_agent.transport.receiver import Receiver

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90000
AUDIO_FRAME = 0.020
# Backlog allowed on the data channel before events are dropped instead of queued.
MAX_CHANNEL_BUFFER = 256 * 1024


class OfferError(ValueError):
    """The customer's offer cannot be answered (bad SDP, nothing to send media on)."""


class MediaClock:
    """Seconds since the first media frame was asked for; shared by audio and video."""

    def __init__(self) -> None:
        self._t0: float | None = None

    def elapsed(self) -> float:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        return now - self._t0

    def peek(self) -> float:
        return 0.0 if self._t0 is None else time.monotonic() - self._t0


class AvatarVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(
        self, stream: AvatarStream, clock: MediaClock, fps: int, pool: Executor, metrics: Metrics
    ) -> None:
        super().__init__()
        self._stream = stream
        self._clock = clock
        self._period = 1.0 / fps
        self._pool = pool
        self._metrics = metrics
        self._next: int | None = None
        self._last: np.ndarray[Any, Any] | None = None

    async def recv(self) -> av.VideoFrame:
        elapsed = self._clock.elapsed()
        if self._next is None:
            self._next = math.ceil(elapsed / self._period)
        # Video never catches up by sending stale frames: anything late is skipped.
        p = pace(elapsed, self._next, self._period, max_late_frames=0)
        if p.skipped:
            self._metrics.frames_dropped.labels("video", "send").inc(p.skipped)
            self._metrics.video_send_skips += p.skipped
        if p.wait > 0:
            await asyncio.sleep(p.wait)
        t = p.index * self._period
        pose = self._stream.pose_at(t)
        started = time.perf_counter()
        try:
            img = await asyncio.get_running_loop().run_in_executor(
                self._pool, self._stream.render_i420, pose
            )
            self._last = img
        except Exception:
            # A broken frame degrades this call only: repeat the last good picture.
            log.exception("avatar render failed")
            if self._last is None:
                raise
            img = self._last
        self._metrics.stage_seconds.labels("render").observe(time.perf_counter() - started)
        frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
        frame.pts = round(t * VIDEO_CLOCK)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._next = p.index + 1
        self._metrics.frames_out.labels("video").inc()
        return frame


class AvatarAudioTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(
        self,
        stream: AvatarStream,
        clock: MediaClock,
        metrics: Metrics,
        on_speech: Callable[[SpeechEvent], None],
    ) -> None:
        super().__init__()
        self._stream = stream
        self._clock = clock
        self._metrics = metrics
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
            self._metrics.frames_dropped.labels("audio", "send").inc(p.skipped)
        if p.wait > 0:
            await asyncio.sleep(p.wait)
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
        self._metrics.frames_out.labels("audio").inc()
        return frame


# The customer's audio is only analysed (voice activity, barge-in), never played, so
# it needs no smoothing against network jitter: one frame of prefetch releases each
# 20 ms frame as soon as the next one arrives, instead of aiortc's four (80 ms).
ANALYSIS_AUDIO_PREFETCH = 1


def analysis_only_audio(pc: RTCPeerConnection, track: MediaStreamTrack) -> bool:
    """Lower the jitter-buffer prefetch of the receiver of the remote audio `track`.

    aiortc (1.16) gives every audio receiver `JitterBuffer(capacity=16, prefetch=4)`
    in the name-mangled private `RTCRtpReceiver.__jitter_buffer`, with no public way
    to change it; a frame is handed on only once four more have arrived. When the
    attribute is not there (another aiortc), a warning is logged and nothing changes:
    calls still work, barge-in is just 60 ms slower. Returns whether it took effect.
    """
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if getattr(receiver, "track", None) is not track:
            continue
        buffer = getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None)
        if buffer is None or not isinstance(getattr(buffer, "_prefetch", None), int):
            log.warning("aiortc has no audio jitter-buffer prefetch to lower; "
                        "customer audio keeps aiortc's default delay")
            return False
        buffer._prefetch = ANALYSIS_AUDIO_PREFETCH
        return True
    log.warning("no receiver found for the customer's %s track", track.kind)
    return False


def rtc_configuration(servers: list[IceServer]) -> RTCConfiguration:
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in servers
        ]
    )


class WebRTCTransport(CallTransport):
    def __init__(
        self,
        stream: AvatarStream,
        *,
        fps: int,
        ice_servers: list[IceServer],
        render_pool: Executor,
        metrics: Metrics,
        on_end: EndCallback,
        on_connected: Callable[[], None],
        on_speech: Callable[[SpeechEvent], None],
        on_message: Callable[[dict[str, Any]], None] | None = None,
        heartbeat_timeout: float = 10.0,
    ) -> None:
        self.clock = MediaClock()
        self._heartbeat_timeout = heartbeat_timeout
        self._last_heartbeat: float | None = None
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self.video_in = None
        self.audio_in = None
        self._metrics = metrics
        self._on_end = on_end
        self._on_connected = on_connected
        self._on_message = on_message
        self._tasks = TaskSet("webrtc")
        self._channel: RTCDataChannel | None = None
        self._pending: deque[str] = deque(maxlen=32)
        self._closed = False
        self._video = AvatarVideoTrack(stream, self.clock, fps, render_pool, metrics)
        self._audio = AvatarAudioTrack(stream, self.clock, metrics, on_speech)
        self.pc.on("connectionstatechange", self._state_changed)
        self.pc.on("track", self._track)
        self.pc.on("datachannel", self._datachannel)

    def media_time(self) -> float:
        return self.clock.peek()

    async def answer(self, sdp: str, kind: str) -> RTCSessionDescription:
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        except Exception as exc:  # aiortc raises many types on malformed SDP
            raise OfferError(f"invalid SDP offer: {exc or type(exc).__name__}") from None
        kinds = {t.kind for t in self.pc.getTransceivers()}
        if not kinds & {"audio", "video"}:
            raise OfferError("the offer has no audio or video section to send the avatar on")
        if "video" in kinds:
            self.pc.addTrack(self._video)
        if "audio" in kinds:
            self.pc.addTrack(self._audio)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        local: RTCSessionDescription = self.pc.localDescription
        return local

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        log.info("connection state %s", state)
        if state == "connected":
            self._on_connected()
        elif state in ("failed", "closed") and not self._closed:
            self._on_end(f"connection_{state}")

    def _track(self, track: MediaStreamTrack) -> None:
        kind = track.kind
        if kind == "audio":
            analysis_only_audio(self.pc, track)
        counter = self._metrics.frames_in.labels(kind)
        dropped = self._metrics.frames_dropped.labels(kind, "receive")
        receiver: Receiver[Any] = Receiver(
            kind, track.recv, on_frame=lambda _f: counter.inc(), on_drop=dropped.inc
        )
        if kind == "video":
            self.video_in = receiver
        else:
            self.audio_in = receiver
        self._tasks.spawn(receiver.run(), f"receive-{kind}")

    def _datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != "agent":
            return
        self._channel = channel
        # The page opens this channel for the whole call; it closing means the page is gone.
        channel.on("close", lambda: None if self._closed else self._on_end("customer_left"))
        channel.on("message", self._message)
        # The page pings on this channel; watching starts now, not at the first ping, so a
        # page that dies before its first ping reaches us is still noticed.
        self._last_heartbeat = time.monotonic()
        self._tasks.spawn(self._watch_heartbeat(), "heartbeat")
        while self._pending:
            self._send(self._pending.popleft())

    def _message(self, data: str | bytes) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        if msg.get("type") == "ping":
            self._last_heartbeat = time.monotonic()
        elif self._on_message is not None:
            self._on_message(msg)

    async def _watch_heartbeat(self) -> None:
        """End the call when the page falls silent on the `agent` channel (network lost).

        aiortc only notices a dead peer after ICE consent fails (about 30 s); the page's
        heartbeat lets us give up sooner. Peers without the channel are not watched.
        """
        while True:
            await asyncio.sleep(min(1.0, self._heartbeat_timeout / 4))
            last = self._last_heartbeat
            if last is not None and time.monotonic() - last > self._heartbeat_timeout:
                self._on_end("connection_lost")
                return

    def send_event(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, separators=(",", ":"))
        if self._channel is None or self._channel.readyState != "open":
            if len(self._pending) == self._pending.maxlen:
                self._metrics.events_dropped.inc()
            self._pending.append(text)
            return
        self._send(text)

    def _send(self, text: str) -> None:
        ch = self._channel
        if ch is None or ch.readyState != "open" or ch.bufferedAmount > MAX_CHANNEL_BUFFER:
            self._metrics.events_dropped.inc()
            return
        ch.send(text)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._video.stop()
        self._audio.stop()
        await self._tasks.cancel_all()
        await self.pc.close()
