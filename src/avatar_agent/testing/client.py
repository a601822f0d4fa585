"""A headless customer: an aiortc peer that joins a call like the web page does.

`CustomerClient` exercises a running server from the outside, over real WebRTC,
with a real media file as camera and microphone (see `avatar_agent.testing`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError

from avatar_agent.testing.impair import Impairment
from avatar_agent.testing.loop_media import LoopedClip
from avatar_agent.transport.webrtc import close_peer


class FrameRecorder(Protocol):
    """Keeps the avatar's received media in memory (see avatar_agent.testing.measure)."""

    def attach(self, pc: RTCPeerConnection) -> None: ...

    def add(self, frame: av.AudioFrame | av.VideoFrame) -> None: ...


@dataclass
class Received:
    """What the customer got back: frame arrival times, audio level, data-channel events."""

    video_times: list[float] = field(default_factory=list)
    video_size: tuple[int, int] | None = None
    audio_frames: int = 0
    audio_peak_rms: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)
    # optional capture of decoded frames for measurements (kept in memory only)
    keep_video: bool = False
    video: list[tuple[float, np.ndarray[Any, Any]]] = field(default_factory=list)

    def fps(self, start: float, end: float) -> float:
        n = sum(1 for t in self.video_times if start <= t < end)
        return n / (end - start)

    def worst_gap(self, start: float, end: float) -> float:
        """Longest wait in seconds between two frames arriving within [start, end)."""
        times = [t for t in self.video_times if start <= t < end]
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=end - start)

    def speech(self, event: str) -> list[str]:
        return [
            e["text"] for e in self.events if e.get("type") == "speech" and e.get("event") == event
        ]


class CustomerClient:
    """One customer's call: `connect` offers, `wait_for` polls `rx`, `hangup` and `close`.

    `media` (any file ffmpeg reads) is sent as camera and microphone; without it the
    customer only receives. `consent` is the page's analysis checkbox.
    """

    def __init__(
        self,
        base_url: str,
        media: Path | None = None,
        *,
        send_video: bool = True,
        send_audio: bool = True,
        consent: bool = True,
        heartbeat: bool = True,
        audio_track: MediaStreamTrack | None = None,
        recorder: FrameRecorder | None = None,
        impair: Impairment | None = None,
        looped: LoopedClip | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.media = media
        self.send_video = send_video
        self.send_audio = send_audio
        self.consent = consent
        self.looped = looped  # media played over and over instead of `media` once
        self.heartbeat = heartbeat
        # a microphone of the caller's own (e.g. a clip that starts on cue), and an
        # in-memory recorder of the avatar's media (see avatar_agent.testing.measure)
        self.audio_track = audio_track
        self.recorder = recorder
        self.impair = impair  # a lossy network between this customer and the server
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.rx = Received()
        self.call_id: str | None = None
        self.t_offer = 0.0
        self.t_answer = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._player: MediaPlayer | None = None
        self._looping: list[MediaStreamTrack] = []
        self.channel = self.pc.createDataChannel("agent")
        self.channel.on("message", self._on_message)
        self.channel.on("open", self._on_open)
        self.pc.on("track", self._on_track)

    def _on_message(self, data: str | bytes) -> None:
        with contextlib.suppress(ValueError):
            self.rx.events.append({**json.loads(data), "_received": time.monotonic()})

    def _on_open(self) -> None:
        if self.heartbeat:
            self._tasks.append(asyncio.ensure_future(self._ping()))

    async def _ping(self) -> None:
        while self.channel.readyState == "open":
            self.channel.send(json.dumps({"type": "ping"}))
            await asyncio.sleep(2)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            if self.recorder is not None and isinstance(frame, (av.AudioFrame, av.VideoFrame)):
                self.recorder.add(frame)
            if isinstance(frame, av.VideoFrame):
                self.rx.video_times.append(now)
                self.rx.video_size = (frame.width, frame.height)
                if self.rx.keep_video:
                    self.rx.video.append((now, frame.to_ndarray(format="rgb24")))
            elif isinstance(frame, av.AudioFrame):
                self.rx.audio_frames += 1
                pcm = frame.to_ndarray().astype(np.float32)
                self.rx.audio_peak_rms = max(
                    self.rx.audio_peak_rms, float(np.sqrt(np.mean(pcm**2)))
                )

    async def connect(self, session: aiohttp.ClientSession) -> str:
        if self.looped is None and self.media is not None and (self.send_video or self.send_audio):
            self._player = MediaPlayer(str(self.media))
        for kind, wanted in (("video", self.send_video), ("audio", self.send_audio)):
            track = getattr(self._player, kind, None) if wanted and self._player else None
            if wanted and self.looped is not None:
                track = self.looped.video() if kind == "video" else self.looped.audio()
                self._looping.append(track)
            if kind == "audio" and self.audio_track is not None:
                track = self.audio_track
            if track is not None:
                self.pc.addTrack(track)
            else:
                self.pc.addTransceiver(kind, direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.t_offer = time.monotonic()
        async with session.post(self.base_url + "/api/join", json={}) as resp:
            joined = await resp.json()
            if resp.status != 201:
                raise RuntimeError(f"join refused: {resp.status} {joined}")
        body = {
            "sdp": self.pc.localDescription.sdp,
            "type": "offer",
            "consent": {"analysis": self.consent},
            "join_token": joined["join_token"],  # single use: one per offer
        }
        async with session.post(self.base_url + "/api/calls", json=body) as resp:
            data = await resp.json()
            if resp.status != 201:
                raise RuntimeError(f"call refused: {resp.status} {data}")
        self.t_answer = time.monotonic()
        await self.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], data["type"]))
        if self.impair is not None:
            self.impair.apply(self.pc)  # before media flows
        if self.recorder is not None:
            self.recorder.attach(self.pc)
        self.call_id = str(data["call_id"])
        return self.call_id

    async def wait_for(self, predicate: Any, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if predicate():
                return True
            await asyncio.sleep(0.05)
        return bool(predicate())

    async def hangup(self, session: aiohttp.ClientSession) -> int:
        async with session.delete(f"{self.base_url}/api/calls/{self.call_id}") as resp:
            return resp.status

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # as the server does: nothing of the peer may start after it is closed
        await close_peer(self.pc)
        if self.impair is not None:
            self.impair.cancel()
        for looping in self._looping:
            looping.stop()
        if self._player is not None:
            for track in (self._player.audio, self._player.video):
                if track is not None:
                    track.stop()
